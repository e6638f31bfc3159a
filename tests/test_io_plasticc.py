"""PLAsTiCC light curves: reading, rendering to stamps, and the SNANA export/reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table
from typer.testing import CliRunner

from convention.cli import app
from convention.data.store import Store
from convention.errors import ConventionError
from convention.io.plasticc import (
    FLUXCAL_TO_NMGY,
    PIXEL_SCALE,
    RenderSettings,
    psf_orthogonal_noise,
    read_plasticc,
    render_items,
    render_lightcurve,
)
from convention.io.snana import read_snana
from convention.psf import moffat_sampled

runner = CliRunner()


def test_read_maps_targets_and_units(plasticc_files):
    objects, skipped = read_plasticc(*plasticc_files)
    assert skipped == 1
    assert [(o.object_id, o.label) for o in objects] == [("11", "SNIa"), ("22", "Variable")]
    lc = objects[0].lightcurve
    assert len(lc) == 30 and np.all(np.diff(lc["mjd"]) >= 0)
    assert np.allclose(lc["flux_err"], 20 * FLUXCAL_TO_NMGY)
    kept, skipped = read_plasticc(*plasticc_files, keep_unlabelled=True)
    assert skipped == 0 and kept[2].label is None


def test_noise_is_invisible_to_psf_photometry():
    rng = np.random.default_rng(0)
    psf = moffat_sampled((32, 32), 4.0, np.array([0.3, -0.2]))
    noise = psf_orthogonal_noise(psf, 2.0, rng)
    assert abs(np.sum(psf * noise) / np.sum(psf * psf)) < 1e-9
    assert np.std(noise) == pytest.approx(2.0, rel=0.05)


def test_rendered_point_source_carries_the_catalogue_flux(plasticc_files):
    (sn, _), _ = read_plasticc(*plasticc_files)
    series = render_lightcurve(sn, 0, RenderSettings(stamp_size=32))
    assert series.frames.shape == (30, 32, 32)
    assert series.survey == "lsst" and series.pixel_scale == PIXEL_SCALE
    assert series.lightcurve is sn.lightcurve
    # The host's photometric redshift and the dust as catalogue metadata, never true_z.
    assert series.metadata == pytest.approx(
        {"host_redshift": 0.12, "host_redshift_error": 0.02, "mw_ebv": 0.03}
    )
    assert np.allclose(series.true_flux, sn.lightcurve["flux"])
    # PSF fit against the host alone (the same object with no event flux): the noise is
    # orthogonal to the PSF, so the fit is off only by the sampled-vs-drawn PSF (< 5%).
    quiet = sn.lightcurve.copy()
    quiet["flux"] = 0.0
    host_only = render_lightcurve(
        type(sn)(**{**sn.__dict__, "lightcurve": quiet}), 0, RenderSettings()
    )
    bright = np.argmax(sn.lightcurve["flux"])
    psf = moffat_sampled((32, 32), series.psf_fwhm[bright] / PIXEL_SCALE, np.zeros(2))
    diff = series.frames[bright] - host_only.frames[bright]
    fitted = np.sum(psf * diff) / np.sum(psf * psf)
    assert fitted == pytest.approx(sn.lightcurve["flux"][bright], rel=0.05)


def test_noise_matches_flux_err(plasticc_files):
    (sn, _), _ = read_plasticc(*plasticc_files)
    series = render_lightcurve(sn, 0, RenderSettings(stamp_size=32))
    corner = series.frames[:, :6, :6]
    assert np.std(corner) == pytest.approx(np.median(series.sky_sigma), rel=0.15)


def test_galactic_star_is_a_point_source_on_its_template_flux(plasticc_files):
    (_, star), _ = read_plasticc(*plasticc_files)
    series = render_lightcurve(star, 1, RenderSettings(stamp_size=32))
    expected = 5000 * FLUXCAL_TO_NMGY + np.asarray(star.lightcurve["flux"])
    assert np.allclose(series.true_flux, expected, rtol=1e-5)
    assert np.all(series.frames[:, 16, 16] > 5 * series.sky_sigma)


def test_same_seed_same_bytes_whatever_the_workers(plasticc_files):
    objects, _ = read_plasticc(*plasticc_files)
    one = list(render_items(objects, RenderSettings(stamp_size=16, seed=4), workers=1))
    two = list(render_items(objects, RenderSettings(stamp_size=16, seed=4), workers=2))
    for a, b in zip(one, two, strict=True):
        assert np.array_equal(a.frames, b.frames)
    other = render_lightcurve(objects[0], 0, RenderSettings(stamp_size=16, seed=5))
    assert not np.array_equal(other.frames, one[0].frames)


def test_render_cli_and_export_snana_round_trip(plasticc_files, tmp_path):
    lc, meta = plasticc_files
    out = tmp_path / "p.h5"
    result = runner.invoke(
        app,
        [
            "render-lightcurves",
            "--lightcurves",
            str(lc),
            "--metadata",
            str(meta),
            "--out",
            str(out),
            "--stamp-size",
            "16",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "skipped 1 objects" in result.output and "ingested 2 objects (54 frames)" in result.output
    )
    store = Store(out)
    assert store.bands == ["lsst::u", "lsst::g", "lsst::r", "lsst::i", "lsst::z", "lsst::y"]
    result = runner.invoke(app, ["export", "snana", str(out), "--out", str(tmp_path / "snana")])
    assert result.exit_code == 0, result.output
    assert "(source)" in result.output
    codes = json.loads((tmp_path / "snana" / "sntypes.json").read_text())
    assert codes == {"101": "AGN", "102": "SNIa", "103": "Variable", "104": "SNOther"}
    back = read_snana(tmp_path / "snana" / "convention_HEAD.csv", survey="lsst")
    assert [(o.object_id, o.label) for o in back] == [("11", "SNIa"), ("22", "Variable")]
    original = store.get("11").lightcurve
    assert np.allclose(back[0].lightcurve["flux"], original["flux"], rtol=1e-5)
    assert list(back[0].lightcurve["band"]) == list(original["band"])


def test_export_snana_clips_large_negative_fluxes(tiny_store, tmp_path):
    result = runner.invoke(
        app,
        ["export", "snana", str(tiny_store), "--out", str(tmp_path / "s"), "--clip-fluxcal", "-5"],
    )
    assert result.exit_code == 0 and "(psf)" in result.output
    phot = Table.read(tmp_path / "s" / "convention_PHOT.csv")
    assert phot["FLUXCAL"].min() >= -5
    result = runner.invoke(
        app,
        [
            "export",
            "snana",
            str(tiny_store),
            "--out",
            str(tmp_path / "t"),
            "--photometry",
            "source",
        ],
    )
    assert result.exit_code == 2 and "has no light curve of its own" in result.output
    assert not (tmp_path / "t").exists()


def test_bad_passband_names_the_row(plasticc_files):
    lc, meta = plasticc_files
    table = Table.read(lc)
    table["passband"][4] = 7
    table.write(lc, overwrite=True)
    with pytest.raises(ConventionError, match="row 5: passband 7 is not 0-5"):
        read_plasticc(lc, meta)


def test_duplicate_observation_is_rejected(plasticc_files):
    (sn, _), _ = read_plasticc(*plasticc_files)
    sn.lightcurve["mjd"][1] = sn.lightcurve["mjd"][0]
    sn.lightcurve["band"][1] = sn.lightcurve["band"][0]
    with pytest.raises(ConventionError, match="two observations at the same mjd and band"):
        render_lightcurve(sn, 0, RenderSettings())


def test_real_plasticc_metadata_maps_every_target(plasticc_train):
    meta = Table.read(plasticc_train / "plasticc_train_metadata.csv.gz", format="ascii.csv")
    from convention.classes import PLASTICC_TARGET

    assert set(np.unique(meta["target"])) <= set(PLASTICC_TARGET)
