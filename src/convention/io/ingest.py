"""Ingesting a reader's objects into a store: size fitting, rejections, the summary.

A reader turns its inputs into a :class:`Collection`: what the data set is (survey, bands,
classes, pixel scale, channels) and an iterator of StampSeries or :class:`Rejected` items.
:func:`ingest` writes the accepted objects to a store (atomically: the store appears only
when ingest succeeds) and counts the rejected ones; in strict mode the first is fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from convention.data.collection import MemoryCollection
from convention.data.series import StampSeries
from convention.data.store import StoreWriter
from convention.errors import ConventionError
from convention.io.stamps import MAX_STAMP_SIDE, fit_stamp

BATCH = 128


@dataclass(frozen=True)
class Rejected:
    """An input file or object that could not be read, and why."""

    error: ConventionError

    @property
    def message(self) -> str:
        return self.error.message


@dataclass(frozen=True)
class DroppedFrame:
    """A frame that could not be used (unreadable, no finite pixel, not 2-D), left out of
    its object, which is kept while it has usable frames."""

    error: ConventionError

    @property
    def message(self) -> str:
        return self.error.message


@dataclass
class Collection:
    """What a reader found.

    Attributes:
        survey: survey of the frames.
        bands: the bands the store will hold.
        class_names: the taxonomy's classes, in order.
        pixel_scale: arcsec per pixel.
        items: the objects, the reasons objects were rejected and the frames dropped
            (each before its object), in input order.
        n_files: number of input files read.
        stamp_shape: natural (H, W) of the format, or None to take the first object's.
        channels: names of the extra images per frame.
        provenance: what the store should record about the inputs and choices made.
        notes: what the reader did that its user should hear of, a line each (re-sent
            alerts dropped).
    """

    survey: str
    bands: Sequence[str]
    class_names: Sequence[str]
    pixel_scale: float
    items: Iterable[StampSeries | Rejected | DroppedFrame]
    n_files: int
    stamp_shape: tuple[int, int] | None = None
    channels: Sequence[str] = ()
    provenance: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class IngestSummary:
    """Counts of one ingest."""

    path: Path
    n_objects: int
    n_files: int
    n_rejected: int
    n_frames: int
    n_fitted: int = 0
    stamp_shape: tuple[int, int] = (0, 0)
    n_dropped: int = 0

    def __str__(self) -> str:
        text = (
            f"ingested {self.n_objects} objects ({self.n_frames} frames) from "
            f"{self.n_files} files; rejected {self.n_rejected}"
        )
        if self.n_dropped:
            text += f"; dropped {self.n_dropped} unusable frames"
        if self.n_fitted:
            h, w = self.stamp_shape
            text += f"; {self.n_fitted} frames of another size cropped or padded to {h}x{w}"
        return text


def resize_series(series: StampSeries, shape: tuple[int, int]) -> StampSeries:
    """The series with every frame and channel centre-cropped or NaN-padded to ``shape``."""
    if series.frames.shape[1:] == tuple(shape):
        return series

    def fit(images: np.ndarray) -> np.ndarray:
        return np.stack([fit_stamp(im, shape) for im in images]) if len(images) else images

    return replace(
        series,
        frames=fit(series.frames),
        channels={k: fit(v) for k, v in series.channels.items()},
    )


def collect(collection: Collection, path: str | Path) -> MemoryCollection:
    """Every object of a reader's Collection in memory, fitted to one stamp size as
    ``ingest`` does (the format's, else the first object's).

    Raises:
        ConventionError: a rejected object or a dropped frame (strict), or no object.
    """
    series: list[StampSeries] = []
    for item in collection.items:
        if isinstance(item, Rejected | DroppedFrame):
            raise item.error
        shape = collection.stamp_shape or (series[0] if series else item).frames.shape[1:]
        series.append(resize_series(item, shape))
    return MemoryCollection(
        series,
        path=path,
        survey=collection.survey,
        bands=collection.bands,
        class_names=collection.class_names,
        pixel_scale=collection.pixel_scale,
        channels=collection.channels,
        provenance=collection.provenance,
    )


def ingest(
    collection: Collection,
    out: str | Path,
    *,
    stamp_size: int | None = None,
    strict: bool = False,
    command: str = "",
    on_reject: Callable[[Rejected | DroppedFrame], None] | None = None,
    on_object: Callable[[StampSeries], None] | None = None,
) -> IngestSummary:
    """Write a reader's objects to a new store.

    Args:
        collection: the reader's output.
        out: the store to write; it appears only when ingest succeeds.
        stamp_size: side of the square stamps stored; stamps of other sizes are
            centre-cropped or NaN-padded. None keeps the format's natural size (or the
            first object's).
        strict: the first rejected input or dropped frame raises instead of being skipped.
        command: the command line, for the provenance.
        on_reject: called with every rejection and every dropped frame (to report it).
        on_object: called after every object written (progress).

    Raises:
        ConventionError: strict mode and a rejected input, nothing ingested, or an
            unwritable output.
    """
    if stamp_size is not None and not 8 <= stamp_size <= MAX_STAMP_SIDE:
        raise ConventionError(f"--stamp-size must be 8..{MAX_STAMP_SIDE} pixels, got {stamp_size}")
    writer: StoreWriter | None = None
    n_objects = n_rejected = n_frames = n_fitted = n_dropped = 0
    batch: list[StampSeries] = []
    try:
        for item in collection.items:
            if isinstance(item, Rejected | DroppedFrame):
                if strict:
                    raise item.error
                n_rejected += isinstance(item, Rejected)
                n_dropped += isinstance(item, DroppedFrame)
                if on_reject is not None:
                    on_reject(item)
                continue
            if writer is None:
                shape = (
                    (stamp_size, stamp_size)
                    if stamp_size
                    else collection.stamp_shape or item.frames.shape[1:]
                )
                provenance = {
                    "command": command,
                    **collection.provenance,
                    "stamp_fit": f"centre-cropped or NaN-padded to {shape[0]}x{shape[1]}",
                }
                writer = StoreWriter(
                    out,
                    survey=collection.survey,
                    bands=collection.bands,
                    class_names=collection.class_names,
                    stamp_shape=shape,
                    pixel_scale=collection.pixel_scale,
                    channels=collection.channels,
                    provenance=provenance,
                )
            if item.frames.shape[1:] != writer.stamp_shape:
                n_fitted += len(item)
            batch.append(resize_series(item, writer.stamp_shape))
            n_objects += 1
            n_frames += len(item)
            if on_object is not None:
                on_object(item)
            if len(batch) >= BATCH:
                writer.append(batch)
                batch = []
        if writer is None:
            raise ConventionError(
                f"no object ingested from {collection.n_files} files (rejected {n_rejected})",
                path=out,
            )
        writer.append(batch)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    writer.close()
    return IngestSummary(
        Path(out),
        n_objects,
        collection.n_files,
        n_rejected,
        n_frames,
        n_fitted,
        writer.stamp_shape,
        n_dropped,
    )
