"""Figures of stamp series: band x epoch stamp grids and aperture light curves.

Figures are made with matplotlib's object API (``matplotlib.figure.Figure``), never
through pyplot, so drawing them neither needs nor changes the user's backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from convention.bands import get_band
from convention.errors import ConventionError
from convention.files import write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from convention.data.series import StampSeries

BAND_COLOURS = {
    "u": "tab:purple",
    "g": "tab:green",
    "r": "tab:red",
    "i": "tab:brown",
    "z": "black",
    "y": "tab:gray",
    "V": "tab:blue",
}


def save_figure(fig: Figure, path: Path, dpi: int = 100) -> None:
    """Save a figure atomically (format from the file name's suffix, PNG without one)."""
    fmt = path.suffix.lstrip(".") or "png"
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt))


def _epochs(series: StampSeries, max_epochs: int) -> np.ndarray:
    nights = np.unique(np.floor(series.mjd))
    if len(nights) > max_epochs:
        nights = nights[np.linspace(0, len(nights) - 1, max_epochs).round().astype(int)]
    return nights


def plot_lightcurve(series: StampSeries, ax: Axes | None = None) -> Axes:
    """The object's own light curve where it has one (alerts, PLAsTiCC; non-detections as
    open markers), else aperture photometry on its stamps; one colour per band."""
    ax = ax or Figure(figsize=(8, 3)).add_subplot()
    own = series.lightcurve is not None and len(series.lightcurve) > 0
    lc = series.lightcurve if own else series.to_lightcurve()
    for name in sorted(set(lc["band"]), key=lambda n: get_band(n).id):
        letter = get_band(name).letter
        colour = BAND_COLOURS.get(letter)
        for detected in (True, False):
            sel = (lc["band"] == name) & (np.asarray(lc["detected"]) == detected)
            if not sel.any():
                continue
            ax.errorbar(
                lc["mjd"][sel],
                lc["flux"][sel],
                yerr=lc["flux_err"][sel],
                fmt="o",
                ms=3,
                color=colour,
                mfc=colour if detected else "none",
                label=letter if detected or not own else None,
            )
    ax.set_xlabel("MJD")
    ax.set_ylabel("flux (source photometry)" if own else "aperture flux")
    ax.legend(ncols=6, fontsize=8, loc="best")
    return ax


def plot_series(series: StampSeries, max_epochs: int = 12, fig: Figure | None = None) -> Figure:
    """Stamps as a band (rows) x epoch (columns) grid, aperture light curve underneath.

    Each band row shares one asinh stretch in units of its median sky noise, so brightness
    changes read across the row.

    Raises:
        ConventionError: ``max_epochs`` below 1.
    """
    if max_epochs < 1:
        raise ConventionError(f"--max-epochs must be at least 1, got {max_epochs}")
    bands = sorted(set(series.band.tolist()))
    nights = _epochs(series, max_epochs)
    n_rows, n_cols = len(bands), max(len(nights), 1)
    fig = fig or Figure(figsize=(1.1 * n_cols + 1, 1.1 * n_rows + 3))
    grid = GridSpec(n_rows + 2, n_cols, figure=fig, hspace=0.08, wspace=0.04)
    for row, band_id in enumerate(bands):
        in_band = series.band == band_id
        noise = float(np.median(series.sky_sigma[in_band]))
        noise = noise if np.isfinite(noise) and noise > 0 else 1.0
        finite = series.frames[in_band][np.isfinite(series.frames[in_band])] / noise
        top = np.arcsinh(max(np.percentile(finite, 99.9) if finite.size else 0.0, 8.0))
        letter = get_band(band_id).letter
        for col, night in enumerate(nights):
            ax = fig.add_subplot(grid[row, col])
            ax.set_xticks([])
            ax.set_yticks([])
            match = np.flatnonzero(in_band & (np.floor(series.mjd) == night))
            if match.size:
                image = np.arcsinh(series.frames[match[0]] / noise)
                ax.imshow(image, origin="lower", cmap="gray", vmin=np.arcsinh(-3), vmax=top)
            else:
                ax.set_facecolor("0.85")
            if col == 0:
                ax.set_ylabel(letter, rotation=0, labelpad=8)
            if row == 0:
                ax.set_title(f"{night:.0f}", fontsize=7)
    lc_ax = fig.add_subplot(grid[n_rows:, :])
    plot_lightcurve(series, ax=lc_ax)
    fig.suptitle(
        f"{series.object_id}  {series.label or 'unlabelled'}"
        + (f" ({series.subtype})" if series.subtype else "")
        + (f"  z={series.redshift:.3f}" if np.isfinite(series.redshift) else "")
    )
    return fig
