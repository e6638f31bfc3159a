"""ZTF alert packets: every real valid file, every malformed one, duplicates, clipped
cutouts, channels, the Rubin field mapping."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from convention.cli import app
from convention.data.store import Store
from convention.errors import ConventionError
from convention.io import read, scan
from convention.io.formats.alerts import RUBIN, alert_series, read_alert_file
from convention.io.ingest import Rejected, ingest
from convention.photometry import forced_photometry

runner = CliRunner()


def test_every_valid_alert_reads(ztf_alerts):
    files = sorted((ztf_alerts / "valid").glob("*.avro"))
    assert len(files) == 16
    for path in files:
        (alert,) = read_alert_file(path, ("science", "template", "difference")).alerts
        assert alert.object_id.startswith("ZTF")
        for image in alert.images.values():
            assert image.shape == (63, 63)
            assert np.isfinite(image).any()
        assert len(alert.lightcurve) >= 12  # the detection and >= 11 previous rows


@pytest.mark.parametrize(
    "name, cause",
    [
        ("empty_ztf-2500.avro", "empty file"),
        ("jpeg_cutouts_1726958725155000.avro", "science cutout is not FITS (a JPEG image)"),
        ("jpeg_cutouts_87704463155000.avro", "science cutout is not FITS (a JPEG image)"),
        ("truncated_472263571115095002.avro", "truncated Avro file"),
    ],
)
def test_malformed_alert_is_one_clear_line(ztf_alerts, name, cause):
    path = ztf_alerts / "malformed" / name
    with pytest.raises(ConventionError) as info:
        read_alert_file(path)
    assert info.value.message == f"{path}: {cause}"


def test_ingest_valid_folder_groups_and_drops_the_resent_alert(ztf_alerts, tmp_path):
    result = runner.invoke(
        app,
        ["ingest", "alerts", str(ztf_alerts / "valid"), "--out", str(tmp_path / "z.h5")],
    )
    assert result.exit_code == 0, result.output
    assert "ingested 15 objects (15 frames) from 16 files; rejected 0" in result.output
    assert "dropped 1 re-sent alerts" in result.output
    store = Store(tmp_path / "z.h5")
    assert store.survey == "ztf" and store.bands == ["ztf::g", "ztf::r", "ztf::i"]
    twice = store.get("ZTF17aaajnnn")
    assert len(twice) == 1
    # its light curve merges both packets' history: 73 previous rows + the detection
    assert len(twice.lightcurve) == 74
    assert np.all(np.diff(twice.lightcurve["mjd"]) >= 0)
    assert set(twice.lightcurve["band"]) <= {"ztf::g", "ztf::r", "ztf::i"}


def test_malformed_files_are_counted_or_fatal(ztf_alerts, tmp_path):
    inputs = [str(ztf_alerts / "valid"), str(ztf_alerts / "malformed")]
    out = tmp_path / "z.h5"
    result = runner.invoke(app, ["ingest", "alerts", *inputs, "--out", str(out)])
    assert result.exit_code == 0
    assert "from 20 files; rejected 4" in result.output
    assert result.output.count("rejected: ") == 4
    strict = tmp_path / "strict.h5"
    result = runner.invoke(app, ["ingest", "alerts", *inputs, "--out", str(strict), "--strict"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.output
    assert not strict.exists()
    assert list(tmp_path.glob(".strict*")) == []


def test_only_bad_files_writes_nothing(ztf_alerts, tmp_path):
    out = tmp_path / "z.h5"
    result = runner.invoke(
        app, ["ingest", "alerts", str(ztf_alerts / "malformed"), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "no object ingested from 4 files (rejected 4)" in result.output
    assert not out.exists()


def test_clipped_cutout_is_padded_on_the_clipped_side(ztf_alerts):
    # ypos 10.4: the cutout lost 22 rows below the source, so the padding goes first.
    (alert,) = read_alert_file(ztf_alerts / "valid" / "396522680015040001.avro").alerts
    rows = np.isnan(alert.images["science"]).all(axis=1)
    assert rows[:22].all() and not rows[22:].any()
    # xpos 3051 of 3072: the cutout lost 10 columns after the source (and the columns
    # next to them are masked detector edge in the cutout itself).
    (alert,) = read_alert_file(ztf_alerts / "valid" / "472263571115115014.avro").alerts
    cols = np.isnan(alert.images["science"]).all(axis=0)
    assert cols[-10:].all() and not cols[:32].any()


def test_difference_cutout_as_channel(ztf_alerts, tmp_path):
    collection = scan("alerts", [ztf_alerts / "valid"], channels=("difference",))
    ingest(collection, tmp_path / "z.h5")
    store = Store(tmp_path / "z.h5")
    assert store.channels == ["difference"]
    out = tmp_path / "t.h5"
    args = ["ingest", "alerts", str(ztf_alerts / "valid"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--cutouts", "template,science"])
    assert result.exit_code == 0, result.output
    swapped = Store(out).get("ZTF18aaxjdyr")  # the template as the frame
    assert swapped.channels.keys() == {"science"}
    assert np.array_equal(swapped.channels["science"], store.get("ZTF18aaxjdyr").frames)
    series = store.get("ZTF18aaxjdyr")
    assert series.channels["difference"].shape == series.frames.shape
    # science is background-subtracted, in nanomaggies: its median is ~0, its noise small
    assert abs(np.nanmedian(series.frames)) < series.sky_sigma[0]


def test_unknown_cutout_is_refused(ztf_alerts):
    with pytest.raises(ConventionError, match="unknown cutout"):
        scan("alerts", [ztf_alerts / "valid"], channels=("jpeg",))


def test_read_detects_an_alert_folder(ztf_alerts):
    series = read(ztf_alerts / "valid")
    assert len(series) == 15


def _fits_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(image.astype(np.float32)).writeto(buffer)
    return buffer.getvalue()


RUBIN_SCHEMA = {
    "type": "record",
    "name": "alert",
    "namespace": "lsst.v7_0",
    "fields": [
        {"name": "alertId", "type": "long"},
        {
            "name": "diaSource",
            "type": {
                "type": "record",
                "name": "diaSource",
                "fields": [
                    {"name": "diaSourceId", "type": "long"},
                    {"name": "diaObjectId", "type": "long"},
                    {"name": "midpointMjdTai", "type": "double"},
                    {"name": "band", "type": "string"},
                    {"name": "ra", "type": "double"},
                    {"name": "dec", "type": "double"},
                    {"name": "psfFlux", "type": "float"},
                    {"name": "psfFluxErr", "type": "float"},
                ],
            },
        },
        {"name": "prvDiaSources", "type": {"type": "array", "items": "diaSource"}},
        {"name": "cutoutScience", "type": "bytes"},
        {"name": "cutoutTemplate", "type": "bytes"},
        {"name": "cutoutDifference", "type": "bytes"},
    ],
}


def rubin_record(mjd: float, band: str, flux: float) -> dict:
    """A Rubin alert record (``RUBIN_SCHEMA``) of one detection and one earlier row."""
    rng = np.random.default_rng(int(mjd))
    source = {
        "diaSourceId": int(mjd * 10),
        "diaObjectId": 42,
        "midpointMjdTai": mjd,
        "band": band,
        "ra": 10.0,
        "dec": -5.0,
        "psfFlux": flux,
        "psfFluxErr": 100.0,
    }
    earlier = dict(source, midpointMjdTai=mjd - 3, psfFlux=flux / 2)
    cutout = _fits_bytes(rng.normal(0, 50, (30, 30)))
    return {
        "alertId": int(mjd * 10),
        "diaSource": source,
        "prvDiaSources": [earlier],
        "cutoutScience": cutout,
        "cutoutTemplate": cutout,
        "cutoutDifference": gzip.compress(cutout),
    }


def _rubin_alert(path: Path, mjd: float, band: str, flux: float) -> None:
    with path.open("wb") as f:
        fastavro.writer(f, fastavro.parse_schema(RUBIN_SCHEMA), [rubin_record(mjd, band, flux)])


def test_rubin_alerts_through_the_same_mapping(tmp_path):
    folder = tmp_path / "rubin"
    folder.mkdir()
    _rubin_alert(folder / "a.avro", 60000.5, "r", 3631.0)
    _rubin_alert(folder / "b.avro", 60001.5, "g", 7262.0)
    collection = scan("alerts", [folder])
    items = list(collection.items)
    assert not any(isinstance(i, Rejected) for i in items)
    (series,) = items
    assert series.survey == "lsst" and series.pixel_scale == RUBIN.pixel_scale
    assert series.band_names == ["lsst::r", "lsst::g"]
    assert series.frames.shape == (2, 30, 30)
    lc = series.lightcurve
    # 3631 nJy is one nanomaggy
    assert np.isclose(lc["flux"][lc["mjd"] == 60000.5][0], 1.0)
    assert len(lc) == 4


def _with_template(source: Path, template: np.ndarray, out: Path) -> Path:
    with source.open("rb") as f:
        reader = fastavro.reader(f)
        schema, (record,) = reader.writer_schema, list(reader)
    record["cutoutTemplate"]["stampData"] = gzip.compress(_fits_bytes(template))
    with out.open("wb") as f:
        fastavro.writer(f, schema, [record])
    return out


def test_template_pixels_off_the_reference_image_are_missing(ztf_alerts, tmp_path):
    """ZTF fills a template cutout beyond its reference image with the largest float32:
    those pixels are read as missing, and the forced photometry stays finite."""
    source = ztf_alerts / "valid" / "472263571115095005.avro"
    (alert,) = read_alert_file(source, ("science",), references=True).alerts
    template = alert.reference.stamp.copy()
    template[:, :20] = np.finfo(np.float32).max
    path = _with_template(source, template, tmp_path / "off.avro")
    (alert,) = read_alert_file(path, ("science",), references=True).alerts
    assert np.isnan(alert.reference.stamp[:, :20]).all()
    assert np.isfinite(alert.reference.stamp[:, 20:]).all()
    series = alert_series([alert])
    photometry = forced_photometry(series, references=series.references)
    assert np.isfinite(photometry["flux"]).all() and np.isfinite(photometry["flux_err"]).all()

    template[:] = np.finfo(np.float32).max
    path = _with_template(source, template, tmp_path / "all_off.avro")
    (alert,) = read_alert_file(path, ("science",), references=True).alerts
    assert alert.reference is None
    assert alert.reference_note.startswith("template cutout lies wholly off its image")
