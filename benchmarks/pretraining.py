"""Learning curves of the flagship from scratch and pre-trained: test macro-F1 with 10%,
30% and 100% of the training labels, on the twin's split of ``--seed``.

    python benchmarks/pretraining.py --data twin.h5 --unlabelled unlabelled.h5 \\
        --work /tmp/pretraining --out benchmarks/results/pretraining \\
        --reuse scratch-1=bench/runs/multi-input-convention-flagship/seed_0

The backbone is pre-trained (``convention pretrain``'s defaults) on the twin's training
and validation objects, their labels unread, and every object of ``--unlabelled`` (the
SDSS-II candidates of unknown type: ``convention simulate --catalog ... --unlabelled``);
the test objects are never seen. Each fine-tuning run has the benchmark suite's flagship
settings (20 epochs, patience 8, one-cycle 1e-3, bf16) on a stratified, nested fraction of
the training labels (``train --label-fraction``); validation and test splits are whole.
What ``--work`` holds is reused; ``--reuse NAME=RUN`` scores an existing run as row NAME
(``scratch-1``: from scratch, all labels). Writes results.json, results.md and
learning_curves.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

from convention.bench.suites import get_suite
from convention.classes import class_targets, get_taxonomy
from convention.data.splits import make_splits
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.training import RunFolder, TrainSettings, train
from convention.training.pretrain import PretrainSettings, pretrain

FRACTIONS = (0.1, 0.3, 1.0)
FLAGSHIP = "multi-input ConvEntion (flagship)"


def _backbone(data: Path, unlabelled: Path, work: Path, seed: int, epochs: int) -> Path:
    out = work / "backbone"
    if out.exists():
        return out
    store = read(data)
    targets = class_targets(store.labels, get_taxonomy(4).classes)
    split = make_splits(targets, 1, seed)[0]
    seen = tuple(sorted(int(r) for r in (*split["train"], *split["val"])))
    settings = PretrainSettings(
        data=(str(data), str(unlabelled)),
        out=str(out),
        rows=(seen, None),
        epochs=epochs,
        seed=seed,
        precision=get_suite("sdss2-twin").precision,
        progress=False,
    )
    return pretrain(settings)


def _fine_tune(data: Path, out: Path, seed: int, fraction: float, init: Path | None) -> Path:
    if (out / "fold_0" / "training.json").exists():
        return out
    suite = get_suite("sdss2-twin")
    row = next(r for r in suite.models if r.name == FLAGSHIP)
    settings = TrainSettings(
        data=str(data),
        out=str(out),
        model=row.model,
        preset=row.preset,
        folds=1,
        epochs=row.epochs,
        seed=seed,
        patience=row.patience,
        lr=suite.lr,
        lr_schedule=suite.lr_schedule,
        precision=suite.precision,
        progress=False,
        label_fraction=fraction,
        init=str(init) if init is not None else None,
    )
    return Path(train(settings))


def _score(run: Path, data) -> dict:
    folder = RunFolder(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an older run is uncalibrated, and says so
        scores = folder.score(data, 0)
    metrics = classification_metrics(scores.targets, scores.proba, folder.classes)
    return {
        "macro_f1": metrics["macro_f1"],
        "accuracy": metrics["accuracy"],
        "train_objects": len(folder.splits[0]["train"]),
        "epochs_trained": folder.training(0)["epochs"],
    }


def _plot(results: dict, fractions: list[float], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for start, style in (("scratch", "o--"), ("pretrained", "s-")):
        done = [f for f in fractions if results[f"{start}-{f:g}"]]
        ax.plot(
            [100 * f for f in done],
            [results[f"{start}-{f:g}"]["macro_f1"] for f in done],
            style,
            label="from scratch" if start == "scratch" else "pre-trained (contrastive)",
        )
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in fractions], [f"{100 * f:g}%" for f in fractions])
    ax.set_xlabel("training labels used")
    ax.set_ylabel("test macro-F1")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Flagship learning curves, SDSS-II twin (seed 0 split)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--unlabelled", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--reuse", nargs="*", default=[], metavar="NAME=RUN")
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="train nothing: score the finished runs, the others reported as not run",
    )
    args = parser.parse_args()
    commit = subprocess.run(  # at the start: the code measured
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    args.work.mkdir(parents=True, exist_ok=True)
    reused = dict(entry.split("=", 1) for entry in args.reuse)
    backbone = _backbone(args.data, args.unlabelled, args.work, args.seed, args.pretrain_epochs)
    data = read(args.data)
    results = {}
    for fraction in args.fractions:
        for start, init in (("scratch", None), ("pretrained", backbone)):
            name = f"{start}-{fraction:g}"
            run = Path(reused[name]) if name in reused else args.work / name
            finished = (run / "fold_0" / "training.json").exists()
            if args.score_only and not finished:
                results[name] = None
                continue
            if not finished:
                _fine_tune(args.data, run, args.seed, fraction, init)
            results[name] = {**_score(run, data), "run": str(run)}
            print(name, json.dumps(results[name]), flush=True)
    pretraining = json.loads((backbone / "pretraining.json").read_text())
    low, mid = f"{min(args.fractions):g}", f"{sorted(args.fractions)[1]:g}"
    pretrained_low, scratch_mid = results[f"pretrained-{low}"], results[f"scratch-{mid}"]
    target = None
    if pretrained_low and scratch_mid:
        target = {
            f"pretrained_at_{low}": pretrained_low["macro_f1"],
            f"scratch_at_{mid}": scratch_mid["macro_f1"],
        }
        target["met"] = target[f"pretrained_at_{low}"] >= target[f"scratch_at_{mid}"]
    summary = {
        "data": str(args.data),
        "unlabelled": str(args.unlabelled),
        "seed": args.seed,
        "commit": commit,
        "pretraining": {
            k: pretraining[k] for k in ("objects", "loss_per_epoch", "pretrain_seconds")
        },
        "results": results,
        "target": target,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = [
        "# Flagship learning curves, SDSS-II twin",
        "",
        f"Split of seed {args.seed}; backbone pre-trained on {pretraining['objects']} objects "
        f"({args.pretrain_epochs} epochs, NT-Xent loss {pretraining['loss_per_epoch'][0]:.2f}"
        f" -> {pretraining['loss_per_epoch'][-1]:.2f}); commit `{commit}`.",
        "",
        "| labels | training objects | from scratch macro-F1 | pre-trained macro-F1 |",
        "|---|---|---|---|",
    ]
    for fraction in args.fractions:
        s, p = results[f"scratch-{fraction:g}"], results[f"pretrained-{fraction:g}"]
        objects = (s or p or {}).get("train_objects", "-")
        cells = [f"{r['macro_f1']:.3f}" if r else "not run" for r in (s, p)]
        lines.append(f"| {100 * fraction:g}% | {objects} | {cells[0]} | {cells[1]} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    _plot(results, args.fractions, args.out / "learning_curves.png")
    print(json.dumps(target))


if __name__ == "__main__":
    main()
