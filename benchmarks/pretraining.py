"""Learning curves of the flagship from scratch and pre-trained: test macro-F1 with 10%,
30% and 100% of the training labels, on the twin's splits of ``--seeds``.

    python benchmarks/pretraining.py --data twin.h5 --unlabelled unlabelled.h5 \\
        --work /tmp/pretraining --out benchmarks/results/pretraining --seeds 0 \\
        --bench-runs bench/runs/multi-input-convention-flagship
    # the committed results: then the same with --seeds 1 2 --work /tmp/pretraining-12

One backbone per invocation is pre-trained (``convention pretrain``'s defaults) on the
twin's objects that are in no test split of ``--seeds``, their labels unread, and every
object of ``--unlabelled`` (the SDSS-II candidates of unknown type: ``convention simulate
--catalog ... --unlabelled``): no split's test objects are ever seen. Each fine-tuning run
has the benchmark suite's flagship settings (20 epochs, patience 8, one-cycle 1e-3, bf16)
on a stratified, nested fraction of the training labels (``train --label-fraction``);
validation and test splits are whole. The runs from scratch come first, then the backbone
and the pre-trained runs. What ``--work`` holds is reused; ``--bench-runs DIR`` scores the
benchmark suite's flagship runs (``DIR/seed_N``) as from scratch with all the labels.
Writes ``seed_N.json`` per split and, over every ``seed_N.json`` in ``--out`` (earlier
invocations' too), results.md and learning_curves.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np

from convention.bench.suites import get_suite
from convention.bench.training import row_settings
from convention.classes import class_targets, get_taxonomy
from convention.classifier.folder import PRETRAINING_FILE
from convention.data.splits import make_splits
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.training import RunFolder, train
from convention.training.pretrain import PretrainSettings, pretrain

FRACTIONS = (0.1, 0.3, 1.0)
FLAGSHIP = "multi-input ConvEntion (flagship)"
STARTS = ("scratch", "pretrained")


def _never_tested(targets: np.ndarray, seeds: list[int]) -> tuple[int, ...]:
    """The labelled positions in no test split of ``seeds``."""
    tested = set()
    for seed in seeds:
        tested.update(int(r) for r in make_splits(targets, 1, seed)[0]["test"])
    return tuple(int(r) for r in np.flatnonzero(targets >= 0) if int(r) not in tested)


def _made_backbone(out: Path, sources: list[str], seen: tuple[int, ...]) -> dict | None:
    """The pretraining.json of the backbone in ``out``, None if there is none yet; one
    pre-trained on other objects is refused."""
    if not out.exists():
        return None
    made = json.loads((out / PRETRAINING_FILE).read_text())
    if made["settings"]["data"] != sources or tuple(made["settings"]["rows"][0]) != seen:
        raise SystemExit(f"error: {out}: pre-trained on other objects than --seeds leave")
    return made


def _pretrain(out: Path, sources: list[str], seen: tuple[int, ...], seed: int, epochs: int) -> None:
    settings = PretrainSettings(
        data=tuple(sources),
        out=str(out),
        rows=(seen, None),
        epochs=epochs,
        seed=seed,
        precision=get_suite("sdss2-twin").precision,
        progress=False,
    )
    pretrain(settings)


def _fine_tune(data: Path, out: Path, seed: int, fraction: float, init: Path | None) -> None:
    suite = get_suite("sdss2-twin")
    row = next(r for r in suite.models if r.name == FLAGSHIP)
    out.parent.mkdir(parents=True, exist_ok=True)
    changes = {"label_fraction": fraction, "init": str(init) if init is not None else None}
    train(row_settings(row, suite.budget(), str(data), str(out), seed, **changes))


def _finished(run: Path) -> bool:
    return (run / "fold_0" / "training.json").exists()


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
        "run": str(run),
    }


def _name(start: str, fraction: float) -> str:
    return f"{start}-{fraction:g}"


def _summarise(out: Path) -> None:
    """results.md and learning_curves.png over every seed_N.json in ``out``."""
    splits = sorted(
        (json.loads(p.read_text()) for p in out.glob("seed_*.json")), key=lambda s: s["seed"]
    )
    seeds = [s["seed"] for s in splits]
    fractions = sorted({f for s in splits for f in s["fractions"]})

    def scores(start: str, fraction: float) -> list[float | None]:
        return [(s["results"].get(_name(start, fraction)) or {}).get("macro_f1") for s in splits]

    def cell(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "not run"

    def mean(values: list[float | None]) -> str:
        done = [v for v in values if v is not None]
        if len(done) < 2:
            return "-"
        return f"{np.mean(done):.3f} ± {np.std(done, ddof=1):.3f} ({len(done)})"

    lines = [
        "# Flagship learning curves, SDSS-II twin",
        "",
        "Test macro-F1 per split (seed), from scratch and pre-trained; mean ± standard "
        "deviation over the splits run (their number in brackets).",
        "",
    ]
    for s in splits:
        b = s["pretraining"]
        lines.append(
            f"- seed {s['seed']}: backbone pre-trained on {b['objects']} objects (none in "
            f"the test split of seeds {b['never_tested_in']}), {len(b['loss_per_epoch'])} "
            f"epochs, NT-Xent loss {b['loss_per_epoch'][0]:.2f} -> "
            f"{b['loss_per_epoch'][-1]:.2f}; commit `{s['commit']}`."
        )
    head = " | ".join(f"seed {seed}" for seed in seeds)
    lines += [
        "",
        f"| labels | training objects | start | {head} | mean |",
        "|---|---|---|" + "---|" * len(seeds) + "---|",
    ]
    for fraction in fractions:
        objects = {
            r["train_objects"]
            for s in splits
            for r in (s["results"].get(_name(start, fraction)) for start in STARTS)
            if r
        }
        for start in STARTS:
            values = scores(start, fraction)
            lines.append(
                f"| {100 * fraction:g}% | {'/'.join(str(o) for o in sorted(objects))} | "
                f"{start} | " + " | ".join(cell(v) for v in values) + f" | {mean(values)} |"
            )
    targets = [(s["seed"], s["target"]) for s in splits if s["target"]]
    if targets:
        lines += ["", "Target, pre-trained with the fewest labels >= from scratch with the next:"]
        lines += [
            f"- seed {seed}: {t['pretrained']:.3f} against {t['scratch']:.3f}: "
            f"{'met' if t['met'] else 'missed'}"
            for seed, t in targets
        ]
        if len(targets) > 1:
            pretrained = np.mean([t["pretrained"] for _, t in targets])
            scratch = np.mean([t["scratch"] for _, t in targets])
            lines.append(
                f"- mean of {len(targets)} splits: {pretrained:.3f} against {scratch:.3f}: "
                f"{'met' if pretrained >= scratch else 'missed'}"
            )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    _plot(splits, fractions, scores, out / "learning_curves.png")


def _plot(splits: list[dict], fractions: list[float], scores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for start, style, label in (
        ("scratch", "o--", "from scratch"),
        ("pretrained", "s-", "pre-trained (contrastive)"),
    ):
        per_seed = np.array(
            [[np.nan if v is None else v for v in scores(start, f)] for f in fractions]
        )
        x = np.array([100 * f for f in fractions])
        line = ax.plot(
            x, np.nanmean(per_seed, axis=1), style, label=f"{label}, mean of the splits"
        )[0]
        for column in per_seed.T:
            ax.plot(x, column, style[0], color=line.get_color(), alpha=0.35, ms=4)
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in fractions], [f"{100 * f:g}%" for f in fractions])
    ax.set_xlabel("training labels used")
    ax.set_ylabel("test macro-F1")
    ax.grid(alpha=0.3)
    ax.legend()
    seeds = ", ".join(str(s["seed"]) for s in splits)
    ax.set_title(f"Flagship learning curves, SDSS-II twin (splits of seeds {seeds})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--unlabelled", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--bench-runs", type=Path, metavar="DIR")
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
    data = read(args.data)
    seen = _never_tested(class_targets(data.labels, get_taxonomy(4).classes), args.seeds)

    def run_of(seed: int, start: str, fraction: float) -> Path:
        if start == "scratch" and fraction >= 1 and args.bench_runs:
            return args.bench_runs / f"seed_{seed}"
        return args.work / f"seed_{seed}" / _name(start, fraction)

    backbone = args.work / "backbone"
    sources = [str(args.data), str(args.unlabelled)]
    for start in STARTS:
        for fraction in args.fractions:
            for seed in args.seeds:
                run = run_of(seed, start, fraction)
                if args.score_only or _finished(run):
                    continue
                if start == "pretrained" and _made_backbone(backbone, sources, seen) is None:
                    _pretrain(backbone, sources, seen, min(args.seeds), args.pretrain_epochs)
                init = backbone if start == "pretrained" else None
                _fine_tune(args.data, run, seed, fraction, init)
                print(seed, _name(start, fraction), "trained", flush=True)
    pretraining = _made_backbone(backbone, sources, seen)
    if pretraining is None:
        raise SystemExit(f"error: {backbone}: no backbone yet (run without --score-only)")
    args.out.mkdir(parents=True, exist_ok=True)
    low, mid = sorted(args.fractions)[:2]
    for seed in args.seeds:
        results = {}
        for start in STARTS:
            for fraction in args.fractions:
                run = run_of(seed, start, fraction)
                results[_name(start, fraction)] = _score(run, data) if _finished(run) else None
        pretrained_low = results[_name("pretrained", low)]
        scratch_mid = results[_name("scratch", mid)]
        target = None
        if pretrained_low and scratch_mid:
            target = {
                "pretrained_fraction": low,
                "pretrained": pretrained_low["macro_f1"],
                "scratch_fraction": mid,
                "scratch": scratch_mid["macro_f1"],
            }
            target["met"] = target["pretrained"] >= target["scratch"]
        summary = {
            "data": str(args.data),
            "unlabelled": str(args.unlabelled),
            "seed": seed,
            "commit": commit,
            "fractions": args.fractions,
            "pretraining": {
                "never_tested_in": args.seeds,
                **{k: pretraining[k] for k in ("objects", "loss_per_epoch", "pretrain_seconds")},
            },
            "results": results,
            "target": target,
        }
        (args.out / f"seed_{seed}.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps({"seed": seed, "target": target}), flush=True)
    _summarise(args.out)


if __name__ == "__main__":
    main()
