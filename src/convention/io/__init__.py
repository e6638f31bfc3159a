"""Readers of data formats; ``read(path)`` detects the format and dispatches.

Each reader registers a detector and an opener. Formats of the field (FITS stamp tables,
ZTF alerts, light curves) register here beside the package's own HDF5 store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from convention.data.series import StampSeries
from convention.data.store import Store
from convention.errors import ConventionError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(8) == _HDF5_SIGNATURE


READERS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], Sequence[StampSeries]]]] = {
    "store": (_is_hdf5, Store),
}


def read(path: str | Path, format: str | None = None) -> Sequence[StampSeries]:
    """Open a data set as a sequence of StampSeries.

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
        if path.is_file() and detect(path):
            return open_(path)
    raise ConventionError(f"unrecognised format (known: {', '.join(READERS)})", path=path)
