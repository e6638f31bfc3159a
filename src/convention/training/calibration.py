"""``convention calibrate``: fit (or refit) the temperature of every fold of a run trained
before calibration (``classifier.calibration``), on its validation split."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from convention.classifier.calibration import fit_temperature
from convention.classifier.folder import SETTINGS_FILE
from convention.data.collection import SeriesCollection
from convention.files import write_atomic
from convention.training.run_folder import RunFolder


def calibrate_run(run: str | Path, data: SeriesCollection) -> list[float]:
    """Fit (or refit) every fold's temperature on its validation split of ``data`` (the
    data the run was trained on) and save it in the fold's ``settings.json``.

    Returns:
        The folds' temperatures.

    Raises:
        ConventionError: not a run, or data without the run's validation objects.
    """
    folder = RunFolder(run)
    temperatures = []
    for k in range(folder.n_folds):
        path = folder.fold(k) / SETTINGS_FILE
        saved = json.loads(path.read_text())
        earlier = saved.get("temperature") or 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "uncalibrated": that is why it runs
            scores = folder.score(data, k, part="val")
        log_p = np.log(np.clip(scores.proba, 1e-12, None))
        # The fold's current probabilities are softmax(z / earlier): scale on top of it.
        temperature = earlier * fit_temperature(log_p, scores.targets)
        saved["temperature"] = temperature
        text = json.dumps(saved, indent=1) + "\n"
        write_atomic(path, lambda tmp, text=text: tmp.write_text(text))
        temperatures.append(temperature)
    return temperatures
