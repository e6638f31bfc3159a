"""Data formats in and out: ``read(path, **options)`` opens any registered format, ``scan``
gives a format's objects for ``ingest`` (``convention.io.registry``); one module per
format in ``convention.io.formats`` registers its reader.

Formats: ``store`` (the package's HDF5 store), ``fits`` (a folder of FITS stamps described
by an epochs table), ``crts`` (CRTS-TAO files, one per object) and ``alerts`` (ZTF or
Rubin alert packets, Avro). ``read`` opens a store lazily and reads the other formats into
a :class:`~convention.data.collection.MemoryCollection`; either satisfies the
:class:`~convention.data.collection.SeriesCollection` protocol. Beside them: ingest to a
store (``ingest.py``), light-curve exports (``export.py``, ``snana.py``), PLAsTiCC light
curves rendered to stamps (``plasticc.py``) and prediction tables (``predictions.py``).
"""

from convention.io.registry import get_reader, read, readers, register_reader, scan

__all__ = ["get_reader", "read", "readers", "register_reader", "scan"]
