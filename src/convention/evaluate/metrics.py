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

SUMMARY_METRICS = ("accuracy", "macro_f1", "roc_auc_macro", "ece", "brier")


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, one-vs-rest ROC AUC, the
    confusion matrix (counts and normalised by true class), and the probabilities'
    calibration: expected calibration error and Brier score (:func:`calibration_errors`).

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
        **calibration_errors(y_true, proba),
        "confusion_matrix": counts.tolist(),
        "confusion_matrix_normalised": normalised.tolist(),
    }


def calibration_errors(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """Expected calibration error (``ece``: top label, ``n_bins`` equal-width confidence
    bins, torchmetrics' ``multiclass_calibration_error``) and the multi-class Brier score
    (``brier``: mean over objects of the squared distance between the probabilities and
    the one-hot truth, 0 to 2).

    Args:
        y_true: (N,) class indices.
        proba: (N, C) class probabilities.
    """
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(y_true) == 0:
        return {"ece": float("nan"), "brier": float("nan")}
    n_classes = proba.shape[1]
    ece = multiclass_calibration_error(
        torch.from_numpy(proba).float(),
        torch.from_numpy(y_true),
        num_classes=n_classes,
        n_bins=n_bins,
        norm="l1",
    )
    onehot = np.eye(n_classes)[y_true]
    return {"ece": float(ece), "brier": float(((proba - onehot) ** 2).sum(axis=1).mean())}


def aggregate(results: Sequence[dict]) -> dict:
    """Mean and standard deviation over folds (or seeds) of classification_metrics outputs.

    Returns:
        ``class_names``, ``n_folds``, ``n_objects`` (all folds), ``accuracy``,
        ``macro_f1``, ``roc_auc_macro``, ``ece``, ``brier`` and ``per_class_f1[c]`` each as
        ``{"mean", "std"}``,
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
        **{m: stats([r[m] for r in results]) for m in SUMMARY_METRICS},
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
