"""Survey definitions: every observing figure the simulator uses, with its source, in one place.

A figure marked *assumed* is our choice where the literature gives no single number; the
rest are quoted. The noise model is calibrated so that a point source at the 5-sigma depth
below is detected at 5 sigma (of the survey pipeline's errors,
``photometry_error_factor``) in median seeing, dark sky and clear weather (the depths are
measured through the atmosphere, so atmospheric extinction at Stripe 82's nearly constant
airmass is inside them; clouds come on top).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convention.errors import ConventionError
from convention.psf import MOFFAT_BETA, moffat_effective_area
from convention.sim.population import MagnitudeLimited

NJY_ZEROPOINT = 2.5 * float(np.log10(3631e9))  # AB magnitude of 1 nJy (~31.4)
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
    stamp_size: int  # pixels on a side of the survey's stamps (cutouts)
    seeing_band: str  # the band whose seeing ``seeing_median_r`` gives
    band_visit_fraction: tuple[float, ...]  # fraction of visits that take each band
    # The SDSS band whose source model stands in for each band (sources, hosts and stars
    # are modelled in ugriz: the SDSS-II fits they are drawn from are ugriz).
    source_bands: tuple[str, ...]
    search_bands: tuple[str, ...]  # a supernova must peak brighter than search_limit_mag
    search_limit_mag: float  # in one of these bands (the transient search's depth)
    # Objects seen nearer than SDSS-II's: redshifts times this, catalogue magnitudes plus
    # 5 log10 of it (the distance modulus at low redshift). 1 for SDSS-II itself. A survey
    # with a ``supernova_population`` places its supernovae by that instead.
    population_distance_scale: float
    # Alert stream: frames only where the difference image detects the object at
    # alert_sigma (as alert packets carry a cutout per detection), the sequence cut after
    # a drawn number of detections (the object as classified at one of its alerts).
    alerts: bool
    alert_sigma: float
    # The photometry an alert carries: every visit of this many days before it (detections,
    # and 5-sigma limits where not detected), as ZTF's prv_candidates; 0: none.
    history_days: float
    # Reference (template) images: each band's coadd of n earlier frames over a span of
    # days ending a gap before the first season, each drawn from these quantiles (at
    # probabilities 0, 0.1, ..., 1; one value: fixed), its FWHM this times the frames'
    # median (``convention.sim.references``).
    reference_frames: tuple[float, ...]
    reference_span_days: tuple[float, ...]
    reference_gap_days: tuple[float, ...]
    reference_seeing_ratio: float
    # Cutouts served with their sky in them, which the survey's reader takes off: each
    # frame and reference loses its clipped median, its noise measured from its pixels
    # (``convention.photometry.background``), as the alert reader does to a real packet's.
    median_background: bool
    # Each object carries the catalogue fields of its alerts (``convention.sim.neighbours``:
    # the nearest Pan-STARRS1 source's star/galaxy score and distance, the nearest
    # reference-image source's distance), as ZTF's alerts do.
    catalogue: bool
    # Each object carries its host's redshift as a galaxy catalogue gives it and its Milky
    # Way E(B-V) (``convention.sim.host_redshift``), as SDSS-II's candidates do.
    host_catalogue: bool
    # Objects placed over the survey's sky between these declinations by class
    # (``convention.sim.sky``); None: at their catalogue positions (SDSS-II's Stripe 82).
    sky_dec_range: tuple[float, float] | None
    # Each visit's cutout in its detector's orientation, which changes from visit to visit
    # (Rubin's): the scene turned by a random angle about the object per frame and per
    # reference. False: every stamp north up.
    rotation: bool = False
    # An alert's history carries forced photometry at every visit (Rubin's
    # prvDiaForcedSources): a visit without a detection keeps its measured difference flux
    # (``detected = False``), not a 5-sigma limit.
    forced_history: bool = False
    # Whether its packets say each visit's seeing (ZTF's fwhm). Where they do not
    # (Rubin's), the alert reader takes the band's median seeing, and the twin stores that
    # too (its frames are still rendered with their own), so that a model is trained on
    # what it is served.
    reports_seeing: bool = True
    # The zero point its packets' pixels are given in where they carry none per visit
    # (Rubin's: calibrated nJy, 2.5 log10(3631e9)); the twin stores it too. None: each
    # frame's own (photo-electrons per nanomaggy).
    packet_zeropoint: float | None = None
    # Whether each visit takes its bands in an order of its own (the lags of
    # ``band_lag_days`` dealt out at random); False: always in ``bands``' order.
    band_order_random: bool = False
    # Per band, the survey pipeline's PSF-fit flux errors over the white-noise ideal (the
    # pixels' sky noise over the PSF's effective area): its detections, 5-sigma limits and
    # quoted depths count in these errors. None: the ideal.
    photometry_error_factor: tuple[float, ...] | None = None
    # Whether its templates are coadds of frames resampled onto a common grid and
    # resampled again onto each visit's (ZTF's): their noise correlated between
    # neighbouring pixels (``convention.sim.references.resampled_noise``). False: white.
    reference_resampled: bool = False
    # The filter curves a spectral source (a supernova's SED, ``sim.sources.sed``) is
    # observed through in place of each of ``source_bands``' SDSS curves; None: the SDSS
    # curves. AGN, stars and hosts keep their ugriz magnitudes either way.
    sed_bands: tuple[str, ...] | None = None
    # Where its supernovae lie: each at a redshift of the volume it is seen in down to
    # ``search_limit_mag`` (``convention.sim.population``). None: SDSS-II's redshifts times
    # ``population_distance_scale``, which AGN and stars take either way.
    supernova_population: MagnitudeLimited | None = None

    def band_index(self, band: str) -> int:
        """Position of a band name in this survey's band tuples."""
        return self.bands.index(band)

    def source_curves(self) -> tuple[str, ...]:
        """The band names sources are asked for their flux in, in SDSS-II's band order (the
        ``band_names`` of ``Source.flux``, indexed by the source band's SDSS position):
        SDSS's, with ``sed_bands`` in place of the source bands they stand in for."""
        if self.sed_bands is None:
            return SDSS2.bands
        names = list(SDSS2.bands)
        for source_band, sed_band in zip(self.source_bands, self.sed_bands, strict=True):
            names[SDSS2.band_index(source_band)] = sed_band
        return tuple(names)

    def seasons(self) -> list[tuple[float, float]]:
        """(first, last) MJD of each observing season."""
        return [(s, s + self.season_length_days) for s in self.season_starts]

    def electrons_per_flux(self) -> np.ndarray:
        """Photo-electrons per nanomaggy for each band in clear weather.

        Solved from the 5-sigma depth: sky-limited noise in the effective area of a Moffat
        PSF at median seeing, times the pipeline's excess, ``5 sigma = F5``, with
        (sigma / photometry_error_factor)^2 = A_eff (sky + read^2/g)/g.
        """
        pix_area = self.pixel_scale**2
        gains = []
        for k, band in enumerate(self.bands):
            fwhm = self.seeing_fwhm_median(band)
            area_pix = moffat_effective_area(fwhm, self.moffat_beta) / pix_area
            sky_flux = 10 ** (-0.4 * (self.sky_dark[k] - 22.5)) * pix_area  # nmgy / pixel
            f5 = 10 ** (-0.4 * (self.depth_5sigma[k] - 22.5)) / self.error_factors(k)
            # (F5/5)^2 = area (sky/g + read^2/g^2): positive root of a quadratic in 1/g
            a, b, c = area_pix * self.read_noise_e**2, area_pix * sky_flux, -((f5 / 5) ** 2)
            inv_g = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
            gains.append(1.0 / inv_g)
        return np.array(gains)

    def error_factors(self, band_index: np.ndarray | int) -> np.ndarray:
        """``photometry_error_factor`` of each band (by index)."""
        if self.photometry_error_factor is None:
            return np.ones_like(band_index, dtype=float)
        return np.asarray(self.photometry_error_factor)[band_index]

    def seeing_fwhm_median(self, band: str) -> float:
        """Median PSF FWHM (arcsec) in a band, scaled from ``seeing_band`` with
        ``seeing_band_exponent``."""
        return self.seeing_median_r * float(self.seeing_ratio(self.band_index(band)))

    def reference_fwhm(self, band: str) -> float:
        """PSF FWHM (arcsec) of a band's reference coadd: ``reference_seeing_ratio`` times
        the band's median seeing."""
        return self.seeing_fwhm_median(band) * self.reference_seeing_ratio

    def seeing_ratio(self, band_index: np.ndarray | int) -> np.ndarray:
        """PSF FWHM in each band (by index) relative to ``seeing_band``'s."""
        wave = np.asarray(self.wavelengths)
        return (wave[band_index] / wave[self.band_index(self.seeing_band)]) ** (
            self.seeing_band_exponent
        )


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
    stamp_size=32,  # the paper's stamps (Bairouk et al. 2023)
    seeing_band="sdss::r",
    band_visit_fraction=(1.0,) * 5,  # drift scan: every band at every visit
    source_bands=("sdss::u", "sdss::g", "sdss::r", "sdss::i", "sdss::z"),
    # Assumed search depth, about the single-epoch r-band limit (Frieman et al. 2008).
    search_bands=("sdss::g", "sdss::r", "sdss::i"),
    search_limit_mag=22.5,
    population_distance_scale=1.0,
    alerts=False,  # every scan of the field is kept, detected or not
    alert_sigma=5.0,
    history_days=0.0,
    # The SDSS-II search subtracted templates from earlier Stripe 82 imaging (Frieman et
    # al. 2008; Sako et al. 2008, AJ 135, 348). Its coadd (Annis et al. 2014, ApJ 794, 120):
    # ~20 runs per piece of sky, ~2 mag deeper than one scan, r-band median seeing 1.1"
    # (against 1.4" here: ratio 0.79). Assumed: the runs of 1998-09 to 2004-11.
    reference_frames=(20.0,),
    reference_span_days=(2270.0,),
    reference_gap_days=(270.0,),
    reference_seeing_ratio=1.1 / 1.4,
    median_background=False,  # the stamps are the sky-subtracted frames
    catalogue=False,
    host_catalogue=True,
    sky_dec_range=None,
)

ZTF = SurveyDefinition(
    name="ztf",
    bands=("ztf::g", "ztf::r", "ztf::i"),
    # Bellm et al. 2019 (PASP 131, 018002): 1.01"/pixel, 30 s exposures.
    pixel_scale=1.01,
    exposure_s=30.0,
    # Bellm et al. 2019b (PASP 131, 068003, the scheduler): a night's g and r visits of a
    # field at least 30 minutes apart; assumed 45 min, and a third band 45 min later. In
    # either order: of the same real alerts that follow an earlier detection, 41% in g
    # and 41% in r follow one of the same night (band_order_random).
    band_lag_days=(0.0, 0.031, 0.062),
    # Assumed: a field at mid declination is observable about 8 months a year; three
    # seasons from the start of the survey (2018 March 17, Bellm et al. 2019).
    season_starts=(58194.0, 58559.0, 58924.0),
    season_length_days=240.0,
    # Assumed Palomar weather: about 70% of nights clear (0.5 / (0.2 + 0.5)).
    p_clear_after_clear=0.8,
    p_clear_after_cloudy=0.5,
    # The public survey revisits a field every 3 nights in g and r, later every 2
    # (Bellm et al. 2019b): two fields in turn on clear nights give 2-3 night gaps.
    strips=2,
    # Median FWHM of the 983 real alerts of ../shared/data/ztf-alerts/unlabelled that are
    # not of known solar-system objects (``calibration`` of benchmarks/ztf_realism.py):
    # r 2.11", g 2.11", no wavelength dependence measured (Kolmogorov's would make g 6%
    # wider; Bellm et al. 2019 quote 2.0" in r). Width assumed as SDSS's. (Trailed
    # asteroids, 4.1" in g, had made g look 13% wider when they were counted.)
    seeing_median_r=2.11,
    seeing_sigma_ln=0.2,
    seeing_band_exponent=0.0,
    moffat_beta=MOFFAT_BETA,
    # Assumed Palomar dark sky (V ~ 21.3 mag/arcsec^2 at a site near Los Angeles).
    sky_dark=(21.8, 21.0, 20.3),
    sky_bright_excess=(1.1, 0.7, 0.5),
    bright_time_fraction=0.23,
    # Median 5-sigma limits (diffmaglim) of the same alerts: g 20.15, r 20.31, shallower
    # than the g 20.8, r 20.6 of Bellm et al. 2019; i assumed Bellm's 19.9 less their mean
    # difference (0.47).
    depth_5sigma=(20.15, 20.31, 19.43),
    read_noise_e=8.0,  # assumed, of the order of the ZTF camera's (Dekany et al. 2020)
    cloud_fraction=0.2,
    cloud_extinction_mean=0.3,
    missing_frame_fraction=0.02,  # assumed
    # Cutouts clipped at a CCD's edge: 17% in g, 19% in r of the same alerts.
    edge_frame_fraction=0.18,
    registration_jitter_pix=0.15,  # assumed
    wavelengths=(4746.5, 6366.4, 7867.4),  # the band registry's (SVO Palomar/ZTF curves)
    # Alert cutouts are 63x63 pixels (Patterson et al. 2019, PASP 131, 018001).
    stamp_size=63,
    seeing_band="ztf::r",
    # g and r at every visit; i only in the partnership survey (assumed: one visit in 5).
    band_visit_fraction=(1.0, 1.0, 0.2),
    # Supernovae are observed through ZTF's own filter curves (pyphot's, the filters'
    # transmission alone: no detector or atmosphere). AGN, stars and hosts, modelled in
    # ugriz, take the nearest SDSS band's magnitude, an error of the order of the colour
    # terms between ZTF and SDSS-like systems (~0.1 mag per mag of g - r; assumed).
    source_bands=("sdss::g", "sdss::r", "sdss::i"),
    sed_bands=("ztf::g", "ztf::r", "ztf::i"),
    search_bands=("ztf::g", "ztf::r", "ztf::i"),
    search_limit_mag=20.5,  # assumed: about the 5-sigma depth of one visit
    # Assumed: ZTF's AGN and variable stars about 3 times nearer than SDSS-II's
    # candidates, 2.4 mag brighter (its depth is ~1.5-2 mag shallower).
    population_distance_scale=0.33,
    # Supernovae as the magnitude-limited search finds them (``sim/population.py``):
    # volumetric rates evolving as (1 + z)^1.5 for SNe Ia (Dilday et al. 2010, ApJ 713,
    # 1026) and (1 + z)^2.7 for core-collapse ones (the star formation history, Madau &
    # Dickinson 2014, ARA&A 52, 415); reference redshifts the 90th percentile of the
    # redshift out to which 300 drawn supernovae of each class peak brighter than
    # search_limit_mag (SN Ia 0.18, others 0.16).
    supernova_population=MagnitudeLimited(rate_index=(1.5, 2.7), reference_redshift=(0.18, 0.16)),
    # Masci et al. 2019 (PASP 131, 018003): an alert per 5-sigma difference detection.
    alerts=True,
    alert_sigma=5.0,
    # An alert's prv_candidates reach 30 days back (Patterson et al. 2019).
    history_days=30.0,
    # Deciles of nframesref, jdendref - jdstartref (days) and, for the 424 alerts of
    # 2018, jd - jdendref (days) over the 1,270 real alerts of
    # ../shared/data/ztf-alerts/unlabelled (Masci et al. 2019: references coadd at least
    # 15 frames). Assumed: the coadd's frames of better than median seeing (0.85).
    reference_frames=(15, 15, 15, 15, 15, 15, 15, 16, 17, 24, 44),
    reference_span_days=(0.1, 26.9, 31.0, 34.0, 36.0, 47.0, 63.4, 90.9, 114.0, 195.6, 1094.9),
    reference_gap_days=(12.0, 76.9, 76.9, 85.8, 88.8, 99.8, 99.8, 100.8, 101.8, 101.8, 131.8),
    reference_seeing_ratio=0.85,
    median_background=True,
    catalogue=True,
    # Assumed none: the twin's objects are placed anew on ZTF's sky, where no dust map or
    # host catalogue is consulted here.
    host_catalogue=False,
    sky_dec_range=(-30.0, 90.0),  # the sky ZTF observes from Palomar (Bellm et al. 2019)
    # ZTF's PSF-fit errors over white pixel noise in a Moffat PSF's effective area, as the
    # same alerts' 5-sigma limits, science noise and seeing imply them (medians: g 2.40,
    # r 1.65); their faint detections' own errors (sigmapsf) give g 1.99, r 2.44, so each
    # band's figure is uncertain by about 20%, the excess of about 2 is not. Their
    # difference cutouts' noise is white (8x8 blocks sum to 1.04 times what white pixel
    # noise would); why ZTF's errors exceed the ideal was not established here. i assumed 2.
    photometry_error_factor=(2.40, 1.65, 2.0),
    reference_resampled=True,
    band_order_random=True,
)

RUBIN = SurveyDefinition(
    name="rubin",
    bands=("lsst::u", "lsst::g", "lsst::r", "lsst::i", "lsst::z", "lsst::y"),
    # Ivezic et al. 2019 (ApJ 873, 111): 0.2"/pixel, a visit of 30 s (two 15 s snaps).
    pixel_scale=0.2,
    exposure_s=30.0,
    # Assumed: a night's visits of a field in different filters about 33 minutes apart
    # (the pairs of the baseline cadence), in the order of the filter wheel.
    band_lag_days=tuple(k * 33.0 / 1440.0 for k in range(6)),
    # Assumed: a field observable six months a year; three seasons from the start of the
    # Legacy Survey of Space and Time (2025 October).
    season_starts=(61000.0, 61365.0, 61730.0),
    season_length_days=180.0,
    # Assumed Cerro Pachon weather: about 77% of nights clear (0.5 / (0.15 + 0.5)).
    p_clear_after_clear=0.85,
    p_clear_after_cloudy=0.5,
    # The wide-fast-deep survey revisits a field every 3-4 nights (Ivezic et al. 2019:
    # ~825 visits in 10 years, in pairs): three fields in turn on clear nights.
    strips=3,
    # Ivezic et al. 2019, table 2: delivered FWHM u 0.92" .. y 0.76", r 0.83"; the
    # Kolmogorov exponent gives those of the other bands within 0.01".
    seeing_median_r=0.83,
    seeing_sigma_ln=0.2,
    seeing_band_exponent=-0.2,
    moffat_beta=MOFFAT_BETA,
    # Ivezic et al. 2019, table 2: dark sky at zenith; bright-time excess assumed.
    sky_dark=(22.99, 22.26, 21.20, 20.48, 19.60, 18.61),
    sky_bright_excess=(1.5, 1.1, 0.7, 0.5, 0.3, 0.2),
    bright_time_fraction=0.23,
    # Single-visit 5-sigma depths, the design specification of the LSST Science
    # Requirements Document (LPM-17, table 6).
    depth_5sigma=(23.9, 25.0, 24.7, 24.0, 23.3, 22.1),
    read_noise_e=9.0,  # the Science Requirements Document's upper limit
    cloud_fraction=0.2,
    cloud_extinction_mean=0.3,
    missing_frame_fraction=0.02,  # assumed
    # Assumed: a 30-pixel cutout clipped when its source lies within 15 pixels of the
    # edge of a 4k x 4k sensor, about 1.5% of the sensor's area.
    edge_frame_fraction=0.015,
    registration_jitter_pix=0.15,  # assumed
    wavelengths=(3681.4, 4864.1, 6249.8, 7564.7, 8701.6, 9722.0),  # the band registry's
    # Rubin's alert cutouts of the issue this twin was built for: 30x30 pixels (6").
    stamp_size=30,
    seeing_band="lsst::r",
    # Ivezic et al. 2019, table 1: visits per filter u 56, g 80, r 184, i 184, z 160, y
    # 160 of 824, two filters a night: each filter's share of visits times two.
    band_visit_fraction=(0.14, 0.19, 0.45, 0.45, 0.39, 0.39),
    # Sources are modelled in SDSS ugriz (speclite ships the LSST curves, but the sources'
    # colours come from SDSS-II): y is observed through z's model, an error of the order
    # of a source's z - y colour (assumed ~0.1-0.3 mag).
    source_bands=("sdss::u", "sdss::g", "sdss::r", "sdss::i", "sdss::z", "sdss::z"),
    search_bands=("lsst::g", "lsst::r", "lsst::i"),
    search_limit_mag=24.0,  # assumed: about the 5-sigma depth of one r or i visit
    # Assumed: Rubin's alerting supernovae twice as far as SDSS-II's (its depth is ~2.5 mag
    # fainter; the SNe Ia of PLAsTiCC's wide-fast-deep survey reach z ~ 0.5 and beyond).
    population_distance_scale=2.0,
    alerts=True,
    # An alert per 5-sigma difference detection (Ivezic et al. 2019; the Data Products
    # Definition Document, LSE-163), carrying 12 months of previous photometry.
    alert_sigma=5.0,
    history_days=365.0,
    # Assumed: templates coadd 8 to 30 of the best-seeing third of a year's visits
    # (seeing 0.8 of the median), over 60-365 days, ending 30-365 days before the first
    # season (the incremental templates of the first year).
    reference_frames=(8.0, 30.0),
    reference_span_days=(60.0, 365.0),
    reference_gap_days=(30.0, 365.0),
    reference_seeing_ratio=0.8,
    median_background=True,  # the alert reader takes each cutout's median off
    # Rubin's packets carry no star/galaxy score of a neighbour (diaObject v7).
    catalogue=False,
    host_catalogue=False,
    # Assumed: the wide-fast-deep footprint of the baseline cadence.
    sky_dec_range=(-70.0, 12.5),
    rotation=True,
    forced_history=True,
    reports_seeing=False,
    packet_zeropoint=NJY_ZEROPOINT,
)

SURVEYS = {"sdss2": SDSS2, "ztf": ZTF, "rubin": RUBIN}


def get_survey(name: str) -> SurveyDefinition:
    """A survey definition by name.

    Raises:
        ConventionError: unknown survey.
    """
    key = name.lower()
    if key not in SURVEYS:
        raise ConventionError(f"unknown survey {name!r}; known: {', '.join(SURVEYS)}")
    return SURVEYS[key]
