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
# The most a weight bank holds, per stamp shape and aperture (4,096 pairs of FWHMs on 32x32).
WEIGHT_BANK_BYTES = 64 * 2**20


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
    """The measurement of a frame less its reference as weights on each, flattened
    (``flux = sum(frame * I) - sum(reference * R)``), the FWHM of the difference's PSF
    (pixels), and the sums the error needs: ``sum(R**2)`` and ``sum(I**2)``."""

    frame: np.ndarray
    reference: np.ndarray
    broad_pix: float
    reference_norm: float
    frame_norm: float


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
    return _Weights(frame, reference, broad, float(reference @ reference), float(frame @ frame))


class _WeightBank:
    """The weights of frames and references without missing pixels (``_masked_weights``),
    one row per pair of FWHMs (pixels, rounded to 0.01), for one stamp shape and aperture:
    each made once, and a series' rows gathered in one indexing (``rows``). Holds at most
    ``WEIGHT_BANK_BYTES`` of weights (more only while one series needs more), emptied when
    full. One per process (``_weight_bank``), for one thread at a time."""

    def __init__(self, shape: tuple[int, int], aperture_pix: float | None):
        self.shape = shape
        self.aperture_pix = aperture_pix
        pixels = shape[0] * shape[1]
        self.capacity = max(1, WEIGHT_BANK_BYTES // (2 * 8 * pixels))
        self.row_of: dict[tuple[float, float], int] = {}
        self.frame = np.empty((0, pixels))
        self.reference = np.empty((0, pixels))
        # Per row: the difference's FWHM (pixels), sum(reference**2), sum(frame**2).
        self.scalars = np.empty((0, 3))

    def rows(self, pairs: list[tuple[float, float]]) -> np.ndarray:
        """(len(pairs),) int64: the row of each (frame FWHM, reference FWHM) pair in
        pixels (finite; rounded to 0.01), its weights made where new."""
        distinct = list(dict.fromkeys(pairs))
        new = [pair for pair in distinct if pair not in self.row_of]
        if new:
            if len(self.row_of) + len(new) > self.capacity:
                self.row_of.clear()
                new = distinct
            self._reserve(len(self.row_of) + len(new))
            none = np.zeros(self.shape, dtype=bool)
            for pair in new:
                w = _masked_weights(none, none, *pair, self.aperture_pix)
                row = len(self.row_of)
                self.frame[row], self.reference[row] = w.frame, w.reference
                self.scalars[row] = (w.broad_pix, w.reference_norm, w.frame_norm)
                self.row_of[pair] = row
        return np.array([self.row_of[pair] for pair in pairs], dtype=np.int64)

    def _reserve(self, n: int) -> None:
        """Room for ``n`` rows, the rows held kept (doubling, up to the capacity)."""
        if n <= len(self.frame):
            return
        size = max(n, min(self.capacity, 2 * len(self.frame), 64))
        held = len(self.row_of)
        kept = (self.frame, self.reference, self.scalars)
        self.frame, self.reference, self.scalars = (np.empty((size, a.shape[1])) for a in kept)
        for grown, old in zip((self.frame, self.reference, self.scalars), kept, strict=True):
            grown[:held] = old[:held]


@lru_cache(maxsize=8)
def _weight_bank(shape: tuple[int, int], aperture_pix: float | None) -> _WeightBank:
    """The process's weight bank for a stamp shape and aperture."""
    return _WeightBank(shape, aperture_pix)


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

    Every frame is measured at once: its weights gathered from the weight bank (made
    where a frame or its reference misses pixels), then row-wise products with the
    frames and products with every band's reference, each frame's own band taken."""
    scale = series.pixel_scale if np.isfinite(series.pixel_scale) else 1.0
    shape = series.frames.shape[1:]
    m = len(series)
    frame_missing = np.isnan(series.frames).reshape(m, -1)
    frames = series.frames.reshape(m, -1).astype(np.float64)
    masked = frame_missing.any(axis=1)
    if masked.any():
        frames[frame_missing] = 0.0
    # Per band, a row of each: the reference with its missing pixels zeroed, its light (for
    # the static scene's photon noise), FWHM (pixels; inf where unknown: no kernel), noise.
    bands = list(references)
    unknown = sorted(set(series.band.tolist()) - set(bands))
    if unknown:
        raise ValueError(f"no reference for band ids {unknown}")
    column = np.zeros(max(bands) + 1, dtype=np.int64)
    column[bands] = np.arange(len(bands))
    references_missing = [np.isnan(r.stamp) for r in references.values()]
    stamps = np.stack(
        [
            np.where(missing, 0.0, r.stamp).ravel()
            for r, missing in zip(references.values(), references_missing, strict=True)
        ]
    ).astype(np.float64)
    light = np.clip(stamps, 0, None)
    reference_pix = [
        round(r.psf_fwhm / scale, 2) if math.isfinite(r.psf_fwhm) else math.inf
        for r in references.values()
    ]
    reference_var = np.array([float(r.sky_sigma) ** 2 for r in references.values()])
    reference_var[~np.isfinite(reference_var)] = 0.0
    reference_masked = np.array([missing.any() for missing in references_missing])
    with np.errstate(over="ignore"):
        electrons = 10 ** (0.4 * (np.asarray(series.zeropoint, np.float64) - NANOMAGGY_ZEROPOINT))
    photons = np.isfinite(electrons) & (electrons > 0)
    per_electron = np.where(photons, 1 / np.where(photons, electrons, 1.0), 0.0)
    sky_var = np.asarray(series.sky_sigma, np.float64) ** 2
    frame_fwhm = np.asarray(series.psf_fwhm, np.float64) / scale
    measured = np.flatnonzero(np.isfinite(frame_fwhm) & (frame_fwhm > 0))
    flux, variance, broad = np.full((3, m), np.nan)
    if not len(measured):
        return flux, variance, broad
    columns = column[series.band[measured]]
    pairs = [
        (round(frame_pix, 2), reference_pix[c])
        for frame_pix, c in zip(frame_fwhm[measured].tolist(), columns.tolist(), strict=True)
    ]
    # The bank's weights for every frame, then a frame's own where it or its reference
    # misses pixels.
    bank = _weight_bank(shape, aperture_pix)
    rows = bank.rows(pairs)
    on_frame, on_reference, scalars = bank.frame[rows], bank.reference[rows], bank.scalars[rows]
    own = masked[measured] | reference_masked[columns]
    for j in np.flatnonzero(own).tolist():
        k, c = measured[j], columns[j]
        w = _masked_weights(
            frame_missing[k].reshape(shape), references_missing[c], *pairs[j], aperture_pix
        )
        on_frame[j], on_reference[j] = w.frame, w.reference
        scalars[j] = (w.broad_pix, w.reference_norm, w.frame_norm)
    n = np.arange(len(measured))
    flux[measured] = (
        np.einsum("ij,ij->i", on_frame, frames if len(measured) == m else frames[measured])
        - (on_reference @ stamps.T)[n, columns]
    )
    variance[measured] = (
        reference_var[columns] * scalars[:, 1]
        + per_electron[measured] * (on_frame**2 @ light.T)[n, columns]
        + sky_var[measured] * scalars[:, 2]
    )
    broad[measured] = scalars[:, 0]
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
        ValueError: unknown method, or a band of the frames without a reference.
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
