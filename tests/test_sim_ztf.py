"""The ZTF survey of the simulator: alert-like sequences a ZTF model reads like alerts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from astropy.cosmology import Planck18

from convention.bands import get_band
from convention.io import read
from convention.photometry import background
from convention.psf import moffat_effective_area
from convention.sim.catalog import FittedDistributions
from convention.sim.filters import bandpass
from convention.sim.population import MagnitudeLimited, distance_ratios, limit_redshift
from convention.sim.render import FrameConditions
from convention.sim.simulate import (
    SimulationSettings,
    _limited_supernova,
    _peak_mag,
    alert_frames,
    alert_history,
    simulate,
    simulate_series,
    survey_time,
)
from convention.sim.sources import AGN, CoreCollapseSN, SNIa
from convention.sim.survey import SDSS2, ZTF, get_survey


def test_ztf_survey_figures():
    survey = get_survey("ztf")
    assert survey.bands == ("ztf::g", "ztf::r", "ztf::i")
    assert survey.pixel_scale == 1.01 and survey.stamp_size == 63
    # The limits, seeing and errors of real alerts (benchmarks/ztf_realism.py).
    assert survey.depth_5sigma == (20.15, 20.31, 19.43)
    assert survey.alerts and not SDSS2.alerts
    # The noise calibration: a source at the 5-sigma depth is detected at 5 sigma.
    assert np.all(survey.electrons_per_flux() > 0)
    assert survey.seeing_fwhm_median("ztf::r") == pytest.approx(2.11)
    assert survey.seeing_fwhm_median("ztf::g") == pytest.approx(2.11)


def test_ztf_supernovae_are_seen_through_ztf_filter_curves():
    # Cut where the filters' bench curves last reach 1% of their peak transmission.
    edges = {"ztf::g": (4000, 5600), "ztf::r": (5500, 7400), "ztf::i": (6900, 9000)}
    for band, (blue, red) in edges.items():
        curve = bandpass(band)
        assert blue < curve.minwave() < curve.maxwave() < red
    assert ZTF.source_curves() == ("sdss::u", "ztf::g", "ztf::r", "ztf::i", "sdss::z")
    assert SDSS2.source_curves() == SDSS2.bands
    times = np.linspace(-10.0, 30.0, 9)
    i = np.full(len(times), SDSS2.band_index("sdss::i"))
    sn = SNIa(
        z=0.05, t_peak=0.0, stretch=1.0, peak_abs_mag_b=-19.3, host_ebv=0.0, mw_ebv=0.0, host=None
    )
    # ZTF's i is redder than SDSS's: more than 0.1 mag apart on a SN Ia at every phase.
    through_ztf = sn.flux(times, i, ZTF.source_curves())
    assert np.all(2.5 * np.log10(sn.flux(times, i, SDSS2.bands) / through_ztf) > 0.1)
    # A nucleus keeps its ugriz magnitudes (its model has no spectrum).
    agn = AGN.draw(
        0.3, np.full(5, 19.0), np.asarray(SDSS2.wavelengths), None, np.random.default_rng(0)
    )
    assert np.array_equal(agn.flux(times, i, ZTF.source_curves()), agn.flux(times, i, SDSS2.bands))


def test_a_magnitude_limited_search_sees_each_supernova_in_its_own_volume():
    # Low redshift is nearly Euclidean: within z_lim, half the volume lies below 0.79 z_lim.
    population = MagnitudeLimited(rate_index=(0.0, 0.0), reference_redshift=(0.04, 0.04))
    rng = np.random.default_rng(0)
    drawn = np.array([population.draw_redshift("SNIa", 0.02, rng) for _ in range(4000)])
    assert drawn.max() <= 0.02
    assert np.median(drawn) == pytest.approx(0.02 * 0.5 ** (1 / 3), rel=0.02)
    # Found in proportion to that volume: seen half as far, kept an eighth as often.
    assert population.acceptance("SNOther", 0.02) == pytest.approx(1 / 8, rel=0.03)
    assert population.acceptance("SNOther", 0.08) == 1.0
    # Seen out to where the distance modulus has grown by the margin to the limit.
    z_limit = limit_redshift(0.03, 18.0, 20.5)
    assert 5 * np.log10(Planck18.luminosity_distance([z_limit, 0.03]).value).dot([1, -1]) == (
        pytest.approx(2.5, abs=2e-3)
    )
    # A host moved from z 0.2 to 0.1: magnitudes by the luminosity distances, separations
    # by the angular-diameter ones.
    added, widened = distance_ratios(0.2, 0.1)
    d_l = Planck18.luminosity_distance([0.2, 0.1]).value
    d_a = Planck18.angular_diameter_distance([0.2, 0.1]).value
    assert added == pytest.approx(5 * np.log10(d_l[1] / d_l[0]), abs=1e-3)
    assert widened == pytest.approx(d_a[0] / d_a[1], rel=1e-3)


def test_ztf_supernovae_are_found_as_a_magnitude_limited_search_finds_them():
    dist = FittedDistributions.builtin()
    specs = dist.draw_specs(300, np.random.default_rng(1))
    found = {}
    for label in ("SNIa", "SNOther"):
        for k, spec in enumerate([s for s in specs if s.label == label][:15]):
            rng = np.random.default_rng(k)
            peak = survey_time(spec.peak_mjd, ZTF)
            z, source = _limited_supernova(spec, peak, ZTF, dist, rng)
            assert _peak_mag(source, peak, ZTF) < ZTF.search_limit_mag
            assert source.z == z
            found.setdefault(label, []).append(z)
    # SNe Ia, brighter, are found further than the core-collapse kinds.
    assert np.median(found["SNIa"]) > np.median(found["SNOther"])
    # A core-collapse supernova moved keeps its peak date: its rise dilates with 1 + z.
    sn = CoreCollapseSN.draw(0.05, 58300.0, 0.0, None, np.random.default_rng(0))
    times = 58300.0 + np.arange(-30.0, 30.0, 0.5)
    r = np.full(len(times), SDSS2.band_index("sdss::r"))
    for moved in (sn.seen_at(0.01, None), sn.seen_at(0.15, None)):
        assert times[np.argmax(moved.flux(times, r, SDSS2.bands))] == pytest.approx(
            times[np.argmax(sn.flux(times, r, SDSS2.bands))], abs=1.5
        )


def test_ztf_sequences_are_alert_like():
    settings = SimulationSettings(survey="ztf", n_objects=24, seed=4)
    assert settings.stamp_size == 63
    series = list(simulate_series(settings))
    ids = {get_band(b).id for b in ZTF.bands}
    for s in series:
        assert s.frames.shape[1:] == (63, 63)
        assert len(s) >= 1 and set(s.band.tolist()) <= ids
        assert np.all(np.diff(s.mjd) >= 0)
        season = [(a, b + 1) for a, b in ZTF.seasons()]
        assert any(a <= s.mjd[0] <= b for a, b in season)
    lengths = np.array([len(s) for s in series])
    assert lengths.min() == 1 and lengths.max() > 5  # cut at one of the detections
    # A night's g and r in either order, as ZTF's scheduler takes them.
    g_and_r = {"ztf::g", "ztf::r"}
    first_of_night = set()
    for s in series:
        nights = np.floor(np.asarray(s.lightcurve["mjd"]) + 0.5)
        bands = np.asarray(s.lightcurve["band"])
        for night in np.unique(nights):
            taken = bands[nights == night]
            if g_and_r <= set(taken.tolist()):
                first_of_night.add(str(taken[0]))
    assert first_of_night >= g_and_r
    # Frames and templates as the alert reader gives a real packet's: a sky level put back
    # comes off again, and the stored noise is the one measured from the pixels.
    for s in series[:4]:
        stamps = [*s.frames, *(r.stamp for r in s.references.values())]
        noise = [*s.sky_sigma, *(r.sky_sigma for r in s.references.values())]
        for stamp, sigma in zip(stamps, noise, strict=True):
            level, measured = background(stamp + np.float32(300.0))
            assert level == pytest.approx(300.0, abs=1e-3 * float(sigma))
            assert measured == pytest.approx(sigma, rel=1e-3)
    # Same seed, same bytes.
    again = list(simulate_series(settings, workers=2))
    assert all(
        np.array_equal(a.frames, b.frames, equal_nan=True)
        for a, b in zip(series, again, strict=True)
    )


def test_alert_frames_keep_detections_only():
    rng = np.random.default_rng(0)
    n = 40
    conditions = FrameConditions(
        np.full(n, 2.0), np.full(n, 100.0), np.full(n, 400.0), 8.0, np.zeros((n, 2))
    )
    flux = np.zeros(n)
    flux[10:20] = 200.0  # far above the noise, then nothing
    photometry = alert_frames(flux, np.zeros(n), np.ones(n, int), conditions, ZTF, rng)
    picked = photometry.alerted
    assert 1 <= len(picked) <= 10 and set(picked.tolist()) <= set(range(10, 20))
    assert picked[0] == 10  # the first alert is the first detection
    none = alert_frames(np.zeros(n), np.zeros(n), np.ones(n, int), conditions, ZTF, rng).alerted
    assert len(none) == 1  # never detected: its most significant frame


def test_alerts_count_in_the_pipelines_errors():
    """ZTF's PSF-fit errors exceed white noise: a source at 8 times the ideal noise is
    below ZTF's 5-sigma threshold in g, and its packets carry the larger error."""
    n = 400
    conditions = FrameConditions(
        np.full(n, 2.0), np.full(n, 100.0), np.full(n, 400.0), 8.0, np.zeros((n, 2))
    )
    area = moffat_effective_area(2.0, ZTF.moffat_beta) / ZTF.pixel_scale**2
    ideal = conditions.sky_sigma * np.sqrt(area)
    g = ZTF.band_index("ztf::g")
    band = np.full(n, g)
    flux = 8 * ideal
    ztf = alert_frames(flux, np.zeros(n), band, conditions, ZTF, np.random.default_rng(0))
    assert ztf.flux_err == pytest.approx(ideal * ZTF.photometry_error_factor[g])
    detected = np.abs(ztf.flux / ztf.flux_err) >= ZTF.alert_sigma
    assert not detected.any()
    white = replace(ZTF, photometry_error_factor=None)
    ideal_alerts = alert_frames(
        flux, np.zeros(n), band, conditions, white, np.random.default_rng(0)
    )
    assert len(ideal_alerts.alerted) >= 1 and ideal_alerts.alerted[0] == 0
    assert ideal_alerts.flux == pytest.approx(ztf.flux)  # the same scatter, other errors


def test_the_alerts_carry_30_days_of_limits_before_the_first_and_every_detection():
    n = 40
    mjd = np.arange(n, dtype=float) * 2.0  # a visit every two days
    conditions = FrameConditions(
        np.full(n, 2.0), np.full(n, 100.0), np.full(n, 400.0), 8.0, np.zeros((n, 2))
    )
    flux = np.zeros(n)
    flux[25:] = 200.0
    rng = np.random.default_rng(0)
    photometry = alert_frames(flux, np.zeros(n), np.ones(n, int), conditions, ZTF, rng)
    first, last = int(photometry.alerted[0]), int(photometry.alerted[-1])
    assert first == 25
    lc = alert_history(mjd, np.full(n, get_band("ztf::r").id), photometry, ZTF)
    # From 30 days before the first alert (the first packet's history) to the last.
    assert lc["mjd"].min() == mjd[first] - 30 and lc["mjd"].max() == mjd[last]
    assert list(lc["mjd"][lc["detected"]]) == list(mjd[photometry.alerted])
    limits = lc[~lc["detected"]]
    assert list(limits["mjd"]) == list(mjd[10:25]) and np.all(limits["flux"] == 0)


def test_ztf_store_reads_like_ingested_alerts(tmp_path, ztf_alerts):
    store = read(simulate(SimulationSettings(survey="ztf", n_objects=6, seed=1), tmp_path / "z.h5"))
    alerts = read(ztf_alerts / "valid")
    assert store.survey == alerts.survey == "ztf"
    assert store.bands == alerts.bands
    assert store.stamp_shape == alerts.stamp_shape
    assert store.pixel_scale == alerts.pixel_scale
    # The simulated sky noise is that of the real cutouts (nanomaggies per pixel).
    real = np.nanmedian(np.concatenate([s.sky_sigma for s in alerts]))
    simulated = np.nanmedian(np.concatenate([s.sky_sigma for s in store]))
    assert 0.5 < simulated / real < 2.0
