"""The ``convention`` command line: one typer app.

User errors (ConventionError) print one line, ``error: <file>: <object>: <cause>``, and exit
with code 2; nothing half-written is left behind.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table as RichTable

from convention.errors import ConventionError

app = typer.Typer(
    help="Classify astronomical image time series (multi-band stamp sequences) with ConvEntion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
EXIT_USER_ERROR = 2


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ConventionError into one line on stderr and exit code 2; show warnings as lines."""

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

    return wrapper


@app.command()
@user_errors
def simulate(
    out: Annotated[Path, typer.Option(help="HDF5 store to write.")] = Path("sdss2-sim.h5"),
    survey: Annotated[str, typer.Option(help="Survey to simulate.")] = "sdss2",
    catalog: Annotated[
        Path | None, typer.Option(help="SDSS-II HEAD catalog: one twin per labelled candidate.")
    ] = None,
    n_objects: Annotated[
        int | None, typer.Option(help="Objects drawn from the built-in distributions [1000].")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 0,
    stamp_size: Annotated[int, typer.Option(help="Stamp side, pixels.")] = 32,
    workers: Annotated[
        int, typer.Option(help="Worker processes (does not change the result).")
    ] = os.cpu_count() or 1,
) -> None:
    """Simulate survey stamp series (SDSS-II Stripe 82) into an HDF5 store."""
    from convention.sim.simulate import SimulationSettings
    from convention.sim.simulate import simulate as run_simulation

    settings = SimulationSettings(
        survey=survey,
        catalog=str(catalog) if catalog is not None else None,
        n_objects=n_objects,
        seed=seed,
        stamp_size=stamp_size,
    )
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("simulating", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        path = run_simulation(settings, out, workers=workers, on_progress=report)
    _describe(path)


def _percentiles(values: np.ndarray, levels=(5, 50, 95)) -> list[str]:
    if len(values) == 0:
        return ["-"] * len(levels)
    return [f"{v:.3g}" for v in np.percentile(values, levels)]


def _describe(path: Path) -> None:
    from convention.bands import get_band
    from convention.io import read

    store = read(path)
    console.print(
        f"[bold]{path}[/bold]: {len(store)} objects, survey {store.survey}, "
        f"stamps {store.stamp_shape[0]}x{store.stamp_shape[1]} at "
        f'{store.pixel_scale}"/pixel'
    )
    if store.provenance.get("command"):
        console.print(f"made by: {store.provenance['command']}", markup=False, highlight=False)
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


@app.command()
@user_errors
def describe(
    data: Annotated[Path, typer.Argument(help="A data set (HDF5 store).")],
) -> None:
    """Print class counts and the distributions of sequence length, seeing and sky noise."""
    _describe(data)


@app.command()
@user_errors
def plot(
    data: Annotated[Path, typer.Argument(help="A data set (HDF5 store).")],
    object_id: Annotated[str, typer.Option("--object", help="Object to draw.")],
    out: Annotated[Path, typer.Option(help="Image file to write (.png, .pdf, ...).")],
    max_epochs: Annotated[int, typer.Option(help="Most epochs (columns) shown.")] = 12,
) -> None:
    """Draw one object: its stamps (band x epoch) and its aperture light curve."""
    import matplotlib.pyplot as plt

    from convention.data.store import check_output_path
    from convention.io import read

    out = check_output_path(out)
    store = read(data)
    if not hasattr(store, "get"):
        raise ConventionError("plotting needs an HDF5 store", path=data)
    series = store.get(object_id)
    fig = series.plot(max_epochs=max_epochs)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    console.print(f"wrote {out}")


def main() -> None:
    """Entry point for ``python -m convention``."""
    app(prog_name="convention")


if __name__ == "__main__":
    sys.exit(main())
