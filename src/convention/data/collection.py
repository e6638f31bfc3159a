"""The collection protocol every data set satisfies (the HDF5 store and every reader's
in-memory collection), an in-memory collection, and a lazy view of some of its objects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from astropy.table import Table

from convention.bands import get_band
from convention.data.reference import reference_table
from convention.data.series import PER_FRAME, StampSeries
from convention.errors import ConventionError
from convention.metadata import NAMES as METADATA


@runtime_checkable
class SeriesCollection(Protocol):
    """A data set of StampSeries: what training, evaluation, prediction, ``describe`` and
    ``plot`` read. :class:`~convention.data.store.Store` and :class:`MemoryCollection`
    satisfy it.

    Attributes:
        path: where it was read from.
        survey: survey of the frames.
        bands: canonical band names it holds, in order.
        class_names: the taxonomy's classes, in order.
        pixel_scale: arcsec per pixel.
        stamp_shape: (H, W) of every frame.
        channels: names of the extra images per frame.
        provenance: what made it (command, inputs, choices).
    """

    path: Path
    survey: str
    bands: list[str]
    class_names: list[str]
    pixel_scale: float
    stamp_shape: tuple[int, ...]
    channels: list[str]
    provenance: dict

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[StampSeries]: ...

    def __getitem__(self, index: int) -> StampSeries: ...

    def get(self, object_id: str) -> StampSeries:
        """The object with this id (ConventionError when there is none)."""
        ...

    def read_range(self, first: int, stop: int) -> list[StampSeries]:
        """Objects ``first .. stop - 1``, read at once (a store reads each dataset once)."""
        ...

    @property
    def object_ids(self) -> list[str]:
        """Object ids, in order."""
        ...

    @property
    def labels(self) -> list[str | None]:
        """Class name of every object (None = unlabelled), in order."""
        ...

    @property
    def lengths(self) -> np.ndarray:
        """Number of frames of every object."""
        ...

    @property
    def lightcurve_rows(self) -> np.ndarray:
        """Observations in every object's own light curve (-1: it has none)."""
        ...

    def object_table(self) -> Table:
        """One row per object, no frames: ``object_id, ra, dec, redshift, label, subtype,
        n_frames``, then each catalogue field of ``convention.metadata`` (NaN: not
        measured)."""
        ...

    def frame_table(self) -> Table:
        """Every frame's metadata (no pixels), with its object's row (``object_row``)."""
        ...

    def reference_table(self) -> Table:
        """Every reference the source gave (no pixels): ``object_row, band`` (id),
        ``kind, n_frames, mjd_start, mjd_end, psf_fwhm, sky_sigma``."""
        ...


def median_reference_objects(collection: SeriesCollection) -> np.ndarray:
    """(K,) bool: the objects with a band of frames but no reference of the source's in
    it (that band's reference is the median-of-frames fallback), from the tables alone."""
    frames, references = collection.frame_table(), collection.reference_table()

    def pairs(table: Table) -> np.ndarray:  # (object row, band id) as one integer
        return np.asarray(table["object_row"], np.int64) * 2**16 + np.asarray(table["band"])

    lacking = np.setdiff1d(pairs(frames), pairs(references)) // 2**16
    fallback = np.zeros(len(collection.object_ids), dtype=bool)
    fallback[lacking] = True
    return fallback


class MemoryCollection(Sequence[StampSeries]):
    """StampSeries held in memory with what the data set is (a reader's objects).

    Args:
        series: the objects, every frame of one shape.
        path: the input they were read from.
        survey, bands, class_names, pixel_scale, channels, provenance: see
            :class:`SeriesCollection`.

    Raises:
        ConventionError: no objects, frames of several shapes, or a repeated object id.
    """

    def __init__(
        self,
        series: Sequence[StampSeries],
        *,
        path: str | Path,
        survey: str,
        bands: Sequence[str],
        class_names: Sequence[str],
        pixel_scale: float,
        channels: Sequence[str] = (),
        provenance: dict | None = None,
    ):
        self.path = Path(path)
        self._series = list(series)
        if not self._series:
            raise ConventionError("no objects", path=self.path)
        shapes = {s.frames.shape[1:] for s in self._series}
        if len(shapes) > 1:
            raise ConventionError(f"stamps of several shapes {sorted(shapes)}", path=self.path)
        self.stamp_shape = tuple(int(n) for n in shapes.pop())
        self.survey = survey
        self.bands = [get_band(b, survey).name for b in bands]
        self.class_names = list(class_names)
        self.pixel_scale = float(pixel_scale)
        self.channels = list(channels)
        self.provenance = dict(provenance or {})
        self._positions: dict[str, int] = {}
        for k, s in enumerate(self._series):
            if s.object_id in self._positions:
                raise ConventionError("duplicate object_id", path=self.path, obj=s.object_id)
            self._positions[s.object_id] = k

    def __len__(self) -> int:
        return len(self._series)

    def __getitem__(self, index: int) -> StampSeries:  # type: ignore[override]
        return self._series[index]

    def __iter__(self) -> Iterator[StampSeries]:
        return iter(self._series)

    def read_range(self, first: int, stop: int) -> list[StampSeries]:
        if not 0 <= first <= stop <= len(self):
            raise IndexError(f"object range {first}..{stop} out of range for {len(self)} objects")
        return self._series[first:stop]

    def get(self, object_id: str) -> StampSeries:
        """The object with this id.

        Raises:
            ConventionError: no such object.
        """
        if str(object_id) not in self._positions:
            raise ConventionError("no such object", path=self.path, obj=object_id)
        return self._series[self._positions[str(object_id)]]

    @property
    def object_ids(self) -> list[str]:
        return [s.object_id for s in self._series]

    @property
    def labels(self) -> list[str | None]:
        return [s.label for s in self._series]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self._series], dtype=np.int32)

    @property
    def lightcurve_rows(self) -> np.ndarray:
        return np.array(
            [len(s.lightcurve) if s.lightcurve is not None else -1 for s in self._series],
            dtype=np.int32,
        )

    def object_table(self) -> Table:
        return Table(
            {
                "object_id": self.object_ids,
                "ra": [s.ra for s in self._series],
                "dec": [s.dec for s in self._series],
                "redshift": [s.redshift for s in self._series],
                "label": [s.label or "" for s in self._series],
                "subtype": [s.subtype or "" for s in self._series],
                "n_frames": self.lengths,
                **{name: [s.metadata.get(name, np.nan) for s in self._series] for name in METADATA},
            }
        )

    def frame_table(self) -> Table:
        columns = (*PER_FRAME, "true_flux")
        table = Table({c: np.concatenate([getattr(s, c) for s in self._series]) for c in columns})
        table["object_row"] = np.repeat(np.arange(len(self)), self.lengths)
        return table

    def reference_table(self) -> Table:
        rows = [
            (k, band, ref)
            for k, s in enumerate(self._series)
            for band, ref in sorted(s.references.items())
        ]
        return reference_table(
            [k for k, _, _ in rows], [band for _, band, _ in rows], [ref for _, _, ref in rows]
        )

    def __repr__(self) -> str:
        return f"MemoryCollection({str(self.path)!r}, {len(self)} objects, survey={self.survey!r})"


class Subset(Sequence[StampSeries]):
    """The objects of a collection at some positions, read on access (a split)."""

    def __init__(self, collection: Sequence[StampSeries], rows: Sequence[int]):
        self.collection = collection
        self.rows = [int(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> StampSeries:  # type: ignore[override]
        return self.collection[self.rows[index]]

    def __iter__(self) -> Iterator[StampSeries]:
        for row in self.rows:
            yield self.collection[row]
