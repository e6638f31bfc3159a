"""Choosing the device a model trains and predicts on."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from convention.classifier import Classifier
from convention.cli import app
from convention.device import resolve_device
from convention.errors import ConventionError
from tests.helpers import probabilities


def test_auto_takes_the_gpu_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConventionError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ConventionError, match="unknown device 'gpu0'; known: auto, cpu, cuda"):
        resolve_device("gpu0")


def test_a_classifier_predicts_the_same_wherever_it_is_loaded(trained_run, train_store):
    from convention.io import read

    store = read(train_store)
    series = [store[k] for k in range(4)]
    on_cpu = Classifier.load(trained_run)
    auto = Classifier.load(trained_run, "auto")
    assert auto.engine.device == ("cuda" if torch.cuda.is_available() else "cpu")
    expected = probabilities(on_cpu, series)
    assert probabilities(auto, series) == pytest.approx(expected, abs=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_cuda_without_a_gpu_is_one_line(command, trained_run, train_store, tmp_path):
    args = {
        "train": ["--data", str(train_store), "--out", str(tmp_path / "run")],
        "predict": [
            "--checkpoint",
            str(trained_run),
            "--data",
            str(train_store),
            "--out",
            str(tmp_path / "p.csv"),
        ],
        "evaluate": [
            "--run",
            str(trained_run),
            "--data",
            str(train_store),
            "--out",
            str(tmp_path / "report"),
        ],
    }[command]
    result = CliRunner().invoke(app, [command, *args, "--device", "cuda"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "sees no CUDA GPU" in result.output
    assert not any(tmp_path.iterdir())
