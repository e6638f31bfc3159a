"""Evaluate a training run on a data set: each fold's model on its own test objects.

When the data holds the run's test splits (the run was trained on it), every fold is scored
on its held-out test objects (by object id) and the folds are aggregated (mean and
spread). On any other data, the run's ensemble scores all its labelled objects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from convention.classes import class_targets
from convention.classifier import BatchPrediction
from convention.data.collection import SeriesCollection
from convention.errors import ConventionError
from convention.evaluate.metrics import aggregate, classification_metrics
from convention.evaluate.plots import (
    confusion_figure,
    coverage_figure,
    reliability_figure,
    roc_figure,
    training_curves_figure,
)
from convention.evaluate.report import write_report
from convention.io import read
from convention.io.predictions import write_predictions
from convention.plotting import plot_series, save_figure
from convention.training.run_folder import FoldScores, RunFolder


def _score_all(
    run: RunFolder, data: SeriesCollection, device: str, on_batch: Callable[[int], None] | None
) -> FoldScores:
    """The run's fold ensemble on every labelled object of ``data`` of its classes."""
    classifier = run.classifier(device=device)
    classifier.check_data(data)
    classifier.check_classes(data.class_names, data.path)
    targets = class_targets(data.labels, classifier.classes)
    rows = np.flatnonzero(targets >= 0)
    if len(rows) == 0:
        raise ConventionError("no labelled objects of the model's classes", path=data.path)
    batches = []
    for batch in classifier.classify(data, rows):
        batches.append(batch)
        if on_batch is not None:
            on_batch(len(batch.ids) + len(batch.skipped))
    scores = BatchPrediction.join(batches, classifier.classes)
    return FoldScores(scores.ids, rows, targets[rows], scores.proba)


def evaluate_run(
    run: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    n_examples: int = 3,
    device: str = "cpu",
    reader_options: dict | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Score a run on a data set and write metrics.json, predictions.csv and the report.

    Args:
        run: the training run folder.
        data: the data to score (anything ``convention.read`` opens).
        out: report folder (default ``<run>/evaluation``).
        n_examples: correctly and wrongly classified objects drawn as stamp grids.
        device: where the models run (cpu, cuda or auto).
        reader_options: the data's reader options (``convention formats``).
        on_progress: called with the objects scored so far and how many there are.

    Returns:
        The aggregated metrics (also in metrics.json).
    """
    folder = RunFolder(run)
    needs = folder.needs()
    store = read(
        data,
        require_channels=needs.channels,
        offer_channels=needs.own_channels,
        **(reader_options or {}),
    )
    out = Path(out) if out is not None else folder.path / "evaluation"
    if not out.parent.is_dir():
        raise ConventionError(f"folder {str(out.parent)!r} does not exist", path=out)
    classes = folder.classes
    same_data = folder.holds_splits_of(store)
    if same_data:
        total = sum(len(split["test"]) for split in folder.splits)
    else:
        total = int((class_targets(store.labels, classes) >= 0).sum())
    done = 0

    def scored(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, total)

    if same_data:
        scores = [
            folder.score(store, k, device=device, on_batch=scored) for k in range(folder.n_folds)
        ]
    else:
        scores = [_score_all(folder, store, device, scored)]
    fold_metrics = [classification_metrics(s.targets, s.proba, classes) for s in scores]
    all_ids = [oid for s in scores for oid in s.object_ids]
    y_true = np.concatenate([s.targets for s in scores])
    proba = np.concatenate([s.proba for s in scores])
    metrics = {**aggregate(fold_metrics), "folds": fold_metrics}
    metrics["evaluated_on"] = "held-out test folds" if same_data else "all labelled objects"
    out.mkdir(exist_ok=True)
    for stale in out.glob("example_*.png"):  # an earlier report's examples
        stale.unlink()
    write_predictions(out / "predictions.csv", all_ids, proba, classes, y_true)
    position = {oid: k for k, oid in enumerate(store.object_ids)}

    figures = {}
    std = np.array(metrics["confusion_matrix_normalised_std"]) if len(fold_metrics) > 1 else None
    save_figure(
        confusion_figure(
            np.array(metrics["confusion_matrix_normalised"]),
            std,
            classes,
            f"macro-F1 {metrics['macro_f1']['mean']:.3f}",
        ),
        out / "confusion_matrix.png",
    )
    figures["Confusion matrix (normalised by true class)"] = "confusion_matrix.png"
    curves = folder.metrics_files()
    if curves:
        save_figure(training_curves_figure(curves), out / "training_curves.png")
        figures["Training curves"] = "training_curves.png"
    save_figure(roc_figure(y_true, proba, classes), out / "roc.png")
    figures["ROC curves"] = "roc.png"
    save_figure(reliability_figure(y_true, proba, classes), out / "reliability.png")
    figures["Calibration: reliability per class"] = "reliability.png"
    save_figure(coverage_figure(y_true, proba), out / "coverage.png")
    figures["Accuracy against coverage (the most confident first)"] = "coverage.png"
    classifiers = (
        [folder.classifier(k, device) for k in range(folder.n_folds)]
        if same_data
        else [folder.classifier(device=device)]
    )
    fold_of = np.concatenate([np.full(len(s.object_ids), k) for k, s in enumerate(scores)])
    figures.update(
        _examples(
            store, position, all_ids, y_true, proba, classes, out, n_examples,
            [classifiers[k] for k in fold_of],
        )
    )  # fmt: skip
    context = {
        "run": str(run),
        "data": str(data),
        "model": folder.settings.model,
        "preset": folder.settings.preset,
        "evaluated on": metrics["evaluated_on"],
    }
    write_report(out, metrics, figures, "ConvEntion evaluation", context)
    return metrics


def _examples(
    store, position, ids, y_true, proba, classes, out: Path, n: int, classifiers
) -> dict[str, str]:
    """Stamp grids, light curves and probabilities over time (from the model that was
    tested on the object: ``classifiers[k]`` for object k) of correct and wrong ones."""
    figures = {}
    predicted = proba.argmax(axis=1)
    for kind, chosen in (("correct", predicted == y_true), ("wrong", predicted != y_true)):
        for k in np.flatnonzero(chosen)[:n]:
            series = store[position[ids[k]]]
            name = f"example_{kind}_{series.object_id}.png"
            history = classifiers[k].over_time(series)
            save_figure(plot_series(series, max_epochs=10, history=history), out / name)
            figures[
                f"{kind.capitalize()}: {series.object_id}, true {classes[int(y_true[k])]}, "
                f"predicted {classes[int(predicted[k])]} "
                f"(p = {proba[k, predicted[k]]:.2f})"
            ] = name
    return figures
