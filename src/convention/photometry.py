"""Forced photometry on stamps: a stamp's sky level and noise, aperture and PSF-weighted
fluxes at the stamp centre.

Stamps are sky-subtracted, so the flux in an aperture, or the amplitude of a PSF fitted
at the object's position, is the source flux in the stamp's unit (plus whatever host light
falls under it). Measured on the difference of each frame and its band's reference stamp
(``convention.data.reference``), it is the difference flux light-curve classifiers expect:
the static host removed, and, against a template made before the transient, zero before
it appears. The sharper of frame and reference is convolved with the kernel that turns its
Moffat PSF into the other's (the ratio of their Fourier transforms, so the match is exact
for the model PSFs), the way survey pipelines match PSFs before subtracting; photometry
being linear, the kernel is applied to the measurement's weights, once per pair of FWHMs.
A source's own difference stamps (ZTF's ``cutoutDifference``) are measured as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from convention.data.lightcurve import make_lightcurve
from convention.psf import MOFFAT_BETA, moffat_enclosed, moffat_psf

if TYPE_CHECKING:
    from astropy.table import Table

    from convention.data.reference import Reference
    from convention.data.series import StampSeries

METHODS = ("psf", "aperture")
DIFFERENCE_CHANNEL = "difference"
# FWHMs (pixels) closer than this are taken as equal: no kernel (a 0.3% change at most).
SAME_FWHM_PIX = 0.01
# A missing pixel spoils the convolved pixels its kernel gives more than this weight.
MISSING_REACH = 1e-3
NANOMAGGY_ZEROPOINT = 22.5  # AB magnitude of one nanomaggy, the frames' flux unit


def background(image: np.ndarray) -> tuple[float, float]:
    """Median background and its per-pixel noise (1.4826 x median absolute deviation) of
    a stamp's finite pixels, after 3-sigma clipping of sources (one pass)."""
    values = image[np.isfinite(image)]
    median = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - median)))
    keep = np.abs(values - median) < 3 * sigma if sigma > 0 else np.ones(len(values), bool)
    median = float(np.median(values[keep]))
    sigma = 1.4826 * float(np.median(np.abs(values[keep] - median)))
    return median, sigma


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


def _padded_shape(shape: tuple[int, int], fwhm_pix: float) -> tuple[int, int]:
    """An odd grid around the stamp, wide enough that a kernel of this FWHM's Moffat wings
    does not wrap around (a kernel centred on a pixel of an odd grid shifts nothing), of
    a size with no prime factor above 7: an FFT of a prime size (73, 79) takes 4-5 times
    as long."""
    pad = int(np.ceil(3 * fwhm_pix))
    return tuple(_odd_smooth(n + 2 * pad + (1 - n % 2)) for n in shape)


def _odd_smooth(n: int) -> int:
    """The smallest odd number from ``n`` (odd) whose prime factors are 3, 5 and 7."""
    while True:
        rest = n
        for factor in (3, 5, 7):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return n
        n += 2


@lru_cache(maxsize=4096)
def _matching_kernel(grid: tuple[int, int], sharp_pix: float, broad_pix: float) -> np.ndarray:
    """rfft2 of the kernel that turns a Moffat PSF of FWHM ``sharp_pix`` into one of
    ``broad_pix`` on ``grid``: the ratio of their transforms (a Moffat's is positive and
    falls slower, the sharper it is, so the ratio stays bounded)."""
    sharp, broad = (
        np.fft.rfft2(np.fft.ifftshift(_cached_psf(grid, fwhm, MOFFAT_BETA)))
        for fwhm in (sharp_pix, broad_pix)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = np.where(np.abs(sharp) > 1e-12, broad / sharp, 0.0)
    kernel.flags.writeable = False
    return kernel


def _convolve(images: np.ndarray, sharp_pix: float, broad_pix: float) -> np.ndarray:
    """(K, H, W) images convolved with the matching kernel from ``sharp_pix`` to
    ``broad_pix`` (zero outside the stamp). The kernel is symmetric, so this is also its
    transpose: what weights on a convolved image are on the image itself."""
    shape = images.shape[1:]
    grid = _padded_shape(shape, broad_pix)
    kernel = _matching_kernel(grid, sharp_pix, broad_pix)
    out = np.fft.irfft2(np.fft.rfft2(images, s=grid) * kernel, s=grid)
    return out[:, : shape[0], : shape[1]]


def _matching(frame_pix: float, reference_pix: float) -> tuple[str, float]:
    """Which image takes the kernel (``none``, ``frame`` or ``reference``: the sharper one)
    and the FWHM of the difference's PSF, in pixels."""
    if not np.isfinite(reference_pix) or abs(frame_pix - reference_pix) < SAME_FWHM_PIX:
        return "none", frame_pix
    if frame_pix > reference_pix:
        return "reference", frame_pix
    return "frame", reference_pix


def _measurement(
    shape: tuple[int, int], fwhm_pix: float, aperture_pix: float | None, valid: np.ndarray
) -> np.ndarray:
    """The weights that measure a difference stamp over its ``valid`` pixels: the PSF
    over ``sum(P^2)`` (``psf_flux``), or the aperture's mask scaled to its whole area
    (``aperture_flux``); NaN where no pixel is valid."""
    if aperture_pix is not None:
        inside = aperture_mask(shape, aperture_pix)
        n_valid = np.sum(inside & valid)
        return inside * valid * (inside.sum() / n_valid) if n_valid else np.full(shape, np.nan)
    psf = _cached_psf(shape, fwhm_pix, MOFFAT_BETA) * valid
    norm = np.sum(psf**2)
    return psf / norm if norm > 0 else np.full(shape, np.nan)


def _reach(missing: np.ndarray, sharp_pix: float, broad_pix: float) -> np.ndarray:
    """(H, W) bool: the pixels of an image convolved from ``sharp_pix`` to ``broad_pix``
    that its ``missing`` pixels spoil."""
    if not missing.any():
        return missing
    spread = _convolve(missing[None].astype(np.float64), sharp_pix, broad_pix)[0]
    return np.abs(spread) > MISSING_REACH


class _Weights(NamedTuple):
    """The measurement of a frame less its reference as weights on each (``flux =
    sum(frame * I) - sum(reference * R)``), the FWHM of the difference's PSF (pixels), and
    the sums the error needs: ``sum(reference**2)``, ``frame**2`` and ``sum(frame**2)``."""

    frame: np.ndarray
    reference: np.ndarray
    broad_pix: float
    reference_norm: float
    frame_squared: np.ndarray
    frame_squared_sum: float


def _masked_weights(
    frame_missing: np.ndarray,
    reference_missing: np.ndarray,
    frame_pix: float,
    reference_pix: float,
    aperture_pix: float | None,
) -> _Weights:
    """The measurement of a frame less its reference as weights on each (flattened).
    Photometry is linear, so the PSF matching moves onto the weights. Only the
    difference's pixels that no missing pixel reaches through its image's kernel are
    measured (an aperture's sum scaled to its whole area); NaN weights when none is left."""
    side, broad = _matching(frame_pix, reference_pix)
    sharp = min(frame_pix, reference_pix)
    spoiled = frame_missing | reference_missing
    if side == "frame":
        spoiled = _reach(frame_missing, sharp, broad) | reference_missing
    elif side == "reference":
        spoiled = frame_missing | _reach(reference_missing, sharp, broad)
    weights = _measurement(frame_missing.shape, broad, aperture_pix, ~spoiled)
    moved = weights if side == "none" else _convolve(weights[None], sharp, broad)[0]
    frame, reference = (moved, weights) if side == "frame" else (weights, moved)
    frame, reference = frame.ravel(), reference.ravel()
    squared = frame**2
    return _Weights(
        frame, reference, broad, float(reference @ reference), squared, float(squared.sum())
    )


@lru_cache(maxsize=8192)
def _weights(
    shape: tuple[int, int], frame_pix: float, reference_pix: float, aperture_pix: float | None
) -> _Weights:
    """``_masked_weights`` of a frame and reference without missing pixels: made once per
    pair of FWHMs, not once per frame."""
    none = np.zeros(shape, dtype=bool)
    weights = _masked_weights(none, none, frame_pix, reference_pix, aperture_pix)
    for array in (weights.frame, weights.reference, weights.frame_squared):
        array.flags.writeable = False
    return weights


def difference_stamps(series: StampSeries, references: Mapping[int, Reference]) -> np.ndarray:
    """(M, H, W) float64 each frame less its band's reference, the sharper of the two
    convolved to the other's PSF (as they are where either PSF is unknown); NaN where a
    missing pixel reaches. What the plots show; photometry measures the same through
    weights (``forced_photometry``)."""
    scale = series.pixel_scale if np.isfinite(series.pixel_scale) else 1.0
    frames = series.frames.astype(np.float64)
    out = np.empty_like(frames)
    for k in range(len(series)):
        reference = references[int(series.band[k])]
        frame_pix = round(float(series.psf_fwhm[k] / scale), 2)
        reference_pix = round(reference.psf_fwhm / scale, 2)
        side, broad = _matching(frame_pix, reference_pix)
        images = [frames[k], reference.stamp.astype(np.float64)]
        if side != "none":
            sharp, which = min(frame_pix, reference_pix), 0 if side == "frame" else 1
            convolved = _convolve(np.nan_to_num(images[which])[None], sharp, broad)[0]
            convolved[_reach(np.isnan(images[which]), sharp, broad)] = np.nan
            images[which] = convolved
        out[k] = images[0] - images[1]
    return out


def _reference_photometry(
    series: StampSeries,
    references: Mapping[int, Reference],
    aperture_pix: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux, error and the difference's FWHM (pixels) of every frame less its band's
    reference, PSF-matched (see ``_masked_weights``). The error adds the reference's noise
    and the static scene's photon noise (the reference's light over the frame's
    photo-electrons per unit, from its zero point: frames in nanomaggies) to the sky's.

    Each frame's weights are made once per pair of FWHMs where no pixel is missing, and
    its sums over pixels are dot products of those cached weights with its own row: the
    only (frames, pixels) arrays made are the frames as float64 and their missing pixels."""
    scale = series.pixel_scale if np.isfinite(series.pixel_scale) else 1.0
    shape = series.frames.shape[1:]
    m = len(series)
    frame_missing = np.isnan(series.frames).reshape(m, -1)
    frames = series.frames.reshape(m, -1).astype(np.float64)
    masked = frame_missing.any(axis=1).tolist()
    if any(masked):
        frames[frame_missing] = 0.0
    # Per band: the reference with its missing pixels zeroed, its light (for the static
    # scene's photon noise), its missing pixels, FWHM (pixels) and noise.
    stamps, light, references_missing, reference_pix, reference_var = {}, {}, {}, {}, {}
    for band, reference in references.items():
        missing = np.isnan(reference.stamp)
        stamps[band] = np.where(missing, 0.0, reference.stamp).astype(np.float64).ravel()
        light[band] = np.clip(stamps[band], 0, None)
        references_missing[band] = missing
        reference_pix[band] = round(reference.psf_fwhm / scale, 2)
        variance = float(reference.sky_sigma) ** 2
        reference_var[band] = variance if math.isfinite(variance) else 0.0
    with np.errstate(over="ignore"):
        electrons = 10 ** (0.4 * (np.asarray(series.zeropoint, np.float64) - NANOMAGGY_ZEROPOINT))
    photons = np.isfinite(electrons) & (electrons > 0)
    per_electron = np.where(photons, 1 / np.where(photons, electrons, 1.0), 0.0).tolist()
    sky_var = (np.asarray(series.sky_sigma, np.float64) ** 2).tolist()
    frame_fwhm = (np.asarray(series.psf_fwhm, np.float64) / scale).tolist()
    bands = series.band.astype(np.int64).tolist()
    reference_masked = {band: bool(missing.any()) for band, missing in references_missing.items()}
    nan = (math.nan, math.nan, math.nan)
    measured = []
    for k in range(m):
        frame_pix, band = frame_fwhm[k], bands[k]
        if not (math.isfinite(frame_pix) and frame_pix > 0):
            measured.append(nan)
            continue
        if masked[k] or reference_masked[band]:
            w = _masked_weights(
                frame_missing[k].reshape(shape),
                references_missing[band],
                round(frame_pix, 2),
                reference_pix[band],
                aperture_pix,
            )
        else:
            w = _weights(shape, round(frame_pix, 2), reference_pix[band], aperture_pix)
        flux = w.frame.dot(frames[k]) - w.reference.dot(stamps[band])
        variance = (
            reference_var[band] * w.reference_norm
            + per_electron[k] * w.frame_squared.dot(light[band])
            + sky_var[k] * w.frame_squared_sum
        )
        measured.append((flux, variance, w.broad_pix))
    flux, variance, broad = np.array(measured, dtype=np.float64).reshape(m, 3).T
    return flux, np.sqrt(variance), broad


def forced_photometry(
    series: StampSeries,
    method: str = "psf",
    references: Mapping[int, Reference] | None = None,
    aperture_arcsec: float = 3.0,
) -> Table:
    """The object's light curve by forced photometry on its stamps.

    Args:
        series: the stamps; its ``pixel_scale`` and per-frame ``psf_fwhm`` set the PSF.
        method: ``psf`` (PSF-weighted) or ``aperture`` (corrected for the PSF's light
            outside the aperture).
        references: band id -> each band's reference, subtracted PSF-matched first; None
            measures the frames as they are. A series with a ``difference`` channel (the
            survey's own difference stamps) is measured on it instead.
        aperture_arcsec: aperture radius for ``aperture``.

    Returns:
        Light-curve Table (``mjd, band, flux, flux_err, detected``; detected = flux above
        five sigma) in the frames' unit.

    Raises:
        ValueError: unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    scale = series.pixel_scale if np.isfinite(series.pixel_scale) else 1.0
    radius = aperture_arcsec / scale
    fwhm = np.asarray(series.psf_fwhm / scale, dtype=np.float64)
    if references is not None and len(series) and DIFFERENCE_CHANNEL not in series.channels:
        flux, err, fwhm = _reference_photometry(
            series, references, None if method == "psf" else radius
        )
    else:
        frames = series.channels.get(DIFFERENCE_CHANNEL, series.frames).astype(np.float64)
        if method == "psf":
            flux, err = psf_flux(frames, fwhm, series.sky_sigma)
        else:
            flux, err = aperture_flux(frames, radius, series.sky_sigma)
    if method == "aperture":
        with np.errstate(invalid="ignore"):
            correction = moffat_enclosed(radius, fwhm)
        flux, err = flux / correction, err / correction
    with np.errstate(invalid="ignore"):
        detected = flux > 5 * err
    return make_lightcurve(series.mjd, series.band, flux, err, detected)
