"""Early classification on the twin's test split: macro-F1 against days since each
object's first frame, for the flagship, ConvEntion, SCONE and light-curve features +
boosting, each trained with a fraction of its training objects cut to their first nights
(``convention train --truncate-fraction``), and any runs trained on whole sequences.

    python benchmarks/early_classification.py --data twin.h5 --work /tmp/early \\
        --full flagship=bench/runs/multi-input-convention-flagship/seed_0 \\
        --out benchmarks/results/early-classification

Trains what ``--work`` does not yet hold (a finished row is reused), with the benchmark
suite's settings of each row (``sdss2-twin``: epochs, patience, learning rate, schedule,
precision), on the split of ``--seed``. Writes results.json, results.md and
macro_f1_vs_days.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np

from convention.baselines.gbm import feature_matrix, fit_feature_gbm
from convention.bench.suites import get_suite
from convention.bench.training import row_settings
from convention.classes import class_targets, get_taxonomy
from convention.data.cutoff import Cutoff, truncation_draws
from convention.data.splits import make_splits
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.training import RunFolder, train

DAYS = (1, 2, 5, 10, 20, 40)
NETWORKS = {  # row name here -> the benchmark suite's row
    "flagship": "multi-input ConvEntion (flagship)",
    "ConvEntion": "ConvEntion (cpu), to convergence",
    "SCONE": "SCONE (GP heatmap + CNN)",
}
BOOSTING = {
    "light-curve features + boosting": False,
    "light-curve + stamp features + boosting": True,
}
LIGHT_CURVE_ROWS = ("SCONE", "light-curve features + boosting")


def _cutoffs(days: list[float]) -> list[tuple[str, Cutoff | None]]:
    return [(f"{d:g}", Cutoff(days=d)) for d in days] + [("all", None)]


def _train_network(name: str, data: Path, work: Path, seed: int, fraction: float) -> Path:
    suite = get_suite("sdss2-twin")
    row = next(r for r in suite.models if r.name == NETWORKS[name])
    out = work / f"{name}-truncated"
    if (out / "fold_0" / "training.json").exists():
        return out
    settings = row_settings(
        row, suite.budget(), str(data), str(out), seed, truncate_fraction=fraction
    )
    return Path(train(settings))


def _network_scores(run: Path, data, cutoffs) -> dict[str, float]:
    folder = RunFolder(run)
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an uncalibrated older run says so once
        for label, cutoff in cutoffs:
            transform = None if cutoff is None else (lambda s, _r, c=cutoff: c.apply(s))
            fold = folder.score(data, 0, transform=transform)
            metrics = classification_metrics(fold.targets, fold.proba, folder.classes)
            scores[label] = metrics["macro_f1"]
            print(f"{run.name} {label}: macro-F1 {scores[label]:.3f}", flush=True)
    return scores


def _boosting_scores(data, seed: int, fraction: float, scene: bool, cutoffs) -> dict:
    classes = get_taxonomy(4).classes
    targets = class_targets(data.labels, classes)
    split = make_splits(targets, 1, seed)[0]
    draws = truncation_draws(len(data), fraction, seed)
    x_train = feature_matrix(data, split["train"], workers=2, scene=scene, draws=draws)
    x_val = feature_matrix(data, split["val"], workers=2, scene=scene)
    model = fit_feature_gbm(x_train, targets[split["train"]], x_val, targets[split["val"]], seed)
    scores = {}
    for label, cutoff in cutoffs:
        x = feature_matrix(data, split["test"], workers=2, scene=scene, cutoff=cutoff)
        proba = model.predict_proba(x)
        scores[label] = classification_metrics(targets[split["test"]], proba, classes)["macro_f1"]
        print(f"boosting (scene={scene}) {label}: macro-F1 {scores[label]:.3f}", flush=True)
    return scores


def _plot(results: dict, out: Path, labels: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(len(labels))
    for name, scores in results.items():
        style = "--" if "whole" in name else "-"
        ax.plot(x, [scores[k] for k in labels], style, marker="o", label=name)
    ax.set_xticks(x, labels)
    ax.set_xlabel("days since the first frame")
    ax.set_ylabel("test macro-F1")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Early classification on the SDSS-II twin (seed 0 split)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def _markdown(results: dict, labels: list[str], command: str) -> str:
    lines = [
        "# Early classification, SDSS-II twin",
        "",
        "Test macro-F1 of each row with every test object cut to the frames taken up to "
        "d days after its first frame (`all`: the whole season).",
        "",
        f"Command: `{command}`",
        "",
        "| row | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for name, scores in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[k]:.3f}" for k in labels) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="where the runs are trained")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truncate-fraction", type=float, default=0.5)
    parser.add_argument("--days", type=float, nargs="+", default=list(DAYS))
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument(
        "--full",
        nargs="*",
        default=[],
        metavar="NAME=RUN",
        help="runs trained on whole sequences, evaluated alike",
    )
    args = parser.parse_args()
    commit = subprocess.run(  # at the start: the code measured
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    data = read(args.data)
    cutoffs = _cutoffs(args.days)
    labels = [label for label, _ in cutoffs]
    results: dict[str, dict[str, float]] = {}
    for name in args.networks:
        run = _train_network(name, args.data, args.work, args.seed, args.truncate_fraction)
        results[f"{name}, trained truncated"] = _network_scores(run, data, cutoffs)
    for name, scene in BOOSTING.items():
        results[f"{name}, trained truncated"] = _boosting_scores(
            data, args.seed, args.truncate_fraction, scene, cutoffs
        )
    for entry in args.full:
        name, run = entry.split("=", 1)
        results[f"{name}, trained whole"] = _network_scores(Path(run), data, cutoffs)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/early_classification.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if v not in (None, [])
    )
    ten = "10" if "10" in labels else None
    target = None
    if ten and "flagship, trained truncated" in results:
        best_lc = max(
            results[f"{r}, trained truncated"][ten]
            for r in LIGHT_CURVE_ROWS
            if f"{r}, trained truncated" in results
        )
        target = {
            "flagship_at_10_days": results["flagship, trained truncated"][ten],
            "best_light_curve_row_at_10_days": best_lc,
        }
        target["met"] = target["flagship_at_10_days"] >= best_lc
    summary = {
        "data": str(args.data),
        "seed": args.seed,
        "truncate_fraction": args.truncate_fraction,
        "commit": commit,
        "command": command,
        "days": labels,
        "macro_f1": results,
        "target": target,
    }
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.out / "results.md").write_text(_markdown(results, labels, command))
    _plot(results, args.out / "macro_f1_vs_days.png", labels)
    print(json.dumps(target))


if __name__ == "__main__":
    main()
