"""Readers of data formats; ``read(path)`` detects the format and dispatches.

Formats: ``store`` (the package's HDF5 store), ``fits`` (a folder of FITS stamps described
by an epochs table), ``crts`` (CRTS-TAO files, one per object) and ``alerts`` (ZTF or
Rubin alert packets, Avro). ``read`` opens a store lazily and reads the other formats into a
:class:`~convention.data.collection.MemoryCollection` (strictly: a bad file raises, and
stamps are fitted to one size as ``ingest`` does); either satisfies the
:class:`~convention.data.collection.SeriesCollection` protocol. ``convention ingest``
writes them to a store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from convention.data.collection import MemoryCollection, SeriesCollection
from convention.data.store import Store
from convention.errors import ConventionError
from convention.io.alerts import is_alert_file, scan_alerts
from convention.io.crts import is_crts_file, scan_crts
from convention.io.fits_table import is_stamp_folder, scan_stamp_folders
from convention.io.ingest import Collection, DroppedFrame, Rejected, resize_series

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(8) == _HDF5_SIGNATURE


def _is_alerts(path: Path) -> bool:
    if path.is_dir():
        return any(path.glob("*.avro"))
    return is_alert_file(path)


def _is_crts(path: Path) -> bool:
    if path.is_dir():
        return any(is_crts_file(p) for p in sorted(path.glob("*.fits"))[:1])
    return is_crts_file(path)


def scan(format: str, inputs: Sequence[Path], **options) -> Collection:
    """A reader's Collection for inputs of one format (options go to the reader).

    Raises:
        ConventionError: unknown format or missing input.
    """
    if format not in SCANNERS:
        raise ConventionError(f"unknown format {format!r}; known: {', '.join(SCANNERS)}")
    inputs = [Path(p) for p in inputs]
    for path in inputs:
        if not path.exists():
            raise ConventionError("no such file or folder", path=path)
    return SCANNERS[format](inputs, **options)


def _read_all(format: str) -> Callable[[Path], MemoryCollection]:
    def read_all(path: Path) -> MemoryCollection:
        collection = scan(format, [path])
        series = []
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

    return read_all


SCANNERS: dict[str, Callable[..., Collection]] = {
    "fits": scan_stamp_folders,
    "crts": scan_crts,
    "alerts": scan_alerts,
}

READERS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], SeriesCollection]]] = {
    "store": (_is_hdf5, Store),
    "fits": (is_stamp_folder, _read_all("fits")),
    "crts": (_is_crts, _read_all("crts")),
    "alerts": (_is_alerts, _read_all("alerts")),
}


def read(path: str | Path, format: str | None = None) -> SeriesCollection:
    """Open a data set: a store, or the objects of another format read into memory.

    Args:
        path: a file (or folder) in one of the registered formats.
        format: a key of ``READERS``; detected from the content when None.

    Raises:
        ConventionError: missing file, unknown format, or a file no reader recognises.
    """
    path = Path(path)
    if not path.exists():
        raise ConventionError("no such file", path=path)
    if format is not None:
        if format not in READERS:
            raise ConventionError(f"unknown format {format!r}; known: {', '.join(READERS)}")
        return READERS[format][1](path)
    for detect, open_ in READERS.values():
        if detect(path):
            return open_(path)
    raise ConventionError(f"unrecognised format (known: {', '.join(READERS)})", path=path)
