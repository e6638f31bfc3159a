"""Classification metrics (scikit-learn) and their mean and spread over folds or seeds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, one-vs-rest ROC AUC and the
    confusion matrix (counts and normalised by true class).

    Args:
        y_true: (N,) class indices.
        proba: (N, C) class probabilities.
        class_names: the C class names in order.
    """
    labels = np.arange(len(class_names))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    auc = {}
    for k, name in enumerate(class_names):
        positive = y_true == k
        auc[name] = (
            float(roc_auc_score(positive, proba[:, k]))
            if 0 < positive.sum() < len(y_true)
            else float("nan")
        )
    return {
        "n_objects": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "class_names": list(class_names),
        "per_class": {
            name: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
                "roc_auc": auc[name],
            }
            for k, name in enumerate(class_names)
        },
        "roc_auc_macro": float(np.nanmean(list(auc.values()))),
        "confusion_matrix": counts.tolist(),
        "confusion_matrix_normalised": normalised.tolist(),
    }


def aggregate(results: Sequence[dict]) -> dict:
    """Mean and standard deviation over folds (or seeds) of classification_metrics outputs.

    Returns:
        ``class_names``, ``n_folds``, ``n_objects`` (all folds), ``accuracy``,
        ``macro_f1``, ``roc_auc_macro`` and ``per_class_f1[c]`` each as ``{"mean", "std"}``,
        ``per_class[c][m]`` likewise for precision, recall, F1 and ROC AUC, the normalised
        confusion matrix's mean and spread, and the summed counts.
    """
    names = results[0]["class_names"]

    def stats(values: list[float]) -> dict:
        values = np.asarray(values, dtype=float)
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    matrices = np.array([r["confusion_matrix_normalised"] for r in results])
    return {
        "class_names": names,
        "n_folds": len(results),
        "n_objects": int(sum(r["n_objects"] for r in results)),
        **{m: stats([r[m] for r in results]) for m in ("accuracy", "macro_f1", "roc_auc_macro")},
        "per_class_f1": {n: stats([r["per_class"][n]["f1"] for r in results]) for n in names},
        "per_class": {
            n: {
                m: stats([r["per_class"][n][m] for r in results])
                for m in ("precision", "recall", "f1", "roc_auc")
            }
            for n in names
        },
        "confusion_matrix_normalised": matrices.mean(axis=0).tolist(),
        "confusion_matrix_normalised_std": matrices.std(axis=0).tolist(),
        "confusion_matrix": np.sum([r["confusion_matrix"] for r in results], axis=0).tolist(),
    }
