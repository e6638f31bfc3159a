"""Survey definitions: every observing figure the simulator uses, with its source, in one place.

A figure marked *assumed* is our choice where the literature gives no single number; the
rest are quoted. The noise model is calibrated so that a point source at the 5-sigma depth
below is detected at 5 sigma in median seeing, dark sky and clear weather (the depths are
measured through the atmosphere, so atmospheric extinction at Stripe 82's nearly constant
airmass is inside them; clouds come on top).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convention.errors import ConventionError
from convention.psf import MOFFAT_BETA, moffat_effective_area

# Days of the year (1 Sep .. 30 Nov) and the MJD of 1 Sep of each season.
_SEP1 = {2005: 53614.0, 2006: 53979.0, 2007: 54344.0}


@dataclass(frozen=True)
class SurveyDefinition:
    """Observing figures of one imaging survey.

    Per-band tuples follow ``bands``. Magnitudes are AB; sky brightness in mag/arcsec^2.
    """

    name: str
    bands: tuple[str, ...]
    pixel_scale: float  # arcsec / pixel
    exposure_s: float
    band_lag_days: tuple[float, ...]  # time of each band's exposure after the visit's first
    season_starts: tuple[float, ...]  # MJD of the first night of each season
    season_length_days: float
    p_clear_after_clear: float  # weather as a two-state Markov chain over nights
    p_clear_after_cloudy: float
    strips: int  # interleaved strips scanned on alternate clear nights
    seeing_median_r: float  # arcsec FWHM
    seeing_sigma_ln: float  # lognormal width of the per-visit seeing
    seeing_band_exponent: float  # FWHM proportional to wavelength ** exponent
    moffat_beta: float
    sky_dark: tuple[float, ...]  # mag / arcsec^2
    sky_bright_excess: tuple[float, ...]  # mag brighter in bright time
    bright_time_fraction: float
    depth_5sigma: tuple[float, ...]  # point-source mag at 5 sigma, median conditions
    read_noise_e: float
    cloud_fraction: float  # visits taken through some cloud
    cloud_extinction_mean: float  # mag, exponential
    missing_frame_fraction: float  # single frames lost (readout, guiding, a band dropped)
    edge_frame_fraction: float  # frames whose stamp is clipped at a CCD edge (NaN pixels)
    registration_jitter_pix: float  # Gaussian sigma of the sub-pixel registration error
    wavelengths: tuple[float, ...]  # effective wavelengths, Angstrom

    def band_index(self, band: str) -> int:
        """Position of a band name in this survey's band tuples."""
        return self.bands.index(band)

    def seasons(self) -> list[tuple[float, float]]:
        """(first, last) MJD of each observing season."""
        return [(s, s + self.season_length_days) for s in self.season_starts]

    def electrons_per_flux(self) -> np.ndarray:
        """Photo-electrons per nanomaggy for each band in clear weather.

        Solved from the 5-sigma depth: sky-limited noise in the effective area of a Moffat
        PSF at median seeing, ``5 sigma = F5``, with sigma^2 = A_eff (sky + read^2/g)/g.
        """
        pix_area = self.pixel_scale**2
        gains = []
        for k, band in enumerate(self.bands):
            fwhm = self.seeing_fwhm_median(band)
            area_pix = moffat_effective_area(fwhm, self.moffat_beta) / pix_area
            sky_flux = 10 ** (-0.4 * (self.sky_dark[k] - 22.5)) * pix_area  # nmgy / pixel
            f5 = 10 ** (-0.4 * (self.depth_5sigma[k] - 22.5))
            # (F5/5)^2 = area (sky/g + read^2/g^2): positive root of a quadratic in 1/g
            a, b, c = area_pix * self.read_noise_e**2, area_pix * sky_flux, -((f5 / 5) ** 2)
            inv_g = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
            gains.append(1.0 / inv_g)
        return np.array(gains)

    def seeing_fwhm_median(self, band: str) -> float:
        """Median PSF FWHM (arcsec) in a band, scaled from r (the third band) with the
        Kolmogorov exponent."""
        ratio = (
            self.wavelengths[self.band_index(band)]
            / self.wavelengths[self.band_index(self.bands[2])]
        )
        return self.seeing_median_r * ratio**self.seeing_band_exponent


SDSS2 = SurveyDefinition(
    name="sdss2",
    bands=("sdss::u", "sdss::g", "sdss::r", "sdss::i", "sdss::z"),
    # York et al. 2000 (AJ 120, 1579): 0.396"/pixel, 53.9 s drift-scan exposure.
    pixel_scale=0.396,
    exposure_s=53.9,
    # Camera order r, i, u, z, g, ~72 s between rows (Gunn et al. 1998, AJ 116, 3040).
    band_lag_days=tuple(x * 72.0 / 86400.0 for x in (2, 4, 0, 1, 3)),
    # Frieman et al. 2008 (AJ 135, 338); Sako et al. 2018 (PASP 130, 064002): Sep-Nov 2005-07.
    season_starts=tuple(_SEP1.values()),
    season_length_days=90.0,
    # Assumed: ~4 nights between repeat scans of a strip (Frieman et al. 2008 quote "every
    # ~4 nights"); with two strips this needs clear weather on about half of all nights.
    p_clear_after_clear=0.7,
    p_clear_after_cloudy=0.45,
    strips=2,
    # Median r seeing ~1.4" (Abazajian et al. 2009, DR7); lognormal width assumed so that
    # ~10% of visits exceed 1.8", the survey-quality cut of the SNANA README (QMASK bit 1).
    seeing_median_r=1.4,
    seeing_sigma_ln=0.2,
    seeing_band_exponent=-0.2,  # Kolmogorov turbulence (Roddier 1981)
    moffat_beta=MOFFAT_BETA,  # assumed; typical ground-based PSF wings (Trujillo et al. 2001)
    # Dark-sky brightness: SDSS DR7 typical values (Abazajian et al. 2009; Stoughton 2002).
    sky_dark=(22.1, 21.9, 21.2, 20.5, 19.0),
    # Assumed: Stripe 82 fall moonlight brightens the blue sky most.
    sky_bright_excess=(1.5, 1.1, 0.7, 0.5, 0.3),
    bright_time_fraction=0.23,  # SNANA README: 464 of 2004 epochs in 2005 were bright time
    # 95%-completeness depths of DR7 (Abazajian et al. 2009) used as the 5-sigma depth.
    depth_5sigma=(22.0, 22.2, 22.2, 21.3, 20.5),
    read_noise_e=5.0,  # SDSS photometric CCDs: ~5 e- (Gunn et al. 1998)
    # Assumed: 20% of visits through cloud of 0.3 mag mean extinction; SNANA README counts
    # 1063 of 2004 epochs not of survey quality (seeing, cloud or moon).
    cloud_fraction=0.2,
    cloud_extinction_mean=0.3,
    missing_frame_fraction=0.02,  # assumed
    edge_frame_fraction=0.01,  # assumed
    registration_jitter_pix=0.15,  # assumed; astrometric frame registration error
    wavelengths=(3614.4, 4749.2, 6205.8, 7525.6, 8947.4),  # speclite sdss2010 curves
)

SURVEYS = {"sdss2": SDSS2}


def get_survey(name: str) -> SurveyDefinition:
    """A survey definition by name.

    Raises:
        ConventionError: unknown survey.
    """
    key = name.lower()
    if key not in SURVEYS:
        raise ConventionError(f"unknown survey {name!r}; known: {', '.join(SURVEYS)}")
    return SURVEYS[key]
