"""The data model (StampSeries), the collection protocol every data set satisfies, and
the HDF5 store."""

from convention.data.collection import MemoryCollection, SeriesCollection
from convention.data.series import StampSeries
from convention.data.store import Store, StoreWriter, write_store

__all__ = [
    "MemoryCollection",
    "SeriesCollection",
    "StampSeries",
    "Store",
    "StoreWriter",
    "write_store",
]
