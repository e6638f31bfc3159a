"""The benchmark runner: rows on shared splits, results files, resuming, failures."""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from convention.bench.report import _markdown
from convention.bench.run import run_suite
from convention.bench.suites import BenchModel, Suite, get_suite, tailor
from convention.bench.supernnova import VENV_VARIABLE, class_order
from convention.cli import app
from convention.errors import ConventionError
from convention.io.snana import sntype_codes

runner = CliRunner()

SUITE = Suite(
    "test",
    n_objects=None,
    source="sdss2-catalog",
    stamp_size=16,
    seeds=(0,),
    epochs=1,
    models=(
        BenchModel("ConvEntion (tiny)", preset="tiny", overrides={"stamp_size": 16}),
        BenchModel("features", kind="features", input="light curves"),
        BenchModel("hybrid", kind="features", overrides={"scene": True}),
        BenchModel(
            "flagship",
            model="convention-multi",
            preset="tiny",
            overrides={"stamp_size": 16},
            epochs=3,
            patience=1,
        ),
        BenchModel(
            "broken", preset="tiny", overrides={"stamp_size": 16, "heads": 0}, table="ablation"
        ),
        BenchModel("SuperNNova (RNN)", kind="supernnova", overrides={"epochs": 1}),
        BenchModel(
            "time",
            preset="tiny",
            overrides={"stamp_size": 16, "positional_encoding": "time"},
            table="ablation",
        ),
    ),
    robustness={"index encoding": "ConvEntion (tiny)", "observation-time encoding": "time"},
)


@pytest.fixture(scope="module")
def bench_results(train_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # A SuperNNova environment whose snn fails: the row records it, the others still run.
    fake = out / "snn-venv" / "bin"
    fake.mkdir(parents=True)
    (fake / "snn").write_text("#!/bin/sh\necho 'boom: fake snn' >&2\nexit 3\n")
    (fake / "snn").chmod(0o755)
    os.environ[VENV_VARIABLE] = str(out / "snn-venv")
    try:
        results = run_suite(
            SUITE, out / "results", out / "work", data=train_store, command="test", jobs=2
        )
    finally:
        del os.environ[VENV_VARIABLE]
    return out, results


def test_rows_results_and_tables(bench_results):
    out, results = bench_results
    rows = results["models"]
    assert rows["ConvEntion (tiny)"]["status"] == "ok"
    assert rows["features"]["status"] == "ok"
    for name in ("ConvEntion (tiny)", "features"):
        row = rows[name]
        assert 0 <= row["macro_f1"]["mean"] <= 1 and row["macro_f1"]["std"] == 0
        assert set(row["per_class_f1"]) == {"AGN", "SNIa", "Variable", "SNOther"}
        assert row["train_seconds"]["mean"] > 0 and row["peak_rss_mib"] > 0
        assert row["inference_objects_per_s"]["mean"] > 0
    assert rows["ConvEntion (tiny)"]["parameters"] > 0
    assert rows["features"]["features"] > 0
    assert rows["hybrid"]["features"] == rows["features"]["features"] + 5 * 7
    assert rows["hybrid"]["model"] == "lc-scene-features-gbm"
    flagship = rows["flagship"]
    assert flagship["status"] == "ok" and flagship["patience"] == 1
    assert 1 <= flagship["epochs_trained"][0] <= 3 and flagship["epochs"] == 3
    # the two rows were tested on the same objects
    assert rows["ConvEntion (tiny)"]["test_objects"] == rows["features"]["test_objects"]
    on_disk = json.loads((out / "results" / "results.json").read_text())
    assert on_disk["environment"]["cpu_count"] >= 1 and on_disk["environment"]["command"]
    assert on_disk["environment"]["jobs"] == 2
    assert on_disk["budget"]["lr_schedule"] == "onecycle"
    assert rows["ConvEntion (tiny)"]["epochs"] == 1
    assert rows["ConvEntion (tiny)"]["epochs_trained"] == [1]
    text = (out / "results" / "results.md").read_text()
    assert "## Comparison" in text and "## Ablations of ConvEntion" in text
    assert (out / "results" / "macro_f1.png").is_file()


def test_the_table_says_when_a_run_stopped_before_its_budget(bench_results):
    _, results = bench_results
    stopped = copy.deepcopy(results)
    stopped["models"]["ConvEntion (tiny)"].update(epochs=100, epochs_trained=[22, 35])
    line = next(x for x in _markdown(stopped).splitlines() if x.startswith("| ConvEntion (tiny) |"))
    assert "| 22-35 of 100 |" in line


def test_the_report_names_the_commits_runs_were_trained_at(bench_results):
    _, results = bench_results
    collected = copy.deepcopy(results)
    own = collected["environment"]["git_commit"][:12]
    assert collected["models"]["ConvEntion (tiny)"]["commits"] == [own]
    assert "Runs trained at" not in _markdown(collected)
    collected["models"]["features"]["commits"] = ["0123456789ab", own]
    line = next(x for x in _markdown(collected).splitlines() if x.startswith("Runs trained at"))
    assert "`0123456789ab`: features" in line and "ConvEntion (tiny)" in line.split(own)[1]


def test_a_failing_row_is_recorded_and_the_others_run(bench_results):
    _, results = bench_results
    broken = results["models"]["broken"]
    assert broken["status"] == "failed"
    assert broken["failures"][0]["error"].startswith("error: cannot build convention")


def test_a_failing_supernnova_is_one_line(bench_results):
    _, results = bench_results
    row = results["models"]["SuperNNova (RNN)"]
    assert row["status"] == "failed"
    assert "snn make_data failed (exit 3): boom: fake snn" in row["failures"][0]["error"]


def test_supernnova_class_order():
    codes = sntype_codes(["AGN", "SNIa", "Variable", "SNOther"])
    assert class_order(codes) == ["AGN", "SNIa", "Variable", "SNOther"]
    assert class_order({"1": "II", "2": "Ia", "3": "II", "4": "Ibc"}) == ["Ia", "II", "Ibc"]


def test_supernnova_is_installed_once_by_rows_run_at_once(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from convention.bench import supernnova

    installs = []

    def slow_install(venv):
        installs.append(venv)
        time.sleep(0.3)  # the second row asks while the first installs
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "snn").touch()

    monkeypatch.setattr(supernnova, "_install", slow_install)
    venv = tmp_path / "work" / "supernnova-venv"
    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(supernnova.ensure_environment, [venv, venv]))
    assert made == [venv / "bin" / "snn"] * 2 and installs == [venv]


def test_rerun_keeps_finished_rows(bench_results, train_store):
    out, _ = bench_results
    done = out / "results" / "runs" / "features" / "seed_0.json"
    before = done.read_text()
    results = run_suite(SUITE, out / "results", out / "work", data=train_store, only=["features"])
    assert done.read_text() == before
    assert results["models"]["features"]["status"] == "ok"


def test_a_seed_gives_the_same_metrics(bench_results, train_store, tmp_path):
    _, results = bench_results
    again = run_suite(
        SUITE, tmp_path / "r", tmp_path / "w", data=train_store, only=["ConvEntion (tiny)"], jobs=2
    )
    first, second = results["models"]["ConvEntion (tiny)"], again["models"]["ConvEntion (tiny)"]
    assert second["macro_f1"] == first["macro_f1"]
    assert second["confusion_matrix_normalised"] == first["confusion_matrix_normalised"]


def test_unknown_rows_and_suites(tmp_path, train_store):
    with pytest.raises(ConventionError, match="unknown model"):
        run_suite(SUITE, tmp_path / "r", tmp_path / "w", data=train_store, only=["nope"])
    result = runner.invoke(app, ["bench", "--suite", "fast", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown suite 'fast'" in result.output
    result = runner.invoke(
        app, ["bench", "--out", str(tmp_path / "x"), "--data", str(tmp_path / "none.h5")]
    )
    assert result.exit_code == 2 and "no such data set" in result.output
    result = runner.invoke(app, ["bench", "--jobs", "0", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "--jobs must be at least 1, got 0" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_tailored_suite():
    twin = get_suite("sdss2-twin", "cuda")
    part = tailor(twin, [2, 2], 5.0, "32")
    assert part.seeds == (2,) and part.max_minutes == 5.0 and part.precision == "32"
    assert part.models == twin.models and part.epochs == twin.epochs
    assert tailor(twin) == twin
    longer = tailor(twin, lr_schedule="plateau", epochs=100)
    assert longer.budget()["lr_schedule"] == "plateau" and longer.budget()["epochs"] == 100


def test_bad_seeds_and_caps_are_one_line(tmp_path):
    result = runner.invoke(app, ["bench", "--seed", "-1", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "seeds must be 0 or more, got [-1]" in result.output
    result = runner.invoke(app, ["bench", "--max-minutes", "0", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "--max-minutes must be positive, got 0" in result.output
    result = runner.invoke(app, ["bench", "--precision", "16", "--out", str(tmp_path / "z")])
    assert result.exit_code == 2 and "unknown precision '16'" in result.output
    result = runner.invoke(app, ["bench", "--lr-schedule", "cosine", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "unknown learning-rate schedule 'cosine'" in result.output
    result = runner.invoke(app, ["bench", "--epochs", "0", "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "--epochs must be at least 1, got 0" in result.output
    assert list(tmp_path.iterdir()) == []


def test_robustness_curves(bench_results):
    out, results = bench_results
    curves = json.loads((out / "results" / "robustness.json").read_text())
    assert curves["fractions"] == [0.0, 0.2, 0.4, 0.6, 0.8]
    index = curves["curves"]["index encoding"]
    assert all(0 <= v <= 1 for v in index["accuracy"] + index["macro_f1"])
    # nothing removed: the same objects, frames and model as the row itself
    row = results["models"]["ConvEntion (tiny)"]
    assert index["accuracy"][0] == pytest.approx(row["accuracy"]["mean"])
    assert (out / "results" / "robustness.png").is_file()


def test_the_suites_hold_every_row_of_the_paper_table():
    from convention.bench.suites import SUITES

    kinds = {(m.kind, m.model) for m in SUITES["sdss2-twin"].models}
    for model in ("convention", "cnn-lstm", "cnn-gru", "lc-lstm", "lc-transformer", "scone"):
        assert ("image", model) in kinds
    assert ("features", "convention") in kinds
    names = [m.name for m in SUITES["sdss2-twin"].models]
    assert {"SuperNNova (RNN)", "SuperNNova (Bayesian RNN)"} <= set(names)
    assert sum(m.bands == ("g",) for m in SUITES["sdss2-twin"].models) == 3
    # Every network trains to convergence: stopped a patience after its best epoch.
    for suite in (SUITES["sdss2-twin"], SUITES["plasticc"]):
        budget = suite.budget()
        for row in suite.models:
            if row.kind == "image":
                assert (row.patience or budget["patience"]) < (row.epochs or budget["epochs"])
    quick = {m.kind for m in SUITES["quick"].models}
    assert quick == {"image", "features", "supernnova"}


def test_on_a_gpu_convention_takes_the_paper_preset():
    from convention.bench.suites import SUITES, get_suite

    cpu, gpu = SUITES["sdss2-twin"], get_suite("sdss2-twin", "cuda")
    assert get_suite("sdss2-twin") is cpu
    presets = {m.name: m.preset for m in gpu.models if m.model == "convention"}
    assert presets["ConvEntion (paper), to convergence"] == "paper"
    assert set(presets.values()) == {"paper"}
    convention = ("convention", "convention-multi")
    baselines = [m for m in gpu.models if m.model not in convention]
    assert baselines == [replace(m, epochs=None) for m in cpu.models if m.model not in convention]
    flagships = {m.preset for m in gpu.models if m.model == "convention-multi"}
    assert flagships == {"paper"}
    assert set(gpu.robustness.values()) <= {m.name for m in gpu.models}
    # the CPU suite's budgets are epochs; a GPU run stops early, the clock a safety net
    assert cpu.max_minutes is None and cpu.epochs
    assert gpu.max_minutes == 30 and all(m.epochs is None for m in gpu.models)
    assert gpu.epochs >= max(m.epochs or cpu.epochs for m in cpu.models)
    assert get_suite("quick", "cuda").max_minutes is None
    with pytest.raises(ConventionError, match="unknown device 'tpu'"):
        get_suite("quick", "tpu")


def test_results_of_one_device_are_not_resumed_on_another(bench_results, train_store, tmp_path):
    out, _ = bench_results
    made_on_gpu = tmp_path / "results"
    made_on_gpu.mkdir()
    results = json.loads((out / "results" / "results.json").read_text())
    results["environment"]["device"] = "NVIDIA H100 80GB HBM3"
    (made_on_gpu / "results.json").write_text(json.dumps(results))
    with pytest.raises(ConventionError, match="made on NVIDIA H100 80GB HBM3, this run is on cpu"):
        run_suite(SUITE, made_on_gpu, tmp_path / "work", data=train_store)
    assert not (tmp_path / "work").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line(tmp_path):
    result = runner.invoke(app, ["bench", "--device", "cuda", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: device cuda asked for, but torch {torch.__version__} sees no CUDA GPU"
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("native", [True, False])
def test_a_note_where_bfloat16_is_emulated(tmp_path, monkeypatch, native):
    monkeypatch.setattr("convention.device.native_bfloat16", lambda device: native)
    args = ["bench", "--out", str(tmp_path / "x"), "--data", str(tmp_path / "none.h5")]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 2 and "no such data set" in result.output
    assert ("no native bfloat16" in result.output) is not native


def test_a_rows_training_settings_take_its_own_budget_first():
    from convention.bench.training import row_settings

    budget = SUITE.budget()
    flagship = next(r for r in SUITE.models if r.name == "flagship")
    own = row_settings(flagship, budget, "d.h5", "out", 2, label_fraction=0.3)
    assert (own.epochs, own.patience, own.seed, own.label_fraction) == (3, 1, 2, 0.3)
    assert (own.lr, own.precision, own.overrides) == (SUITE.lr, SUITE.precision, {"stamp_size": 16})
    plain = row_settings(SUITE.models[0], budget, "d.h5", "out", 0)
    assert (plain.epochs, plain.patience) == (1, 1)  # no patience anywhere: the whole budget
    with pytest.raises(TypeError):
        row_settings(SUITE.models[0], budget, "d.h5", "out", 0, no_such_setting=1)


def test_the_plasticc_suite_renders_its_training_set(plasticc_files, tmp_path):
    """Without a store, the plasticc suite draws PLAsTiCC's training objects of the four
    classes as stamps, with their catalogue metadata; without the files, one line."""
    from convention.bench.run import prepare_data
    from convention.data.store import Store

    suite = replace(get_suite("plasticc"), stamp_size=16)
    path = prepare_data(suite, tmp_path / "work", None, None, plasticc_files[0].parent)
    store = Store(path)
    assert (store.object_ids, store.labels) == (["11", "22"], ["SNIa", "Variable"])
    assert store.bands == ["lsst::u", "lsst::g", "lsst::r", "lsst::i", "lsst::z", "lsst::y"]
    assert store.get("11").metadata["host_redshift"] == pytest.approx(0.12)
    result = runner.invoke(
        app,
        [
            "bench",
            "--suite",
            "plasticc",
            "--plasticc",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2
    assert "needs PLAsTiCC's training folder (--plasticc)" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out-work").exists()
