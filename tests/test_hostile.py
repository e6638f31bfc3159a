"""What hostile landing folders, packets, stores, checkpoints and outputs did to the project
(issue 30), each now refused in one line or survived: alerts with values out of every
range, bombs, links out of their folder, damaged logs, special files, outputs inside
inputs, edited checkpoints, a full disk, two writers on one run."""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import fastavro
import h5py
import numpy as np
import pytest
from astropy.io import fits

import convention
from convention.alert_folder import AlertFolderStream, read_table
from convention.alert_stream import AlertClassifier
from convention.errors import ConventionError
from convention.files import claim_folder
from convention.io.formats.alerts import MAX_HISTORY_ROWS, read_alert_bytes
from convention.progress import ProgressLines
from tests.helpers import one_error_line, run
from tests.test_series import make_series

VALID = "valid"


def _records(path: Path) -> tuple[dict, list[dict]]:
    """An Avro file's writer schema and records."""
    with path.open("rb") as f:
        reader = fastavro.reader(f)
        return reader.writer_schema, list(reader)


def _write(path: Path, schema: dict, records: list[dict], codec: str = "null") -> Path:
    with path.open("wb") as f:
        fastavro.writer(f, schema, records, codec=codec)
    return path


@pytest.fixture(scope="module")
def packet(ztf_alerts) -> tuple[dict, dict]:
    """A real valid ZTF alert's schema and record."""
    schema, (record,) = _records(ztf_alerts / VALID / "472263571115115008.avro")
    return schema, record


def _edited(packet, **changes) -> dict:
    """A copy of the alert with ``candidate`` fields changed (``prv=`` edits the first
    history row instead)."""
    record = copy.deepcopy(packet[1])
    for key, value in changes.pop("prv", {}).items():
        record["prv_candidates"][0][key] = value
    record["candidate"].update(changes)
    return record


def test_out_of_range_numbers_reject_the_alert_or_drop_the_row(packet, ztf_run, tmp_path):
    schema, record = packet
    # One file of four alerts: one a huge magnitude, one a zero point of -3e38, one fine,
    # one whose history holds a limit of -1e4 (as a real 2018 alert's does).
    records = [
        _edited(packet, magpsf=-1000.0),
        _edited(packet, magzpsci=-3e38),
        record,
        _edited(packet, prv={"diffmaglim": -1e4, "magpsf": None, "sigmapsf": None}),
    ]
    found = read_alert_bytes(_write(tmp_path / "four.avro", schema, records).read_bytes(), "f")
    causes = [e.cause for e in found.errors]
    assert causes == [
        "candidate.magpsf = -1000 is outside its range [0, 40]",
        "candidate.magzpsci = -3e+38 is outside its range [15, 40]",
    ]
    assert [a.dropped_rows for a in found.alerts] == [0, 1]
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(tmp_path / "four.avro", landing)
    out = tmp_path / "out"
    AlertFolderStream(landing, out, AlertClassifier.load(ztf_run)).run()
    predictions, rejected = read_table(out), read_table(out, "rejected")
    assert len(predictions) == 2 and sorted(predictions["dropped_photometry"]) == [0, 1]
    assert len(rejected) == 2 and "outside its range" in " ".join(rejected["cause"])


def test_the_real_odd_alert_is_classified_and_its_bad_row_counted(ztf_alerts, ztf_run, tmp_path):
    odd = ztf_alerts / "odd"
    out = tmp_path / "out"
    result = run("classify-alerts", "--checkpoint", ztf_run, "--input", odd, "--out", out, "--once")
    assert result.exit_code == 0, result.output
    (row,) = read_table(out).itertuples()
    assert row.object_id == "ZTF18aaxdjuj" and row.dropped_photometry == 1
    ingested = run("ingest", "alerts", odd, "--out", tmp_path / "odd.h5")
    assert ingested.exit_code == 0 and "dropped 1 previous photometry rows" in ingested.output


def test_history_rows_without_a_time_are_dropped_and_never_exported(packet, tmp_path):
    schema, record = packet
    folder = tmp_path / "alerts"
    folder.mkdir()
    _write(folder / "a.avro", schema, [_edited(packet, prv={"jd": float("nan")})])
    ingested = run("ingest", "alerts", folder, "--out", tmp_path / "a.h5")
    assert ingested.exit_code == 0 and "dropped 1 previous photometry rows" in ingested.output
    (lc,) = [s.lightcurve for s in convention.read(tmp_path / "a.h5")]
    assert len(lc) == len(record["prv_candidates"])  # the detection and every other row
    assert run("export", "snana", tmp_path / "a.h5", "--out", tmp_path / "snana").exit_code == 0
    assert not any("nan" in p.read_text().lower() for p in (tmp_path / "snana").rglob("*PHOT*"))


def test_a_rubin_detection_without_a_flux_says_so(tmp_path):
    from tests.test_io_alerts import RUBIN_SCHEMA, rubin_record

    nullable = copy.deepcopy(RUBIN_SCHEMA)
    for f in nullable["fields"][1]["type"]["fields"]:
        if f["name"] == "psfFlux":
            f["type"] = ["null", "float"]
    record = rubin_record(60000.5, "r", 3631.0)
    record["diaSource"]["psfFlux"] = None
    with pytest.raises(ConventionError, match=r"^r: object 42: diaSource has no psfFlux$"):
        read_alert_bytes(_write(tmp_path / "r.avro", nullable, [record]).read_bytes(), "r")


def test_bombs_are_refused_within_bounds(packet, tmp_path):
    schema, record = packet
    # A science cutout of 200 MB of zeros after its header: 0.2 MB gzipped.
    header = fits.PrimaryHDU(np.zeros((63, 63), np.float32))
    buffer = io.BytesIO()
    header.writeto(buffer)
    cutout = gzip.compress(buffer.getvalue() + bytes(200 * 2**20), compresslevel=1)
    bomb = copy.deepcopy(record)
    bomb["cutoutScience"]["stampData"] = cutout
    bomb_file = _write(tmp_path / "bomb.avro", schema, [bomb]).read_bytes()
    # A bzip2-coded Avro file of a few kB whose block inflates to 64 MB.
    blob = {"type": "record", "name": "blob", "fields": [{"name": "x", "type": "bytes"}]}
    bzipped = _write(tmp_path / "bz.avro", blob, [{"x": bytes(64 * 2**20)}], codec="bzip2")
    assert bzipped.stat().st_size < 2**16
    tracemalloc.start()
    with pytest.raises(ConventionError, match="science cutout inflates past the 20,160 bytes"):
        read_alert_bytes(bomb_file, "b")
    with pytest.raises(ConventionError, match="an Avro block inflates past"):
        read_alert_bytes(bzipped.read_bytes(), "bz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 * 2**20  # neither was inflated in full
    # A history of more rows than a packet keeps: the most recent kept, the rest counted.
    long = copy.deepcopy(record)
    long["prv_candidates"] = [dict(long["prv_candidates"][0])] * (MAX_HISTORY_ROWS + 500)
    found = read_alert_bytes(_write(tmp_path / "long.avro", schema, [long]).read_bytes(), "l")
    assert found.alerts[0].dropped_rows == 500


def test_a_gzipped_fits_stamp_bomb_is_one_rejected_object(tmp_path):
    folder = tmp_path / "stamps"
    folder.mkdir()
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.ones((16, 16), np.float32)).writeto(buffer)
    (folder / "a.fits.gz").write_bytes(gzip.compress(buffer.getvalue() + bytes(100 * 2**20), 1))
    (folder / "epochs.csv").write_text("object_id,mjd,band,file\nx,53600,g,a.fits.gz\n")
    result = run("ingest", "fits", folder, "--out", tmp_path / "s.h5", "-r", "survey=sdss2")
    assert result.exit_code == 2 and "inflates past the 5,760 bytes its headers declare" in (
        result.output
    )


def test_a_damaged_stream_log_is_one_line_and_never_leads_outside(ztf_alerts, ztf_run, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(ztf_alerts / VALID, landing)
    out = tmp_path / "out"
    assert run("classify-alerts", "--checkpoint", ztf_run, "--input", landing, "--out", out,
               "--once").exit_code == 0  # fmt: skip
    manifest = out / "_landing" / "00000099.jsonl"
    journal = out / "_landing" / "_taken.jsonl"
    text = journal.read_text()
    outside = json.dumps({"batch": 99, "name": "../../etc/passwd", "file": "f", "cause": None})
    for path, content, message in (
        (manifest, "{not json", "a line that is not an entry"),
        (manifest, '{"batch": "x", "name": 3, "file": [], "cause": 1}', "names no landed file"),
        (manifest, outside, "names no landed file"),
        (journal, "[0, 7]\n", "a line that is no batch"),
        (journal, '[0, ["../x.avro"]]\n', "a name that is no landed file"),
    ):
        path.write_text(content)
        result = run("classify-alerts", "--checkpoint", ztf_run, "--input", landing, "--out",
                     out, "--once")  # fmt: skip
        one_error_line(result, f"{path}: damaged stream log")
        assert message in result.output
        manifest.unlink(missing_ok=True)
        journal.write_text(text)


def test_a_local_log_that_is_no_folder_is_one_line_and_compaction_keeps_it_small(
    ztf_alerts, ztf_run, tmp_path, monkeypatch
):
    from convention import alert_folder

    landing = tmp_path / "landing"
    shutil.copytree(ztf_alerts / VALID, landing)
    out = tmp_path / "out"
    monkeypatch.setattr(alert_folder, "COMPACT_EVERY", 3)
    classifier = AlertClassifier.load(ztf_run)
    assert AlertFolderStream(landing, out, classifier, max_files=2).run() == 8
    assert sorted(p.name for p in (out / "_local_log").iterdir()) == ["6", "7"]
    assert len(list((out / "_landing").glob("0*.jsonl"))) == 2
    assert AlertFolderStream(landing, out, classifier, max_files=2).run() == 0
    assert len(read_table(out)) == 16 and read_table(out)["file"].is_unique
    for part in ("_local_log", "_landing"):
        shutil.rmtree(out / part)
        (out / part).write_text("{")
        one_error_line(
            run("classify-alerts", "--checkpoint", ztf_run, "--input", landing, "--out", out,
                "--once"),
            f"{out / part}: damaged stream log (not a folder)",
        )  # fmt: skip
        (out / part).unlink()


def test_ingest_skips_what_is_not_an_alert_file(ztf_alerts, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(ztf_alerts / VALID, landing)
    (landing / "folder.avro").mkdir()
    (landing / "nothing.avro").symlink_to(landing / "gone")
    os.mkfifo(landing / "fifo.avro")
    done = subprocess.run(  # a FIFO once hung it: a subprocess, with a time limit
        [sys.executable, "-m", "convention", "ingest", "alerts", str(landing),
         "--out", str(tmp_path / "z.h5")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ingested 15 objects" in done.stdout
    for cause in ("a folder, not an alert file", "a link to nothing", "a FIFO, not an alert"):
        assert cause in done.stderr


def test_object_ids_that_cannot_be_names_are_refused_where_they_come_in(tmp_path):
    with pytest.raises(ConventionError, match="holds a control character"):
        make_series(object_id="a\0b")
    long = make_series(object_id="x" * 300)
    store = convention.write_store(
        tmp_path / "s.h5", [long], survey="sdss2", bands=["sdss::g", "sdss::r"],
        class_names=["SNIa"], stamp_shape=(8, 8), pixel_scale=0.396,
    )  # fmt: skip
    assert run("export", "fits", store, "--out", tmp_path / "f").exit_code == 0
    assert convention.read(tmp_path / "f").object_ids == ["x" * 300]


def test_a_store_too_small_to_split_says_how_many_it_needs(tmp_path):
    from convention.sim.simulate import SimulationSettings, simulate

    data = simulate(SimulationSettings(n_objects=30, seed=1, stamp_size=16), tmp_path / "s.h5")
    one_error_line(
        run("train", "--data", data, "--out", tmp_path / "r", "--preset", "tiny",
            "--stamp-size", 16),
        "too few labelled objects for a 70/10/20 split holding every class in each part",
    )  # fmt: skip


def _store_with(tmp_path: Path, name: str, edit) -> Path:
    """A copy of a small store whose file ``edit(f)`` changes."""
    path = tmp_path / name
    convention.write_store(
        path, [make_series(object_id="a")], survey="sdss2", bands=["sdss::g", "sdss::r"],
        class_names=["SNIa"], stamp_shape=(8, 8), pixel_scale=0.396,
    )  # fmt: skip
    with h5py.File(path, "a") as f:
        edit(f)
    return path


def test_a_store_is_read_from_its_own_file_only(tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["data"] = np.zeros(4)
    stores = {
        "a link into": lambda f: f.__setitem__("extra", h5py.ExternalLink(str(secret), "data")),
        "a soft link to": lambda f: f.__setitem__("loop", h5py.SoftLink("/loop")),
        "stored in another file": lambda f: f.create_dataset(
            "raw", shape=(4,), dtype="f8", external=[(str(tmp_path / "raw.bin"), 0, 32)]
        ),
        "a virtual dataset": lambda f: f.create_virtual_dataset(
            "virtual", h5py.VirtualLayout(shape=(4,), dtype="f8")
        ),
    }
    for k, (cause, edit) in enumerate(stores.items()):
        with pytest.raises(ConventionError, match=cause):
            convention.read(_store_with(tmp_path, f"{k}.h5", edit))
    twice = tmp_path / "twice.h5"
    convention.write_store(
        twice, [make_series(object_id="a"), make_series(object_id="b")], survey="sdss2",
        bands=["sdss::g", "sdss::r"], class_names=["SNIa"], stamp_shape=(8, 8), pixel_scale=0.396,
    )  # fmt: skip
    with h5py.File(twice, "a") as f:
        f["object/object_id"][1] = "a"
    with pytest.raises(ConventionError, match="object a: damaged store: the object id is there"):
        convention.read(twice)
    for path, cause in (
        ("/dev/zero", "a device"),
        ("/proc/self/mem", "a file of the system"),
    ):
        one_error_line(run("describe", path), cause)
    link = tmp_path / "zero.h5"
    link.symlink_to("/dev/zero")
    one_error_line(run("describe", link), "data is a device")
    os.mkfifo(tmp_path / "fifo.h5")
    one_error_line(run("describe", tmp_path / "fifo.h5"), "data is a FIFO")


def test_outputs_are_never_special_files_nor_inside_inputs(trained_run, train_store, tmp_path):
    one_error_line(
        run("predict", "--checkpoint", trained_run, "--data", train_store, "--out", "/dev/null"),
        "output exists and is a device",
    )
    assert Path("/dev/null").is_char_device()
    one_error_line(run("export", "onnx", trained_run, "--out", "/dev/null.onnx"), "of the system")
    assert not Path("/dev/null.onnx").exists()
    settings = trained_run / "fold_0" / "settings.json"
    before = settings.read_bytes()
    one_error_line(
        run("predict", "--checkpoint", trained_run, "--data", train_store, "--out", settings),
        "inside the input folder",
    )
    assert settings.read_bytes() == before
    stamps = tmp_path / "stamps"
    assert run("export", "fits", train_store, "--out", stamps).exit_code == 0
    one_error_line(
        run("ingest", "fits", stamps, "--out", stamps / "epochs.ecsv"), "inside the input folder"
    )


def test_a_run_folder_whose_part_leads_outside_is_refused(trained_run, train_store, tmp_path):
    run_copy = tmp_path / "run"
    shutil.copytree(trained_run, run_copy)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run_copy / "fold_0", elsewhere)
    (run_copy / "fold_0").symlink_to(elsewhere)
    before = (elsewhere / "settings.json").read_bytes()
    one_error_line(
        run(
            "predict", "--checkpoint", run_copy, "--data", train_store, "--out", tmp_path / "p.csv"
        ),
        "leads outside the folder",
    )
    one_error_line(run("calibrate", "--run", run_copy, "--data", train_store), "leads outside")
    assert (elsewhere / "settings.json").read_bytes() == before


def test_edited_checkpoints_are_refused_before_they_give_garbage(trained_run, tmp_path):
    from convention.classifier import Classifier

    for edit, message in (
        (lambda s: s.update(temperature=1e-308), "temperature must be 0.001..1000"),
        (lambda s: s["encoders"]["stamps"]["normalisation"].update(median=[1e308] * 5),
         "a normalisation median past"),
        (lambda s: s["encoders"]["stamps"]["normalisation"].update(scale=[1e-308] * 5),
         "a normalisation scale outside"),
        (lambda s: s.update(classes=["AGN", "AGN", "Variable", "SNOther"]), "name one twice"),
        (lambda s: s.update(encoders=[]), "encoder states of"),
        (lambda s: s["overrides"].update(max_frames=50), "not what the weights were trained"),
    ):  # fmt: skip
        folder = tmp_path / f"m{len(list(tmp_path.iterdir()))}"
        shutil.copytree(trained_run / "fold_0", folder)
        saved = json.loads((folder / "settings.json").read_text())
        edit(saved)
        (folder / "settings.json").write_text(json.dumps(saved))
        with pytest.raises(ConventionError, match=message):
            Classifier.load(folder)
    # A zip bomb as model.pt: refused by its size inflated, before it is unpickled.
    bomb = tmp_path / "bomb"
    shutil.copytree(trained_run / "fold_0", bomb)
    with zipfile.ZipFile(bomb / "model.pt", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", bytes(300 * 2**20))
    saved = json.loads((bomb / "settings.json").read_text())
    (bomb / "settings.json").write_text(json.dumps({**saved, "weights_sha256": None}))
    with pytest.raises(ConventionError, match="weights inflate to"):
        Classifier.load(bomb)


def _limited(size: int):
    """A child process whose files may not grow past ``size`` bytes (as on a full disk)."""

    def limit() -> None:  # Python ignores SIGXFSZ: a write past the limit is an OSError
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_full_disk_is_one_line_and_leaves_nothing(train_store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for args, size in (
        (
            ["simulate", "--n-objects", "60", "--stamp-size", "16", "--out", str(out / "s.h5")],
            2**20,
        ),
        (["export", "fits", str(train_store), "--out", str(out / "stamps")], 4096),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "convention", *args], capture_output=True, text=True,
            preexec_fn=_limited(size), timeout=300,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr[-2000:]
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
        assert "nothing written" in lines[0] or "too large" in lines[0].lower(), lines
        assert list(out.iterdir()) == []


def test_two_trainings_of_one_output_do_not_destroy_each_other(train_store, tmp_path):
    out = tmp_path / "run"
    partial = tmp_path / "run.partial"
    partial.mkdir()
    lock = claim_folder(partial)  # a live run writing it
    try:
        one_error_line(
            run("train", "--data", train_store, "--out", out, "--preset", "tiny",
                "--stamp-size", 16, "--epochs", 1),
            "a live run is writing it",
        )  # fmt: skip
        assert partial.is_dir()
    finally:
        os.close(lock)


def test_smaller_causes_are_said_as_they_are(ztf_run, ztf_alerts, tmp_path):
    a_file = next((ztf_alerts / VALID).glob("*.avro"))
    one_error_line(
        run("classify-alerts", "--checkpoint", ztf_run, "--input", a_file, "--out",
            tmp_path / "o", "--once"),
        "--input is a file",
    )  # fmt: skip
    one_error_line(
        run("classify-alerts", "--checkpoint", ztf_run, "--input", ztf_alerts / VALID,
            "--out", tmp_path / "o", "--trigger-seconds", "nan"),
        "--trigger-seconds must be a positive number of seconds",
    )  # fmt: skip
    out = tmp_path / "busy"
    out.mkdir()
    lock = claim_folder(out)  # another stream's
    try:
        for engine in ("local", "spark"):
            one_error_line(
                run("classify-alerts", "--checkpoint", ztf_run, "--input", ztf_alerts / VALID,
                    "--out", out, "--once", "--engine", engine),
                "a live stream is writing it",
            )  # fmt: skip
    finally:
        os.close(lock)


def test_progress_goes_to_a_log_as_lines(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "convention", "simulate", "--n-objects", "6", "--stamp-size",
         "16", "--workers", "1", "--out", str(tmp_path / "s.h5")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "simulating: 6/6 objects (100%)" in done.stdout


def test_progress_lines_come_at_most_every_interval_and_at_the_end():
    lines, now = [], [0.0]
    progress = ProgressLines(
        "training", 100, "epochs", lines.append, every=10, clock=lambda: now[0]
    )
    for done in range(1, 101):
        now[0] = done * 0.5  # an epoch every half second: 50 s in all
        progress.update(done)
    assert len(lines) == 6  # the first, one every 10 s, the last
    assert lines[1] == "training: 21/100 epochs (21%), 2 epochs/s, about 40 s left"
    assert lines[-1] == "training: 100/100 epochs (100%), 2 epochs/s, done in 50 s"
