"""The Rubin twin: its survey's shape, cutouts turned with each visit, a year of forced
photometry, and its packets (the public schema's field names) served end to end."""

from __future__ import annotations

import shutil

import fastavro
import galsim
import numpy as np
import pytest

from convention.alert_folder import AlertFolderStream, read_table
from convention.alert_stream import AlertClassifier
from convention.io.ingest import Rejected
from convention.io.packets import packet_object_id, packet_schema, write_packets
from convention.io.registry import scan
from convention.photometry import difference_stamps
from convention.sim.render import FrameConditions, render_frames
from convention.sim.simulate import SimulationSettings, simulate, simulate_series
from convention.sim.survey import RUBIN


@pytest.fixture(scope="module")
def rubin_objects() -> list:
    return list(simulate_series(SimulationSettings(survey="rubin", n_objects=24, seed=4)))


def test_the_rubin_twin_is_rubins_survey(rubin_objects):
    bands = set()
    for series in rubin_objects:
        assert series.frames.shape[1:] == (30, 30) and series.pixel_scale == 0.2
        low, high = RUBIN.sky_dec_range
        assert low <= series.dec <= high
        bands |= set(series.band_names)
    assert bands <= set(RUBIN.bands) and len(bands) >= 5


def test_rubin_history_keeps_each_visits_forced_flux_and_ztfs_a_limit(rubin_objects):
    """Rubin's non-detections are measured difference fluxes (prvDiaForcedSources); ZTF's
    are 5-sigma limits (flux 0)."""
    lc = rubin_objects[0].lightcurve
    for series in rubin_objects[1:]:
        lc = series.lightcurve if len(series.lightcurve) > len(lc) else lc
    undetected = lc[~np.asarray(lc["detected"])]
    assert len(undetected) > 3 and np.all(np.asarray(undetected["flux"]) != 0)
    ztf = simulate_series(SimulationSettings(survey="ztf", n_objects=4, seed=4))
    limits = np.concatenate(
        [np.asarray(s.lightcurve["flux"])[~np.asarray(s.lightcurve["detected"])] for s in ztf]
    )
    assert len(limits) and np.all(limits == 0)


def test_a_turned_visit_turns_the_host_about_the_object():
    """The frames' orientation turns the host about the stamp centre (the object)."""
    host = galsim.Exponential(half_light_radius=0.4).shift(1.0, 0.0)
    conditions = FrameConditions(
        psf_fwhm=np.array([0.7, 0.7]),
        electrons_per_nmgy=np.array([1.0, 1.0]),
        sky_electrons=np.array([0.0, 0.0]),
        read_noise=0.0,
        offset=np.zeros((2, 2)),
        rotation_deg=np.array([0.0, 180.0]),
    )
    frames = render_frames(host, np.ones(2), np.zeros(2), conditions, 30, 0.2, 3.5, None)
    columns = np.arange(30) - 14.5
    centroid = [(f.sum(axis=0) * columns).sum() / f.sum() for f in frames]
    assert centroid[0] > 3 and centroid[1] < -3


@pytest.mark.parametrize("survey", ["ztf", "rubin"])
def test_twin_packets_read_back_as_the_twin(survey, rubin_objects, tmp_path):
    """Each object's packets, read by the alerts reader, give back its frames and what it
    knows of them, its light curve (the union of the packets' histories), its references
    and its position."""
    objects = (
        rubin_objects[:8]
        if survey == "rubin"
        else list(simulate_series(SimulationSettings(survey="ztf", n_objects=8, seed=4)))
    )
    for series in objects:
        write_packets(series, tmp_path / "packets")
    read = {
        s.object_id: s
        for s in scan("alerts", [tmp_path / "packets"], channels=("difference",)).items
        if not isinstance(s, Rejected)
    }
    assert len(read) == len(objects)
    for series in objects:
        got = read[packet_object_id(series)]
        assert got.band_names == series.band_names
        # The twin stores the seeing and zero point the reader gives (Rubin's packets
        # carry neither: the band's median seeing, the nJy zero point).
        assert np.allclose(got.psf_fwhm, series.psf_fwhm, rtol=1e-5)
        assert np.allclose(got.zeropoint, series.zeropoint, rtol=1e-6)
        sky = float(np.nanmedian(series.sky_sigma))
        assert np.nanmax(np.abs(got.frames - series.frames)) < 0.05 * sky
        # The difference cutout: the frame less its PSF-matched template.
        difference = difference_stamps(series, series.references)
        served_difference = got.channels["difference"]
        assert np.array_equal(np.isnan(served_difference), np.isnan(difference))
        assert np.nanmax(np.abs(served_difference - difference)) < 1e-4 * sky
        expected, served = series.lightcurve, got.lightcurve
        expected.sort("mjd")
        served.sort("mjd")
        assert list(served["detected"]) == list(expected["detected"])
        assert np.allclose(served["flux"], expected["flux"], rtol=1e-5, atol=1e-6)
        assert sorted(got.references) == sorted(series.references)
        assert got.ra == pytest.approx(series.ra) and got.dec == pytest.approx(series.dec)


def test_rubin_packets_carry_the_public_schemas_names(rubin_objects, tmp_path):
    (path, *_) = write_packets(rubin_objects[0], tmp_path)
    with path.open("rb") as f:
        (record,) = list(fastavro.reader(f))
    assert {"alertId", "diaSource", "prvDiaSources", "prvDiaForcedSources", "diaObject"} <= set(
        record
    )
    assert {"diaSourceId", "diaObjectId", "midpointMjdTai", "band", "psfFlux", "psfFluxErr"} <= set(
        record["diaSource"]
    )
    assert packet_schema("rubin")[1]["name"] == "lsst.v7_4.alert"


def test_rubin_packets_are_classified_end_to_end(tmp_path, ztf_alerts):
    """A model trained on the Rubin twin serves its packets through classify-alerts' local
    engine: every packet classified, none rejected, each alert read with its object's
    earlier ones up to the history's bound; a ZTF packet is rejected for its schema."""
    from convention.training import TrainSettings, train

    data = simulate(SimulationSettings(survey="rubin", n_objects=32, seed=6), tmp_path / "r.h5")
    run = train(
        TrainSettings(
            data=str(data),
            out=str(tmp_path / "run"),
            preset="tiny",
            epochs=1,
            batch_size=8,
            progress=False,
            overrides={"stamp_size": 30, "max_frames": 16},
        )
    )
    served = list(simulate_series(SimulationSettings(survey="rubin", n_objects=6, seed=7)))
    n = sum(len(write_packets(series, tmp_path / "landing")) for series in served)
    out = tmp_path / "out"
    classifier = AlertClassifier.load(run)
    assert classifier.schema == "rubin"
    landing = tmp_path / "landing"
    bounds = classifier.default_bounds()
    AlertFolderStream(landing, out, classifier, history=bounds).run()
    predictions = read_table(out)
    assert len(predictions) == n and len(read_table(out, "rejected")) == 0
    for series in served:
        rows = predictions[predictions["object_id"] == packet_object_id(series)]
        epochs = list(rows.sort_values("mjd")["n_epochs"])
        assert epochs == [min(k, bounds.epochs) for k in range(1, len(series) + 1)]

    landing = tmp_path / "ztf"
    landing.mkdir()
    shutil.copy(ztf_alerts / "valid" / "472263571115095005.avro", landing)
    AlertFolderStream(landing, tmp_path / "ztf_out", classifier).run()
    (cause,) = read_table(tmp_path / "ztf_out", "rejected")["cause"]
    assert "object ZTF" in cause
    assert "a ztf alert, and the model reads rubin alerts (bands lsst::u" in cause
