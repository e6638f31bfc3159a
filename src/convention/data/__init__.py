"""The data model (StampSeries) and the HDF5 store."""

from convention.data.series import StampSeries
from convention.data.store import Store, StoreWriter, write_store

__all__ = ["StampSeries", "Store", "StoreWriter", "write_store"]
