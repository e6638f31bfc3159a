"""The training settings of a network row under a suite's budget: one definition for the
benchmark worker and for the benchmarks that retrain a row (early classification,
pre-training)."""

from __future__ import annotations

from collections.abc import Mapping

from convention.bench.suites import BenchModel
from convention.training import TrainSettings


def row_settings(
    row: BenchModel, budget: Mapping, data: str, out: str, seed: int, **changes
) -> TrainSettings:
    """One fold of network row ``row`` on ``data``'s split of ``seed``, written to ``out``.

    ``budget`` is a suite's (``Suite.budget()``: epochs, patience, max_minutes, lr,
    lr_schedule, precision); the row's own epochs and patience take precedence, and no
    patience anywhere trains the whole budget. ``changes`` replace any other TrainSettings
    field (``device``, ``label_fraction``, ...).
    """
    epochs = row.epochs or budget["epochs"]
    return TrainSettings(
        data=data,
        out=out,
        model=row.model,
        preset=row.preset,
        folds=1,
        epochs=epochs,
        seed=seed,
        max_minutes=budget["max_minutes"],
        patience=row.patience or budget["patience"] or epochs,
        lr=budget["lr"],
        lr_schedule=budget["lr_schedule"],
        precision=budget["precision"],
        oversample=row.oversample,
        overrides=dict(row.overrides),
        progress=False,
        bands=row.bands,
        **changes,
    )
