"""Prediction tables: one row per object, a probability per class, the predicted class,
and where the model is an ensemble each probability's spread over its members.

Written as CSV, or as Parquet (Apache Arrow) when the file name ends in ``.parquet``, the
columnar format brokers and data frames read directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convention.files import write_atomic


def write_predictions(
    path: Path,
    ids: Sequence[str],
    proba: np.ndarray,
    classes: Sequence[str],
    true: np.ndarray | None = None,
    spread: np.ndarray | None = None,
) -> None:
    """Write ``object_id, p_<class>..., predicted[, sd_<class>...][, true]`` atomically,
    CSV or Parquet.

    Args:
        path: ``.parquet`` for Parquet, anything else for CSV.
        ids: object ids.
        proba: (N, C) class probabilities.
        classes: the C class names.
        true: (N,) true class indices, to add a ``true`` column.
        spread: (N, C) each probability's standard deviation over the ensemble's members,
            to add ``sd_<class>`` columns.
    """
    path = Path(path)
    proba = np.asarray(proba, dtype=np.float64).reshape(len(ids), len(classes))
    predicted = [classes[int(k)] for k in np.argmax(proba, axis=1)] if len(ids) else []
    columns: dict[str, list] = {"object_id": [str(i) for i in ids]}
    for k, name in enumerate(classes):
        columns[f"p_{name}"] = proba[:, k].tolist()
    columns["predicted"] = predicted
    if spread is not None:
        spread = np.asarray(spread, dtype=np.float64).reshape(len(ids), len(classes))
        for k, name in enumerate(classes):
            columns[f"sd_{name}"] = spread[:, k].tolist()
    if true is not None:
        columns["true"] = [classes[int(t)] for t in true]
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(columns)
        write_atomic(path, lambda tmp: pq.write_table(table, tmp))
        return
    lines = [",".join(columns)]
    for row in zip(*columns.values(), strict=True):
        lines.append(",".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in row))
    write_atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
