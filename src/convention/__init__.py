"""convention: classify astronomical image time series with ConvEntion."""

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
from convention.version import __version__

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
