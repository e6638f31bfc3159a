"""The kill test of benchmarks/kill_test.py, one SIGKILL per command: every killed
output is absent or complete, the next run succeeds and leaves no temporary file."""

import importlib.util
import random
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_test.py"


def _harness():
    spec = importlib.util.spec_from_file_location("kill_test", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_test"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    harness = _harness()
    return harness, harness.prepare(tmp_path_factory.mktemp("kill"))


@pytest.mark.parametrize("name", ["simulate", "ingest", "train", "predict", "export"])
def test_a_killed_command_leaves_nothing_half_written(cases, name):
    harness, all_cases = cases
    (case,) = [c for c in all_cases if c.name == name]
    # Killed within its first 2.5 s: every command here runs 3-8 s on two cores.
    assert harness.kill_once(case, 2.5, random.Random(name)) == []
