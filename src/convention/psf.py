"""The Moffat PSF (Moffat 1969) every part of the package draws and fits: the simulator's
and the PLAsTiCC renderer's stamps, forced photometry's PSF and aperture corrections."""

from __future__ import annotations

import numpy as np

MOFFAT_BETA = 3.5  # assumed; typical ground-based PSF wings (Trujillo et al. 2001)


def moffat_alpha(fwhm: float | np.ndarray, beta: float = MOFFAT_BETA) -> float | np.ndarray:
    """The Moffat core width alpha of a FWHM (same unit): ``fwhm / (2 sqrt(2^(1/beta) - 1))``."""
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_profile(
    shape: tuple[int, int],
    fwhm_pix: float,
    beta: float = MOFFAT_BETA,
    offset: tuple[float, float] | np.ndarray = (0.0, 0.0),
    oversample: int = 1,
) -> np.ndarray:
    """(H, W) unnormalised Moffat profile ``(1 + r^2 / alpha^2)^-beta`` centred on the stamp
    centre plus ``offset`` (x, y pixels), averaged over ``oversample`` x ``oversample``
    sub-pixels of each pixel (1: sampled at pixel centres)."""
    h, w = shape
    alpha = moffat_alpha(fwhm_pix, beta)
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5 if oversample > 1 else np.zeros(1)
    y = (np.arange(h)[:, None] + sub[None, :]).reshape(-1) - ((h - 1) / 2.0 + offset[1])
    x = (np.arange(w)[:, None] + sub[None, :]).reshape(-1) - ((w - 1) / 2.0 + offset[0])
    profile = (1.0 + (x[None, :] ** 2 + y[:, None] ** 2) / alpha**2) ** -beta
    return profile.reshape(h, oversample, w, oversample).mean(axis=(1, 3))


def moffat_psf(
    shape: tuple[int, int], fwhm_pix: float, beta: float = MOFFAT_BETA, oversample: int = 4
) -> np.ndarray:
    """(H, W) Moffat PSF centred on the stamp, integrated over each pixel (by
    ``oversample`` x ``oversample`` sub-pixels, as a CCD samples it) and normalised to unit
    total flux over the whole plane (a PSF wider than the stamp keeps its scale)."""
    alpha = moffat_alpha(fwhm_pix, beta)
    profile = moffat_profile(shape, fwhm_pix, beta, oversample=oversample)
    return profile * (beta - 1.0) / (np.pi * alpha**2)


def moffat_enclosed(
    radius_pix: float, fwhm_pix: np.ndarray, beta: float = MOFFAT_BETA
) -> np.ndarray:
    """Fraction of a Moffat PSF's flux within ``radius_pix`` of its centre (the aperture
    correction): ``1 - (1 + r^2 / alpha^2)^(1 - beta)``."""
    alpha = moffat_alpha(np.asarray(fwhm_pix, dtype=np.float64), beta)
    return 1.0 - (1.0 + radius_pix**2 / alpha**2) ** (1.0 - beta)


def moffat_effective_area(fwhm: float, beta: float = MOFFAT_BETA) -> float:
    """Noise-equivalent area (FWHM's unit squared) of a Moffat PSF: 1 / integral(psf^2)."""
    alpha = moffat_alpha(fwhm, beta)
    return np.pi * alpha**2 * (2.0 * beta - 1.0) / (beta - 1.0) ** 2


def moffat_sampled(
    shape: tuple[int, int],
    fwhm_pix: float,
    offset: tuple[float, float] | np.ndarray = (0.0, 0.0),
    beta: float = MOFFAT_BETA,
) -> np.ndarray:
    """(H, W) Moffat profile sampled at pixel centres, centred on the stamp centre plus
    ``offset`` (x, y pixels) as GalSim draws it, normalised to unit sum over the stamp."""
    profile = moffat_profile(shape, fwhm_pix, beta, offset)
    return profile / profile.sum()
