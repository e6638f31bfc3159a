"""The main job: simulate a small SDSS-II-like data set, train the CPU preset, evaluate it on
a held-out split and write the report."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from convention.errors import ConventionError
from convention.evaluate import evaluate_run
from convention.io import read
from convention.sim.simulate import SimulationSettings, simulate
from convention.training import TrainSettings, train


@dataclass(frozen=True)
class DemoSettings:
    """The built-in default: sized to finish in about ten minutes on two CPU cores."""

    out: str = "convention-demo"
    n_objects: int = 2400
    epochs: int = 30
    max_train_minutes: float = 6.0
    seed: int = 0
    workers: int = 2
    preset: str = "cpu"

    def validate(self) -> SimulationSettings:
        """Check every setting before anything is written; the data's settings.

        Raises:
            ConventionError: naming the setting and its value.
        """
        sim = SimulationSettings(n_objects=self.n_objects, seed=self.seed)
        out = Path(self.out)
        TrainSettings(
            data=str(out / "data.h5"), out=str(out / "run"), epochs=self.epochs
        ).validate()
        return sim


def run_demo(settings: DemoSettings, progress: bool = True) -> tuple[dict, Path, dict]:
    """Simulate, train, evaluate. Returns (metrics, report folder, wall seconds per stage).

    The report folder holds metrics.json, report.html, report.md, the figures, the data
    (``data.h5``) and the run (``run/``).
    """
    out = Path(settings.out)
    if not out.parent.is_dir():
        raise ConventionError(f"folder {str(out.parent)!r} does not exist", path=out)
    if out.exists() and not out.is_dir():
        raise ConventionError("output exists and is not a folder", path=out)
    if (out / "run").exists():
        raise ConventionError(
            "holds an earlier demo run: remove it or pick another --out", path=out
        )
    sim = settings.validate()
    out.mkdir(exist_ok=True)
    seconds = {}
    start = time.perf_counter()
    data = out / "data.h5"
    if data.exists():  # a demo stopped after simulating: reuse its data if it is the same
        if read(data).provenance.get("settings") != asdict(sim):
            raise ConventionError("holds data simulated with other settings", path=data)
    else:
        simulate(sim, data, workers=settings.workers)
    seconds["simulate"] = time.perf_counter() - start
    start = time.perf_counter()
    run = train(
        TrainSettings(
            data=str(data),
            out=str(out / "run"),
            preset=settings.preset,
            epochs=settings.epochs,
            max_minutes=settings.max_train_minutes,
            seed=settings.seed,
            progress=progress,
        )
    )
    seconds["train"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        metrics = evaluate_run(run, data, out)
    except BaseException:
        shutil.rmtree(run, ignore_errors=True)
        raise
    seconds["evaluate"] = time.perf_counter() - start
    return metrics, out, seconds
