"""classify-alerts: real ZTF alerts through a model trained on simulated ZTF stamps, on the
local loop and on Spark Structured Streaming (local mode), restart-safe."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from convention import alert_folder
from convention.alert_folder import AlertFolderStream, read_table
from convention.alert_stream import AlertClassifier
from convention.cli import app
from convention.history import HistoryBounds
from tests.helpers import one_error_line

runner = CliRunner()
CONVENTION = str(Path(sys.executable).with_name("convention"))


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def landing(tmp_path, ztf_alerts) -> Path:
    """A folder holding the 16 valid and the 4 malformed real alert files."""
    folder = tmp_path / "landing"
    folder.mkdir()
    for path in [*(ztf_alerts / "valid").glob("*.avro"), *(ztf_alerts / "malformed").glob("*")]:
        shutil.copy(path, folder / path.name)
    return folder


def _check_complete(out: Path, landing: Path, specials: int = 0) -> None:
    """Every valid alert classified exactly once, every malformed file (and each of
    ``specials`` entries that are no alert file) rejected once."""
    predictions, rejected = read_table(out), read_table(out, "rejected")
    assert len(predictions) == 16 and predictions["candidate_id"].is_unique
    assert len(rejected) == 4 + specials and rejected["file"].is_unique
    names = {Path(f).name for f in [*predictions["file"], *rejected["file"]]}
    assert names == {p.name for p in landing.iterdir()}
    columns = predictions.filter(like="p_")
    most_probable = [columns.columns[k][2:] for k in columns.to_numpy().argmax(axis=1)]
    assert predictions["predicted"].tolist() == most_probable


def test_local_stream_classifies_real_alerts(ztf_run, landing, tmp_path):
    out = tmp_path / "out"
    result = run(
        "classify-alerts",
        "--checkpoint",
        ztf_run,
        "--input",
        landing,
        "--out",
        out,
        "--once",
        "--max-files-per-batch",
        8,
    )
    assert result.exit_code == 0, result.output
    assert "batch 2" in result.output
    _check_complete(out, landing)
    rejected = read_table(out, "rejected")
    causes = " ".join(rejected["cause"])
    assert "empty file" in causes and "truncated Avro file" in causes and "not FITS" in causes
    predictions = read_table(out)
    # Each alert with the object's earlier alerts: ZTF17aaajnnn's second sees its first.
    epochs = predictions.groupby("object_id")["n_epochs"].max()
    assert epochs.pop("ZTF17aaajnnn") == 2 and (epochs == 1).all()
    assert (predictions["n_photometry"] > 10).all()
    assert set(predictions["band"]) == {"ztf::r"}
    assert predictions["model_version"].str.startswith("run-").all()
    assert set(predictions["predicted"]) <= {"SNIa", "SNOther", "AGN", "Variable"}
    # Files landing later: only they are classified by the next run.
    again = run(
        "classify-alerts", "--checkpoint", ztf_run, "--input", landing, "--out", out, "--once"
    )
    assert again.exit_code == 0 and len(read_table(out)) == 16


def test_local_stream_survives_a_kill_mid_batch(ztf_run, landing, tmp_path, monkeypatch):
    classifier = AlertClassifier.load(ztf_run)
    history = HistoryBounds(epochs=3)
    out = tmp_path / "out"
    moved = []
    real_replace = alert_folder.replace_folder

    def dying(staging, target):  # killed after batch 1's predictions are in place
        real_replace(staging, target)
        moved.append(target)
        if len(moved) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(alert_folder, "replace_folder", dying)
    with pytest.raises(KeyboardInterrupt):
        AlertFolderStream(landing, out, classifier, max_files=6, history=history).run()
    assert not (out / "_local_log" / "1").exists()
    monkeypatch.setattr(alert_folder, "replace_folder", real_replace)
    AlertFolderStream(landing, out, classifier, max_files=6, history=history).run()
    _check_complete(out, landing)
    unbroken = tmp_path / "unbroken"
    AlertFolderStream(landing, unbroken, classifier, max_files=6, history=history).run()
    probabilities = [f"p_{c}" for c in classifier.classifier.classes]
    columns = ["candidate_id", "n_epochs", "n_photometry", *probabilities]
    restarted, whole = (
        read_table(o)[columns].sort_values("candidate_id", ignore_index=True)
        for o in (out, unbroken)
    )
    assert restarted.equals(whole) and restarted["n_epochs"].max() == 2


def test_a_damaged_history_is_one_line_and_reset_starts_afresh(ztf_run, landing, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "_history.sqlite").write_bytes(b"\x00" * 4096)
    command = ["classify-alerts", "--checkpoint", ztf_run, "--input", landing, "--out", out]
    result = run(*command, "--once")
    one_error_line(result, "_history.sqlite: history store is damaged")
    assert (out / "_history.sqlite").read_bytes() == b"\x00" * 4096
    result = run(*command, "--once", "--reset-history", "--history-epochs", 2)
    assert result.exit_code == 0, result.output
    assert read_table(out)["n_epochs"].max() == 2


def test_a_model_of_other_bands_is_one_line(trained_run, landing, tmp_path):
    for engine in ("local", "spark"):
        out = tmp_path / engine
        result = run(
            "classify-alerts",
            "--checkpoint",
            trained_run,
            "--input",
            landing,
            "--out",
            out,
            "--once",
            "--engine",
            engine,
        )
        assert result.exit_code == 2
        assert "the model reads bands" in result.output and "ztf::g" in result.output
        assert not out.exists()


def test_bad_folders_are_one_line(ztf_run, landing, tmp_path):
    cases = [
        (["--input", tmp_path / "nowhere", "--out", tmp_path / "o"], "does not exist"),
        (["--input", landing, "--out", landing / "out"], "inside the input folder"),
        (["--input", landing, "--out", tmp_path / "o", "--engine", "flink"], "spark or local"),
        (["--input", landing, "--out", tmp_path / "o", "--max-files-per-batch", 0], "at least 1"),
    ]
    for args, message in cases:
        result = run("classify-alerts", "--checkpoint", ztf_run, "--once", *args)
        assert result.exit_code == 2, result.output
        assert message in result.output


# Names Spark once read as patterns or never took, and entries that are no alert file.
HOSTILE_PREFIXES = ["a?", "c*", "e[1]", "_", ".", "h {i} ~ ", "%20", "x:y", "#", "'q\"", "\\"]
SPECIAL_CAUSES = {
    "folder.avro": "a folder, not an alert file",
    "fifo.avro": "a FIFO, not an alert file",
    "out.avro": "a link leading out of the landing folder",
    "nothing.avro": "a link to nothing",
}


def _add_specials(inbox: Path, outside: Path) -> None:
    (inbox / "folder.avro").mkdir()
    os.mkfifo(inbox / "fifo.avro")
    (inbox / "out.avro").symlink_to(outside)
    (inbox / "nothing.avro").symlink_to(inbox / "gone")


def test_spark_stream_takes_hostile_names_once_survives_a_kill_and_agrees(
    ztf_run, landing, tmp_path
):
    """The Structured Streaming query on a landing folder of hostile names, killed
    (SIGKILL) in its second micro-batch and started again: every alert exactly once, every
    other entry one rejected row, the same rows as the local engine's."""
    inbox, out = tmp_path / "in*[1]", tmp_path / "out?{x}"
    inbox.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT")
    _add_specials(inbox, secret)
    files = sorted(landing.iterdir())
    names = [f"{HOSTILE_PREFIXES[k % len(HOSTILE_PREFIXES)]}{p.name}" for k, p in enumerate(files)]
    for path, name in zip(files[:4], names, strict=False):  # the rest lands while it runs
        shutil.copy(path, inbox / name)
    command = [
        CONVENTION,
        "classify-alerts",
        "--engine",
        "spark",
        "--checkpoint",
        str(ztf_run),
        "--input",
        str(inbox),
        "--out",
        str(out),
    ]
    query = subprocess.Popen(
        [*command, "--max-files-per-batch", "4", "--watch", "--trigger-seconds", "0.5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (out / "predictions" / "batch=0").exists():
            assert query.poll() is None and time.monotonic() < deadline, "no first batch"
            time.sleep(0.05)
        for path, name in zip(files[4:], names[4:], strict=True):  # written beside, renamed in
            shutil.copy(path, inbox / f"{name}.part")
            os.rename(inbox / f"{name}.part", inbox / name)
        second = out / "predictions"
        while not any(p.name.startswith((".batch=1", "batch=1")) for p in second.iterdir()):
            assert query.poll() is None and time.monotonic() < deadline, "no second batch"
            time.sleep(0.02)
    finally:
        os.killpg(query.pid, signal.SIGKILL)
        query.wait()
    assert not (out / "_checkpoint" / "commits" / "1").exists()  # killed mid-batch
    # Batch 1 again on its own entries, then the rest in one batch.
    restarted = subprocess.run(
        [*command, "--max-files-per-batch", "32", "--once"], capture_output=True, text=True
    )
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    local = tmp_path / "local"
    done = run(
        "classify-alerts", "--checkpoint", ztf_run, "--input", inbox, "--out", local, "--once"
    )
    assert done.exit_code == 0, done.output
    for engine_out in (out, local):
        _check_complete(engine_out, inbox, specials=len(SPECIAL_CAUSES))
        rejected = read_table(engine_out, "rejected")
        causes = dict(zip((Path(f).name for f in rejected["file"]), rejected["cause"], strict=True))
        for name, cause in SPECIAL_CAUSES.items():
            assert cause in causes[name]
        assert "SECRET" not in " ".join(causes.values())
    spark = read_table(out).set_index("candidate_id").sort_index()
    here = read_table(local).set_index("candidate_id").sort_index()
    assert spark.index.equals(here.index) and spark["file"].equals(here["file"])
    # The local run takes every file in one batch, so ZTF17aaajnnn's two alerts see each
    # other there; on Spark the one of the later batch sees the earlier one (its history
    # survived the kill), the earlier one itself alone.
    same = spark["n_epochs"] == here["n_epochs"]
    assert set(spark.index[~same]) <= {"472263571115095000", "472263571115115000"}
    assert spark.loc[spark["object_id"] == "ZTF17aaajnnn", "n_epochs"].max() == 2
    assert spark["n_photometry"].equals(here["n_photometry"])
    assert np.allclose(spark[same].filter(like="p_"), here[same].filter(like="p_"), atol=1e-6)
    rejected_by = [
        read_table(o, "rejected").sort_values("file")[["file", "cause"]].reset_index(drop=True)
        for o in (out, local)
    ]
    assert rejected_by[0].equals(rejected_by[1])
    again = run(
        "classify-alerts", "--checkpoint", ztf_run, "--input", inbox, "--out", out, "--once"
    )
    assert again.exit_code == 2  # a Spark output is not the local engine's


def test_spark_classifies_store_rows_as_one_process_does(ztf_run):
    from convention.classifier import BatchPrediction, Classifier
    from convention.io import read
    from convention.spark import classify_store, spark_session

    data = ztf_run.parent / "ztf.h5"
    spark = spark_session("local[2]")
    try:
        frame = classify_store(spark, ztf_run, data, partitions=3, batch_size=5).toPandas()
    finally:
        spark.stop()
    classifier = Classifier.load(ztf_run)
    alone = BatchPrediction.join(classifier.classify(read(data)), classifier.classes)
    expected = dict(zip(alone.ids, alone.proba, strict=True))
    assert sorted(frame["object_id"]) == sorted(expected)
    got = frame.set_index("object_id").filter(like="p_")
    assert np.allclose(got.to_numpy(), np.stack([expected[i] for i in got.index]), atol=1e-5)


def test_the_udf_loads_the_checkpoint_once_per_process(ztf_run, landing, monkeypatch):
    import pandas as pd
    import torch

    from convention import spark
    from convention.io.formats.alerts import landed_files
    from convention.landing import Entry

    loads = []
    real_load = AlertClassifier.load

    def counting(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(AlertClassifier, "load", counting)
    monkeypatch.setattr(spark, "_LOADED", {})
    udf = spark.alert_classifier_udf(str(ztf_run), str(landing), threads=torch.get_num_threads())
    root = landing.resolve()
    entries = [Entry(0, f.raw, str(root / f.name), f.cause) for f in landed_files(landing)]
    frames = [
        pd.DataFrame({"value": [entry.to_json() for entry in part]})
        for part in (entries[:10], entries[10:])
    ]
    for _ in range(2):  # two tasks in the same Python worker
        rows = pd.concat(list(udf(iter(frames))))
        assert len(rows) == 20 and rows["cause"].notna().sum() == 4
        assert set(rows["file"]) == {str(root / p.name) for p in landing.iterdir()}
    assert len(loads) == 1
