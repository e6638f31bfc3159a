import csv
import json

from typer.testing import CliRunner

from convention.cli import app
from convention.demo import DemoSettings, run_demo

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_train_evaluate_predict(tmp_path, train_store):
    out = tmp_path / "run"
    result = run(
        "train",
        "--data",
        train_store,
        "--out",
        out,
        "--preset",
        "tiny",
        "--epochs",
        1,
        "--stamp-size",
        16,
        "--batch-size",
        8,
        "--positional-encoding",
        "time",
    )
    assert result.exit_code == 0, result.output
    result = run("evaluate", "--run", out, "--data", train_store)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "evaluation" / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "per_class_f1", "class_names"} <= set(metrics)
    assert (out / "evaluation" / "report.html").is_file()
    assert (out / "evaluation" / "confusion_matrix.png").is_file()
    preds = tmp_path / "preds.csv"
    result = run("predict", "--checkpoint", out, "--data", train_store, "--out", preds)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(preds.open()))
    assert len(rows) == 48
    assert set(rows[0]) == {"object_id", "p_AGN", "p_SNIa", "p_Variable", "p_SNOther", "predicted"}


def test_models_table_says_what_each_model_reads_and_costs():
    wide = CliRunner(env={"COLUMNS": "240"})
    result = wide.invoke(app, ["models", "--classes", "4", "--n-bands", "5"])
    assert result.exit_code == 0, result.output
    assert "paper" in result.output and "1,248,916" in result.output
    assert "99 stamps of 32x32" in result.output and "32x48 heatmap" in result.output
    reads = "99 stamps of 32x32 + reference stamps of 32x32 + 99-point light curve"
    assert reads in result.output
    assert "warning" not in result.output.lower()


def one_error_line(result, message):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_model_cli_bad_inputs(tmp_path, train_store, trained_run):
    one_error_line(
        run("train", "--data", train_store, "--out", tmp_path / "r", "--model", "rnn"),
        "unknown model 'rnn'",
    )
    one_error_line(
        run("train", "--data", train_store, "--out", tmp_path / "r", "--preset", "xl"),
        "unknown preset 'xl'",
    )
    one_error_line(
        run("train", "--data", tmp_path / "absent.h5", "--out", tmp_path / "r"), "no such file"
    )
    one_error_line(
        run(
            "predict",
            "--checkpoint",
            tmp_path / "nope",
            "--data",
            train_store,
            "--out",
            tmp_path / "p.csv",
        ),
        "no such checkpoint",
    )
    one_error_line(run("evaluate", "--run", tmp_path, "--data", train_store), "not a training run")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    one_error_line(
        run("train", "--data", train_store, "--out", trained_run, "--preset", "tiny"),
        "output folder exists and is not empty",
    )


def test_demo_end_to_end_small(tmp_path):
    settings = DemoSettings(
        out=str(tmp_path / "demo"), n_objects=60, epochs=1, workers=1, preset="tiny"
    )
    assert settings.model == "convention-multi"  # the flagship
    result = run_demo(settings, progress=False)
    folder, seconds = result.folder, result.seconds
    assert result.epochs_trained == 1 and not result.capped
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["class_names"] == ["AGN", "SNIa", "Variable", "SNOther"]
    assert 0 <= saved["macro_f1"]["mean"] <= 1
    assert set(saved["per_class_f1"]) == set(saved["class_names"])
    assert (folder / "report.html").is_file() and set(seconds) == {"simulate", "train", "evaluate"}
    again = run("demo", "--out", folder)
    assert again.exit_code == 2 and "earlier demo run" in again.output


def test_evaluate_with_other_bands_writes_nothing(tmp_path, trained_run):
    import numpy as np

    from convention.data.store import write_store
    from tests.test_series import make_series

    series = [
        make_series(size=16, object_id=f"o{k}", band=np.array(["lsst::g"] * 6)) for k in range(3)
    ]
    other = write_store(
        tmp_path / "lsst.h5",
        series,
        survey="lsst",
        bands=["lsst::g"],
        class_names=["AGN", "SNIa", "Variable", "SNOther"],
        stamp_shape=(16, 16),
        pixel_scale=0.2,
    )
    result = run("evaluate", "--run", trained_run, "--data", other)
    one_error_line(result, "data has bands ['lsst::g'] the model was not trained on")
    assert not (trained_run / "evaluation").exists()


def test_demo_refuses_data_of_other_settings(tmp_path, tiny_store):
    import shutil

    import pytest

    from convention.errors import ConventionError

    (tmp_path / "demo").mkdir()
    shutil.copy(tiny_store, tmp_path / "demo" / "data.h5")
    with pytest.raises(ConventionError, match="simulated with other settings"):
        run_demo(DemoSettings(out=str(tmp_path / "demo"), n_objects=60, preset="tiny"))
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["data.h5"]


def test_ztf_demo_trains_the_flagship_on_cut_objects(tmp_path):
    settings = DemoSettings.for_survey("ztf")
    assert settings.out == "convention-demo-ztf"  # beside the SDSS-II demo's
    train = settings.train_settings(tmp_path / "data.h5", tmp_path / "run")
    assert train.model == "convention-multi" and train.overrides["stamp_size"] == 63
    assert "photometry" in train.overrides["inputs"]
    assert train.truncate_fraction == 0.5
    assert (
        DemoSettings.for_survey("sdss2")
        .train_settings(tmp_path / "data.h5", tmp_path / "run")
        .truncate_fraction
        == 0.0
    )


def test_rubin_demo_reads_rubins_cutouts_and_keeps_a_users_size(tmp_path):
    settings = DemoSettings.for_survey("rubin")
    assert settings.out == "convention-demo-rubin" and settings.n_objects == 4800
    train = settings.train_settings(tmp_path / "data.h5", tmp_path / "run")
    assert train.overrides["stamp_size"] == 30 and train.truncate_fraction == 0.5
    assert settings.validate().survey == "rubin"
    assert DemoSettings.for_survey("rubin", n_objects=300).n_objects == 300
    assert DemoSettings.for_survey("ztf", n_objects=None).n_objects == DemoSettings.n_objects
