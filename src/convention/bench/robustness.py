"""Robustness to missing observations (the paper's figure): scores of trained models on
the test split with a growing fraction of every object's frames removed at test time.

The same frames are removed for every model (seeded per object and fraction), so the
curves of the index and observation-time positional encodings compare like for like.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convention.evaluate.metrics import classification_metrics
from convention.files import write_atomic
from convention.io import read
from convention.training.run_folder import RunFolder

FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8)


def _thinned(series, fraction: float, rng: np.random.Generator):
    keep = max(1, round(len(series) * (1.0 - fraction)))
    return series[np.sort(rng.choice(len(series), size=keep, replace=False))]


def robustness(
    runs: dict[str, Path],
    data: str | Path,
    fractions: tuple[float, ...] = FRACTIONS,
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    """Accuracy and macro-F1 of each run's model against the fraction of frames removed.

    Args:
        runs: curve name -> training run folder (one split; its test objects are scored).
        data: the store the runs were trained on.
        fractions: fractions of each object's frames removed.
        seed: seeds which frames go.
        device: where the models run.

    Returns:
        ``{"fractions": [...], "curves": {name: {"accuracy": [...], "macro_f1": [...]}}}``.
    """
    store = read(data)
    curves = {}
    for name, path in runs.items():
        run = RunFolder(path)
        accuracy, macro_f1 = [], []
        for f, fraction in enumerate(fractions):

            def thinned(series, row: int, f: int = f, fraction: float = fraction):
                rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(f, row)))
                return _thinned(series, fraction, rng)

            scores = run.score(store, 0, device=device, transform=thinned)
            metrics = classification_metrics(scores.targets, scores.proba, run.classes)
            accuracy.append(metrics["accuracy"])
            macro_f1.append(metrics["macro_f1"])
        curves[name] = {"accuracy": accuracy, "macro_f1": macro_f1}
    return {"fractions": list(fractions), "seed": seed, "curves": curves}


def write_robustness(result: dict, out: Path) -> None:
    """robustness.json and robustness.png (accuracy and macro-F1 against frames removed)."""
    from matplotlib.figure import Figure

    from convention.plotting import save_figure

    write_atomic(out / "robustness.json", lambda t: t.write_text(json.dumps(result, indent=1)))
    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2)
    x = 100 * np.asarray(result["fractions"])
    for name, curve in result["curves"].items():
        for ax, key in zip(axes, ("accuracy", "macro_f1"), strict=True):
            ax.plot(x, curve[key], "o-", label=name)
    for ax, label in zip(axes, ("accuracy", "macro-F1"), strict=True):
        ax.set_xlabel("frames removed at test time (%)")
        ax.set_ylabel(f"test {label}")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "robustness.png")
