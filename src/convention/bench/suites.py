"""Benchmark suites: the data, the split protocol and the rows of the comparison and
ablation tables.

Every row is trained and tested on the same stratified seeded 70/10/20 splits (one per
seed). The twin suite must fit 3 hours on two CPU cores: five folds of eight image rows do
not, three seeds of one split do, with every image model given the same 5 minutes of
training per split (an equal-compute comparison; none of them has converged by then).
On a GPU (``device="cuda"``) the ConvEntion rows take the published (paper) configuration
and the twin's networks a larger budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from convention.errors import ConventionError


@dataclass(frozen=True)
class BenchModel:
    """One row of a results table.

    Attributes:
        name: the row's name.
        kind: ``image`` (a registered network trained by the training system),
            ``features`` (light-curve features + gradient-boosted trees) or ``supernnova``
            (the SuperNNova package in its own environment; ``overrides`` holds its
            ``variant`` and ``epochs``).
        model, preset, overrides: the registered network and its configuration.
        oversample: class-balanced oversampling during training.
        bands: train and test on these bands only (the paper's single-band rows).
        table: ``comparison`` or ``ablation``.
        input: what the row classifies, for the table.
    """

    name: str
    kind: str = "image"
    model: str = "convention"
    preset: str = "cpu"
    overrides: dict = field(default_factory=dict)
    oversample: bool = True
    bands: tuple[str, ...] | None = None
    table: str = "comparison"
    input: str = "stamps (ugriz)"


@dataclass(frozen=True)
class Suite:
    """A benchmark: where its data comes from, how it is split, what runs.

    Attributes:
        name: the suite's name.
        n_objects: objects simulated from the built-in distributions; None builds the
            SDSS-II twin from the catalog (one object per labelled candidate).
        stamp_size: stamp side of the simulated data.
        seeds: one stratified 70/10/20 split per seed.
        epochs: most epochs per run.
        max_minutes: wall-clock cap of one image-model run.
        models: the rows.
        robustness: curve name -> row, the models whose scores against frames removed at
            test time are drawn (on the first seed's split).
        gpu_budget: the epochs, max_minutes and patience that replace the suite's own on a
            GPU.
    """

    name: str
    n_objects: int | None
    stamp_size: int
    seeds: tuple[int, ...]
    epochs: int
    max_minutes: float
    models: tuple[BenchModel, ...]
    patience: int = 8
    robustness: dict = field(default_factory=dict)
    gpu_budget: dict = field(default_factory=dict)


def _rows(preset: str) -> tuple[BenchModel, ...]:
    rnn_preset = "tiny" if preset == "tiny" else "cpu"
    return (
        BenchModel(f"ConvEntion ({preset})", preset=preset),
        BenchModel("CNN + LSTM", model="cnn-lstm", preset=rnn_preset),
        BenchModel("CNN + GRU", model="cnn-gru", preset=rnn_preset),
        BenchModel(
            f"ConvEntion ({preset}), g only", preset=preset, bands=("g",), input="stamps (g)"
        ),
        BenchModel(
            "CNN + LSTM, g only",
            model="cnn-lstm",
            preset=rnn_preset,
            bands=("g",),
            input="stamps (g)",
        ),
        BenchModel(
            "CNN + GRU, g only",
            model="cnn-gru",
            preset=rnn_preset,
            bands=("g",),
            input="stamps (g)",
        ),
        BenchModel(
            "LSTM on light curves",
            model="lc-lstm",
            preset=rnn_preset,
            input="forced PSF light curves (ugriz)",
        ),
        BenchModel(
            "transformer on light curves",
            model="lc-transformer",
            preset=rnn_preset,
            input="forced PSF light curves (ugriz)",
        ),
        BenchModel(
            "SCONE (GP heatmap + CNN)",
            model="scone",
            preset=rnn_preset,
            input="GP heatmaps of forced PSF light curves",
        ),
        BenchModel(
            "light-curve features + boosting",
            kind="features",
            input="forced PSF light curves (ugriz)",
        ),
        BenchModel(
            "SuperNNova (RNN)",
            kind="supernnova",
            overrides={"variant": "vanilla", "epochs": 30},
            input="forced PSF light curves (ugriz)",
        ),
        BenchModel(
            "SuperNNova (Bayesian RNN)",
            kind="supernnova",
            overrides={"variant": "bayesian", "epochs": 30},
            input="forced PSF light curves (ugriz)",
        ),
        BenchModel("no oversampling", preset=preset, oversample=False, table="ablation"),
        BenchModel(
            "no band embedding",
            preset=preset,
            overrides={"band_embedding": "none"},
            table="ablation",
        ),
        BenchModel(
            "fixed band embedding",
            preset=preset,
            overrides={"band_embedding": "fixed"},
            table="ablation",
        ),
        BenchModel("2D CNN tokenizer", preset=preset, overrides={"cnn": "2d"}, table="ablation"),
        BenchModel(
            "observation-time positional encoding",
            preset=preset,
            overrides={"positional_encoding": "time"},
            table="ablation",
        ),
    )


ENCODINGS = {
    "index encoding": "ConvEntion (cpu)",
    "observation-time encoding": "observation-time positional encoding",
}

QUICK_ROWS = (
    "ConvEntion (cpu)",
    "CNN + GRU",
    "transformer on light curves",
    "SCONE (GP heatmap + CNN)",
    "light-curve features + boosting",
    "SuperNNova (RNN)",
    "observation-time positional encoding",
)


def _quick_rows() -> tuple[BenchModel, ...]:
    rows = {r.name: r for r in _rows("cpu")}
    snn = rows["SuperNNova (RNN)"]
    rows["SuperNNova (RNN)"] = replace(snn, overrides={**snn.overrides, "epochs": 5})
    return tuple(rows[name] for name in QUICK_ROWS)


SUITES = {
    # One row of every kind on 500 simulated objects, 25 s of training per network:
    # the same code end to end in minutes.
    "quick": Suite("quick", 500, 32, (0,), 12, 0.4, models=_quick_rows(), robustness=ENCODINGS),
    "sdss2-twin": Suite(
        "sdss2-twin",
        None,
        32,
        (0, 1, 2),
        40,
        5.0,
        models=_rows("cpu"),
        robustness=ENCODINGS,
        # Early stopping, not the clock, ends the paper preset's runs on a GPU.
        gpu_budget={"epochs": 100, "max_minutes": 30.0, "patience": 10},
    ),
}

DEVICES = ("cpu", "cuda")


def get_suite(name: str, device: str = "cpu") -> Suite:
    """A suite by name, as it runs on ``device`` (cpu, or cuda: the paper preset).

    Raises:
        ConventionError: unknown suite or device.
    """
    if name not in SUITES:
        raise ConventionError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    if device not in DEVICES:
        raise ConventionError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
    suite = SUITES[name]
    return suite if device == "cpu" else _on_gpu(suite)


def _on_gpu(suite: Suite) -> Suite:
    """The suite with ConvEntion's rows in the paper preset and the GPU budget."""

    def paper(row: BenchModel) -> BenchModel:
        if row.model != "convention":
            return row
        return replace(row, name=row.name.replace(f"({row.preset})", "(paper)"), preset="paper")

    names = {row.name: paper(row).name for row in suite.models}
    return replace(
        suite,
        models=tuple(paper(row) for row in suite.models),
        robustness={curve: names[row] for curve, row in suite.robustness.items()},
        **suite.gpu_budget,
    )


def slug(name: str) -> str:
    """A row's folder name (``CNN + LSTM`` -> ``cnn-lstm``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
