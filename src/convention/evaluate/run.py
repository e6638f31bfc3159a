"""Evaluate a training run on a store: each fold's model on its own test objects.

When the store is the one the run was trained on, every fold is scored on its held-out test
objects (by object id) and the folds are aggregated (mean and spread). On any other store,
the run's ensemble scores all its labelled objects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convention.errors import ConventionError
from convention.evaluate.metrics import aggregate_folds, classification_metrics
from convention.evaluate.plots import confusion_figure, roc_figure, training_curves_figure
from convention.evaluate.report import write_report
from convention.io import read
from convention.plotting import save_figure
from convention.predictions import write_predictions
from convention.training.checkpoint import Classifier
from convention.training.data import class_targets
from convention.training.train import CONFIG_FILE


def _score(classifier: Classifier, store, rows: np.ndarray, targets: np.ndarray):
    ids, probas = [], []
    for batch_ids, proba in classifier.predict_proba(store[int(i)] for i in rows):
        ids += batch_ids
        probas.append(proba)
    return ids, np.concatenate(probas), targets[rows]


def evaluate_run(
    run: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    n_examples: int = 3,
    device: str = "cpu",
) -> dict:
    """Score a run on a store and write metrics.json, predictions.csv and the report.

    Args:
        run: the training run folder.
        data: the store to score.
        out: report folder (default ``<run>/evaluation``).
        n_examples: correctly and wrongly classified objects drawn as stamp grids.
        device: where the models run (cpu, cuda or auto).

    Returns:
        The aggregated metrics (also in metrics.json).
    """
    run = Path(run)
    if not (run / CONFIG_FILE).is_file():
        raise ConventionError(f"not a training run (no {CONFIG_FILE})", path=run)
    config = json.loads((run / CONFIG_FILE).read_text())
    store = read(data)
    out = Path(out) if out is not None else run / "evaluation"
    if not out.parent.is_dir():
        raise ConventionError(f"folder {str(out.parent)!r} does not exist", path=out)
    classes = config["classes"]
    targets = class_targets(store.labels, classes)
    position = {oid: k for k, oid in enumerate(store.object_ids)}
    folds = sorted(run.glob("fold_*"), key=lambda p: int(p.name.split("_")[1]))
    same_data = all(oid in position for s in config["splits"] for oid in s["test"])
    fold_metrics, all_ids, all_true, all_proba = [], [], [], []
    plans = (
        [
            (Classifier.load(f, device), np.array([position[o] for o in s["test"]]))
            for f, s in zip(folds, config["splits"], strict=True)
        ]
        if same_data
        else [(Classifier.load(run, device), np.flatnonzero(targets >= 0))]
    )
    for classifier, rows in plans:
        classifier.check_bands(store.bands, store.path)
        classifier.check_classes(store.class_names, store.path)
        if len(rows) == 0:
            raise ConventionError("no labelled objects of the model's classes", path=store.path)
        ids, proba, y = _score(classifier, store, rows, targets)
        fold_metrics.append(classification_metrics(y, proba, classes))
        all_ids += ids
        all_true.append(y)
        all_proba.append(proba)
    y_true, proba = np.concatenate(all_true), np.concatenate(all_proba)
    metrics = aggregate_folds(fold_metrics)
    metrics["evaluated_on"] = "held-out test folds" if same_data else "all labelled objects"
    out.mkdir(exist_ok=True)
    write_predictions(out / "predictions.csv", all_ids, proba, classes, y_true)

    figures = {}
    std = np.array(metrics["confusion_matrix_normalised_std"]) if len(fold_metrics) > 1 else None
    save_figure(
        confusion_figure(
            np.array(metrics["confusion_matrix_normalised"]),
            std,
            classes,
            f"macro-F1 {metrics['macro_f1']:.3f}",
        ),
        out / "confusion_matrix.png",
    )
    figures["Confusion matrix (normalised by true class)"] = "confusion_matrix.png"
    curves = [f / "metrics.csv" for f in folds if (f / "metrics.csv").is_file()]
    if curves:
        save_figure(training_curves_figure(curves), out / "training_curves.png")
        figures["Training curves"] = "training_curves.png"
    save_figure(roc_figure(y_true, proba, classes), out / "roc.png")
    figures["ROC curves"] = "roc.png"
    figures.update(_examples(store, position, all_ids, y_true, proba, classes, out, n_examples))
    context = {
        "run": str(run),
        "data": str(data),
        "model": config["settings"]["model"],
        "preset": config["settings"]["preset"],
        "evaluated on": metrics["evaluated_on"],
    }
    write_report(out, metrics, figures, "ConvEntion evaluation", context)
    return metrics


def _examples(store, position, ids, y_true, proba, classes, out: Path, n: int) -> dict[str, str]:
    figures = {}
    predicted = proba.argmax(axis=1)
    for kind, chosen in (("correct", predicted == y_true), ("wrong", predicted != y_true)):
        for k in np.flatnonzero(chosen)[:n]:
            series = store[position[ids[k]]]
            name = f"example_{kind}_{series.object_id}.png"
            save_figure(series.plot(max_epochs=10), out / name)
            figures[
                f"{kind.capitalize()}: {series.object_id}, true {classes[int(y_true[k])]}, "
                f"predicted {classes[int(predicted[k])]} "
                f"(p = {proba[k, predicted[k]]:.2f})"
            ] = name
    return figures
