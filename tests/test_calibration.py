"""Probability calibration: temperature scaling fitted on the validation split, saved with
the checkpoint, applied by every engine; calibration metrics in evaluate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from convention.classifier import Classifier, load_models
from convention.classifier.calibration import TemperatureScaled, fit_temperature
from convention.cli import app
from convention.evaluate.metrics import calibration_errors

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_fit_temperature_undoes_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 4)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    targets = np.array([rng.choice(4, p=row) for row in p])
    assert fit_temperature(3 * logits, targets) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(logits, targets) == pytest.approx(1.0, rel=0.1)
    assert fit_temperature(logits[:0], targets[:0]) == 1.0


def test_calibration_errors():
    y = np.array([0, 1, 2, 3])
    perfect = np.eye(4)[y]
    assert calibration_errors(y, perfect) == {"ece": 0.0, "brier": 0.0}
    uniform = np.full((4, 4), 0.25)
    errors = calibration_errors(y, uniform)
    assert errors["brier"] == pytest.approx(0.75)
    assert errors["ece"] == pytest.approx(0.0)  # 25% confident, 25% right (ties: class 0)
    sure_and_wrong = np.eye(4)[(y + 1) % 4]
    assert calibration_errors(y, sure_and_wrong)["ece"] == pytest.approx(1.0)


def test_training_saves_a_temperature_the_engines_apply(trained_run, train_store, tmp_path):
    settings = json.loads((trained_run / "fold_0" / "settings.json").read_text())
    training = json.loads((trained_run / "fold_0" / "training.json").read_text())
    assert settings["temperature"] == training["temperature"] > 0
    _, models = load_models(trained_run / "fold_0")
    assert isinstance(models[0], TemperatureScaled)
    assert float(models[0].temperature) == pytest.approx(settings["temperature"])
    # The exported graph carries it: onnxruntime gives PyTorch's calibrated probabilities.
    onnx = tmp_path / "m.onnx"
    assert run("export", "onnx", trained_run, "--out", onnx).exit_code == 0
    for path in (trained_run, onnx):
        out = tmp_path / f"{path.name}.csv"
        assert (
            run("predict", "--checkpoint", path, "--data", train_store, "--out", out).exit_code == 0
        )
    torch_p = np.loadtxt(tmp_path / "run.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3, 4))
    onnx_p = np.loadtxt(tmp_path / "m.onnx.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3, 4))
    assert np.allclose(torch_p, onnx_p, atol=1e-4)


def test_an_uncalibrated_checkpoint_predicts_with_a_note_and_calibrate_fits_it(
    trained_run, train_store, tmp_path
):
    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    for k in (0, 1):
        path = old / f"fold_{k}" / "settings.json"
        settings = json.loads(path.read_text())
        settings.pop("temperature")
        path.write_text(json.dumps(settings))
    with pytest.warns(UserWarning, match="uncalibrated probabilities"):
        Classifier.load(old)
    result = run("predict", "--checkpoint", old, "--data", train_store, "--out", tmp_path / "p.csv")
    assert result.exit_code == 0
    assert result.output.count("warning:") == 1 and "uncalibrated" in result.output
    result = run("calibrate", "--run", old, "--data", train_store)
    assert result.exit_code == 0, result.output
    fitted = [json.loads((old / f"fold_{k}" / "settings.json").read_text()) for k in (0, 1)]
    trained = [
        json.loads((trained_run / f"fold_{k}" / "settings.json").read_text()) for k in (0, 1)
    ]
    for a, b in zip(fitted, trained, strict=True):
        assert a["temperature"] == pytest.approx(b["temperature"], rel=1e-3)
    Classifier.load(old)  # no warning now
    assert run("calibrate", "--run", tmp_path / "nowhere", "--data", train_store).exit_code == 2


def test_temperature_keeps_the_predicted_class():
    class Fixed(torch.nn.Module):
        input_spec = None

        def forward(self, x):
            return x

    x = torch.randn(50, 4)
    scaled = TemperatureScaled(Fixed(), 2.5)
    assert torch.equal(scaled(x=x).argmax(1), x.argmax(1))
    assert torch.allclose(torch.softmax(scaled(x=x), 1), torch.softmax(x / 2.5, 1))


def test_evaluate_reports_calibration(trained_run, train_store, tmp_path):
    out = tmp_path / "report"
    result = run("evaluate", "--run", trained_run, "--data", train_store, "--out", out)
    assert result.exit_code == 0, result.output
    assert "ECE" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["ece"]["mean"] <= 1 and 0 <= metrics["brier"]["mean"] <= 2
    assert (out / "reliability.png").is_file() and (out / "coverage.png").is_file()
    assert "expected calibration error" in (out / "report.html").read_text()


def test_accuracy_at_coverage():
    from convention.evaluate.plots import accuracy_at_coverage

    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])
    coverage, accuracy = accuracy_at_coverage(y, proba)
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    # Most confident first: 0.9 (right), 0.8 (right), 0.6 (wrong), 0.55 (wrong).
    assert accuracy.tolist() == [1.0, 1.0, 2 / 3, 0.5]
