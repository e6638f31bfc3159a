"""Where the flagship's frames count: the flagship with and without its frame sequence
(the benchmark suite's two rows, trained on the same splits) scored on the twin's test
split per class, by days since each object's first detection, and by how bright its
variable source gets.

    python benchmarks/frames_ablation.py --data twin.h5 \\
        --with bench-work/runs/multi-input-convention-flagship \\
        --without bench-work/runs/flagship-without-the-frames \\
        --out benchmarks/results/frames-ablation

``--with`` and ``--without`` are a ``convention bench`` work folder's row folders (their
``seed_K`` runs); every seed both hold is scored. An object's first detection is its
first frame whose forced photometry is a detection (5 sigma); an object never detected
is left out of the early rows (no survey would have alerted on it). Its brightness is the
peak r magnitude of the injected variable source (the simulator's truth, noise-free), in
quartiles of the test split. Writes results.json, results.md and frames_ablation.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np

from convention.bands import get_band
from convention.data.collection import SeriesCollection
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.lightcurves import lightcurve_of
from convention.training import RunFolder

DAYS = (0, 2, 5, 10, 20, 40)
NMGY_AB = 22.5  # AB magnitude of one nanomaggy, the twin's pixel unit
QUARTILES = ("brightest quarter", "second", "third", "faintest quarter")


def _object_facts(data: SeriesCollection, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first detection MJD or NaN, peak r magnitude of the injected source or NaN) of
    each of ``rows``."""
    first, peak = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        series = data[int(row)]
        lc = lightcurve_of(series)
        detected = np.asarray(lc["detected"], dtype=bool)
        if detected.any():
            first[i] = float(np.asarray(lc["mjd"])[detected].min())
        flux = series.true_flux
        r = (series.band == get_band("r", series.survey).id) & np.isfinite(flux) & (flux > 0)
        if r.any():
            k = np.argmax(np.where(r, flux, -np.inf))
            peak[i] = NMGY_AB - 2.5 * np.log10(flux[k])
    return first, peak


def _macro_f1(targets: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    return classification_metrics(targets, proba, classes)["macro_f1"]


def _seed_scores(data: SeriesCollection, runs: dict[str, Path], days: list[float]) -> dict:
    """Every figure of one seed for each run (they must share the test split)."""
    folders = {name: RunFolder(run) for name, run in runs.items()}
    rows = {name: f.rows(data, 0, "test") for name, f in folders.items()}
    first_rows = next(iter(rows.values()))
    if any(not np.array_equal(r, first_rows) for r in rows.values()):
        raise SystemExit(f"the runs {list(runs)} were not trained on the same split")
    first, peak = _object_facts(data, first_rows)
    position = {int(r): i for i, r in enumerate(first_rows)}
    detected = np.isfinite(first)
    edges = np.nanquantile(peak, [0.25, 0.5, 0.75])
    quartile = np.where(np.isfinite(peak), np.searchsorted(edges, peak), -1)
    out: dict = {
        "n_test": len(first_rows),
        "n_detected": int(detected.sum()),
        "quartile_edges_r_mag": [float(e) for e in edges],
    }
    for name, folder in folders.items():
        classes = folder.classes
        whole = folder.score(data, 0)
        metrics = classification_metrics(whole.targets, whole.proba, classes)
        scores = {
            "macro_f1": metrics["macro_f1"],
            "per_class_f1": {c: metrics["per_class"][c]["f1"] for c in classes},
            "by_brightness": {
                label: _macro_f1(whole.targets[quartile == q], whole.proba[quartile == q], classes)
                for q, label in enumerate(QUARTILES)
            },
            "by_days_since_detection": {},
        }
        for d in days:

            def cut(series, row, d=d):
                start = first[position[row]]
                return series if np.isnan(start) else series.until(start + d)

            early = folder.score(data, 0, transform=cut)
            scores["by_days_since_detection"][f"{d:g}"] = _macro_f1(
                early.targets[detected], early.proba[detected], classes
            )
        scores["by_days_since_detection"]["all"] = _macro_f1(
            whole.targets[detected], whole.proba[detected], classes
        )
        out[name] = scores
        print(f"{name}: {json.dumps(scores)}", flush=True)
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _table(per_seed: list[dict], names: list[str], path: list[str], labels: list[str]) -> list:
    """Markdown rows: each label's mean +- std for each run and the difference."""

    def value(seed: dict, name: str, label: str) -> float:
        node = seed[name]
        for key in path:
            node = node[key]
        return node[label]

    lines = []
    for label in labels:
        cells = []
        for name in names:
            mean, std = _mean_std([value(s, name, label) for s in per_seed])
            cells.append(f"{mean:.3f} ± {std:.3f}")
        gain = [value(s, names[0], label) - value(s, names[1], label) for s in per_seed]
        mean, std = _mean_std(gain)
        cells.append(f"{100 * mean:+.1f} ± {100 * std:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _markdown(summary: dict, names: list[str], days: list[str]) -> str:
    seeds = summary["seeds"]
    per_seed = [summary["per_seed"][s] for s in seeds]
    classes = list(per_seed[0][names[0]]["per_class_f1"])
    header = f"| | {names[0]} | {names[1]} | frames add (points) |\n|---|---|---|---|"
    edges = [" / ".join(f"{e:.1f}" for e in seed["quartile_edges_r_mag"]) for seed in per_seed]
    lines = [
        "# Where the flagship's frames count (SDSS-II twin with rendered references)",
        "",
        f"Test macro-F1, mean ± standard deviation over seeds {', '.join(map(str, seeds))} "
        "(each seed its own split, both models trained on it). Command: "
        f"`{summary['command']}` at {summary['commit']}.",
        "",
        "## Per class (F1, whole sequences)",
        "",
        header,
        *_table(per_seed, names, ["per_class_f1"], classes),
        "",
        "## By days since the first detection (macro-F1)",
        "",
        "Each test object cut to its frames up to d days after its first 5-sigma forced "
        "detection; objects never detected are left out "
        f"({', '.join(str(s['n_test'] - s['n_detected']) for s in per_seed)} of "
        f"{', '.join(str(s['n_test']) for s in per_seed)}).",
        "",
        header,
        *_table(per_seed, names, ["by_days_since_detection"], days),
        "",
        "## By peak r magnitude of the variable source (macro-F1, whole sequences)",
        "",
        f"Quartiles of each test split; edges (r mag) per seed: {'; '.join(edges)}.",
        "",
        header,
        *_table(per_seed, names, ["by_brightness"], list(QUARTILES)),
    ]
    return "\n".join(lines) + "\n"


def _plot(summary: dict, names: list[str], days: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_seed = [summary["per_seed"][s] for s in summary["seeds"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, labels, xlabel in (
        (axes[0], "by_days_since_detection", days, "days since the first detection"),
        (axes[1], "by_brightness", list(QUARTILES), "peak r magnitude, quartile"),
    ):
        x = np.arange(len(labels))
        for name in names:
            values = np.array([[s[name][key][k] for k in labels] for s in per_seed])
            ax.errorbar(
                x, values.mean(axis=0), yerr=values.std(axis=0), marker="o", capsize=3, label=name
            )
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test macro-F1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("The flagship with and without its frames, SDSS-II twin")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--with", dest="with_frames", type=Path, required=True)
    parser.add_argument("--without", dest="without_frames", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--days", type=float, nargs="+", default=list(DAYS))
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    seeds = sorted(
        int(p.name.removeprefix("seed_"))
        for p in args.with_frames.glob("seed_*")
        if (args.without_frames / p.name).is_dir()
    )
    if not seeds:
        raise SystemExit(f"no seed_K run in both {args.with_frames} and {args.without_frames}")
    names = ["with the frames", "without the frames"]
    data = read(args.data)
    per_seed = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an uncalibrated older run says so once
        for seed in seeds:
            runs = dict(zip(names, (args.with_frames, args.without_frames), strict=True))
            per_seed[seed] = _seed_scores(
                data, {n: r / f"seed_{seed}" for n, r in runs.items()}, args.days
            )
    days = [f"{d:g}" for d in args.days] + ["all"]
    command = (
        f"python benchmarks/frames_ablation.py --data {args.data} --with {args.with_frames} "
        f"--without {args.without_frames} --out {args.out}"
    )
    summary = {"command": command, "commit": commit, "seeds": seeds, "per_seed": per_seed}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.out / "results.md").write_text(_markdown(summary, names, days))
    _plot(summary, names, days, args.out / "frames_ablation.png")
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
