"""A trained network and gradient boosting, fused late: on each split, the network's test
probabilities, the boosting row's, and their weighted mean, its weight chosen on the
validation split (never the test split). Whether the network holds information the trees
on the practitioners' features do not: its fusion scores above boosting alone where it
does.

    python benchmarks/late_fusion.py --data DATA.h5 \\
        --network bench-work/runs/flagship-metadata \\
        --boosting "light-curve + metadata features + boosting" \\
        --out benchmarks/results/late-fusion

``--network`` is a ``convention bench`` work folder's row folder (its ``seed_K`` runs);
every seed there is scored. ``--boosting`` names a boosting row of ``--suite``, trained
here on the same split as the bench trains it (its seed's 70/10/20 split, early-stopped on
the validation part) with that row's features. Writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np

from convention.baselines.gbm import feature_matrix, fit_feature_gbm
from convention.bench.suites import BenchModel, get_suite
from convention.classes import class_targets
from convention.data.collection import SeriesCollection
from convention.data.splits import make_splits
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.training import RunFolder

WEIGHTS = np.round(np.linspace(0.0, 1.0, 21), 2)  # the network's weight in the mean


def _boosting_row(suite: str, name: str) -> BenchModel:
    rows = {row.name: row for row in get_suite(suite).models if row.kind == "features"}
    if name not in rows:
        raise SystemExit(f"no boosting row {name!r} in suite {suite}; known: {', '.join(rows)}")
    return rows[name]


def _macro_f1(targets: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    return classification_metrics(targets, proba, classes)["macro_f1"]


def _seed_scores(
    data: SeriesCollection, run: Path, row: BenchModel, seed: int, workers: int
) -> dict:
    """The network, boosting and their fusion on one seed's split."""
    folder = RunFolder(run)
    classes = list(folder.classes)
    targets = class_targets(data.labels, classes)
    split = make_splits(targets, 1, seed)[0]
    if not np.array_equal(np.sort(split["test"]), np.sort(folder.rows(data, 0, "test"))):
        raise SystemExit(f"{run} was not trained on seed {seed}'s split of {data.path}")
    network = {part: folder.score(data, 0, part) for part in ("val", "test")}
    options = row.feature_options
    fit_rows = np.concatenate([split["train"], split["val"]])
    x_fit = feature_matrix(data, fit_rows, workers=workers, **options)
    n_train = len(split["train"])
    model = fit_feature_gbm(
        x_fit[:n_train], targets[split["train"]], x_fit[n_train:], targets[split["val"]], seed
    )
    boosting = {
        part: model.predict_proba(
            feature_matrix(data, network[part].rows, workers=workers, **options)
        )
        for part in ("val", "test")
    }
    val_f1 = [
        _macro_f1(
            network["val"].targets,
            w * network["val"].proba + (1 - w) * boosting["val"],
            classes,
        )
        for w in WEIGHTS
    ]
    best = float(WEIGHTS[int(np.argmax(val_f1))])
    test = network["test"]
    fused = classification_metrics(
        test.targets, best * test.proba + (1 - best) * boosting["test"], classes
    )
    scores = {
        "network": _macro_f1(test.targets, test.proba, classes),
        "boosting": _macro_f1(test.targets, boosting["test"], classes),
        "mean": _macro_f1(test.targets, (test.proba + boosting["test"]) / 2, classes),
        "fused": fused["macro_f1"],
        "weight": best,
        "fused_per_class_f1": {c: fused["per_class"][c]["f1"] for c in classes},
        "val_f1_by_weight": dict(zip(WEIGHTS.tolist(), val_f1, strict=True)),
    }
    shown = {key: value for key, value in scores.items() if key != "val_f1_by_weight"}
    print(f"seed {seed}: {json.dumps(shown)}", flush=True)
    return scores


def _markdown(summary: dict) -> str:
    per_seed = [summary["per_seed"][str(s)] for s in summary["seeds"]]

    def cell(key: str) -> str:
        values = [s[key] for s in per_seed]
        # The spread over splits as the bench's tables give it (population standard deviation).
        return f"{np.mean(values):.3f} ± {np.std(values):.3f} | " + " / ".join(
            f"{v:.3f}" for v in values
        )

    lines = [
        f"# {summary['network_name']} and {summary['boosting']}, fused late",
        "",
        f"Test macro-F1, mean ± standard deviation over seeds "
        f"{', '.join(map(str, summary['seeds']))} (each its own split, both models trained "
        f"on it). Command: `{summary['command']}` at {summary['commit']}.",
        "",
        "| | macro-F1 | per split |",
        "|---|---|---|",
        f"| the network | {cell('network')} |",
        f"| boosting | {cell('boosting')} |",
        f"| their mean | {cell('mean')} |",
        f"| weighted mean, weight chosen on validation | {cell('fused')} |",
        "",
        "The network's weight chosen per split: "
        + ", ".join(f"{s['weight']:.2f}" for s in per_seed)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--network", type=Path, required=True)
    parser.add_argument("--boosting", required=True)
    parser.add_argument("--suite", default="plasticc")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    row = _boosting_row(args.suite, args.boosting)
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    seeds = sorted(int(p.name.removeprefix("seed_")) for p in args.network.glob("seed_[0-9]*"))
    if not seeds:
        raise SystemExit(f"no seed_K run in {args.network}")
    data = read(args.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an uncalibrated older run says so once
        per_seed = {
            str(seed): _seed_scores(data, args.network / f"seed_{seed}", row, seed, args.workers)
            for seed in seeds
        }
    command = (
        f"python benchmarks/late_fusion.py --data {args.data} --network {args.network} "
        f'--boosting "{args.boosting}" --suite {args.suite} --out {args.out}'
    )
    summary = {
        "command": command,
        "commit": commit,
        "network_name": args.network.name,
        "boosting": args.boosting,
        "seeds": seeds,
        "per_seed": per_seed,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.out / "results.md").write_text(_markdown(summary))
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
