"""Checks that the simulator's stamps follow the physics they claim to."""

import numpy as np
import pytest
import sncosmo
from astropy.cosmology import Planck18
from astropy.timeseries import LombScargle

from convention.photometry import aperture_flux
from convention.psf import moffat_effective_area
from convention.sim.filters import bandpass
from convention.sim.render import FrameConditions, render_frames
from convention.sim.sources import AGN, SNIa, VariableStar
from convention.sim.sources.sed import set_model
from convention.sim.sources.snia import _model
from convention.sim.survey import SDSS2, ZTF

SDSS_BANDS = SDSS2.bands


def conditions(n, fwhm=1.4, gain=200.0, sky=100.0, offset=0.0):
    return FrameConditions(
        np.full(n, fwhm), np.full(n, gain), np.full(n, sky), 5.0, np.full((n, 2), offset)
    )


def test_psf_convolved_point_source_conserves_flux():
    flux = np.array([1.0, 10.0, 100.0])
    frames = render_frames(
        None,
        np.zeros(3),
        flux,
        conditions(3, offset=0.3),
        64,
        SDSS2.pixel_scale,
        SDSS2.moffat_beta,
        seed=None,
    )
    assert frames.sum(axis=(1, 2)) == pytest.approx(flux, rel=5e-3)


def test_measured_sky_noise_equals_sky_sigma():
    cond = conditions(200, gain=190.0, sky=600.0)
    frames = render_frames(
        None, np.zeros(200), np.zeros(200), cond, 32, SDSS2.pixel_scale, SDSS2.moffat_beta, seed=5
    )
    assert frames.std() == pytest.approx(cond.sky_sigma[0], rel=0.01)
    assert abs(frames.mean()) < 0.01 * cond.sky_sigma[0]


@pytest.mark.parametrize("survey", [SDSS2, ZTF], ids=["sdss2", "ztf"])
def test_noise_calibration_reaches_the_5_sigma_depth(survey):
    """A point source at the depth is five of the pipeline's errors: the white-noise
    ideal for SDSS-II, ZTF's measured excess over it for ZTF."""
    gains = survey.electrons_per_flux()
    for k, band in enumerate(survey.bands):
        area = moffat_effective_area(survey.seeing_fwhm_median(band), survey.moffat_beta)
        area_pix = area / survey.pixel_scale**2
        sky_e = 10 ** (-0.4 * (survey.sky_dark[k] - 22.5)) * survey.pixel_scale**2 * gains[k]
        ideal = np.sqrt(area_pix * (sky_e + survey.read_noise_e**2)) / gains[k]
        sigma = ideal * survey.error_factors(k)
        assert 22.5 - 2.5 * np.log10(5 * sigma) == pytest.approx(survey.depth_5sigma[k], abs=1e-6)


def test_distance_modulus_from_astropy():
    """Rest-frame B observed through B shifted by (1+z): m = M + mu(z) - 2.5 log10(1+z)."""
    model = _model()
    for z in (0.05, 0.1, 0.3):
        set_model(model, z, 0.0, -19.3, 0.0, 0.0)
        b = sncosmo.get_bandpass("bessellb")
        shifted = sncosmo.Bandpass(b.wave * (1 + z), b.trans)
        peak = model.source.peakphase("bessellb") * (1 + z)
        m = model.bandmag(shifted, "ab", peak)
        expected = -19.3 + Planck18.distmod(z).value - 2.5 * np.log10(1 + z)
        assert m == pytest.approx(expected, abs=0.01)


def test_snia_at_z01_peaks_at_its_model_magnitudes():
    sn = SNIa(
        z=0.1, t_peak=0.0, stretch=1.0, peak_abs_mag_b=-19.3, host_ebv=0.0, mw_ebv=0.0, host=None
    )
    times = np.arange(-12.0, 25.0, 0.5)
    model = _model()
    set_model(model, 0.1, 0.0, -19.3, 0.0, 0.0)
    for band_index in (1, 2, 3):  # g, r, i
        bands = np.full(len(times), band_index)
        flux = sn.flux(times, bands, SDSS_BANDS)
        frames = render_frames(
            None,
            np.zeros(len(times)),
            flux,
            conditions(len(times)),
            64,
            SDSS2.pixel_scale,
            SDSS2.moffat_beta,
            seed=None,
        )
        measured, _ = aperture_flux(frames, radius_pix=30.0)
        measured_peak = 22.5 - 2.5 * np.log10(measured.max())
        fine = np.arange(-12.0, 25.0, 0.05)
        model_peak = model.bandmag(bandpass(SDSS_BANDS[band_index]), "ab", fine).min()
        assert measured_peak == pytest.approx(model_peak, abs=0.05)
        assert 18.5 < measured_peak < 20.0  # M_B -19.3 at mu(0.1) = 38.3


def test_agn_structure_function_slope_and_amplitude():
    rng = np.random.default_rng(1)
    wavelengths = np.asarray(SDSS2.wavelengths)
    agn = AGN.draw(0.0, np.full(5, 19.0), wavelengths, None, rng)
    agn = AGN(0.0, agn.mean_mags, 200.0, (0.3, 0.25, 0.2, 0.18, 0.16), 7, None)
    times = np.arange(0.0, 40000.0, 2.0)
    mags = 22.5 - 2.5 * np.log10(agn.flux(times, np.full(len(times), 2), SDSS_BANDS))
    lags, sf = [], []
    for lag in (2, 4, 8, 16, 32, 3000, 5000):
        k = lag // 2
        lags.append(lag)
        sf.append(np.sqrt(np.mean((mags[k:] - mags[:-k]) ** 2)))
    slope = np.polyfit(np.log10(lags[:5]), np.log10(sf[:5]), 1)[0]
    assert slope == pytest.approx(0.5, abs=0.07)
    assert np.mean(sf[5:]) == pytest.approx(0.2, rel=0.12)


def test_rr_lyrae_folded_light_curve_recovers_its_period():
    rng = np.random.default_rng(2)
    star = VariableStar("RRab", (19.1, 18.0, 17.8, 17.75, 17.75), 0.5712, 0.9, 0.1, 0.0, 0.0, 3)
    times = np.sort(rng.uniform(53600, 54400, 150))
    mags = 22.5 - 2.5 * np.log10(star.flux(times, np.full(150, 1), SDSS_BANDS))
    mags += rng.normal(0, 0.02, len(times))
    freq, power = LombScargle(times, mags, nterms=3).autopower(
        minimum_frequency=1 / 1.0, maximum_frequency=1 / 0.2, samples_per_peak=20
    )
    assert 1 / freq[np.argmax(power)] == pytest.approx(0.5712, rel=1e-3)
