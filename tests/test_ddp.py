"""Distributed data parallel training: two CPU processes (gloo) against one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from convention.training.fit import global_rank
from convention.training.settings import TrainSettings
from tests.helpers import one_error_line, run

CONVENTION = str(Path(sys.executable).with_name("convention"))


def _train(store: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        CONVENTION,
        "train",
        "--data",
        str(store),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--stamp-size",
        "16",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True)


def test_two_processes_train_the_same_split_and_write_the_run_once(train_store, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert _train(train_store, one).returncode == 0
    result = _train(train_store, two, "--devices", "2", "--strategy", "ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained run in") == 1  # process 0 alone reports
    config = [json.loads((run / "config.json").read_text()) for run in (one, two)]
    assert config[0]["splits"] == config[1]["splits"]
    assert sorted(p.name for p in two.iterdir()) == ["config.json", "fold_0"]
    assert not two.with_name("two.partial").exists()
    settings = [json.loads((run / "fold_0" / "settings.json").read_text()) for run in (one, two)]
    assert settings[0]["encoders"] == settings[1]["encoders"]  # the same normalisation
    scores = [
        json.loads((run / "fold_0" / "training.json").read_text())["best_val_macro_f1"]
        for run in (one, two)
    ]
    # Twice the batch per step and another sampler draw: equal only within noise (tiny data).
    assert abs(scores[0] - scores[1]) < 0.35


def test_global_rank(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    single = TrainSettings(data="d", out="o")
    distributed = TrainSettings(data="d", out="o", devices=2, num_nodes=2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert global_rank(single) == 0
    assert global_rank(distributed) == 1
    monkeypatch.setenv("NODE_RANK", "1")
    assert global_rank(distributed) == 3


def test_bad_distributed_settings_are_one_line(train_store, tmp_path):
    for extra, message in [
        (["--devices", "0"], "devices must be at least 1"),
        (["--num-nodes", "0"], "num_nodes must be at least 1"),
        (["--strategy", "fsdp"], "unknown strategy"),
    ]:
        out = tmp_path / "x"
        result = run("train", "--data", train_store, "--out", out, "--preset", "tiny", *extra)
        one_error_line(result, message)
        assert not out.exists()
