"""convention: classify astronomical image time series with ConvEntion."""

from importlib.metadata import PackageNotFoundError, version

from convention.data import (
    MemoryCollection,
    SeriesCollection,
    StampSeries,
    Store,
    StoreWriter,
    write_store,
)
from convention.errors import ConventionError
from convention.io import read

try:
    __version__ = version("convention")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ConventionError",
    "MemoryCollection",
    "SeriesCollection",
    "StampSeries",
    "Store",
    "StoreWriter",
    "__version__",
    "read",
    "write_store",
]
