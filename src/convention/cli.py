"""The ``convention`` command line: one typer app.

User errors (ConventionError) print one line, ``error: <file>: <object>: <cause>``, and exit
with code 2; nothing half-written is left behind.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table as RichTable

from convention.demo import DemoSettings
from convention.errors import ConventionError
from convention.files import (
    check_input_path,
    check_output_folder,
    check_output_path,
    output_name,
    refuse_overwriting_inputs,
)
from convention.progress import ProgressLines, to_terminal
from convention.training.settings import DEFAULTS

if TYPE_CHECKING:
    from astropy.table import Table

    from convention.inputs import InputSpec
    from convention.io.ingest import DroppedFrame, Rejected

app = typer.Typer(
    help="Classify astronomical image time series (multi-band stamp sequences) with ConvEntion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
EXIT_USER_ERROR = 2
DATA_KINDS = "a file or folder of any format `convention formats` lists"
DATA_HELP = f"A data set: {DATA_KINDS}."
MAX_LISTED = 10  # objects named one per line before the rest are counted
DeviceOption = Annotated[
    str, typer.Option(help="Where the model runs: cpu, cuda, or auto (CUDA when there is a GPU).")
]
ReaderOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--reader-option",
        "-r",
        help="An option of the data's format, NAME=VALUE; repeat it (`convention formats` "
        "lists each format's).",
    ),
]


FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ConventionError, and an operating-system error on a named file (a read-only
    folder, a full disk), into one line on stderr and exit code 2; show warnings as
    lines."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show(message, category, filename, lineno, file=None, line=None):
            typer.echo(f"warning: {message}", err=True)

        warnings.showwarning = show
        try:
            return command(*args, **kwargs)
        except ConventionError as err:
            typer.echo(f"error: {err.message}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except OSError as err:
            full = err.errno in FULL_DISK or "No space left on device" in str(err)
            if err.filename is None and not full:
                raise
            cause = "no space left on the device: nothing written" if full else err.strerror
            where = f"{output_name(Path(err.filename))}: " if err.filename is not None else ""
            typer.echo(f"error: {where}{cause}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper


@app.command()
@user_errors
def simulate(
    out: Annotated[Path, typer.Option(help="HDF5 store to write.")] = Path("sdss2-sim.h5"),
    survey: Annotated[
        str,
        typer.Option(help="Survey to simulate: sdss2 (Stripe 82), ztf or rubin (alert streams)."),
    ] = "sdss2",
    catalog: Annotated[
        Path | None, typer.Option(help="SDSS-II HEAD catalog: one twin per labelled candidate.")
    ] = None,
    n_objects: Annotated[
        int | None, typer.Option(help="Objects drawn from the built-in distributions [1000].")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 0,
    stamp_size: Annotated[
        int | None,
        typer.Option(help="Stamp side, pixels [the survey's: sdss2 32, ztf 63, rubin 30]."),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes (does not change the result).")
    ] = os.cpu_count() or 1,
    unlabelled: Annotated[
        bool,
        typer.Option(
            help="With --catalog: its candidates of unknown type (SNTYPE 0) instead, stored "
            "without a label (each simulated as a class drawn from the paper's fractions)."
        ),
    ] = False,
) -> None:
    """Simulate survey stamp series (SDSS-II Stripe 82 or ZTF alerts) into an HDF5 store."""
    from convention.sim.simulate import SimulationSettings
    from convention.sim.simulate import simulate as run_simulation

    if catalog is not None and check_input_path(catalog, "catalog").is_dir():
        raise ConventionError("is a folder, not a catalog file", path=catalog)
    refuse_overwriting_inputs([out], [catalog])
    check_output_path(out)
    settings = SimulationSettings(
        survey=survey,
        catalog=str(catalog) if catalog is not None else None,
        n_objects=n_objects,
        seed=seed,
        stamp_size=stamp_size,
        unlabelled=unlabelled,
    )
    with _progress() as progress:
        task = progress.add_task("simulating", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        path = run_simulation(settings, out, workers=workers, on_progress=report)
    _describe(path)


def _progress() -> Progress | PlainProgress:
    """On a terminal, a transient progress bar on stderr (description, bar, done/total,
    time left); when standard output goes to a file or a pipe, plain lines there."""
    if not to_terminal():
        return PlainProgress()
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


class PlainProgress:
    """What ``_progress`` gives off a terminal: rich's ``Progress`` calls (one task at a
    time) as plain lines (``convention.progress``)."""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: int | None = None) -> int:
        self.lines = ProgressLines(description, total)
        return 0

    def update(self, task: int, completed: int, total: int | None = None) -> None:
        self.lines.update(completed, total)

    def advance(self, task: int, n: int = 1) -> None:
        self.lines.advance(n)


def _percentiles(values: np.ndarray, levels=(5, 50, 95)) -> list[str]:
    values = np.asarray(values)[np.isfinite(values)]
    if len(values) == 0:
        return ["-"] * len(levels)
    return [f"{v:.3g}" for v in np.percentile(values, levels)]


def _reader_options(data: Path, pairs: list[str] | None) -> dict:
    """The ``--reader-option`` pairs as the typed options of the data's format."""
    from convention.io.registry import detect_format, get_reader

    if not pairs:
        return {}
    return get_reader(detect_format(data)).parse_options(pairs)


def _describe(path: Path, reader_options: dict | None = None) -> None:
    from convention.bands import get_band
    from convention.io import read

    store = read(path, **(reader_options or {}))
    console.print(
        f"[bold]{path}[/bold]: {len(store)} objects, survey {store.survey}, "
        f"stamps {store.stamp_shape[0]}x{store.stamp_shape[1]} at "
        f'{store.pixel_scale}"/pixel'
    )
    if store.provenance.get("command"):
        console.print(f"made by: {store.provenance['command']}", markup=False, highlight=False)
    if len(store) == 0:
        console.print("the store holds no objects")
        return
    lengths = store.lengths
    labels = np.array([lab or "unlabelled" for lab in store.labels])
    classes = RichTable(title="classes")
    for col in ("class", "objects", "frames min", "frames median", "frames max"):
        classes.add_column(col, justify="right" if col != "class" else "left")
    for name in [*store.class_names, "unlabelled"]:
        sel = labels == name
        if sel.any():
            n = lengths[sel]
            classes.add_row(name, str(sel.sum()), str(n.min()), f"{np.median(n):.0f}", str(n.max()))
    classes.add_row(
        "all",
        str(len(store)),
        str(lengths.min()),
        f"{np.median(lengths):.0f}",
        str(lengths.max()),
        style="bold",
    )
    console.print(classes)
    frames = store.frame_table()
    conditions = RichTable(title="observing conditions per band (5th / 50th / 95th percentile)")
    for col in ("band", "frames", "seeing FWHM (arcsec)", "sky sigma (per pixel)", "zero point"):
        conditions.add_column(col, justify="right" if col != "band" else "left")
    for band_id in np.unique(frames["band"]):
        sel = frames["band"] == band_id
        conditions.add_row(
            get_band(int(band_id)).name,
            str(sel.sum()),
            " / ".join(_percentiles(frames["psf_fwhm"][sel])),
            " / ".join(_percentiles(frames["sky_sigma"][sel])),
            " / ".join(_percentiles(frames["zeropoint"][sel])),
        )
    console.print(conditions)
    mjd = frames["mjd"]
    console.print(f"MJD {mjd.min():.1f} .. {mjd.max():.1f}; {len(frames)} frames in all")
    console.print(_reference_summary(frames, store.reference_table()))
    if store.channels:
        console.print(f"extra channels per frame: {', '.join(store.channels)}")
    rows = store.lightcurve_rows
    if (rows >= 0).any():
        console.print(
            f"light curves of their own: {(rows >= 0).sum()} objects, "
            f"median {np.median(rows[rows >= 0]):.0f} observations"
        )
    console.print(_metadata_summary(store.object_table()))


def _metadata_summary(objects: Table) -> str:
    """Per catalogue field: the objects that have it and its median."""
    from convention.metadata import FIELDS

    parts = []
    for field in FIELDS:
        values = np.asarray(objects[field.name], dtype=float)
        measured = values[np.isfinite(values)]
        text = f"{field.name} {len(measured)}"
        if len(measured):
            text += f", median {np.median(measured):.2f}{field.unit and ' ' + field.unit}"
        parts.append(text)
    return "catalogue metadata (objects measured): " + "; ".join(parts)


def _reference_summary(frames: Table, references: Table) -> RichTable:
    """Per band: objects with the source's reference and with the median-of-frames
    fallback, the references' coadded frames and seeing, and those that reach the
    object's first frame (a template that may hold its light)."""
    from convention.bands import get_band

    table = RichTable(
        title="references per band: objects with the source's template, objects on the "
        "median-of-frames fallback; the templates' frames coadded and FWHM (arcsec, 5th / "
        "50th / 95th percentile), and those reaching the object's first frame (late)"
    )
    for col in ("band", "template", "median", "frames", "FWHM", "late"):
        table.add_column(col, justify="right" if col != "band" else "left")
    rows, bands = np.asarray(frames["object_row"]), np.asarray(frames["band"])
    reference_rows = np.asarray(references["object_row"], dtype=np.int64)
    first = np.full(max(rows.max(initial=-1), reference_rows.max(initial=-1)) + 1, np.inf)
    # Frames are in time order within each object: an object's first row is its first.
    objects, at = np.unique(rows, return_index=True)
    first[objects] = np.asarray(frames["mjd"])[at]
    for band_id in np.unique(bands):
        observed = np.unique(rows[bands == band_id])
        own_rows = np.asarray(references["band"]) == band_id
        own = references[own_rows]
        # Reference.overlaps, on the tables: a NaN end (unknown) is never late.
        late = int(np.sum(np.asarray(own["mjd_end"]) >= first[reference_rows[own_rows]]))
        table.add_row(
            get_band(int(band_id)).name,
            str(len(own)),
            str(len(observed) - len(own)),
            " / ".join(_percentiles(np.asarray(own["n_frames"], dtype=float))) if len(own) else "-",
            " / ".join(_percentiles(np.asarray(own["psf_fwhm"]))) if len(own) else "-",
            str(late),
        )
    return table


@app.command()
@user_errors
def describe(
    data: Annotated[Path, typer.Argument(help=DATA_HELP)],
    reader_option: ReaderOptions = None,
) -> None:
    """Print class counts and the distributions of sequence length, seeing and sky noise."""
    _describe(data, _reader_options(data, reader_option))


@app.command()
@user_errors
def plot(
    data: Annotated[Path, typer.Argument(help=DATA_HELP)],
    object_id: Annotated[str, typer.Option("--object", help="Object to draw.")],
    out: Annotated[Path, typer.Option(help="Image file to write (.png, .pdf, ...).")],
    max_epochs: Annotated[int, typer.Option(help="Most epochs (columns) shown.")] = 12,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Run or model folder: draw its class probabilities after each night, of "
            "what was observed by then."
        ),
    ] = None,
    reader_option: ReaderOptions = None,
) -> None:
    """Draw one object: its stamps (band x epoch, with each band's reference stamp and the
    differences from it), its difference light curve (non-detections as limits) and, with
    --checkpoint, a model's probabilities as the object was observed."""
    from convention.classifier import Classifier
    from convention.inputs import Needs
    from convention.io import read
    from convention.photometry import DIFFERENCE_CHANNEL
    from convention.plotting import plot_series, save_figure

    refuse_overwriting_inputs([out], [data] + ([checkpoint] if checkpoint else []))
    out = check_output_path(out)
    options = _reader_options(data, reader_option)
    classifier = None if checkpoint is None else Classifier.load(checkpoint)
    needs = Needs() if classifier is None else classifier.encoder.needs
    # The plot draws the survey's own differences where its source gives them.
    offered = (DIFFERENCE_CHANNEL, *needs.own_channels)
    store = read(data, require_channels=needs.channels, offer_channels=offered, **options)
    series = store.get(object_id)
    history = None
    if classifier is not None:
        classifier.check_data(store)
        history = classifier.over_time(series)
    save_figure(plot_series(series, max_epochs=max_epochs, history=history), out, dpi=110)
    console.print(f"wrote {out}")


@app.command()
@user_errors
def models(
    classes: Annotated[int, typer.Option(help="Output classes.")] = 4,
    n_bands: Annotated[int, typer.Option(help="Bands.")] = 5,
) -> None:
    """List the registered models and presets: what they read, parameters and forward
    GFLOPs per object (of the preset's most frames)."""
    from convention.models import create_model, gflops_per_object, list_models

    table = RichTable(title=f"models ({classes} classes, {n_bands} bands)")
    for col in ("model", "preset", "reads", "parameters", "GFLOPs / object"):
        table.add_column(
            col, justify="right" if col in ("parameters", "GFLOPs / object") else "left"
        )
    for name, entry in list_models().items():
        for preset in entry.presets:
            model = create_model(name, classes, n_bands, preset)
            table.add_row(
                name,
                preset,
                _reads(model.input_spec),
                f"{sum(p.numel() for p in model.parameters()):,}",
                f"{gflops_per_object(model, n_bands):.3f}",
            )
    console.print(table)


def _reads(spec: InputSpec) -> str:
    """What an input spec reads, in words."""
    from convention.inputs import get_input_kind

    return " + ".join(get_input_kind(kind).describe(spec) for kind in spec.kinds)


def _note_slow_bfloat16(precision: str, device: str) -> None:
    """Say so when bfloat16 autocast would be emulated, slower than float32, on this CPU."""
    from convention.device import native_bfloat16, resolve_device

    emulated = resolve_device(device) == "cpu" and not native_bfloat16("cpu")
    if precision == "bf16-mixed" and emulated:
        console.print(
            "note: this CPU has no native bfloat16 (oneDNN needs AVX-512 or AMX), so "
            "bf16-mixed runs several times slower here than --precision 32"
        )


@app.command("train")
@user_errors
def train_command(
    data: Annotated[Path | None, typer.Option(help=f"Training data: {DATA_KINDS}.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder to create.")] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Finish the stopped run of this --out with its own settings (other options "
            "are not used)."
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULTS.model,
    preset: Annotated[
        str, typer.Option(help="Model preset (`convention models` lists each model's).")
    ] = DEFAULTS.preset,
    folds: Annotated[int, typer.Option(help="k-fold CV; 1 = one 70/10/20 split.")] = (
        DEFAULTS.folds
    ),
    epochs: Annotated[int, typer.Option(help="Most epochs per fold.")] = DEFAULTS.epochs,
    classes: Annotated[int, typer.Option(help="4 (AGN, SNIa, Variable, SNOther) or 3.")] = (
        DEFAULTS.classes
    ),
    batch_size: Annotated[int, typer.Option(help="Objects per batch.")] = DEFAULTS.batch_size,
    lr: Annotated[
        float, typer.Option(help="AdamW learning rate (the paper: 2e-3 at batch 128).")
    ] = DEFAULTS.lr,
    lr_schedule: Annotated[
        str,
        typer.Option(
            help="constant, onecycle (warm up, then anneal over --epochs), or plateau "
            "(lowered 0.3x after 2 epochs without a better validation macro-F1)."
        ),
    ] = DEFAULTS.lr_schedule,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = (
        DEFAULTS.weight_decay
    ),
    loss: Annotated[str, typer.Option(help="focal (gamma 2) or ce.")] = DEFAULTS.loss,
    oversample: Annotated[bool, typer.Option(help="Class-balanced oversampling.")] = (
        DEFAULTS.oversample
    ),
    patience: Annotated[int, typer.Option(help="Early-stopping patience, epochs.")] = (
        DEFAULTS.patience
    ),
    seed: Annotated[int, typer.Option(help="Seed of splits, sampling and weights.")] = (
        DEFAULTS.seed
    ),
    max_minutes: Annotated[
        float | None, typer.Option(help="Wall-time cap per fold, minutes.")
    ] = DEFAULTS.max_minutes,
    band_embedding: Annotated[
        str | None, typer.Option(help="learned, fixed or none (ablation).")
    ] = None,
    positional_encoding: Annotated[
        str | None, typer.Option(help="index (paper) or time (days since first frame).")
    ] = None,
    stamp_size: Annotated[
        int | None, typer.Option(help="Override the preset's stamp size.")
    ] = None,
    max_frames: Annotated[
        int | None,
        typer.Option(
            help="Override the preset's most frames (a longer sequence keeps its central ones)."
        ),
    ] = None,
    bands: Annotated[
        str | None, typer.Option(help="Train on these bands only, comma-separated (g).")
    ] = None,
    inputs: Annotated[
        str | None,
        typer.Option(
            help="The encoders of convention-multi, comma-separated, of stamps, scene, "
            "lightcurve, features, photometry (an alert's own light curve) and metadata "
            "(its catalogue fields and Galactic latitude), difference (each frame less its "
            "reference)."
        ),
    ] = None,
    device: DeviceOption = DEFAULTS.device,
    precision: Annotated[
        str,
        typer.Option(
            help="32, or bf16-mixed (bfloat16 autocast: faster on GPUs and on CPUs with "
            "AVX-512 or AMX, slower elsewhere)."
        ),
    ] = DEFAULTS.precision,
    devices: Annotated[
        int, typer.Option(help="Training processes per node (DDP: one per GPU, or CPU share).")
    ] = DEFAULTS.devices,
    num_nodes: Annotated[
        int, typer.Option(help="Nodes (machines), each running --devices processes.")
    ] = DEFAULTS.num_nodes,
    strategy: Annotated[
        str, typer.Option(help="auto (ddp when there are several processes) or ddp.")
    ] = DEFAULTS.strategy,
    truncate_fraction: Annotated[
        float,
        typer.Option(
            help="Early classification: the fraction of training objects cut to their first "
            "k nights (k uniform from one to all, drawn once per object)."
        ),
    ] = DEFAULTS.truncate_fraction,
    label_fraction: Annotated[
        float,
        typer.Option(
            help="Learning curves: train on this stratified fraction of the training labels."
        ),
    ] = DEFAULTS.label_fraction,
    init: Annotated[
        Path | None,
        typer.Option(help="Fine-tune from this pre-trained backbone (convention pretrain)."),
    ] = None,
    reader_option: ReaderOptions = None,
) -> None:
    """Train a model on a data set (seeded stratified splits; best epoch by validation
    macro-F1). A killed or interrupted run continues with --resume OUT. With --devices or
    --num-nodes above 1, distributed data parallel (Lightning DDP): process 0 writes the
    run."""
    from convention.training import TrainSettings, train
    from convention.training.fit import global_rank
    from convention.training.fit import resume as resume_run

    if resume is not None:
        if data is not None or out is not None:
            raise ConventionError("--resume takes the stopped run's own --data and --out")
        console.print(f"trained run in {resume_run(resume)}")
        return
    if data is None or out is None:
        raise ConventionError("give --data and --out (or --resume RUN)")

    overrides = {
        "band_embedding": band_embedding,
        "positional_encoding": positional_encoding,
        "stamp_size": stamp_size,
        "max_frames": max_frames,
        "inputs": tuple(k.strip() for k in inputs.split(",") if k.strip()) if inputs else None,
    }
    settings = TrainSettings(
        data=str(data),
        out=str(out),
        model=model,
        preset=preset,
        folds=folds,
        epochs=epochs,
        classes=classes,
        batch_size=batch_size,
        lr=lr,
        lr_schedule=lr_schedule,
        weight_decay=weight_decay,
        loss=loss,
        oversample=oversample,
        patience=patience,
        seed=seed,
        max_minutes=max_minutes,
        overrides={k: v for k, v in overrides.items() if v is not None},
        bands=tuple(b.strip() for b in bands.split(",") if b.strip()) if bands else None,
        device=device,
        precision=precision,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        truncate_fraction=truncate_fraction,
        label_fraction=label_fraction,
        init=str(init) if init is not None else None,
        reader_options=_reader_options(data, reader_option),
    )
    _note_slow_bfloat16(precision, device)
    run = train(settings)
    if global_rank(settings) == 0:
        console.print(f"trained run in {run}")


@app.command()
@user_errors
def pretrain(
    data: Annotated[
        list[Path],
        typer.Option(help="Store(s) to pre-train on, labelled or not (labels are not read)."),
    ],
    out: Annotated[Path, typer.Option(help="Backbone folder to write.")],
    model: Annotated[str, typer.Option(help="Registered model name.")] = "convention-multi",
    preset: Annotated[str, typer.Option(help="Preset (cpu, paper, tiny).")] = "cpu",
    epochs: Annotated[int, typer.Option(help="Passes over the objects.")] = 8,
    batch_size: Annotated[int, typer.Option(help="Objects per step (two views each).")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW peak learning rate (one cycle).")] = 1e-3,
    temperature: Annotated[float, typer.Option(help="NT-Xent temperature.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of views, sampling and weights.")] = 0,
    stamp_size: Annotated[
        int | None, typer.Option(help="Override the preset's stamp size.")
    ] = None,
    precision: Annotated[str, typer.Option(help="32 or bf16-mixed.")] = "32",
) -> None:
    """Self-supervised pre-training (contrastive, SimCLR): each object's views after two
    random numbers of nights are drawn together. Fine-tune with train --init OUT."""
    from convention.training.pretrain import PretrainSettings
    from convention.training.pretrain import pretrain as run_pretraining

    settings = PretrainSettings(
        data=tuple(str(d) for d in data),
        out=str(out),
        model=model,
        preset=preset,
        overrides={"stamp_size": stamp_size} if stamp_size is not None else {},
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        temperature=temperature,
        seed=seed,
        precision=precision,
    )
    _note_slow_bfloat16(precision, "cpu")
    console.print(f"pre-trained backbone in {run_pretraining(settings)}")


@app.command()
@user_errors
def calibrate(
    run: Annotated[Path, typer.Option(help="Training run folder.")],
    data: Annotated[Path, typer.Option(help="The data it was trained on.")],
    reader_option: ReaderOptions = None,
) -> None:
    """Fit each fold's temperature on its validation split and save it (runs trained before
    calibration, or to refit): predict and evaluate then give calibrated probabilities."""
    from convention.io import read
    from convention.training import RunFolder
    from convention.training.calibration import calibrate_run

    options = _reader_options(data, reader_option)
    needs = RunFolder(run).needs()
    store = read(
        data, require_channels=needs.channels, offer_channels=needs.own_channels, **options
    )
    temperatures = calibrate_run(run, store)
    console.print("temperatures: " + ", ".join(f"{t:.3f}" for t in temperatures))


@app.command()
@user_errors
def evaluate(
    run: Annotated[Path, typer.Option(help="Training run folder.")],
    data: Annotated[Path, typer.Option(help=f"Data to score: {DATA_KINDS}.")],
    out: Annotated[Path | None, typer.Option(help="Report folder [RUN/evaluation].")] = None,
    device: DeviceOption = "auto",
    reader_option: ReaderOptions = None,
) -> None:
    """Score a run: metrics.json, predictions.csv and a Markdown/HTML report with figures."""
    from convention.evaluate import evaluate_run

    refuse_overwriting_inputs([out], [run, data], allowed=[run / "evaluation"])
    if out is not None:
        check_output_folder(out)
    options = _reader_options(data, reader_option)
    lines = None if to_terminal() else ProgressLines("evaluating").update
    metrics = evaluate_run(run, data, out, device=device, reader_options=options, on_progress=lines)
    _print_metrics(metrics)
    console.print(f"report: {(out or run / 'evaluation') / 'report.html'}")


def _print_metrics(metrics: dict) -> None:
    table = RichTable(title=f"{metrics['n_objects']} objects, {metrics['n_folds']} fold(s)")
    for col in ("class", "precision", "recall", "F1", "ROC AUC"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, values in metrics["per_class"].items():
        table.add_row(
            name, *(f"{values[m]['mean']:.3f}" for m in ("precision", "recall", "f1", "roc_auc"))
        )
    console.print(table)
    console.print(
        f"accuracy {metrics['accuracy']['mean']:.3f} ± {metrics['accuracy']['std']:.3f}   "
        f"macro-F1 {metrics['macro_f1']['mean']:.3f} ± {metrics['macro_f1']['std']:.3f}   "
        f"ECE {metrics['ece']['mean']:.3f}   Brier {metrics['brier']['mean']:.3f}"
    )


@app.command()
@user_errors
def predict(
    checkpoint: Annotated[
        Path, typer.Option(help="Run folder, model folder, or .onnx file (convention export onnx).")
    ],
    data: Annotated[Path, typer.Option(help=f"Data to classify: {DATA_KINDS}.")],
    out: Annotated[Path, typer.Option(help="CSV file to write (.parquet: Parquet).")],
    batch_size: Annotated[int, typer.Option(help="Objects per batch.")] = 64,
    workers: Annotated[
        int,
        typer.Option(help="Processes reading and encoding batches beside the model (0: none)."),
    ] = 0,
    engine: Annotated[
        str,
        typer.Option(help="torch, onnxruntime, or auto (onnxruntime for an .onnx file)."),
    ] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            help="32, or bf16 (bfloat16 autocast: faster on CPUs with AVX512-BF16 or AMX and "
            "on GPUs; probabilities move by up to about 1e-2)."
        ),
    ] = "32",
    device: DeviceOption = "auto",
    until: Annotated[
        float | None,
        typer.Option(help="Early classification: classify what was observed up to this MJD."),
    ] = None,
    days: Annotated[
        float | None,
        typer.Option(
            help="Early classification: each object's first D days (from its first frame)."
        ),
    ] = None,
    nights: Annotated[
        int | None,
        typer.Option(help="Early classification: each object's first K observing nights."),
    ] = None,
    dropout_samples: Annotated[
        int,
        typer.Option(
            help="Monte Carlo dropout runs of each fold model, members of the ensemble whose "
            "spread is written (0: the fold models alone)."
        ),
    ] = 0,
    reader_option: ReaderOptions = None,
) -> None:
    """Class probabilities for every object: object_id, p_<class>..., predicted, and for an
    ensemble (several folds, or --dropout-samples) sd_<class>..., each probability's
    standard deviation over its members."""
    from convention.classifier import BatchPrediction, Classifier
    from convention.data.cutoff import Cutoff
    from convention.io import read
    from convention.io.predictions import write_predictions

    refuse_overwriting_inputs([out], [checkpoint, data])
    out = check_output_path(out)
    cutoff = Cutoff.from_options(until, days, nights)
    classifier = Classifier.load(checkpoint, device, engine, precision, dropout_samples)
    options = _reader_options(data, reader_option)
    needs = classifier.encoder.needs
    store = read(
        data, require_channels=needs.channels, offer_channels=needs.own_channels, **options
    )
    classifier.check_data(store)
    batches = []
    with _progress() as progress:
        task = progress.add_task("predicting", total=len(store))
        for batch in classifier.classify(store, None, batch_size, workers, cutoff):
            batches.append(batch)
            progress.advance(task, len(batch.ids) + len(batch.skipped))
    result = BatchPrediction.join(batches, classifier.classes)
    skipped = result.skipped
    for item in skipped[:MAX_LISTED]:
        named = ConventionError(item.error.cause, path=data, obj=item.error.obj)
        typer.echo(f"skipped: {named.message}", err=True)
    if len(skipped) > MAX_LISTED:
        typer.echo(f"skipped: {len(skipped) - MAX_LISTED} more objects, the same way", err=True)
    if skipped and not result.ids:
        raise ConventionError(f"no object has a frame by {cutoff}: nothing written", path=data)
    write_predictions(out, result.ids, result.proba, classifier.classes, spread=result.spread)
    seen = f" of what was observed up to {cutoff}" if cutoff else ""
    skipped_note = f"; {len(skipped)} objects skipped" if skipped else ""
    console.print(f"wrote {len(result.ids)} predictions{seen} to {out}{skipped_note}")


@app.command("classify-alerts")
@user_errors
def classify_alerts(
    checkpoint: Annotated[
        Path,
        typer.Option(
            help="Run folder, model folder or .onnx file of a model of the alerts' bands."
        ),
    ],
    input_folder: Annotated[
        Path, typer.Option("--input", help="Folder where alert files (*.avro) land.")
    ],
    out: Annotated[
        Path,
        typer.Option(help="Output folder: predictions/ and rejected/ (Parquet per micro-batch)."),
    ],
    engine: Annotated[
        str, typer.Option(help="spark (Structured Streaming) or local (one process).")
    ] = "local",
    once: Annotated[
        bool, typer.Option("--once/--watch", help="Classify what has landed and stop, or watch.")
    ] = False,
    schema: Annotated[
        str | None,
        typer.Option(help="Alert schema: ztf or rubin [the one whose bands the model reads]."),
    ] = None,
    trigger_seconds: Annotated[
        float, typer.Option(help="Watching: seconds between looks at the folder.")
    ] = 1.0,
    max_files_per_batch: Annotated[int, typer.Option(help="Files per micro-batch at most.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Alerts per forward pass.")] = 64,
    master: Annotated[str, typer.Option(help="spark: the master URL.")] = "local[2]",
    history_epochs: Annotated[
        int | None,
        typer.Option(
            help="Alerts of an object kept and read with each new one (default: the frames "
            "the model reads at most); 0: each alert classified alone."
        ),
    ] = None,
    history_days: Annotated[
        float, typer.Option(help="Alerts older than this before an object's newest are dropped.")
    ] = 365.0,
    history_store: Annotated[
        Path | None,
        typer.Option(help="local: the history's SQLite file (default: OUT/_history.sqlite)."),
    ] = None,
    reset_history: Annotated[
        bool, typer.Option("--reset-history", help="Start the objects' history afresh.")
    ] = False,
) -> None:
    """Classify alert packets as they land in a folder, restart-safe: a killed run, started
    again with the same --out, neither loses nor repeats an alert. Each alert is classified
    with the object's earlier alerts, which the stream keeps (its cutouts and photometry)."""
    from convention.alert_stream import AlertClassifier
    from convention.history import HistoryBounds

    if engine not in ("spark", "local"):
        raise ConventionError(f"--engine must be spark or local, got {engine!r}")
    if not 0 < trigger_seconds < 86400:  # NaN is not
        raise ConventionError(
            f"--trigger-seconds must be a positive number of seconds, got {trigger_seconds}"
        )
    if batch_size < 1:
        raise ConventionError(f"--batch-size must be at least 1, got {batch_size}")
    if history_epochs is not None and history_epochs < 0:
        raise ConventionError(f"--history-epochs must be 0 or more, got {history_epochs}")
    if history_store is not None and engine == "spark":
        raise ConventionError("--history-store is the local engine's: Spark keeps its checkpoint")
    refuse_overwriting_inputs(
        [out] if history_store is None else [out, history_store], [checkpoint, input_folder]
    )
    classifier = AlertClassifier.load(checkpoint, schema, batch_size=batch_size)
    history = None
    if history_epochs != 0:
        epochs = history_epochs or classifier.default_bounds().epochs
        history = HistoryBounds(epochs, history_days)
    started, alerts = time.monotonic(), 0

    def report(batch_id: int, classified: int, causes: list[str]) -> None:
        nonlocal alerts
        alerts += classified + len(causes)
        rate = alerts / max(time.monotonic() - started, 1e-9)
        console.print(
            f"batch {batch_id}: {classified} classified, {len(causes)} rejected "
            f"({alerts:,} in all, {rate:.3g} a second)"
        )
        for cause in causes:
            typer.echo(f"rejected: {cause}", err=True)

    if engine == "spark":
        from convention.spark import stream_alerts

        stream_alerts(
            input_folder,
            out,
            checkpoint,
            schema,
            available_now=once,
            trigger_seconds=trigger_seconds,
            max_files_per_trigger=max_files_per_batch,
            batch_size=batch_size,
            master=master,
            history=history,
            reset_history=reset_history,
            on_start=lambda query: console.print(
                f"classifying the alerts landing in {input_folder} on Spark ({master})"
            ),
            on_batch=report,
        )
        console.print(f"predictions in {out / 'predictions'}, rejected in {out / 'rejected'}")
        return
    from convention.alert_folder import AlertFolderStream

    stream = AlertFolderStream(
        input_folder, out, classifier, max_files_per_batch, history, history_store, reset_history
    )

    try:
        stream.run(available_now=once, poll_seconds=trigger_seconds, on_batch=report)
    except KeyboardInterrupt:
        console.print("stopped; run again with the same --out to continue")


@app.command()
@user_errors
def demo(
    out: Annotated[
        Path | None,
        typer.Option(help="Report folder [convention-demo, convention-demo-ztf, -rubin]."),
    ] = None,
    n_objects: Annotated[
        int | None, typer.Option(help="Objects to simulate [2400; rubin 4800].")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = DemoSettings.epochs,
    seed: Annotated[int, typer.Option(help="Seed of data, split and training.")] = 0,
    survey: Annotated[
        str,
        typer.Option(
            help="sdss2: the multi-input ConvEntion on Stripe 82 stamps; ztf: the same on "
            "ZTF alert cutouts, templates, photometry and catalogue fields (the model "
            "classify-alerts runs); rubin: the same on Rubin's (ugrizy, 30x30 cutouts in "
            "each visit's orientation, a year of forced photometry)."
        ),
    ] = "sdss2",
) -> None:
    """Simulate survey data, train a model for a fixed number of epochs, evaluate it on a
    held-out split. SDSS-II (default): the multi-input ConvEntion (frames, reference
    stamps, light curve, features); ZTF and Rubin: the same on the alert stream's
    cutouts, templates, packet photometry and catalogue fields, trained on objects cut to
    their first alerts too."""
    from convention.demo import run_demo

    settings = DemoSettings.for_survey(
        survey,
        **({"out": str(out)} if out is not None else {}),
        n_objects=n_objects,
        epochs=epochs,
        seed=seed,
        workers=os.cpu_count() or 1,
    )
    settings.validate()
    what = {
        "sdss2": "SDSS-II-like objects",
        "ztf": "ZTF alert sequences",
        "rubin": "Rubin alert sequences",
    }[survey]
    console.print(
        f"simulating {settings.n_objects} {what}, training {settings.model} "
        f"({settings.preset} preset, {epochs} epochs), evaluating on a held-out 20%"
    )
    result = run_demo(settings)
    _print_metrics(result.metrics)
    console.print("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()))
    if result.capped:
        console.print(
            f"[yellow]the {settings.max_train_minutes:g}-minute safety cap stopped training "
            f"after {result.epochs_trained} of {epochs} epochs: this score depends on this "
            "machine's speed[/yellow]"
        )
    console.print(f"report: {result.folder / 'report.html'}")


def _report_reject(rejected: Rejected | DroppedFrame) -> None:
    from convention.io.ingest import DroppedFrame

    kind = "dropped frame" if isinstance(rejected, DroppedFrame) else "rejected"
    typer.echo(f"{kind}: {rejected.message}", err=True)


def _run_ingest(
    collection, out: Path, stamp_size: int | None, strict: bool, command: str | None = None
) -> None:
    from convention.io.ingest import ingest as run_ingest

    with _progress() as progress:
        task = progress.add_task("ingesting", total=None)
        summary = run_ingest(
            collection,
            out,
            stamp_size=stamp_size,
            strict=strict,
            command=command or " ".join(["convention", *sys.argv[1:]]),
            on_reject=_report_reject,
            on_object=lambda _: progress.advance(task),
        )
    console.print(f"{summary} -> {summary.path}")


@app.command()
@user_errors
def ingest(
    format: Annotated[
        str, typer.Argument(help="The inputs' format (`convention formats` lists them).")
    ],
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders to read.")],
    out: Annotated[Path, typer.Option(help="HDF5 store to write.")],
    stamp_size: Annotated[
        int | None,
        typer.Option(help="Stamp side; others are centre-cropped or NaN-padded to it."),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad file (exit 2).")] = False,
    reader_option: ReaderOptions = None,
    cutouts: Annotated[
        str | None,
        typer.Option(help="alerts: cutouts kept, the first as the frame (-r cutouts=...)."),
    ] = None,
) -> None:
    """Read files of a field format into a store; bad files are reported and skipped."""
    from convention.io import get_reader, scan

    refuse_overwriting_inputs([out], inputs)
    check_output_path(out)
    pairs = [*(reader_option or []), *([f"cutouts={cutouts}"] if cutouts is not None else [])]
    options = get_reader(format).parse_options(pairs)
    collection = scan(format, inputs, **options)
    for note in collection.notes:
        console.print(note)
    _run_ingest(collection, out, stamp_size, strict)


@app.command()
@user_errors
def formats() -> None:
    """List the data formats every command reads, and each format's reader options
    (``--reader-option NAME=VALUE``)."""
    from rich.markup import escape

    from convention.io import readers

    table = RichTable(title="data formats (detected from the file or folder)")
    for col in ("format", "reads", "ingest", "reader options"):
        table.add_column(col)
    for reader in readers().values():
        options = "\n".join(f"{o.name}: {o.help}" for o in reader.options) or "-"
        ingested = "yes" if reader.scan is not None else "-"
        table.add_row(reader.name, escape(reader.help), ingested, escape(options))
    console.print(table)


@app.command("render-lightcurves")
@user_errors
def render_lightcurves(
    lightcurves: Annotated[Path, typer.Option(help="Light-curve CSV (gzipped or not).")],
    metadata: Annotated[Path, typer.Option(help="Metadata CSV.")],
    out: Annotated[Path, typer.Option(help="HDF5 store to write.")],
    format: Annotated[str, typer.Option(help="Light-curve format.")] = "plasticc",
    stamp_size: Annotated[int, typer.Option(help='Stamp side, pixels (0.2"/pixel).')] = 32,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 0,
    keep_unlabelled: Annotated[
        bool, typer.Option(help="Keep the excluded PLAsTiCC targets, unlabelled.")
    ] = False,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad object.")] = False,
    workers: Annotated[
        int, typer.Option(help="Worker processes (does not change the result).")
    ] = os.cpu_count() or 1,
) -> None:
    """Render light curves (PLAsTiCC) into LSST-like stamp series."""
    from convention.io.plasticc import RenderSettings, scan_plasticc

    if format != "plasticc":
        raise ConventionError(f"unknown light-curve format {format!r}; known: plasticc")
    for source in (lightcurves, metadata):
        check_input_path(source)
    refuse_overwriting_inputs([out], [lightcurves, metadata])
    check_output_path(out)
    settings = RenderSettings(stamp_size=stamp_size, seed=seed)
    collection, skipped = scan_plasticc(lightcurves, metadata, settings, workers, keep_unlabelled)
    if skipped:
        console.print(f"skipped {skipped} objects of targets outside the four classes")
    command = settings.command(lightcurves, metadata, keep_unlabelled)
    _run_ingest(collection, out, None, strict, command)


@app.command()
@user_errors
def bench(
    suite: Annotated[str, typer.Option(help="quick | sdss2-twin | plasticc")] = "quick",
    out: Annotated[Path, typer.Option(help="Results folder (results.json, results.md).")] = Path(
        "bench-results"
    ),
    work: Annotated[
        Path | None, typer.Option(help="Data and checkpoints [OUT-work, beside OUT].")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Use this store instead of making one.")] = None,
    catalog: Annotated[Path, typer.Option(help="SDSS-II HEAD catalog, for the twin.")] = Path(
        "../shared/data/sdss2-candidates/SDSS2_DS17_HEAD.FITS.gz"
    ),
    plasticc: Annotated[
        Path, typer.Option(help="PLAsTiCC's training light curves and metadata, for plasticc.")
    ] = Path("../shared/data/plasticc-train"),
    only: Annotated[
        list[str] | None, typer.Option(help="Run only these rows (repeat the option).")
    ] = None,
    device: Annotated[
        str, typer.Option(help="cpu, or cuda: the paper preset of ConvEntion on a GPU.")
    ] = "cpu",
    jobs: Annotated[
        int,
        typer.Option(help="Runs at once, each with CPUs/jobs threads (2 on two cores is fastest)."),
    ] = 1,
    seeds: Annotated[
        list[int] | None,
        typer.Option("--seed", help="Run only these splits (repeat the option) [the suite's]."),
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(help="Cap each network's training (minutes); give it its own --out."),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="32 or bf16-mixed [the suite's]; give it its own --out."),
    ] = None,
    lr_schedule: Annotated[
        str | None,
        typer.Option(help="onecycle, plateau or constant [the suite's]; give it its own --out."),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Epochs of the networks without their own budget [the suite's]; give it "
            "its own --out."
        ),
    ] = None,
) -> None:
    """Every model and ablation of a suite on the same seeded splits; resumes where it
    stopped (finished rows are kept). Exits 1 when a row failed."""
    from convention.bench.run import run_suite
    from convention.bench.suites import get_suite, slug, tailor

    work = work or out.with_name(f"{out.name}-work")
    refuse_overwriting_inputs([out, work], [data, catalog, plasticc])
    for folder in (out, work):
        check_output_folder(folder)
    chosen = tailor(get_suite(suite, device), seeds, max_minutes, precision, lr_schedule, epochs)
    _note_slow_bfloat16(chosen.precision, device)
    start = time.perf_counter()
    rows = [m for m in chosen.models if not only or m.name in only or slug(m.name) in only]
    lines = None if to_terminal() else ProgressLines("bench", len(rows) * len(chosen.seeds), "runs")

    def report(name: str, seed: int, result: dict) -> None:
        if lines is not None:
            lines.advance()
        if result["status"] == "ok":
            m = result["metrics"]
            console.print(
                f"{name} (seed {seed}): accuracy {m['accuracy']:.3f}, macro-F1 "
                f"{m['macro_f1']:.3f}, {result['wall_seconds']:.0f} s"
            )
        else:
            console.print(f"{name} (seed {seed}) failed: {result['error']}", markup=False)

    results = run_suite(
        chosen,
        out,
        work,
        data=data,
        catalog=catalog,
        plasticc=plasticc,
        only=only,
        command=" ".join(["convention", *sys.argv[1:]]),
        device=device,
        jobs=jobs,
        on_row=report,
    )
    failed = [k for k, v in results["models"].items() if v["status"] != "ok"]
    console.print(
        f"{len(results['models'])} rows in {out / 'results.md'}, data and checkpoints in "
        f"{work} ({time.perf_counter() - start:.0f} s this run)"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    if failed:
        raise typer.Exit(1)


export_app = typer.Typer(
    help="Write a store or a trained model in formats other tools read.", no_args_is_help=True
)
app.add_typer(export_app, name="export")


@export_app.command("snana")
@user_errors
def export_snana(
    data: Annotated[Path, typer.Argument(help="HDF5 store.")],
    out: Annotated[Path, typer.Option(help="Folder to create.")],
    photometry: Annotated[
        str,
        typer.Option(
            help="source (the objects' own light curves) | psf | aperture (forced, on the "
            "stamps less each band's median) | auto."
        ),
    ] = "auto",
    clip_fluxcal: Annotated[
        float, typer.Option(help="Raise FLUXCAL below this to it (SuperNNova's floor).")
    ] = -2000.0,
    name: Annotated[str, typer.Option(help="Prefix of the HEAD/PHOT files.")] = "convention",
) -> None:
    """SNANA HEAD/PHOT CSV files as SuperNNova reads them, and sntypes.json."""
    from convention.io import read
    from convention.io.export import resolve_photometry, store_lightcurves
    from convention.io.snana import write_snana

    refuse_overwriting_inputs([out], [data])
    check_output_folder(out)
    store = read(data, "store")
    photometry = resolve_photometry(store, photometry)
    objects = store_lightcurves(store, photometry)
    path = write_snana(objects, store.class_names, out, name=name, clip_fluxcal=clip_fluxcal)
    console.print(f"wrote {len(store)} light curves ({photometry}) to {path}")


@export_app.command("fits")
@user_errors
def export_fits(
    data: Annotated[Path, typer.Argument(help="HDF5 store.")],
    out: Annotated[Path, typer.Option(help="Folder to create.")],
) -> None:
    """A folder of FITS stamps with its epochs/objects tables (``ingest fits`` reads it)."""
    from convention.io import read
    from convention.io.formats.fits import write_stamp_folder

    refuse_overwriting_inputs([out], [data])
    check_output_folder(out)
    store = read(data, "store")
    path = write_stamp_folder(store, out)
    console.print(f"wrote {len(store)} objects to {path}")


@export_app.command("onnx")
@user_errors
def export_onnx_command(
    checkpoint: Annotated[Path, typer.Argument(help="Run folder (fold ensemble) or model folder.")],
    out: Annotated[Path, typer.Option(help="The .onnx file to write.")],
) -> None:
    """An ONNX model of the class probabilities (a run's folds averaged), with the classes,
    bands, inputs and fitted normalisation in its metadata: predict --engine onnxruntime
    runs it, and so does onnxruntime alone."""
    from convention.classifier import load_models
    from convention.classifier.onnx import export_onnx

    if out.suffix.lower() != ".onnx":
        raise ConventionError("the output's name must end in .onnx", path=out)
    refuse_overwriting_inputs([out], [checkpoint])
    out = check_output_path(out)
    settings, models = load_models(checkpoint)
    names = export_onnx(settings, models, out)
    console.print(
        f"wrote {settings.model} ({settings.preset}, {len(models)} fold model(s)) to {out}: "
        f"inputs {', '.join(names)}; output probabilities of {', '.join(settings.classes)}"
    )


def main() -> None:
    """Entry point for ``python -m convention``."""
    app(prog_name="convention")


if __name__ == "__main__":
    sys.exit(main())
