"""Stratified, seeded train/validation/test splits of a labelled data set."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

LABEL_SUBSET_STREAM = 13  # the random stream of label_subset, apart from a seed's others


def make_splits(
    targets: np.ndarray,
    folds: int,
    seed: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> list[dict[str, np.ndarray]]:
    """Stratified, seeded splits over the labelled objects (targets >= 0).

    ``folds`` >= 2: k-fold, each fold's test part once; the validation part is drawn from the
    rest (``val_fraction`` of all objects). ``folds`` <= 1: one split train/val/test of
    (1 - val - test)/val/test.

    Returns:
        One dict per fold of sorted positions: ``train``, ``val``, ``test``.
    """
    labelled = np.flatnonzero(targets >= 0)
    y = targets[labelled]
    if folds >= 2:
        kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        parts = [(labelled[a], labelled[b]) for a, b in kfold.split(labelled, y)]
    else:
        rest, test = train_test_split(
            labelled, test_size=test_fraction, stratify=y, random_state=seed
        )
        parts = [(rest, test)]
    splits = []
    for rest, test in parts:
        val_share = val_fraction * len(labelled) / len(rest)
        train, val = train_test_split(
            rest, test_size=val_share, stratify=targets[rest], random_state=seed
        )
        splits.append({"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)})
    return splits


def label_subset(train: np.ndarray, targets: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``fraction`` of the training positions ``train`` (at least one per
    class), as if only those were labelled. Nested: a smaller fraction's objects are
    among a larger one's (the same seeded order per class, cut shorter)."""
    if fraction >= 1:
        return train
    rng = np.random.default_rng([seed, LABEL_SUBSET_STREAM])
    kept = []
    for k in np.unique(targets[train]):
        members = train[targets[train] == k]
        order = rng.permutation(len(members))
        kept.append(members[order[: max(1, round(fraction * len(members)))]])
    return np.sort(np.concatenate(kept))
