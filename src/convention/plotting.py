"""Figures of stamp series: band x epoch stamp grids with reference and difference rows,
difference light curves with upper limits, and a model's class probabilities over time.

Figures are made with matplotlib's object API (``matplotlib.figure.Figure``), never
through pyplot, so drawing them neither needs nor changes the user's backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.patches import Rectangle

from convention.bands import get_band
from convention.data.reference import MEDIAN_OF_FRAMES
from convention.data.series import references_of
from convention.errors import ConventionError
from convention.files import write_atomic
from convention.lightcurves import SUPPLIED_ELSE_FORCED, lightcurve_of
from convention.photometry import DIFFERENCE_CHANNEL, difference_stamps

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from convention.classifier import ProbabilityHistory
    from convention.data.reference import Reference
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


# A point is a detection at this signal to noise; below it, an upper limit at this many
# sigma (ZTF's and Rubin's alert threshold).
DETECTION_SIGMA = 5.0


def plot_lightcurve(series: StampSeries, ax: Axes | None = None) -> Axes:
    """The object's light curve, one colour and one legend entry per band: its own where it
    has one (alerts, PLAsTiCC), else forced PSF photometry on its stamps less each band's
    reference stamp (``lightcurves.SUPPLIED_ELSE_FORCED``), so the transient is seen, not
    its host. Detections are points with error bars; non-detections (below
    ``DETECTION_SIGMA`` sigma, either sign) are upper limits at ``DETECTION_SIGMA`` times
    their error."""
    ax = ax or Figure(figsize=(8, 3)).add_subplot()
    own = series.lightcurve is not None and len(series.lightcurve) > 0
    lc = lightcurve_of(series, SUPPLIED_ELSE_FORCED)
    flux, err = np.asarray(lc["flux"], dtype=float), np.asarray(lc["flux_err"], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        measured = (
            np.asarray(lc["detected"], dtype=bool) if own else np.abs(flux / err) >= DETECTION_SIGMA
        )
    for name in sorted(set(lc["band"]), key=lambda n: get_band(n).id):
        letter = get_band(name).letter
        colour = BAND_COLOURS.get(letter)
        in_band = np.asarray(lc["band"] == name)
        label = letter
        if (in_band & measured).any():
            sel = in_band & measured
            ax.errorbar(
                lc["mjd"][sel], flux[sel], yerr=err[sel], fmt="o", ms=3, color=colour, label=label
            )
            label = None
        limits = in_band & ~measured & np.isfinite(err)
        if limits.any():
            ax.scatter(
                lc["mjd"][limits],
                DETECTION_SIGMA * err[limits],
                marker="v",
                s=14,
                facecolors="none",
                edgecolors=colour,
                label=label,
            )
    ax.axhline(0.0, color="0.7", lw=0.6, zorder=0)
    ax.set_xlabel("MJD")
    ax.set_ylabel("flux (source photometry)" if own else "difference flux (PSF)")
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda k: get_band(labels[k], series.survey).id)
    ax.legend(
        [handles[k] for k in order],
        [labels[k] for k in order],
        ncols=6,
        fontsize=8,
        loc="best",
        title=f"open v: {DETECTION_SIGMA:g}-sigma limit",
    )
    return ax


def plot_probability_history(history: ProbabilityHistory, ax: Axes | None = None) -> Axes:
    """Each class's probability after each observing night, one line per class
    (``Classifier.over_time``)."""
    ax = ax or Figure(figsize=(8, 2.5)).add_subplot()
    for k, name in enumerate(history.classes):
        ax.plot(history.mjd, history.proba[:, k], "o-", ms=3, label=name)
    ax.set_ylim(0, 1)
    ax.set_xlabel("MJD")
    ax.set_ylabel("probability")
    ax.grid(alpha=0.3)
    ax.legend(ncols=len(history.classes), fontsize=8, loc="best", title="classified up to then")
    return ax


def _reference_title(references: Iterable[Reference]) -> str:
    """What the reference column shows: templates, the median-of-frames fallback, or both."""
    fallback = {ref.kind == MEDIAN_OF_FRAMES for ref in references}
    return {frozenset({False}): "reference", frozenset({True}): "median"}.get(
        frozenset(fallback), "ref / median"
    )


# The stamps of a row are tiles of one image, each outlined: one Axes per row rather than
# one per stamp (110 of them for five bands of ten epochs, most of an evaluate report's
# time).
MISSING_GREY = 0.85


def _gap(shape: tuple[int, int]) -> int:
    """Pixels between two tiles of a stamp row."""
    return max(1, shape[1] // 10)


def _stamp_row(
    ax: Axes, stamps: list[np.ndarray | None], shape: tuple[int, int], noise: float, top: float
) -> Axes:
    """Draw (H, W) stamps side by side on ``ax`` as grey-scale tiles: ``asinh(x / noise)``
    from ``asinh(-3)`` (black) to ``top`` (white), missing pixels white, a missing stamp
    (None) a grey tile, each tile outlined."""
    h, w = shape
    gap = _gap(shape)
    mosaic = np.ones((h, len(stamps) * (w + gap) - gap, 3))
    low = np.arcsinh(-3.0)
    for col, image in enumerate(stamps):
        x = col * (w + gap)
        if image is None:
            tile = np.full(shape, MISSING_GREY)
        else:
            tile = np.clip((np.arcsinh(image / noise) - low) / (top - low), 0.0, 1.0)
            tile = np.where(np.isfinite(image), tile, 1.0)
        mosaic[:, x : x + w] = tile[..., None]
        outline = Rectangle((x - 0.5, -0.5), w, h, fill=False, lw=0.8, edgecolor="black")
        ax.add_patch(outline).set_clip_on(False)  # on the image's edge: kept whole
    ax.imshow(mosaic, origin="lower")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


def _column_titles(ax: Axes, titles: list[str], shape: tuple[int, int]) -> None:
    """Each tile's title above a stamp row drawn by ``_stamp_row``."""
    h, w = shape
    for col, title in enumerate(titles):
        x = col * (w + _gap(shape)) + (w - 1) / 2
        ax.text(x, h, title, ha="center", va="bottom", fontsize=7)


def plot_series(
    series: StampSeries,
    max_epochs: int = 12,
    fig: Figure | None = None,
    history: ProbabilityHistory | None = None,
) -> Figure:
    """Stamps as a grid, each band two rows (the frames, then the frames less the band's
    reference stamp, PSF-matched, or the source's own difference stamps where it gives
    them) by epoch columns, the reference stamp in the first
    column (titled ``median`` when it is the median-of-frames fallback); the
    difference light curve underneath, and under it, when ``history`` is given, the class
    probabilities over the same dates.

    Each band's rows share one asinh stretch in units of its median sky noise, so
    brightness changes read across them.

    Raises:
        ConventionError: ``max_epochs`` below 1.
    """
    if max_epochs < 1:
        raise ConventionError(f"--max-epochs must be at least 1, got {max_epochs}")
    bands = sorted(set(series.band.tolist()))
    nights = _epochs(series, max_epochs)
    references = references_of(series)
    differences = series.channels.get(DIFFERENCE_CHANNEL)
    if differences is None:
        differences = difference_stamps(series, references)
    n_rows, n_cols = 2 * len(bands), max(len(nights), 1) + 1
    below = 2 if history is None else 4
    # At least 6.5 inches wide: the light curve's and probabilities' legends fit beside
    # a short series (an alert with one epoch).
    fig = fig or Figure(figsize=(max(1.1 * n_cols + 1, 6.5), 1.1 * n_rows + 1.5 * below))
    inches = fig.get_figheight()  # margins in inches: fractions leave a tall figure gaping
    grid = GridSpec(
        n_rows + below, 1, figure=fig, hspace=0.08, top=1 - 0.55 / inches, bottom=0.55 / inches
    )

    shape = series.frames.shape[1:]
    for k, band_id in enumerate(bands):
        in_band = series.band == band_id
        noise = float(np.median(series.sky_sigma[in_band]))
        noise = noise if np.isfinite(noise) and noise > 0 else 1.0
        finite = series.frames[in_band][np.isfinite(series.frames[in_band])] / noise
        top = np.arcsinh(max(np.percentile(finite, 99.9) if finite.size else 0.0, 8.0))
        letter = get_band(band_id).letter
        frames: list[np.ndarray | None] = [references[int(band_id)].stamp]
        band_differences: list[np.ndarray | None] = [None]
        for night in nights:
            match = np.flatnonzero(in_band & (np.floor(series.mjd) == night))
            frames.append(series.frames[match[0]] if match.size else None)
            band_differences.append(differences[match[0]] if match.size else None)
        frame_ax = _stamp_row(fig.add_subplot(grid[2 * k, :]), frames, shape, noise, top)
        frame_ax.set_ylabel(letter, rotation=0, labelpad=8)
        if k == 0:
            titles = [_reference_title(references.values()), *(f"{n:.0f}" for n in nights)]
            _column_titles(frame_ax, titles, shape)
        difference_ax = fig.add_subplot(grid[2 * k + 1, :])
        _stamp_row(difference_ax, band_differences, shape, noise, top)
        difference_ax.set_ylabel(f"{letter} - ref", rotation=0, labelpad=16, fontsize=8)
    lc_ax = fig.add_subplot(grid[n_rows : n_rows + 2, :])
    plot_lightcurve(series, ax=lc_ax)
    if history is not None:
        lc_ax.set_xlabel("")
        lc_ax.tick_params(labelbottom=False)
        history_ax = fig.add_subplot(grid[n_rows + 2 :, :], sharex=lc_ax)
        plot_probability_history(history, ax=history_ax)
    fig.suptitle(
        f"{series.object_id}  {series.label or 'unlabelled'}"
        + (f" ({series.subtype})" if series.subtype else "")
        + (f"  z={series.redshift:.3f}" if np.isfinite(series.redshift) else "")
    )
    return fig
