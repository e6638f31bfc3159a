"""GalSim renderer: host galaxy + point source through a per-frame Moffat PSF, with CCD noise.

Images are drawn in photo-electrons, given sky, Poisson and read noise by GalSim's CCDNoise
(the sky is added for the noise and subtracted again, as in a sky-subtracted frame), then
divided by the frame's electrons per nanomaggy: pixels come out in nanomaggies.
"""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np

from convention.photometry import background

# Looser than GalSim's defaults: 32x32 stamps of a few arcsec need no 0.5% folding accuracy,
# and this halves the FFT sizes.
GSPARAMS = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3)


@dataclass(frozen=True)
class FrameConditions:
    """Observing conditions of the frames of one object (all arrays (M,)).

    Attributes:
        psf_fwhm: arcsec.
        electrons_per_nmgy: photo-electrons per nanomaggy (transparency included).
        sky_electrons: sky level per pixel, electrons.
        read_noise: electrons.
        offset: (M, 2) registration error of each frame, pixels.
        rotation_deg: (M,) the angle each frame's scene is turned by about the object
            (its detector's orientation), degrees; None: north up.
    """

    psf_fwhm: np.ndarray
    electrons_per_nmgy: np.ndarray
    sky_electrons: np.ndarray
    read_noise: float
    offset: np.ndarray
    rotation_deg: np.ndarray | None = None

    def select(self, index: np.ndarray) -> FrameConditions:
        """The conditions of some of the frames (an index or a boolean mask)."""
        return FrameConditions(
            self.psf_fwhm[index],
            self.electrons_per_nmgy[index],
            self.sky_electrons[index],
            self.read_noise,
            self.offset[index],
            None if self.rotation_deg is None else self.rotation_deg[index],
        )

    @property
    def sky_sigma(self) -> np.ndarray:
        """Per-pixel background noise in nanomaggies."""
        return np.sqrt(self.sky_electrons + self.read_noise**2) / self.electrons_per_nmgy

    @property
    def zeropoint(self) -> np.ndarray:
        """AB magnitude of a source giving one photo-electron in the exposure."""
        return 22.5 + 2.5 * np.log10(self.electrons_per_nmgy)


def render_frames(
    host: galsim.GSObject | None,
    host_flux: np.ndarray,
    point_flux: np.ndarray,
    conditions: FrameConditions,
    stamp_size: int,
    pixel_scale: float,
    moffat_beta: float,
    seed: int | None,
) -> np.ndarray:
    """Draw the stamps of one object.

    Args:
        host: unit-flux host profile (offset from the stamp centre included), or None.
        host_flux: (M,) host flux in each frame's band, nanomaggies.
        point_flux: (M,) flux of the point source at the stamp centre, nanomaggies.
        conditions: per-frame PSF, calibration, sky, registration offsets and
            orientation.
        stamp_size: stamp side in pixels.
        pixel_scale: arcsec per pixel.
        moffat_beta: Moffat PSF index.
        seed: noise seed; None draws noiseless images.

    Returns:
        (M, stamp_size, stamp_size) float32 frames in nanomaggies per pixel.
    """
    n = len(point_flux)
    frames = np.empty((n, stamp_size, stamp_size), dtype=np.float32)
    image = galsim.ImageD(stamp_size, stamp_size, scale=pixel_scale)
    rng = galsim.BaseDeviate(seed) if seed is not None else None
    point = galsim.DeltaFunction(gsparams=GSPARAMS)
    host = host.withGSParams(GSPARAMS) if host is not None else None
    for k in range(n):
        gain = conditions.electrons_per_nmgy[k]
        scene = point.withFlux(point_flux[k] * gain)
        if host is not None and host_flux[k] > 0:
            turned = host
            if conditions.rotation_deg is not None:
                turned = host.rotate(float(conditions.rotation_deg[k]) * galsim.degrees)
            scene = galsim.Add([scene, turned.withFlux(host_flux[k] * gain)])
        psf = galsim.Moffat(beta=moffat_beta, fwhm=float(conditions.psf_fwhm[k]), gsparams=GSPARAMS)
        galsim.Convolve(scene, psf).drawImage(image, offset=tuple(conditions.offset[k]))
        if rng is not None:
            noise = galsim.CCDNoise(
                rng,
                sky_level=float(conditions.sky_electrons[k]),
                gain=1.0,
                read_noise=conditions.read_noise,
            )
            image.addNoise(noise)
        frames[k] = image.array / gain
    return frames


def subtract_median_background(stamps: np.ndarray) -> np.ndarray:
    """Take each stamp's clipped median off, in place, as a reader of cutouts that carry
    their sky does (``convention.photometry.background``).

    Args:
        stamps: (M, S, S) float32 stamps.

    Returns:
        (M,) each stamp's per-pixel noise measured from its pixels, in the stamps' unit.
    """
    sigmas = np.empty(len(stamps), dtype=np.float32)
    for k, stamp in enumerate(stamps):
        level, sigmas[k] = background(stamp)
        stamp -= np.float32(level)
    return sigmas
