"""The main job: simulate a small SDSS-II-like data set, train the flagship (the
multi-input ConvEntion, CPU preset) on a fixed epoch budget, evaluate it on a held-out
split and write the report. ``survey="ztf"`` does the same for ZTF's alert stream with
ConvEntion on the 63x63 alert cutouts: the model that ``classify-alerts`` runs;
``survey="rubin"`` the same for Rubin's.

The budget is in epochs, so a seed gives the same score on a fast or a loaded machine; the
wall-clock cap is a safety net only, and the result says when it fired.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from convention.errors import ConventionError
from convention.files import check_output_folder
from convention.progress import ProgressLines, to_terminal
from convention.training.settings import TrainSettings

if TYPE_CHECKING:
    from convention.sim.simulate import SimulationSettings


@dataclass(frozen=True)
class DemoSettings:
    """The built-in default: sized to finish within eight minutes on two CPU cores.

    Every one of the ``epochs`` runs (one-cycle learning rate peaking at ``lr``, no early
    stopping); the best epoch on the validation split is kept. ``max_train_minutes`` stops
    a machine far slower than expected, and ``DemoResult.capped`` then says so.
    """

    out: str = "convention-demo"
    n_objects: int = 2400
    epochs: int = 20
    max_train_minutes: float = 20.0
    seed: int = 0
    workers: int = 2
    model: str = "convention-multi"
    preset: str = "cpu"
    lr: float = 1e-3
    survey: str = "sdss2"
    overrides: dict = field(default_factory=dict)
    truncate_fraction: float = 0.0

    @classmethod
    def for_survey(cls, survey: str, **settings) -> DemoSettings:
        """The demo of a survey: ``sdss2``, ``ztf`` or ``rubin``, all the flagship (frames,
        reference stamps, forced light curve, features). ZTF's reads the alert cutouts' 63x63 pixels
        whole, the packets' own photometry (detections and limits) and their catalogue
        fields (nearest Pan-STARRS1 source's star/galaxy score and distance, nearest
        reference-image source's distance) and Galactic latitude too, and half its
        training objects are cut to their first few alerts (drawn once per object,
        ``TrainSettings.truncate_fraction``) so that it learns to classify an object from
        its first alerts as ``classify-alerts`` serves them. Rubin's reads its 30x30
        cutouts (each in its visit's orientation), its packets' detections and a year of
        forced photometry, and its Galactic latitude (Rubin packets carry no catalogue
        field this reads), with the same cuts, on 4,800 objects (``DEMO_OBJECTS``).

        Raises:
            ConventionError: an unknown survey.
        """
        if survey not in DEMO_MODELS:
            raise ConventionError(f"no demo for survey {survey!r}; known: {', '.join(DEMO_MODELS)}")
        settings.setdefault("out", DEMO_FOLDERS[survey])
        if settings.get("n_objects") is None:
            settings["n_objects"] = DEMO_OBJECTS.get(survey, cls.n_objects)
        return replace(cls(**settings), survey=survey, **DEMO_MODELS[survey])

    def validate(self) -> SimulationSettings:
        """Check every setting before anything is written; the data's settings.

        Raises:
            ConventionError: naming the setting and its value.
        """
        from convention.sim.simulate import SimulationSettings

        sim = SimulationSettings(survey=self.survey, n_objects=self.n_objects, seed=self.seed)
        out = Path(self.out)
        self.train_settings(out / "data.h5", out / "run").validate()
        return sim

    def train_settings(self, data: Path, run: Path, progress: bool = True) -> TrainSettings:
        """The training run of the demo."""
        return TrainSettings(
            data=str(data),
            out=str(run),
            model=self.model,
            preset=self.preset,
            epochs=self.epochs,
            patience=self.epochs,
            lr=self.lr,
            lr_schedule="onecycle",
            max_minutes=self.max_train_minutes,
            overrides=dict(self.overrides),
            truncate_fraction=self.truncate_fraction,
            seed=self.seed,
            progress=progress,
        )


DEMO_FOLDERS = {
    "sdss2": "convention-demo",
    "ztf": "convention-demo-ztf",
    "rubin": "convention-demo-rubin",
}
# Rubin's objects have a few frames of 30x30 pixels (epochs of 4 s where ZTF's take 16):
# twice the objects fit the same minutes (at f06cbb2: macro-F1 0.845, against 0.767 with
# 2,400).
DEMO_OBJECTS = {"rubin": 4800}
DEMO_MODELS: dict[str, dict] = {
    "sdss2": {"model": "convention-multi", "overrides": {}},
    "ztf": {
        "model": "convention-multi",
        "overrides": {
            "stamp_size": 63,
            "inputs": ["stamps", "scene", "lightcurve", "features", "photometry", "metadata"],
        },
        "truncate_fraction": 0.5,
    },
    "rubin": {
        "model": "convention-multi",
        "overrides": {
            "stamp_size": 30,
            "inputs": ["stamps", "scene", "lightcurve", "features", "photometry", "metadata"],
        },
        "truncate_fraction": 0.5,
    },
}


@dataclass(frozen=True)
class DemoResult:
    """What the demo made.

    Attributes:
        metrics: the test split's metrics (as ``metrics.json``).
        folder: the report folder.
        seconds: wall seconds per stage (simulate, train, evaluate).
        epochs_trained: epochs the training ran.
        capped: the wall-clock cap stopped training before its epochs ran (the score then
            depends on the machine's speed).
    """

    metrics: dict
    folder: Path
    seconds: dict = field(default_factory=dict)
    epochs_trained: int = 0
    capped: bool = False


def _lines(stage: str, progress: bool) -> Callable[[int, int], None] | None:
    """A stage's progress as plain lines, where output goes to a file or a pipe (a bar
    of the training's own otherwise)."""
    if not progress or to_terminal():
        return None
    return ProgressLines(stage).update


def run_demo(settings: DemoSettings, progress: bool = True) -> DemoResult:
    """Simulate, train, evaluate.

    The report folder holds metrics.json, report.html, report.md, the figures, the data
    (``data.h5``) and the run (``run/``).
    """
    from convention.evaluate import evaluate_run
    from convention.io import read
    from convention.sim.simulate import simulate
    from convention.training import RunFolder, train

    out = check_output_folder(settings.out)
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
        simulate(sim, data, workers=settings.workers, on_progress=_lines("simulating", progress))
    seconds["simulate"] = time.perf_counter() - start
    start = time.perf_counter()
    run = train(settings.train_settings(data, out / "run", progress))
    seconds["train"] = time.perf_counter() - start
    epochs_trained = int(RunFolder(run).training(0)["epochs"])
    start = time.perf_counter()
    try:
        metrics = evaluate_run(run, data, out, on_progress=_lines("evaluating", progress))
    except BaseException:
        shutil.rmtree(run, ignore_errors=True)
        raise
    seconds["evaluate"] = time.perf_counter() - start
    return DemoResult(
        metrics, out, seconds, epochs_trained, capped=epochs_trained < settings.epochs
    )
