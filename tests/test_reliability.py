"""Hostile but fair inputs (issue 15): nothing read outside its inputs, no input
overwritten, one line per user error, nothing left behind."""

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from typer.testing import CliRunner

from convention.cli import app
from convention.io import scan
from convention.io.ingest import DroppedFrame

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], lines[0]


def _stamp_folder(root: Path, files: list[str], made: int = 1) -> Path:
    """A stamp folder of one object whose epochs name ``files``; the first ``made`` exist."""
    (root / "img").mkdir(parents=True)
    for k, name in enumerate(files[:made]):
        fits.PrimaryHDU(np.full((16, 16), float(k), np.float32)).writeto(root / name)
    rows = [("a", 53700.0 + k, "sdss::g", name) for k, name in enumerate(files)]
    Table(rows=rows, names=("object_id", "mjd", "band", "file")).write(root / "epochs.csv")
    return root


@pytest.mark.parametrize("kind", ["absolute", "parent", "symlink", "passwd"])
def test_stamp_folder_never_reads_outside_itself(tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.fits"
    fits.PrimaryHDU(np.ones((16, 16), np.float32)).writeto(secret)
    name = {
        "absolute": str(secret),
        "parent": "../outside/secret.fits",
        "symlink": "img/link.fits",
        "passwd": "../../../../../../../../etc/passwd",
    }[kind]
    root = _stamp_folder(tmp_path / "stamps", ["img/ok.fits", name])
    if kind == "symlink":
        os.symlink(secret, root / "img" / "link.fits")
    dropped, series = scan("fits", [root], survey="sdss2").items
    assert isinstance(dropped, DroppedFrame) and len(series) == 1
    assert "outside the folder" in dropped.message or "absolute path" in dropped.message
    assert "root:" not in dropped.message  # no byte of the file is echoed
    out = tmp_path / "x.h5"
    result = run("ingest", "fits", root, "-r", "survey=sdss2", "--out", out, "--strict")
    one_error_line(result, "row 2: ")
    assert not (tmp_path / "x.h5").exists()


def _inputs(tmp_path, tiny_store, trained_run):
    """A copy of each kind of input, with its bytes, to check nothing overwrote it."""
    import shutil

    store = tmp_path / "s.h5"
    shutil.copy(tiny_store, store)
    catalog = tmp_path / "c.fits"
    catalog.write_bytes(b"SIMPLE  = T")
    lc, meta = tmp_path / "lc.csv", tmp_path / "meta.csv"
    lc.write_text("object_id,mjd,passband,flux,flux_err,detected\n")
    meta.write_text("object_id,target\n")
    return {"store": store, "catalog": catalog, "lc": lc, "meta": meta, "run": trained_run}


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--checkpoint", "{run}", "--data", "{store}", "--out", "{store}"],
        ["predict", "--checkpoint", "{run}", "--data", "{store}", "--out", "{run}"],
        ["ingest", "fits", "{store}", "--out", "{store}"],
        ["render-lightcurves", "--lightcurves", "{lc}", "--metadata", "{meta}", "--out", "{lc}"],
        ["simulate", "--catalog", "{catalog}", "--out", "{catalog}"],
        ["train", "--data", "{store}", "--out", "{store}"],
        ["evaluate", "--run", "{run}", "--data", "{store}", "--out", "{run}"],
        ["plot", "{store}", "--object", "x", "--out", "{store}"],
        ["export", "snana", "{store}", "--out", "{tmp}"],
        ["export", "fits", "{store}", "--out", "{store}"],
        ["bench", "--data", "{store}", "--out", "{tmp}"],
    ],
)
def test_an_output_never_overwrites_an_input(tmp_path, tiny_store, trained_run, args):
    paths = {**_inputs(tmp_path, tiny_store, trained_run), "tmp": tmp_path}
    before = {k: p.read_bytes() for k, p in paths.items() if p.is_file()}
    listing = sorted(trained_run.rglob("*"))
    result = run(*(a.format(**paths) for a in args))
    one_error_line(result, "the output would overwrite the input")
    assert {k: p.read_bytes() for k, p in paths.items() if p.is_file()} == before
    assert sorted(trained_run.rglob("*")) == listing


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--n-objects", "3", "--seed", "-1"], "the seed must be 0 or more"),
        (["simulate", "--n-objects", "3", "--workers", "0"], "workers must be at least 1"),
        (["demo", "--seed", "-1"], "the seed must be 0 or more"),
        (["demo", "--n-objects", "0"], "the number of objects must be positive"),
        (["demo", "--epochs", "0"], "epochs must be at least 1"),
        (["render-lightcurves", "--stamp-size", "0"], "stamp size must be 8..256"),
        (["render-lightcurves", "--seed", "-2"], "the seed must be 0 or more"),
        (["render-lightcurves", "--workers", "0"], "workers must be at least 1"),
    ],
)
def test_bad_numbers_are_one_line_and_leave_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    if args[0] == "render-lightcurves":
        (tmp_path / "lc.csv").write_text("object_id,mjd,passband,flux,flux_err,detected\n")
        (tmp_path / "meta.csv").write_text("object_id,target\n")
        args = [*args, "--lightcurves", tmp_path / "lc.csv", "--metadata", tmp_path / "meta.csv"]
    before = sorted(tmp_path.iterdir())
    one_error_line(run(*args, "--out", out), message)
    assert sorted(tmp_path.iterdir()) == before


def test_rendered_store_is_the_same_bytes_whatever_the_workers(tmp_path, plasticc_train):
    import gzip

    rows = gzip.open(plasticc_train / "plasticc_train_metadata.csv.gz", "rt").read().splitlines()
    ids = {line.split(",")[0] for line in rows[1:4]}
    (tmp_path / "meta.csv").write_text("\n".join(rows[:4]) + "\n")
    with gzip.open(plasticc_train / "plasticc_train_lightcurves.csv.gz", "rt") as f:
        lines = [next(f)] + [line for line in f if line.split(",")[0] in ids]
    (tmp_path / "lc.csv").write_text("".join(lines))
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.h5"
        result = run(
            "render-lightcurves", "--lightcurves", tmp_path / "lc.csv", "--metadata",
            tmp_path / "meta.csv", "--out", out, "--stamp-size", 16, "--workers", workers,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--name", "../../escape", "must be a plain prefix"),
        ("--name", "/tmp/abs", "must be a plain prefix"),
        ("--name", "a/b", "must be a plain prefix"),
        ("--clip-fluxcal", "nan", "--clip-fluxcal must be a finite number"),
        ("--clip-fluxcal", "-inf", "--clip-fluxcal must be a finite number"),
    ],
)
def test_export_snana_names_and_clip_are_checked(tiny_store, tmp_path, option, value, message):
    out = tmp_path / "snana"
    one_error_line(run("export", "snana", tiny_store, "--out", out, option, value), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not Path("/tmp/abs_HEAD.csv").exists()


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_a_killed_simulate_are_removed_by_the_next_run(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "x.h5"
    args = [sys.executable, "-m", "convention", "simulate", "--out", str(out), "--workers", "1"]
    process = subprocess.Popen([*args, "--n-objects", "400", "--stamp-size", "16"])
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".x.h5.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(tmp_path.glob(".x.h5.*.tmp")) and not out.exists()
    live = tmp_path / f".x.h5.{os.getppid()}.feed.tmp"  # a concurrent writer's: kept
    live.write_bytes(b"")
    other = tmp_path / f".y.h5.{_dead_pid()}.beef.tmp"  # another output's: kept
    other.write_bytes(b"")
    result = run("simulate", "--out", out, "--n-objects", 3, "--stamp-size", 16, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob(".*.tmp")) == sorted([live.name, other.name])


def test_a_failing_store_writer_leaves_no_temporary_file(tmp_path):
    from convention.data.store import StoreWriter

    with pytest.raises(ValueError):
        StoreWriter(
            tmp_path / "s.h5",
            survey="sdss2",
            bands=["sdss::g"],
            class_names=["AGN"],
            stamp_shape=(0, 16),
            pixel_scale=0.4,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--checkpoint", "{run}", "--data", "{store}", "--out", "/sys/p.csv"],
        ["plot", "{store}", "--object", "{obj}", "--out", "/sys/p.png"],
        ["simulate", "--n-objects", "3", "--out", "/sys/x.h5", "--workers", "1"],
        ["train", "--data", "{train}", "--out", "/sys/run"],
        ["export", "fits", "{store}", "--out", "/sys/f"],
        ["export", "snana", "{store}", "--out", "/sys/f"],
        ["evaluate", "--run", "{run}", "--data", "{store}", "--out", "/sys/ev"],
    ],
)
def test_an_unwritable_output_folder_is_one_line(tiny_store, train_store, trained_run, args):
    if os.access("/sys", os.W_OK) and not Path("/sys/class").is_dir():
        pytest.skip("no read-only /sys here")
    import convention

    obj = convention.read(tiny_store).object_ids[0]
    paths = {"store": tiny_store, "train": train_store, "run": trained_run, "obj": obj}
    one_error_line(run(*(a.format(**paths) for a in args)), "/sys")


def _damage(store: Path, how: str) -> None:
    import h5py

    with h5py.File(store, "r+") as f:
        if how == "no mjd":
            del f["frame/mjd"]
        elif how == "no frames":
            del f["frames"]
        elif how == "no bands":
            del f.attrs["bands"]
        elif how == "huge count":
            f["object/count"][0] = 1_000_000_000
        elif how == "negative start":
            f["object/start"][1] = -5
        elif how == "label code":
            f["object/label"][0] = 99
        elif how == "short column":
            f["frame/band"].resize((3,))
        elif how == "provenance":
            f.attrs["provenance"] = "{not json"


@pytest.mark.parametrize(
    "how, message",
    [
        ("no mjd", "no dataset 'frame/mjd'"),
        ("no frames", "no dataset 'frames'"),
        ("no bands", "no attribute 'bands'"),
        ("huge count", "outside the"),
        ("negative start", "outside the"),
        ("label code", "label code 99"),
        ("short column", "frame/band has 3 rows"),
        ("provenance", "unreadable attributes"),
    ],
)
@pytest.mark.parametrize("command", ["describe", "predict", "plot", "evaluate", "export"])
def test_a_damaged_store_is_one_line(tmp_path, tiny_store, trained_run, how, message, command):
    import shutil

    store = tmp_path / "s.h5"
    shutil.copy(tiny_store, store)
    _damage(store, how)
    args = {
        "describe": ["describe", store],
        "predict": [
            "predict",
            "--checkpoint",
            trained_run,
            "--data",
            store,
            "--out",
            tmp_path / "p",
        ],
        "plot": ["plot", store, "--object", "x", "--out", tmp_path / "p.png"],
        "evaluate": ["evaluate", "--run", trained_run, "--data", store, "--out", tmp_path / "e"],
        "export": ["export", "fits", store, "--out", tmp_path / "f"],
    }[command]
    one_error_line(run(*args), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


def _saved_model(tmp_path: Path, model: str = "convention", **overrides) -> Path:
    from convention.classifier import ModelSettings, save_model
    from convention.inputs import InputSpec, Normalisation

    bands = ("sdss::g", "sdss::r")
    settings = ModelSettings(
        model,
        "tiny",
        {"stamp_size": 8, **overrides},
        ("AGN", "SNIa", "Variable", "SNOther"),
        bands,
        InputSpec(("stamps",), 8, 99),
        {"stamps": {"normalisation": Normalisation.identity(bands).to_dict()}},
    )
    save_model(tmp_path / "m", settings.build(), settings)
    return tmp_path / "m"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["classes"].reverse(), "classes ['SNOther', 'Variable', 'SNIa', 'AGN'] is not"),
        (lambda d: d.update(classes=["AGN", "SNIa", "Variable"]), "classes ['AGN', 'SNIa', 'V"),
        (lambda d: d.update(bands=["sdss::r", "sdss::i"]), "'sdss::r', 'sdss::i']"),
        (lambda d: d.update(preset="cpu"), "preset 'cpu' is not what the weights"),
        (lambda d: d["overrides"].update(head_hidden=33), "overrides {'stamp_size': 8, 'head_h"),
    ],
)
def test_a_checkpoint_settings_are_tied_to_its_weights(tmp_path, edit, message):
    import json

    from convention.classifier import Classifier
    from convention.errors import ConventionError

    folder = _saved_model(tmp_path)
    path = folder / "settings.json"
    settings = json.loads(path.read_text())
    edit(settings)
    path.write_text(json.dumps(settings))
    with pytest.raises(ConventionError, match=message.replace("[", r"\[").replace("(", r"\(")):
        Classifier.load(folder)


def test_a_checkpoint_trained_with_a_tuple_of_inputs_loads(tmp_path):
    from convention.classifier import Classifier

    folder = _saved_model(tmp_path, "convention-multi", inputs=("stamps",))
    assert Classifier.load(folder).settings.overrides["inputs"] == ["stamps"]


def test_a_checkpoint_may_not_build_a_huge_model(tmp_path):
    from dataclasses import replace

    from convention.classifier import Classifier
    from convention.errors import ConventionError

    settings = Classifier.load(_saved_model(tmp_path)).settings
    huge = replace(settings, overrides={"stamp_size": 8, "head_hidden": 10**7})
    with pytest.raises(ConventionError, match="more than the 50,000,000"):
        huge.build()


def test_weights_of_another_model_are_refused(tmp_path):
    from convention.classifier import Classifier
    from convention.errors import ConventionError

    one, two = _saved_model(tmp_path / "a"), _saved_model(tmp_path / "b")
    (one / "model.pt").write_bytes((two / "model.pt").read_bytes())
    with pytest.raises(ConventionError, match="SHA-256 differs"):
        Classifier.load(one)


def test_one_huge_stamp_costs_its_frame_and_no_memory(tmp_path):
    import resource

    root = _stamp_folder(tmp_path / "stamps", ["img/a.fits", "img/b.fits", "img/big.fits"], 2)
    big = fits.PrimaryHDU()
    big.header.update(BITPIX=-32, NAXIS=2, NAXIS1=10000, NAXIS2=10000)
    with open(root / "img" / "big.fits", "wb") as f:  # header only: the pixels are absent
        f.write(big.header.tostring().encode())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dropped, series = scan("fits", [root], survey="sdss2").items
    assert isinstance(dropped, DroppedFrame) and len(series) == 2
    assert "10000x10000 pixels, larger than a 1024" in dropped.message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def test_a_stamp_of_another_size_is_fitted_to_the_common_one(tmp_path):
    root = _stamp_folder(tmp_path / "stamps", ["img/a.fits", "img/b.fits", "img/c.fits"], 3)
    fits.PrimaryHDU(np.ones((40, 40), np.float32)).writeto(root / "img" / "c.fits", overwrite=True)
    out = tmp_path / "s.h5"
    result = run("ingest", "fits", root, "-r", "survey=sdss2", "--out", out)
    assert result.exit_code == 0, result.output
    import convention

    assert convention.read(out).stamp_shape == (16, 16)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--stamp-size", "100000", "--stamp-size must be 8..1024 pixels"),
        ("--stamp-size", "-5", "--stamp-size must be 8..1024 pixels"),
        ("--stamp-size", "0", "--stamp-size must be 8..1024 pixels"),
        ("-r", "pixel_scale=-1", "pixel_scale must be a positive number"),
        ("-r", "survey=hst", "unknown survey 'hst'"),
        ("-r", "pixel_scale=wide", "reader option pixel_scale: could not convert"),
        ("-r", "cutouts=science", "the fits format has no option 'cutouts'"),
        ("-r", "survey", "reader option 'survey' is not NAME=VALUE"),
    ],
)
def test_ingest_options_are_checked(tmp_path, option, value, message):
    root = _stamp_folder(tmp_path / "stamps", ["img/a.fits"])
    out = tmp_path / "s.h5"
    one_error_line(run("ingest", "fits", root, "--out", out, option, value), message)
    assert not out.exists()


def test_identifiers_and_file_names_stay_text(tmp_path):
    root = tmp_path / "stamps"
    (root / "img").mkdir(parents=True)
    fits.PrimaryHDU(np.ones((16, 16), np.float32)).writeto(root / "img" / "nan.fits")
    fits.PrimaryHDU(np.ones((16, 16), np.float32)).writeto(root / "nan")
    rows = "object_id,mjd,band,file\n007,53700.0,sdss::g,img/nan.fits\n007,53701.0,sdss::r,nan\n"
    (root / "epochs.csv").write_text(rows)
    (root / "objects.csv").write_text("object_id,label\n007,SNIa\n")
    (series,) = scan("fits", [root]).items
    assert series.object_id == "007" and series.label == "SNIa" and len(series) == 2


def test_conflicting_duplicate_objects_name_both_rows(tmp_path):
    from convention.errors import ConventionError

    root = _stamp_folder(tmp_path / "stamps", ["img/a.fits"])
    (root / "objects.csv").write_text("object_id,label\na,SNIa\nb,AGN\na,AGN\n")
    with pytest.raises(ConventionError, match=r"object a: rows 1 and 3 disagree on label"):
        list(scan("fits", [root], survey="sdss2").items)
    (root / "objects.csv").write_text("object_id,label\na,SNIa\na,SNIa\n")  # the same twice
    (series,) = scan("fits", [root], survey="sdss2").items
    assert series.label == "SNIa"


def test_bench_exits_1_when_a_row_fails_and_keeps_its_work_beside_out(
    tmp_path, train_store, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results"
    # The cpu preset reads 32x32 stamps; this store holds 16x16 ones: the row fails.
    row = "ConvEntion (cpu), to convergence"
    result = run("bench", "--data", train_store, "--out", out, "--only", row)
    assert result.exit_code == 1, result.output
    assert f"{row} (seed 0) failed" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "results-work"]


def test_evaluate_into_a_used_folder_keeps_no_stale_examples(tmp_path, trained_run, train_store):
    out = tmp_path / "ev"
    out.mkdir()
    (out / "example_wrong_nobody.png").write_bytes(b"old")
    result = run("evaluate", "--run", trained_run, "--data", train_store, "--out", out)
    assert result.exit_code == 0, result.output
    assert not (out / "example_wrong_nobody.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["plot", "{store}", "--object", "{obj}", "--out", "{tmp}/p.png", "--max-epochs", "-2"],
         "--max-epochs must be at least 1"),
        (["models", "--classes", "-2"], "at least 2 classes and 1 band"),
        (["models", "--classes", "0"], "at least 2 classes and 1 band"),
        (["models", "--n-bands", "0"], "at least 2 classes and 1 band"),
        (["predict", "--checkpoint", "{run}", "--data", "{store}", "--out", "{tmp}/p.csv",
          "--batch-size", "0"], "--batch-size must be at least 1"),
        (["simulate", "--catalog", "{tmp}", "--out", "{tmp}/x.h5"], "is a folder, not a catalog"),
    ],
)  # fmt: skip
def test_more_bad_options_are_one_line(tmp_path, tiny_store, trained_run, args, message):
    import convention

    paths = {"store": tiny_store, "run": trained_run, "tmp": tmp_path}
    paths["obj"] = convention.read(tiny_store).object_ids[0]
    one_error_line(run(*(a.format(**paths) for a in args)), message)
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_gzipped_table_is_named_as_such(tmp_path, plasticc_train):
    truncated = tmp_path / "lc.csv.gz"
    source = plasticc_train / "plasticc_train_lightcurves.csv.gz"
    truncated.write_bytes(source.read_bytes()[:3000])
    (tmp_path / "meta.csv").write_text("object_id,target\n")
    result = run(
        "render-lightcurves", "--lightcurves", truncated, "--metadata", tmp_path / "meta.csv",
        "--out", tmp_path / "x.h5",
    )  # fmt: skip
    one_error_line(result, "unreadable table (truncated or corrupt gzip)")
