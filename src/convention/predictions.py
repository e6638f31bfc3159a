"""Prediction tables: one row per object, a probability per class, the predicted class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convention.files import write_atomic


def write_predictions_csv(
    path: Path,
    ids: Sequence[str],
    proba: np.ndarray,
    classes: Sequence[str],
    true: np.ndarray | None = None,
) -> None:
    """Write ``object_id, p_<class>..., predicted[, true]`` atomically.

    Args:
        path: CSV file.
        ids: object ids.
        proba: (N, C) class probabilities.
        classes: the C class names.
        true: (N,) true class indices, to add a ``true`` column.
    """
    header = ["object_id", *(f"p_{c}" for c in classes), "predicted"]
    if true is not None:
        header.append("true")
    lines = [",".join(header)]
    for k, (oid, p) in enumerate(zip(ids, proba, strict=True)):
        row = [str(oid), *(f"{v:.6f}" for v in p), classes[int(np.argmax(p))]]
        if true is not None:
            row.append(classes[int(true[k])])
        lines.append(",".join(row))
    write_atomic(Path(path), lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
