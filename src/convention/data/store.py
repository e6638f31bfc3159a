"""HDF5 store: many StampSeries in one file.

Layout (schema version 4; version 3 lacks the catalogue metadata, version 2 also
references, version 1 also channels and light curves, and all still read: their objects'
metadata is not measured, their references the median-of-frames fallback)::

    /frames             (N, H, W) float32, all frames of all objects, object after object
    /channel/<name>     (N, H, W) float32 extra images of every frame (``difference``, ...)
    /frame/<column>     (N,) per-frame mjd, band, psf_fwhm, sky_sigma, zeropoint, true_flux
    /lightcurve/<col>   (L,) the objects' own photometry, object after object: mjd, band,
                        flux, flux_err, detected
    /reference/stamps   (R, H, W) float32 the objects' reference stamps, object after object
    /reference/<col>    (R,) band, kind (0 template, 1 median-of-frames), n_frames,
                        mjd_start, mjd_end, psf_fwhm, sky_sigma of each
    /object/<column>    (K,) per-object object_id, ra, dec, redshift, label, subtype,
                        start (first row in /frames), count (number of frames),
                        lc_start, lc_count (rows in /lightcurve; count -1 = none),
                        ref_start, ref_count (rows in /reference)
    /object/meta/<name> (K,) float32 each catalogue field of ``convention.metadata``
                        (NaN: not measured)
    attrs               schema_version, survey, bands, class_names, pixel_scale, channels,
                        provenance

Frames are chunked 32 frames at a time so reading one object touches a few chunks. They are
not compressed: sky-noise-dominated float32 pixels shrink by only 14% under gzip, and
reading 64 objects at a time is 6.3 times faster without it (``benchmarks/store_read.py``;
stores written compressed still read). Writing
goes to a temporary file beside the target that is renamed only when complete; objects are
appended in batches, so memory stays bounded by the batch. Readers open the file lazily in
each process, so a Store can be handed to DataLoader worker processes.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np
from astropy.table import Table

from convention.bands import get_band
from convention.data.lightcurve import make_lightcurve
from convention.data.reference import KINDS as REFERENCE_KINDS
from convention.data.reference import PROVENANCE, Reference, reference_table
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.files import check_input_path, check_output_path, temporary_beside
from convention.metadata import NAMES as METADATA

SCHEMA_VERSION = 4
READABLE_SCHEMAS = (1, 2, 3, 4)
FRAME_CHUNK = 32
_FRAME_COLUMNS = {
    "mjd": np.float64,
    "band": np.int16,
    "psf_fwhm": np.float32,
    "sky_sigma": np.float32,
    "zeropoint": np.float32,
    "true_flux": np.float32,
}
_OBJECT_COLUMNS = {
    "ra": np.float64,
    "dec": np.float64,
    "redshift": np.float32,
    "label": np.int16,
    "start": np.int64,
    "count": np.int32,
}
_LIGHTCURVE_INDEX = {"lc_start": np.int64, "lc_count": np.int32}
_LIGHTCURVE_COLUMNS = {
    "mjd": np.float64,
    "band": np.int16,
    "flux": np.float64,
    "flux_err": np.float64,
    "detected": np.bool_,
}
_REFERENCE_INDEX = {"ref_start": np.int64, "ref_count": np.int32}
# band, kind, then the Reference's PROVENANCE fields.
_REFERENCE_COLUMNS = {
    "band": np.int16,
    "kind": np.int8,
    "n_frames": np.int32,
    "mjd_start": np.float64,
    "mjd_end": np.float64,
    "psf_fwhm": np.float32,
    "sky_sigma": np.float32,
}
_STRING_COLUMNS = ("object_id", "subtype")
_STR = h5py.string_dtype()


class StoreWriter:
    """Write StampSeries to a new store, atomically, in batches.

    Use as a context manager: the file appears at ``path`` only when the block ends without
    an exception; otherwise the temporary file is removed and nothing is left behind.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        survey: str,
        bands: Sequence[str],
        class_names: Sequence[str],
        stamp_shape: tuple[int, int],
        pixel_scale: float,
        channels: Sequence[str] = (),
        provenance: dict | None = None,
    ):
        self.path = check_output_path(path)
        self.channels = list(channels)
        self.bands = [get_band(b, survey).name for b in bands]
        self._band_ids = {get_band(b).id for b in self.bands}
        self.class_names = list(class_names)
        self.stamp_shape = tuple(int(s) for s in stamp_shape)
        self._attrs = {
            "schema_version": SCHEMA_VERSION,
            "survey": survey,
            "bands": self.bands,
            "class_names": self.class_names,
            "pixel_scale": float(pixel_scale),
            "stamp_shape": list(self.stamp_shape),
            "channels": self.channels,
            "provenance": json.dumps(provenance or {}, sort_keys=True),
        }
        self._ids: set[str] = set()
        self._n_frames = 0
        self._n_objects = 0
        self._n_lightcurve = 0
        self._n_references = 0
        self._tmp = temporary_beside(self.path)
        try:
            self._file = h5py.File(self._tmp, "w", track_order=False, rdcc_nbytes=0)
        except OSError as err:
            self._tmp.unlink(missing_ok=True)
            reason = os.strerror(err.errno) if err.errno else "cannot create the file"
            raise ConventionError(reason, path=self.path.parent) from None
        try:
            self._create_datasets()
        except BaseException:
            self.abort()
            raise

    def _create_datasets(self) -> None:
        h, w = self.stamp_shape
        for name in ("frames", *(f"channel/{c}" for c in self.channels), "reference/stamps"):
            self._file.create_dataset(
                name,
                shape=(0, h, w),
                maxshape=(None, h, w),
                dtype=np.float32,
                chunks=(FRAME_CHUNK, h, w),
            )
        for name, dtype in _LIGHTCURVE_COLUMNS.items():
            self._file.create_dataset(
                f"lightcurve/{name}", shape=(0,), maxshape=(None,), dtype=dtype, chunks=(4096,)
            )
        for name, dtype in _FRAME_COLUMNS.items():
            self._file.create_dataset(
                f"frame/{name}", shape=(0,), maxshape=(None,), dtype=dtype, chunks=(4096,)
            )
        for name, dtype in _REFERENCE_COLUMNS.items():
            self._file.create_dataset(
                f"reference/{name}", shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1024,)
            )
        for name, dtype in {**_OBJECT_COLUMNS, **_LIGHTCURVE_INDEX, **_REFERENCE_INDEX}.items():
            self._file.create_dataset(
                f"object/{name}", shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1024,)
            )
        for name in _STRING_COLUMNS:
            self._file.create_dataset(
                f"object/{name}", shape=(0,), maxshape=(None,), dtype=_STR, chunks=(1024,)
            )
        for name in METADATA:
            self._file.create_dataset(
                f"object/meta/{name}",
                shape=(0,),
                maxshape=(None,),
                dtype=np.float32,
                chunks=(1024,),
            )

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _label_code(self, series: StampSeries) -> int:
        if series.label is None:
            return -1
        if series.label not in self.class_names:
            raise ConventionError(
                f"label {series.label!r} is not one of the store's classes {self.class_names}",
                obj=series.object_id,
            )
        return self.class_names.index(series.label)

    def _check(self, series: StampSeries) -> None:
        if series.object_id in self._ids:
            raise ConventionError("duplicate object_id", path=self.path, obj=series.object_id)
        if series.frames.shape[1:] != self.stamp_shape:
            raise ConventionError(
                f"stamps are {series.frames.shape[1:]}, the store holds {self.stamp_shape}",
                path=self.path,
                obj=series.object_id,
            )
        if sorted(series.channels) != sorted(self.channels):
            raise ConventionError(
                f"channels {sorted(series.channels)} are not the store's {self.channels}",
                path=self.path,
                obj=series.object_id,
            )
        fields = sorted(set(series.metadata) - set(METADATA))
        if fields:
            raise ConventionError(
                f"metadata fields {fields} are not catalogue fields ({', '.join(METADATA)})",
                path=self.path,
                obj=series.object_id,
            )
        unknown = set(np.unique(series.band).tolist()) - self._band_ids
        unknown |= set(series.references) - self._band_ids
        if series.lightcurve is not None:
            unknown |= {get_band(b).id for b in set(series.lightcurve["band"])} - self._band_ids
        if unknown:
            names = [get_band(b).name for b in sorted(unknown)]
            raise ConventionError(
                f"bands {names} are not among the store's bands {self.bands}",
                path=self.path,
                obj=series.object_id,
            )

    def append(self, batch: Iterable[StampSeries]) -> None:
        """Append a batch of objects (written at once; keep batches of bounded size).

        Raises:
            ConventionError: an object the store cannot hold, or a write that failed (a
                full disk): the store is then dropped, nothing left behind.
        """
        batch = list(batch)
        if not batch:
            return
        try:
            self._append(batch)
        except OSError as err:
            self.abort()
            raise write_failed(err, self.path) from None

    def _append(self, batch: list[StampSeries]) -> None:
        for series in batch:
            self._check(series)
            self._ids.add(series.object_id)
        counts = np.array([len(s) for s in batch], dtype=np.int64)
        starts = self._n_frames + np.concatenate([[0], np.cumsum(counts)[:-1]])
        new_frames = self._n_frames + int(counts.sum())
        f = self._file
        f["frames"].resize(new_frames, axis=0)
        f["frames"][self._n_frames : new_frames] = np.concatenate([s.frames for s in batch])
        for name in self.channels:
            f[f"channel/{name}"].resize(new_frames, axis=0)
            f[f"channel/{name}"][self._n_frames : new_frames] = np.concatenate(
                [s.channels[name] for s in batch]
            )
        lc_start, lc_count = self._append_lightcurves(batch)
        ref_start, ref_count = self._append_references(batch)
        for name in _FRAME_COLUMNS:
            values = np.concatenate([getattr(s, name) for s in batch])
            f[f"frame/{name}"].resize(new_frames, axis=0)
            f[f"frame/{name}"][self._n_frames : new_frames] = values
        columns = {
            "ra": [s.ra for s in batch],
            "dec": [s.dec for s in batch],
            "redshift": [s.redshift for s in batch],
            "label": [self._label_code(s) for s in batch],
            "start": starts,
            "count": counts,
            "object_id": [s.object_id for s in batch],
            "subtype": [s.subtype or "" for s in batch],
            "lc_start": lc_start,
            "lc_count": lc_count,
            "ref_start": ref_start,
            "ref_count": ref_count,
            **{f"meta/{name}": [s.metadata.get(name, np.nan) for s in batch] for name in METADATA},
        }
        new_objects = self._n_objects + len(batch)
        for name, values in columns.items():
            f[f"object/{name}"].resize(new_objects, axis=0)
            f[f"object/{name}"][self._n_objects : new_objects] = values
        self._n_frames, self._n_objects = new_frames, new_objects

    def _append_lightcurves(self, batch: list[StampSeries]) -> tuple[np.ndarray, np.ndarray]:
        """Append the batch's light curves; their (start, count) rows, count -1 for none."""
        tables = [s.lightcurve for s in batch]
        counts = np.array([-1 if t is None else len(t) for t in tables], dtype=np.int64)
        sizes = np.maximum(counts, 0)
        starts = self._n_lightcurve + np.concatenate([[0], np.cumsum(sizes)[:-1]])
        present = [t for t in tables if t is not None and len(t)]
        if present:
            new_rows = self._n_lightcurve + int(sizes.sum())
            values = {
                "mjd": np.concatenate([t["mjd"] for t in present]),
                "band": np.concatenate([[get_band(b).id for b in t["band"]] for t in present]),
                "flux": np.concatenate([t["flux"] for t in present]),
                "flux_err": np.concatenate([t["flux_err"] for t in present]),
                "detected": np.concatenate([t["detected"] for t in present]),
            }
            for name, column in values.items():
                dataset = self._file[f"lightcurve/{name}"]
                dataset.resize(new_rows, axis=0)
                dataset[self._n_lightcurve : new_rows] = column
            self._n_lightcurve = new_rows
        return starts, counts

    def _append_references(self, batch: list[StampSeries]) -> tuple[np.ndarray, np.ndarray]:
        """Append the batch's references, band by band; their (start, count) rows."""
        references = [sorted(s.references.items()) for s in batch]
        counts = np.array([len(r) for r in references], dtype=np.int64)
        starts = self._n_references + np.concatenate([[0], np.cumsum(counts)[:-1]])
        rows = [(band, ref) for items in references for band, ref in items]
        if rows:
            values = {
                "stamps": np.stack([ref.stamp for _, ref in rows]),
                "band": [band for band, _ in rows],
                "kind": [REFERENCE_KINDS.index(ref.kind) for _, ref in rows],
                **{name: [getattr(ref, name) for _, ref in rows] for name in PROVENANCE},
            }
            new_rows = self._n_references + len(rows)
            for name, column in values.items():
                dataset = self._file[f"reference/{name}"]
                dataset.resize(new_rows, axis=0)
                dataset[self._n_references : new_rows] = column
            self._n_references = new_rows
        return starts, counts

    def close(self) -> Path:
        """Write the attributes, close, and move the file into place.

        Raises:
            ConventionError: a write that failed (a full disk): nothing left behind.
        """
        try:
            for key, value in self._attrs.items():
                self._file.attrs[key] = value
            self._file.attrs["n_objects"] = self._n_objects
            self._file.close()
            os.replace(self._tmp, self.path)
        except OSError as err:
            self.abort()
            raise write_failed(err, self.path) from None
        return self.path

    def abort(self) -> None:
        """Drop everything written so far. The file is emptied before it is closed: on a
        full disk, closing flushes what HDF5 holds, which needs the room back."""
        if self._tmp.exists():
            os.truncate(self._tmp, 0)
        if self._file.id.valid:
            try:
                self._file.close()
            except (OSError, RuntimeError):  # dropped: what its last flush says is no matter
                pass
        self._tmp.unlink(missing_ok=True)


def _reference(block: dict[str, np.ndarray], row: int) -> Reference:
    """The reference of one row of a block read from ``/reference``."""
    return Reference(
        block["stamps"][row],
        REFERENCE_KINDS[int(block["kind"][row])],
        **{name: block[name][row] for name in PROVENANCE},
    )


def write_failed(err: OSError, path: Path) -> ConventionError:
    """The one-line error of a write that failed, naming the output."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = "no space left on the device"
    elif err.errno == errno.EFBIG:
        cause = "the file grew past the size allowed"
    else:
        cause = (str(err).splitlines() or [type(err).__name__])[0]
    return ConventionError(f"cannot write ({cause}): nothing written", path=path)


def write_store(
    path: str | Path, series: Iterable[StampSeries], batch_size: int = 256, **kwargs
) -> Path:
    """Write objects to a new store in batches; keyword arguments go to StoreWriter."""
    with StoreWriter(path, **kwargs) as writer:
        batch: list[StampSeries] = []
        for item in series:
            batch.append(item)
            if len(batch) >= batch_size:
                writer.append(batch)
                batch = []
        writer.append(batch)
    return Path(path)


class Store(Sequence[StampSeries]):
    """A store opened for reading: a sequence of StampSeries, read lazily object by object.

    The per-object index is read at once; frames are read on access. The HDF5 handle is
    opened on first access in each process, so the Store pickles into DataLoader workers.

    Args:
        path: the store's file.
        channels: the extra images read with every frame (None: all the store holds).

    Raises:
        ConventionError: not a store, a damaged one, or a channel it does not hold.
    """

    def __init__(self, path: str | Path, channels: Sequence[str] | None = None):
        self.path = Path(path)
        check_input_path(self.path, "store")
        if not self.path.is_file():
            raise ConventionError("store is a folder, not a file", path=self.path)
        try:
            with h5py.File(self.path, "r") as f:
                self._refuse_outside_data(f)
                self._read_attributes(dict(f.attrs))
                self._select_channels(channels)
                self._read_index(f)
                self._check_layout(f)
        except OSError as err:
            raise ConventionError(f"not an HDF5 store ({err})", path=self.path) from None
        except KeyError as err:
            raise ConventionError(
                f"not a convention store (missing {err})", path=self.path
            ) from None
        self._check_index()
        self._positions = {oid: i for i, oid in enumerate(self._index["object_id"])}
        if len(self._positions) < len(self):
            seen: set[str] = set()
            twice = next(o for o in self._index["object_id"] if o in seen or seen.add(o))
            raise ConventionError(
                "damaged store: the object id is there twice", path=self.path, obj=twice
            )
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def _refuse_outside_data(self, f: h5py.File) -> None:
        """A store holds its data itself: no link (soft or external), virtual dataset or
        dataset stored in another file, which would read outside it (a device, another
        user's file, a loop).

        Raises:
            ConventionError: naming the store and the first such object.
        """
        found: list[str] = []

        def visit(name: str, link) -> None:
            if isinstance(link, h5py.ExternalLink):
                found.append(f"{name!r} is a link into {link.filename!r}")
            elif isinstance(link, h5py.SoftLink):
                found.append(f"{name!r} is a soft link to {link.path!r}")
            elif isinstance(f.get(name), h5py.Dataset):
                dataset = f[name]
                if dataset.is_virtual:
                    found.append(f"{name!r} is a virtual dataset")
                elif dataset.external:
                    found.append(f"{name!r} is stored in another file")
            return None if not found else True

        try:
            f.visititems_links(visit)
        except RuntimeError as err:  # h5py's word for a damaged link table
            raise ConventionError(f"damaged store ({err})", path=self.path) from None
        except SystemError as err:  # a name that is not UTF-8, raised through h5py's lock
            if not isinstance(err.__cause__, UnicodeError):
                raise
            raise ConventionError(
                "damaged store (a name that is not text)", path=self.path
            ) from None
        if found:
            raise ConventionError(
                f"damaged store: {found[0]} (a store holds its data itself)", path=self.path
            )

    def _read_attributes(self, attrs: dict) -> None:
        """The store's attributes, each checked for its type.

        Raises:
            ConventionError: another schema, or a missing or unreadable attribute.
        """
        if "schema_version" not in attrs:
            raise ConventionError("not a convention store (no schema version)", path=self.path)
        version = attrs["schema_version"]
        if not isinstance(version, int | np.integer) or int(version) not in READABLE_SCHEMAS:
            raise ConventionError(
                f"store schema {version!r} is not one of {READABLE_SCHEMAS}", path=self.path
            )

        def texts(name: str, default: list | None = None) -> list[str]:
            value = attrs.get(name, default)
            if value is None:
                raise KeyError(name)
            if isinstance(value, str | bytes) or np.ndim(value) != 1:
                raise TypeError(f"{name} is not a list of names")
            return [v.decode() if isinstance(v, bytes) else str(v) for v in value]

        try:
            self.survey: str = str(attrs["survey"])
            self.bands: list[str] = texts("bands")
            self.class_names: list[str] = texts("class_names")
            self.channels: list[str] = texts("channels", [])
            self.pixel_scale = float(attrs["pixel_scale"])
            shape = attrs["stamp_shape"]
            if np.ndim(shape) != 1 or len(shape) != 2:
                raise TypeError("stamp_shape is not (H, W)")
            self.stamp_shape = (int(shape[0]), int(shape[1]))
            self.provenance: dict = json.loads(attrs["provenance"])
            if not isinstance(self.provenance, dict):
                raise TypeError("provenance is not a JSON object")
        except KeyError as err:
            raise ConventionError(f"damaged store: no attribute {err}", path=self.path) from None
        except (TypeError, ValueError, OverflowError) as err:
            raise ConventionError(
                f"damaged store: unreadable attributes ({err})", path=self.path
            ) from None

    def _select_channels(self, channels: Sequence[str] | None) -> None:
        """Read only ``channels`` of the stored extra images (None: all).

        Raises:
            ConventionError: a channel the store does not hold.
        """
        if channels is None:
            return
        missing = [c for c in channels if c not in self.channels]
        if missing:
            raise ConventionError(
                f"no {missing[0]!r} images (channels held: {self.channels})", path=self.path
            )
        self.channels = list(channels)

    def _read_index(self, f: h5py.File) -> None:
        self._index = {
            name: f[f"object/{name}"][()] for name in (*_OBJECT_COLUMNS, *_STRING_COLUMNS)
        }
        # Older schemas: no light curve (count -1), no reference (count 0).
        absent = {**dict.fromkeys(_LIGHTCURVE_INDEX, -1), **dict.fromkeys(_REFERENCE_INDEX, 0)}
        for name, value in absent.items():
            self._index[name] = (
                f[f"object/{name}"][()]
                if f"object/{name}" in f
                else np.full(len(self._index["start"]), value)
            )
        n_objects = len(self._index["start"])
        for name in METADATA:  # schemas before 4: not measured
            key = f"object/meta/{name}"
            self._index[f"meta/{name}"] = (
                f[key][()] if key in f else np.full(n_objects, np.nan, dtype=np.float32)
            )
        for name in _STRING_COLUMNS:
            self._index[name] = np.array(
                [v.decode() if isinstance(v, bytes) else str(v) for v in self._index[name]],
                dtype=object,
            )

    def _check_layout(self, f: h5py.File) -> None:
        """Every dataset the reader touches exists with consistent lengths.

        Raises:
            ConventionError: naming the store and what is missing or inconsistent.
        """

        def damaged(what: str) -> ConventionError:
            return ConventionError(f"damaged store: {what}", path=self.path)

        needed = ["frames", *(f"frame/{c}" for c in _FRAME_COLUMNS)]
        needed += [f"channel/{c}" for c in self.channels]
        lightcurves = bool((self._index["lc_count"] >= 0).any())
        needed += [f"lightcurve/{c}" for c in _LIGHTCURVE_COLUMNS] if lightcurves else []
        references = bool((self._index["ref_count"] > 0).any())
        needed += (
            ["reference/stamps", *(f"reference/{c}" for c in _REFERENCE_COLUMNS)]
            if references
            else []
        )
        for name in needed:
            if name not in f:
                raise damaged(f"no dataset {name!r}")
        n_frames = f["frames"].shape[0] if f["frames"].ndim == 3 else -1
        if n_frames < 0:
            raise damaged(f"frames have shape {f['frames'].shape}, not (N, H, W)")
        for name in needed[1:]:
            if f[name].shape[0] != n_frames and name.startswith(("frame/", "channel/")):
                raise damaged(f"{name} has {f[name].shape[0]} rows for {n_frames} frames")
        self._n_frames = n_frames
        self._n_lightcurve = f["lightcurve/mjd"].shape[0] if lightcurves else 0
        self._n_references = f["reference/band"].shape[0] if references else 0
        if references:
            stamps = f["reference/stamps"].shape
            if stamps[1:] != f["frames"].shape[1:]:
                raise damaged(f"reference stamps are {stamps[1:]}, frames {f['frames'].shape[1:]}")
            for name in ("reference/stamps", *(f"reference/{c}" for c in _REFERENCE_COLUMNS)):
                if f[name].shape[0] != self._n_references:
                    raise damaged(
                        f"{name} has {f[name].shape[0]} rows for {self._n_references} references"
                    )
            kinds = f["reference/kind"][()]
            if len(kinds) and not 0 <= int(kinds.min()) <= int(kinds.max()) < len(REFERENCE_KINDS):
                raise damaged(f"reference kind codes outside 0..{len(REFERENCE_KINDS) - 1}")
            bands = f["reference/band"][()]
            if len(bands) and int(bands.min()) <= 0:
                raise damaged("a reference of band id 0 (padding)")
        lengths = {len(v) for v in self._index.values()}
        if len(lengths) > 1:
            raise damaged(f"object columns of different lengths {sorted(lengths)}")

    def _check_index(self) -> None:
        """The per-object index points inside the datasets, labels inside the classes.

        Raises:
            ConventionError: naming the store, the object and what is out of range.
        """
        index = self._index
        checks = (
            ("start", "count", self._n_frames, "frames"),
            ("lc_start", "lc_count", self._n_lightcurve, "light-curve rows"),
            ("ref_start", "ref_count", self._n_references, "references"),
        )
        for start_name, count_name, total, what in checks:
            start, count = index[start_name].astype(np.int64), index[count_name].astype(np.int64)
            used = count >= 0 if start_name == "lc_start" else np.ones(len(count), bool)
            used &= count > 0 if start_name == "ref_start" else True
            bad = used & ((start < 0) | (count < 0) | (start + count > total))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise ConventionError(
                    f"damaged store: {what} {start[k]}..{start[k] + count[k]} of an object "
                    f"outside the {total} stored",
                    path=self.path,
                    obj=index["object_id"][k],
                )
        for start_name, count_name, total, what in checks[::2]:
            start, count = index[start_name].astype(np.int64), index[count_name].astype(np.int64)
            tiled = count.sum() == total and np.all(start == count.cumsum() - count)
            if len(count) and not tiled:
                raise ConventionError(
                    f"damaged store: the objects' {what} do not tile the {total} stored",
                    path=self.path,
                )
        labels = index["label"].astype(np.int64)
        bad = (labels < -1) | (labels >= len(self.class_names))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ConventionError(
                f"damaged store: label code {labels[k]} for {len(self.class_names)} classes",
                path=self.path,
                obj=index["object_id"][k],
            )

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        return state

    def __len__(self) -> int:
        return len(self._index["object_id"])

    def __getitem__(self, index: int) -> StampSeries:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("a Store is indexed by position or read with .get(object_id)")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"object index {index} out of range for {n} objects")
        i = index % n
        return self.read_range(i, i + 1)[0]

    def read_range(self, first: int, stop: int) -> list[StampSeries]:
        """Objects ``first .. stop - 1`` with one read per dataset (the objects' frames tile
        the store, so theirs are one contiguous block); ``store[i]`` is ``read_range(i,
        i + 1)[0]``. Reading many at once reads no chunk twice.

        Raises:
            ConventionError: positions out of range, or damaged bytes (naming the first
                object of the range).
        """
        n = len(self)
        if not 0 <= first <= stop <= n:
            raise IndexError(f"object range {first}..{stop} out of range for {n} objects")
        if first == stop:
            return []
        index = self._index
        starts = index["start"][first:stop].astype(np.int64)
        counts = index["count"][first:stop].astype(np.int64)
        lo, hi = int(starts[0]), int(starts[-1] + counts[-1])
        try:
            f = self._h5()
            block = {
                "frames": f["frames"][lo:hi],
                **{name: f[f"frame/{name}"][lo:hi] for name in _FRAME_COLUMNS},
            }
            channels = {c: f[f"channel/{c}"][lo:hi] for c in self.channels}
            lc_counts = index["lc_count"][first:stop].astype(np.int64)
            has_lc = lc_counts >= 0
            lc_block, lc_lo = {}, 0
            if has_lc.any():
                lc_starts = index["lc_start"][first:stop].astype(np.int64)
                lc_lo = int(lc_starts[has_lc].min())
                lc_hi = int((lc_starts + lc_counts)[has_lc].max())
                lc_block = {
                    name: f[f"lightcurve/{name}"][lc_lo:lc_hi] for name in _LIGHTCURVE_COLUMNS
                }
            ref_starts = index["ref_start"][first:stop].astype(np.int64)
            ref_counts = index["ref_count"][first:stop].astype(np.int64)
            ref_block, ref_lo = {}, 0
            if ref_counts.any():
                has_ref = ref_counts > 0
                ref_lo = int(ref_starts[has_ref].min())
                ref_hi = int((ref_starts + ref_counts)[has_ref].max())
                ref_block = {
                    name: f[f"reference/{name}"][ref_lo:ref_hi]
                    for name in ("stamps", *_REFERENCE_COLUMNS)
                }
            series = []
            for k, i in enumerate(range(first, stop)):
                rows = slice(int(starts[k]) - lo, int(starts[k] + counts[k]) - lo)
                lightcurve = None
                if has_lc[k]:
                    a = int(index["lc_start"][i]) - lc_lo
                    lc_rows = slice(a, a + int(lc_counts[k]))
                    lightcurve = make_lightcurve(
                        **{name: values[lc_rows] for name, values in lc_block.items()}
                    )
                label_code = int(index["label"][i])
                a = int(ref_starts[k]) - ref_lo
                references = {
                    int(ref_block["band"][r]): _reference(ref_block, r)
                    for r in range(a, a + int(ref_counts[k]))
                }
                series.append(
                    StampSeries(
                        **{name: values[rows] for name, values in block.items()},
                        channels={c: values[rows] for c, values in channels.items()},
                        lightcurve=lightcurve,
                        references=references,
                        object_id=index["object_id"][i],
                        ra=float(index["ra"][i]),
                        dec=float(index["dec"][i]),
                        redshift=float(index["redshift"][i]),
                        label=self.class_names[label_code] if label_code >= 0 else None,
                        survey=self.survey,
                        pixel_scale=self.pixel_scale,
                        subtype=index["subtype"][i] or None,
                        metadata={
                            name: float(index[f"meta/{name}"][i])
                            for name in METADATA
                            if np.isfinite(index[f"meta/{name}"][i])
                        },
                    )
                )
            return series
        except (OSError, KeyError, TypeError, ValueError) as err:  # h5py on damaged bytes
            what = "the object" if stop - first == 1 else "the objects"
            raise ConventionError(
                f"damaged store: cannot read {what} ({type(err).__name__}: {err})",
                path=self.path,
                obj=index["object_id"][first],
            ) from None

    def __iter__(self) -> Iterator[StampSeries]:
        for i in range(len(self)):
            yield self[i]

    def get(self, object_id: str) -> StampSeries:
        """The object with this id.

        Raises:
            ConventionError: no such object.
        """
        if str(object_id) not in self._positions:
            raise ConventionError("no such object in the store", path=self.path, obj=object_id)
        return self[self._positions[str(object_id)]]

    @property
    def object_ids(self) -> list[str]:
        """Object ids in store order."""
        return list(self._index["object_id"])

    @property
    def labels(self) -> list[str | None]:
        """Class name of every object (None = unlabelled), in store order."""
        return [self.class_names[c] if c >= 0 else None for c in self._index["label"]]

    @property
    def lengths(self) -> np.ndarray:
        """Number of frames of every object."""
        return self._index["count"].copy()

    @property
    def lightcurve_rows(self) -> np.ndarray:
        """Observations in every object's own light curve (-1: it has none)."""
        return self._index["lc_count"].copy()

    def object_table(self) -> Table:
        """One row per object, no frames: ``object_id, ra, dec, redshift, label, subtype,
        n_frames``, then each catalogue field (NaN: not measured)."""
        table = Table({k: self._index[k] for k in ("object_id", "ra", "dec", "redshift")})
        table["label"] = [lab or "" for lab in self.labels]
        table["subtype"] = self._index["subtype"]
        table["n_frames"] = self._index["count"]
        for name in METADATA:
            table[name] = self._index[f"meta/{name}"]
        return table

    def frame_table(self) -> Table:
        """Every frame's metadata (no pixels) as an astropy Table, with its object's row."""
        f = self._h5()
        try:
            table = Table({name: f[f"frame/{name}"][()] for name in _FRAME_COLUMNS})
        except (OSError, KeyError, TypeError, ValueError) as err:  # h5py on damaged bytes
            raise ConventionError(
                f"damaged store: cannot read the frame table ({type(err).__name__})",
                path=self.path,
            ) from None
        table["object_row"] = np.repeat(np.arange(len(self)), self._index["count"])
        return table

    def reference_table(self) -> Table:
        """Every stored reference's metadata (no pixels): ``object_row, band`` (id),
        ``kind, n_frames, mjd_start, mjd_end, psf_fwhm, sky_sigma`` (none in a store of
        schema 1 or 2)."""
        counts = self._index["ref_count"].astype(np.int64)
        if not self._n_references:
            return reference_table([], [], [])
        f = self._h5()
        try:
            columns = {name: f[f"reference/{name}"][()] for name in _REFERENCE_COLUMNS}
        except (OSError, KeyError, TypeError, ValueError) as err:  # h5py on damaged bytes
            raise ConventionError(
                f"damaged store: cannot read the reference table ({type(err).__name__})",
                path=self.path,
            ) from None
        table = Table({"object_row": np.repeat(np.arange(len(self)), counts)})
        table["band"] = columns.pop("band")
        table["kind"] = np.asarray(REFERENCE_KINDS)[columns.pop("kind")]
        for name, values in columns.items():
            table[name] = values.astype(float)
        return table

    def close(self) -> None:
        """Close the HDF5 handle of this process (reopened on next access)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, {len(self)} objects, survey={self.survey!r})"
