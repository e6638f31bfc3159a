"""Simple aperture photometry on stamps (the forced PSF photometry builds on this later).

Stamps are sky-subtracted, so the sum of pixels inside a circular aperture is the source
flux (plus whatever host light falls in the aperture), in the stamp's flux unit.
"""

from __future__ import annotations

import numpy as np


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
