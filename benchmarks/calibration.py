"""Calibration on held-out test splits: expected calibration error, Brier score and
macro-F1 of trained runs before and after temperature scaling (fitted on each fold's
validation split with ``convention calibrate``, on a copy of each run).

    python benchmarks/calibration.py --data twin.h5 \\
        --runs bench/runs/multi-input-convention-flagship/seed_{0,1,2} \\
        --out benchmarks/results/calibration/flagship.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.training import RunFolder
from convention.training.calibration import calibrate_run


def _test_metrics(run: Path, data) -> dict:
    folder = RunFolder(run)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(folder.n_folds):
            scores = folder.score(data, k)
            metrics = classification_metrics(scores.targets, scores.proba, folder.classes)
            rows.append({m: metrics[m] for m in ("macro_f1", "accuracy", "ece", "brier")})
    return {m: float(np.mean([r[m] for r in rows])) for m in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, help="JSON file to write")
    args = parser.parse_args()
    data = read(args.data)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs:
            copy = Path(tmp) / run.name
            shutil.copytree(run, copy)
            before = _test_metrics(copy, data)
            temperatures = calibrate_run(copy, data)
            after = _test_metrics(copy, data)
            row = {"run": str(run), "temperatures": temperatures, "before": before, "after": after}
            print(json.dumps(row))
            results.append(row)
    summary = {
        when: {m: float(np.mean([r[when][m] for r in results])) for m in results[0][when]}
        for when in ("before", "after")
    }
    print("mean over runs:", json.dumps(summary))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"data": str(args.data), "runs": results, "mean": summary}, indent=1)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
