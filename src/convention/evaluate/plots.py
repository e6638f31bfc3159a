"""Figures of an evaluation: confusion matrix, training curves, ROC curves."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve


def confusion_figure(
    mean: np.ndarray, std: np.ndarray | None, class_names: Sequence[str], title: str
) -> Figure:
    """Row-normalised confusion matrix; cells show the mean and, over folds, its spread."""
    fig = Figure(figsize=(5.2, 4.6))
    ax = fig.subplots()
    image = ax.imshow(mean, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            text = f"{mean[i, j]:.2f}" + (f"\n±{std[i, j]:.2f}" if std is not None else "")
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=9,
                color="white" if mean[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(class_names)), class_names, rotation=30)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def training_curves_figure(metrics_files: Sequence[Path]) -> Figure:
    """Training loss and validation loss / macro-F1 per epoch, one line per fold."""
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    for k, path in enumerate(metrics_files):
        rows = list(csv.DictReader(path.open()))
        for key, ax, style in (
            ("train_loss", axes[0], "-"),
            ("val_loss", axes[0], "--"),
            ("val_macro_f1", axes[1], "-"),
        ):
            points = [(int(r["epoch"]), float(r[key])) for r in rows if r.get(key)]
            if points:
                epochs, values = zip(*points, strict=True)
                ax.plot(epochs, values, style, label=f"{key} fold {k}", color=f"C{k}")
    axes[0].set_ylabel("loss")
    axes[1].set_ylabel("validation macro-F1")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def roc_figure(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> Figure:
    """One-vs-rest ROC curve per class."""
    fig = Figure(figsize=(4.8, 4.4))
    ax = fig.subplots()
    for k, name in enumerate(class_names):
        positive = y_true == k
        if 0 < positive.sum() < len(y_true):
            fpr, tpr, _ = roc_curve(positive, proba[:, k])
            ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ":", color="gray")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8)
    ax.set_title("one-vs-rest ROC")
    fig.tight_layout()
    return fig


def reliability_figure(
    y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str], n_bins: int = 10
) -> Figure:
    """Reliability diagram per class (one-vs-rest): the fraction of objects of the class
    against the mean predicted probability in ``n_bins`` equal-width bins, with the
    objects per bin below."""
    from sklearn.calibration import calibration_curve

    fig = Figure(figsize=(4.8, 5.6))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    edges = np.linspace(0, 1, n_bins + 1)
    for k, name in enumerate(class_names):
        positive = y_true == k
        if 0 < positive.sum() < len(y_true):
            observed, predicted = calibration_curve(positive, proba[:, k], n_bins=n_bins)
            (line,) = top.plot(predicted, observed, "o-", ms=3, label=name)
            counts, _ = np.histogram(proba[:, k], bins=edges)
            bottom.stairs(counts, edges, color=line.get_color())
    top.plot([0, 1], [0, 1], ":", color="gray")
    top.set_ylabel("fraction of the class")
    top.set_title("reliability (one-vs-rest)")
    top.legend(fontsize=8)
    bottom.set_yscale("log")
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("objects")
    fig.tight_layout()
    return fig


def coverage_figure(y_true: np.ndarray, proba: np.ndarray) -> Figure:
    """Accuracy against coverage: objects sorted by their top probability, the accuracy on
    the most confident fraction x of them (a broker classifying only those)."""
    coverage, accuracy = accuracy_at_coverage(y_true, proba)
    fig = Figure(figsize=(4.8, 3.6))
    ax = fig.subplots()
    ax.plot(coverage, accuracy)
    ax.axhline(accuracy[-1], ls=":", color="gray")
    ax.set_xlabel("coverage (most confident fraction classified)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_title("accuracy against coverage")
    fig.tight_layout()
    return fig


def accuracy_at_coverage(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) coverages k/N and (N,) accuracies of the k objects of highest top probability
    (ties in the order given)."""
    order = np.argsort(-proba.max(axis=1), kind="stable")
    correct = (proba.argmax(axis=1) == y_true)[order]
    k = np.arange(1, len(correct) + 1)
    return k / len(correct), np.cumsum(correct) / k
