"""``store`` format: the package's own HDF5 store (``convention.data.store``), opened
lazily as it is."""

from __future__ import annotations

from pathlib import Path

from convention.data.store import Store
from convention.io.registry import Reader, ReaderOption, parse_names, register_reader

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: Path) -> bool:
    """A file starting with the HDF5 signature."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(8) == HDF5_SIGNATURE


def open_store(path: Path, channels: tuple[str, ...] | None = None) -> Store:
    """The store at ``path``, reading only ``channels`` of its extra images (None: all)."""
    return Store(path, channels=channels)


register_reader(
    Reader(
        name="store",
        help="the package's HDF5 store (what simulate, ingest, render-lightcurves write)",
        detect=is_hdf5,
        open=open_store,
        options=(
            ReaderOption("channels", "extra images read, comma-separated [all]", parse_names),
        ),
    )
)
