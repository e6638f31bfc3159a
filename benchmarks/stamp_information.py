"""How much do the stamps tell beyond the light curve? Boosted trees on three feature sets.

The comparison's light-curve rows read forced photometry at the object's position less each
band's median stamp; what they lose is the static scene: the host galaxy (its light, size
and offset from the transient) or its absence. This script measures what that scene is
worth on a data set, with the same classifier and splits as the bench's boosting row:

- light curve: the bench's light-curve features;
- median stamps: per band, the median stamp's light within 1.5, 3 and 6 pixels of the
  centre, its concentration, light-weighted centroid offset and size, and the band's
  median seeing;
- both.

If "both" is far above "light curve", the stamps hold information an image model could use
and the light-curve models cannot; if not, the light curve carries nearly everything. What
the median-stamp features are worth, kind by kind, is measured by permutation on the
validation split of the first seed (the drop of macro-F1 when a kind is shuffled in every
band at once).

    python benchmarks/stamp_information.py --data twin.h5 \
        --out benchmarks/results/sdss2-twin/stamp_information.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from convention.bands import get_band
from convention.baselines.gbm import feature_matrix, fit_feature_gbm
from convention.classes import class_targets, get_taxonomy
from convention.data.splits import make_splits
from convention.features import SCENE_KINDS as KINDS
from convention.features import feature_names, scene_features
from convention.io import read


def fit(x: np.ndarray, targets: np.ndarray, split: dict, seed: int):
    """The bench's boosted trees on features ``x``, early-stopped on the validation split."""
    return fit_feature_gbm(
        x[split["train"]], targets[split["train"]], x[split["val"]], targets[split["val"]], seed
    )


def scores(model, x: np.ndarray, targets: np.ndarray, split: dict) -> dict:
    """Test accuracy and macro-F1 of a fitted model on features ``x``."""
    predicted = model.predict(x[split["test"]])
    truth = targets[split["test"]]
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro")),
    }


def kind_importance(
    model, x: np.ndarray, targets: np.ndarray, split: dict, seed: int, repeats: int = 5
) -> dict[str, float]:
    """Drop of validation macro-F1 of a model fitted on median-stamp features ``x`` when one
    kind of feature is shuffled across objects (every band at once), mean of ``repeats``
    shuffles."""
    val, truth = x[split["val"]], targets[split["val"]]
    base = f1_score(truth, model.predict(val), average="macro")
    rng = np.random.default_rng(seed)
    drops = {}
    for k, kind in enumerate(KINDS):
        columns = list(range(k, x.shape[1], len(KINDS)))
        scores_ = []
        for _ in range(repeats):
            shuffled = val.copy()
            shuffled[:, columns] = val[rng.permutation(len(val))][:, columns]
            scores_.append(f1_score(truth, model.predict(shuffled), average="macro"))
        drops[kind] = float(base - np.mean(scores_))
    return drops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the store (the twin)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    store = read(args.data)
    classes = get_taxonomy(4).classes
    targets = class_targets(store.labels, classes)
    rows = np.flatnonzero(targets >= 0)
    band_ids = [get_band(b, store.survey).id for b in store.bands]
    start = time.perf_counter()
    stamp = np.full((len(targets), len(band_ids) * len(KINDS)), np.nan)
    for r in rows:
        stamp[r] = scene_features(store[int(r)], band_ids)
    lc = np.full((len(targets), len(feature_names(store.bands))), np.nan)
    lc[rows] = feature_matrix(store, rows, workers=args.workers)
    feature_seconds = time.perf_counter() - start
    sets = {"light curve": lc, "median stamps": stamp, "both": np.hstack([lc, stamp])}
    results: dict = {name: [] for name in sets}
    importance = {}
    for seed in args.seeds:
        split = make_splits(targets, 1, seed)[0]
        for name, x in sets.items():
            model = fit(x, targets, split, seed)
            results[name].append(scores(model, x, targets, split))
            if name == "median stamps" and seed == args.seeds[0]:
                importance = kind_importance(model, x, targets, split, seed)
            print(
                f"seed {seed} {name:>13}: accuracy {results[name][-1]['accuracy']:.3f}, "
                f"macro-F1 {results[name][-1]['macro_f1']:.3f}"
            )
    summary = {
        name: {
            metric: {
                "mean": float(np.mean([s[metric] for s in runs])),
                "std": float(np.std([s[metric] for s in runs])),
            }
            for metric in ("accuracy", "macro_f1")
        }
        for name, runs in results.items()
    }
    for name, stats in summary.items():
        print(
            f"{name:>13}: macro-F1 {stats['macro_f1']['mean']:.3f} ± "
            f"{stats['macro_f1']['std']:.3f} over seeds {args.seeds}"
        )
    print("validation macro-F1 lost when a median-stamp feature is shuffled:")
    for kind, drop in importance.items():
        print(f"  {kind:>14}: {drop:+.3f}")
    if args.out:
        record = {
            "data": str(args.data),
            "seeds": args.seeds,
            "objects": len(rows),
            "feature_seconds": feature_seconds,
            "per_seed": results,
            "summary": summary,
            "median_stamp_importance": importance,
        }
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
