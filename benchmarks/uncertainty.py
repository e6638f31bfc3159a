"""Does the spread say when the model is wrong? On each run's test split: Monte Carlo
dropout (``predict --dropout-samples N``) against the model alone, scored by how well
each uncertainty ranks the errors (area under the ROC curve of "wrong" against the
score) and by the accuracy of the most certain half and 80% of the objects.

    python benchmarks/uncertainty.py --data twin.h5 --dropout-samples 10 \\
        --runs bench/runs/multi-input-convention-flagship/seed_{0,1,2} \\
        --out benchmarks/results/uncertainty

Scores: ``1 - max p`` of the model alone; ``1 - max p`` of the dropout samples' mean; the
samples' standard deviation of the predicted class's probability (the ``sd_<class>``
column of ``predict``). Fold 0 of each run. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from convention.classifier import BatchPrediction, Classifier
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.training import RunFolder

COVERAGES = (0.5, 0.8)


def _accuracy_of_most_certain(wrong: np.ndarray, uncertainty: np.ndarray, share: float) -> float:
    kept = np.argsort(uncertainty, kind="stable")[: max(1, round(share * len(wrong)))]
    return float(1 - wrong[kept].mean())


def _scores(targets: np.ndarray, proba: np.ndarray, uncertainty: np.ndarray) -> dict:
    wrong = proba.argmax(1) != targets
    return {
        "error_auroc": float(roc_auc_score(wrong, uncertainty)),
        **{
            f"accuracy_at_{share:g}": _accuracy_of_most_certain(wrong, uncertainty, share)
            for share in COVERAGES
        },
    }


def _run(run: Path, data, samples: int) -> dict:
    folder = RunFolder(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an older run is uncalibrated, and says so
        alone = folder.score(data, 0)
        dropout = Classifier.load(folder.fold(0), dropout_samples=samples)
    joined = BatchPrediction.join(dropout.classify(data, alone.rows), dropout.classes)
    if joined.ids != alone.object_ids:
        raise SystemExit(f"error: {run}: the dropout samples classified other objects")
    known = alone.targets >= 0  # objects of the model's classes
    targets, alone_proba = alone.targets[known], alone.proba[known]
    mean, spread = joined.proba[known], joined.spread[known]
    predicted = mean.argmax(1)
    alone_metrics = classification_metrics(targets, alone_proba, folder.classes)
    dropout_metrics = classification_metrics(targets, mean, folder.classes)
    return {
        "objects": len(targets),
        **{
            figure: {"alone": alone_metrics[figure], "dropout_mean": dropout_metrics[figure]}
            for figure in ("macro_f1", "accuracy")
        },
        "scores": {
            "1 - max p, model alone": _scores(targets, alone_proba, 1 - alone_proba.max(1)),
            "1 - max p, dropout mean": _scores(targets, mean, 1 - mean.max(1)),
            "sd of the predicted class": _scores(
                targets, mean, spread[np.arange(len(targets)), predicted]
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="+", required=True)
    parser.add_argument("--dropout-samples", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    commit = subprocess.run(  # at the start: the code measured
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    data = read(args.data)
    runs = {}
    for run in args.runs:
        runs[str(run)] = _run(run, data, args.dropout_samples)
        print(run, json.dumps(runs[str(run)]), flush=True)
    summary = {
        "data": str(args.data),
        "dropout_samples": args.dropout_samples,
        "commit": commit,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    names = list(next(iter(runs.values()))["scores"])
    lines = [
        "# Uncertainty against errors, test splits",
        "",
        f"{args.dropout_samples} Monte Carlo dropout samples per object, fold 0 of each run "
        f"({len(runs)} runs); commit `{commit}`. Mean over the runs (the spread over them in "
        "brackets).",
        "",
        "| uncertainty | error AUROC | accuracy, most certain 50% | most certain 80% |",
        "|---|---|---|---|",
    ]
    for name in names:
        cells = []
        for figure in ("error_auroc", *(f"accuracy_at_{s:g}" for s in COVERAGES)):
            values = [r["scores"][name][figure] for r in runs.values()]
            spread = f" (± {np.std(values, ddof=1):.3f})" if len(values) > 1 else ""
            cells.append(f"{np.mean(values):.3f}{spread}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    alone = np.mean([r["macro_f1"]["alone"] for r in runs.values()])
    mc = np.mean([r["macro_f1"]["dropout_mean"] for r in runs.values()])
    lines += ["", f"Test macro-F1: model alone {alone:.3f}, dropout mean {mc:.3f}."]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
