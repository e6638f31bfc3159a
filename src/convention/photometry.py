"""Forced photometry on stamps: aperture and PSF-weighted fluxes at the stamp centre.

Stamps are sky-subtracted, so the flux in an aperture, or the amplitude of a PSF fitted
at the object's position, is the source flux in the stamp's unit (plus whatever host light
falls under it). ``reference="median"`` subtracts each band's pixel-wise median stamp
first, which removes a static host and leaves the source's change about its median: the
difference flux light-curve classifiers expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from convention.data.lightcurve import make_lightcurve
from convention.psf import MOFFAT_BETA, moffat_enclosed, moffat_psf

if TYPE_CHECKING:
    from astropy.table import Table

    from convention.data.series import StampSeries

METHODS = ("psf", "aperture")
REFERENCES = ("none", "median")


def aperture_mask(shape: tuple[int, int], radius_pix: float) -> np.ndarray:
    """Boolean (H, W) mask of pixels whose centres lie within ``radius_pix`` of the centre."""
    h, w = shape
    y, x = np.mgrid[:h, :w]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius_pix**2


def aperture_flux(
    frames: np.ndarray, radius_pix: float, sky_sigma: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flux and its error in a centred circular aperture.

    Args:
        frames: (M, H, W) sky-subtracted stamps; NaN pixels count as missing.
        radius_pix: aperture radius in pixels.
        sky_sigma: (M,) per-pixel background noise; without it the error is NaN.

    Returns:
        flux (M,) and flux_err (M,) in the frames' unit. A frame whose aperture holds
        missing pixels gets the sum of its valid pixels scaled to the full aperture area.
    """
    frames = np.asarray(frames, dtype=np.float64)
    mask = aperture_mask(frames.shape[1:], radius_pix)
    inside = frames[:, mask]
    valid = np.isfinite(inside)
    n_valid = valid.sum(axis=1)
    total = np.where(valid, inside, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = np.where(n_valid > 0, total * mask.sum() / n_valid, np.nan)
    if sky_sigma is None:
        return flux, np.full_like(flux, np.nan)
    err = np.asarray(sky_sigma, dtype=np.float64) * np.sqrt(mask.sum())
    return flux, err


@lru_cache(maxsize=2048)
def _cached_psf(shape: tuple[int, int], fwhm_pix: float, beta: float) -> np.ndarray:
    """moffat_psf for a FWHM rounded to 0.01 pixel (a 0.3% change at most): frames share
    a few hundred PSFs, each built once."""
    psf = moffat_psf(shape, fwhm_pix, beta)
    psf.flags.writeable = False
    return psf


def psf_flux(
    frames: np.ndarray,
    fwhm_pix: np.ndarray,
    sky_sigma: np.ndarray,
    beta: float = MOFFAT_BETA,
) -> tuple[np.ndarray, np.ndarray]:
    """PSF-weighted flux at the stamp centre: the least-squares amplitude of the PSF.

    ``flux = sum(P I) / sum(P^2)`` over the valid pixels, ``err = sigma / sqrt(sum(P^2))``
    (background-limited: the optimal estimator for a faint point source).

    Args:
        frames: (M, H, W) sky-subtracted stamps; NaN pixels are left out of the fit.
        fwhm_pix: (M,) PSF FWHM of each frame in pixels.
        sky_sigma: (M,) per-pixel background noise.
        beta: Moffat index of the PSF model.

    Returns:
        flux (M,) and flux_err (M,) in the frames' unit; NaN where a frame has no valid
        pixel or no finite FWHM.
    """
    frames = np.asarray(frames, dtype=np.float64)
    m = len(frames)
    flux = np.full(m, np.nan)
    err = np.full(m, np.nan)
    fwhm = np.asarray(fwhm_pix, dtype=np.float64)
    fitted = np.flatnonzero(np.isfinite(fwhm) & (fwhm > 0))
    if not len(fitted):
        return flux, err
    shape = frames.shape[1:]
    psf = np.stack([_cached_psf(shape, round(float(fwhm[k]), 2), beta) for k in fitted])
    data = frames[fitted]
    valid = np.isfinite(data)
    weights = np.where(valid, psf, 0.0)  # the PSF over each frame's valid pixels
    norm = np.einsum("kij,kij->k", weights, weights)
    dot = np.einsum("kij,kij->k", weights, np.where(valid, data, 0.0))
    ok = norm > 0
    flux[fitted[ok]] = dot[ok] / norm[ok]
    err[fitted[ok]] = np.asarray(sky_sigma, dtype=np.float64)[fitted[ok]] / np.sqrt(norm[ok])
    return flux, err


def median_stamp(frames: np.ndarray) -> np.ndarray:
    """(H, W) pixel-by-pixel median of (M, H, W) frames over the frames whose pixel is not
    NaN (NaN where none is): ``np.nanmedian(frames, axis=0)``, without its slow path for
    small stacks (a sort along the frames, NaN sorted last)."""
    if len(frames) and not np.isnan(frames).any():
        # The median along the last, contiguous axis: 1.4x faster than along the first.
        pixels = np.ascontiguousarray(frames.reshape(len(frames), -1).T)
        return np.median(pixels, axis=-1).reshape(frames.shape[1:])
    ordered = np.sort(frames, axis=0)
    valid = (~np.isnan(frames)).sum(axis=0)
    last = max(len(frames) - 1, 0)
    low = np.take_along_axis(ordered, np.clip((valid - 1) // 2, 0, last)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.clip(valid // 2, 0, last)[None], axis=0)[0]
    median = (low + high) / 2
    median[valid == 0] = np.nan
    return median


def median_stamps(series: StampSeries) -> dict[int, np.ndarray]:
    """Each band's reference stamp: band id -> (H, W) median of its frames (NaN where a
    pixel is NaN in every frame of the band)."""
    return {int(b): median_stamp(series.frames[series.band == b]) for b in np.unique(series.band)}


def forced_photometry(
    series: StampSeries,
    method: str = "psf",
    reference: str = "none",
    aperture_arcsec: float = 3.0,
    references: Mapping[int, np.ndarray] | None = None,
) -> Table:
    """The object's light curve by forced photometry on its stamps.

    Args:
        series: the stamps; its ``pixel_scale`` and per-frame ``psf_fwhm`` set the PSF.
        method: ``psf`` (PSF-weighted) or ``aperture`` (corrected for the PSF's light
            outside the aperture).
        reference: ``none``, or ``median`` to subtract each band's median stamp first.
        aperture_arcsec: aperture radius for ``aperture``.
        references: the median stamps already measured (``median_stamps(series)``).

    Returns:
        Light-curve Table (``mjd, band, flux, flux_err, detected``; detected = flux above
        five sigma) in the frames' unit.

    Raises:
        ValueError: unknown method or reference.
    """
    if method not in METHODS or reference not in REFERENCES:
        raise ValueError(f"method must be one of {METHODS}, reference one of {REFERENCES}")
    frames = series.frames.astype(np.float64)
    if reference == "median" and len(series):
        frames = frames.copy()
        stamps = median_stamps(series) if references is None else references
        for band in np.unique(series.band):
            frames[series.band == band] -= stamps[int(band)]
    scale = series.pixel_scale if np.isfinite(series.pixel_scale) else 1.0
    if method == "psf":
        flux, err = psf_flux(frames, series.psf_fwhm / scale, series.sky_sigma)
    else:
        radius = aperture_arcsec / scale
        flux, err = aperture_flux(frames, radius, series.sky_sigma)
        with np.errstate(invalid="ignore"):
            correction = moffat_enclosed(radius, series.psf_fwhm / scale)
        flux, err = flux / correction, err / correction
    with np.errstate(invalid="ignore"):
        detected = flux > 5 * err
    return make_lightcurve(series.mjd, series.band, flux, err, detected)
