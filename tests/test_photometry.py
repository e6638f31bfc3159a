"""Forced photometry against the simulator's injected fluxes."""

from __future__ import annotations

import numpy as np
import pytest

from convention.data.series import StampSeries, references_of
from convention.photometry import forced_photometry, psf_flux
from convention.psf import moffat_psf
from convention.sim.render import FrameConditions, render_frames


def _point_source_series(seed: int, n: int = 400, fwhm: float | None = None) -> StampSeries:
    """Point sources of known flux in CCD noise, rendered by the simulator's renderer."""
    rng = np.random.default_rng(seed)
    fwhm = rng.uniform(1.1, 1.9, n) if fwhm is None else np.full(n, fwhm)
    flux = rng.uniform(-2, 30, n)
    gain = np.full(n, 200.0)
    conditions = FrameConditions(
        psf_fwhm=fwhm,
        electrons_per_nmgy=gain,
        sky_electrons=np.full(n, 400.0),
        read_noise=5.0,
        offset=np.zeros((n, 2)),
    )
    frames = render_frames(None, np.zeros(n), np.maximum(flux, 0), conditions, 32, 0.396, 3.5, seed)
    return StampSeries(
        frames=frames,
        mjd=np.arange(n, dtype=float),
        band=np.full(n, "sdss::r"),
        psf_fwhm=fwhm,
        sky_sigma=conditions.sky_sigma,
        zeropoint=conditions.zeropoint,
        object_id="p",
        pixel_scale=0.396,
        true_flux=np.maximum(flux, 0),
    )


def test_psf_model_has_unit_flux():
    psf = moffat_psf((201, 201), 5.0)
    assert psf.sum() == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("method", ["psf", "aperture"])
def test_forced_photometry_is_unbiased_with_honest_errors(method):
    series = _point_source_series(1)
    lc = forced_photometry(series, method)
    pull = (lc["flux"] - series.true_flux) / lc["flux_err"]
    # unbiased: mean pull ~0 (to 3 standard errors); errors honest: pull scatter ~1
    assert abs(np.mean(pull)) < 3 / np.sqrt(len(pull)) + 0.05
    # source photon noise adds to the sky-limited error for bright sources
    faint = series.true_flux < 10
    assert np.std(pull[faint]) == pytest.approx(1.0, abs=0.15)


def test_psf_photometry_beats_the_aperture():
    series = _point_source_series(2)
    psf = forced_photometry(series, "psf")
    aperture = forced_photometry(series, "aperture")
    assert np.median(psf["flux_err"]) < 0.8 * np.median(aperture["flux_err"])


def test_median_reference_removes_a_static_host():
    series = _point_source_series(3, n=60, fwhm=1.4)  # one seeing: the median stamp is a PSF
    host = 5.0 * moffat_psf((32, 32), 8.0)  # a smooth static 'host' under the source
    with_host = StampSeries(**{**series.__dict__, "frames": series.frames + host})
    lc = forced_photometry(with_host, "psf", references_of(with_host))
    expected = series.true_flux - np.median(series.true_flux)
    pull = (lc["flux"] - expected) / lc["flux_err"]
    assert abs(np.median(pull)) < 0.5


def test_missing_pixels_and_fwhm():
    frames = np.zeros((2, 8, 8))
    frames[0] = np.nan
    flux, err = psf_flux(frames, np.array([3.0, np.nan]), np.ones(2))
    assert np.isnan(flux).all() and np.isnan(err).all()


def test_median_stamp_is_nanmedian_over_the_frames():
    import warnings

    from convention.data.reference import median_stamp

    rng = np.random.default_rng(7)
    for m in (1, 2, 5, 8):
        frames = rng.normal(size=(m, 6, 5)).astype(np.float32)
        assert np.allclose(median_stamp(frames), np.median(frames, axis=0))
        frames[rng.random(frames.shape) < 0.4] = np.nan
        frames[:, 0, 0] = np.nan  # a pixel NaN in every frame
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(frames, axis=0)
        assert np.allclose(median_stamp(frames), expected, equal_nan=True)


def test_a_band_without_its_reference_is_refused_by_name():
    series = _point_source_series(4, n=6)
    other = {1: references_of(series)[int(series.band[0])]}  # u's only, for r frames
    with pytest.raises(ValueError, match=r"no reference for band ids \[3\]"):
        forced_photometry(series, "psf", other)
