"""``fits`` format: a folder of FITS stamps described by a table.

Layout::

    DIR/epochs.csv     (or .ecsv / .fits) object_id, mjd, band, file [, hdu, psf_fwhm,
                       sky_sigma, zeropoint, true_flux, file_<channel>, hdu_<channel>]
    DIR/objects.csv    optional: object_id [, label, ra, dec, redshift, subtype]
    DIR/lightcurves.csv  optional: object_id, mjd, band, flux, flux_err [, detected]
    DIR/references.csv   optional: object_id, band, file [, hdu, psf_fwhm, sky_sigma,
                       n_frames, mjd_start, mjd_end, pixel_scale]: each band's reference
                       (template) stamp, on its frames' pixel grid

``file`` is a path relative to DIR to a FITS file whose HDU ``hdu`` (default 0) holds one
2-D stamp. Rows may come in any order. A reference whose band has no frame of its object,
whose stamp is not the frames' shape, whose ``pixel_scale`` is not the folder's, or that
cannot be read, is left out with a warning naming the file and object: that band falls
back to the median of the object's frames. The ECSV epoch table may carry ``survey`` and
``pixel_scale`` in its metadata (``convention export fits`` writes them); options override.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from convention.bands import get_band, survey_bands
from convention.classes import get_taxonomy, resolve_label
from convention.data.lightcurve import make_lightcurve
from convention.data.reference import PROVENANCE, TEMPLATE, Reference
from convention.data.series import StampSeries
from convention.data.store import Store
from convention.errors import ConventionError
from convention.files import inside_folder, temporary_beside
from convention.io.ingest import Collection, DroppedFrame, Rejected
from convention.io.registry import (
    Reader,
    ReaderOption,
    opened_by_scanning,
    parse_flag,
    parse_names,
    parse_number,
    register_reader,
)
from convention.io.stamps import FitsFile, fit_stamp
from convention.io.tables import find_table, read_table

EPOCH_COLUMNS = ("object_id", "mjd", "band", "file")
REFERENCE_COLUMNS = ("object_id", "band", "file")
# A reference's pixel scale may differ from the folder's by rounding, not by more.
PIXEL_SCALE_TOLERANCE = 0.01
TEXT_COLUMNS = ("object_id", "band", "file", "file_*", "label")  # never read as numbers
OPTIONAL_FRAME_COLUMNS = {"psf_fwhm": np.nan, "sky_sigma": np.nan, "zeropoint": np.nan}


def is_stamp_folder(path: Path) -> bool:
    """A folder holding an epochs table."""
    return path.is_dir() and find_table(path, "epochs") is not None


def _column(table: Table, name: str, default: float, path: Path) -> np.ndarray:
    """A numeric column as float64 (masked cells -> default).

    Raises:
        ConventionError: the column holds text that is not a number.
    """
    if name not in table.colnames:
        return np.full(len(table), default)
    try:
        values = np.ma.asarray(table[name]).astype(np.float64)  # masked ints too
    except (TypeError, ValueError):
        raise ConventionError(
            f"column {name} holds values that are not numbers", path=path
        ) from None
    return values.filled(default)


def _number(value, what: str, path: Path | None, obj: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConventionError(f"{what} {value!r} is not a number", path=path, obj=obj) from None


def _text(value) -> str:
    return "" if np.ma.is_masked(value) else str(value).strip()


def _resolve_bands(epochs: Table, path: Path, survey: str | None) -> np.ndarray:
    ids = np.zeros(len(epochs), dtype=np.int16)
    cache: dict[str, int] = {}
    for row, name in enumerate(epochs["band"]):
        key = _text(name)
        if key not in cache:
            try:
                cache[key] = get_band(key, survey).id
            except ConventionError as err:
                raise ConventionError(
                    f"row {row + 1} (object {_text(epochs['object_id'][row])}): {err.cause}",
                    path=path,
                ) from None
        ids[row] = cache[key]
    return ids


class _Folder:
    """One stamp folder: its tables, read and checked."""

    def __init__(
        self,
        folder: Path,
        survey: str | None,
        taxonomy: str,
        keep_unlabelled: bool,
        channels: tuple[str, ...] | None,
    ):
        self.folder = folder
        self.epochs_path = find_table(folder, "epochs")
        if self.epochs_path is None:
            raise ConventionError("no epochs table (epochs.csv/.ecsv/.fits)", path=folder)
        self.epochs = read_table(self.epochs_path, EPOCH_COLUMNS, TEXT_COLUMNS)
        meta = self.epochs.meta
        self.survey = survey or str(meta.get("survey", "")) or None
        self.pixel_scale = float(meta.get("pixel_scale", np.nan))
        self.taxonomy = get_taxonomy(taxonomy)
        self.keep_unlabelled = keep_unlabelled
        self.band_ids = _resolve_bands(self.epochs, self.epochs_path, self.survey)
        mjd = _column(self.epochs, "mjd", np.nan, self.epochs_path)
        self.frame_columns = {
            name: _column(self.epochs, name, default, self.epochs_path)
            for name, default in {**OPTIONAL_FRAME_COLUMNS, "true_flux": np.nan}.items()
        }
        bad = np.flatnonzero(~np.isfinite(mjd))
        if len(bad):
            raise ConventionError(f"row {bad[0] + 1}: mjd is not a number", path=self.epochs_path)
        self.mjd = mjd
        held = sorted(
            {c.split("_", 1)[1] for c in self.epochs.colnames if c.startswith(("hdu_", "file_"))}
        )
        missing = sorted(set(channels or ()) - set(held))
        if missing:
            raise ConventionError(
                f"no {missing[0]!r} images (the epochs table names {held or 'none'})",
                path=self.epochs_path,
            )
        self.channels = held if channels is None else list(channels)
        self.objects_path: Path | None = None
        self.untimed_rows = 0
        self.objects = self._objects()
        self.lightcurves = self._lightcurves()
        self.references_path = find_table(folder, "references")
        self.references = (
            read_table(self.references_path, REFERENCE_COLUMNS, TEXT_COLUMNS)
            if self.references_path is not None
            else Table({c: [] for c in REFERENCE_COLUMNS})
        )
        self.reference_rows: dict[str, list[int]] = defaultdict(list)
        for row, oid in enumerate(self.references["object_id"]):
            self.reference_rows[_text(oid)].append(row)

    def _objects(self) -> dict[str, dict]:
        path = find_table(self.folder, "objects")
        if path is None:
            return {}
        table = read_table(path, ("object_id",), TEXT_COLUMNS)
        rows: dict[str, dict] = {}
        first: dict[str, int] = {}
        for k, row in enumerate(table):
            oid = _text(row["object_id"])
            values = {name: row[name] for name in table.colnames if name != "object_id"}
            differ = [n for n in values if oid in rows and _text(values[n]) != _text(rows[oid][n])]
            if differ:
                field = differ[0]
                raise ConventionError(
                    f"rows {first[oid] + 1} and {k + 1} disagree on {field} "
                    f"({_text(rows[oid][field])!r} and {_text(values[field])!r})",
                    path=path,
                    obj=oid,
                )
            rows[oid] = values
            first.setdefault(oid, k)
        self.objects_path = path
        return rows

    def _lightcurves(self) -> dict[str, Table]:
        path = find_table(self.folder, "lightcurves")
        if path is None:
            return {}
        table = read_table(path, ("object_id", "mjd", "band", "flux", "flux_err"), TEXT_COLUMNS)
        timed = np.isfinite(_column(table, "mjd", np.nan, path))
        self.untimed_rows = int((~timed).sum())  # a point without a time says nothing
        groups: dict[str, list[int]] = defaultdict(list)
        for i, oid in enumerate(table["object_id"]):
            if timed[i]:
                groups[_text(oid)].append(i)
        out = {}
        for oid, rows in groups.items():
            part = table[rows]
            detected = part["detected"] if "detected" in part.colnames else None
            try:
                out[oid] = make_lightcurve(
                    *(_column(part, c, np.nan, path) for c in ("mjd",)),
                    [_text(b) for b in part["band"]],
                    *(_column(part, c, np.nan, path) for c in ("flux", "flux_err")),
                    None if detected is None else np.asarray(detected, dtype=bool),
                    survey=self.survey,
                )
            except (TypeError, ValueError):
                raise ConventionError("unreadable detected flags", path=path, obj=oid) from None
            except ConventionError as err:
                raise ConventionError(err.cause, path=path, obj=oid) from None
        return out

    def _meta(self, oid: str) -> dict:
        row = self.objects.get(oid, {})
        meta: dict = {}
        for name in ("ra", "dec", "redshift"):
            if name in row and not np.ma.is_masked(row[name]):
                meta[name] = _number(row[name], name, self.objects_path, oid)
        if "subtype" in row and _text(row["subtype"]):
            meta["subtype"] = _text(row["subtype"])
        label = _text(row.get("label", ""))
        try:
            meta["label"] = resolve_label(label, self.taxonomy)
        except ConventionError as err:
            if not self.keep_unlabelled:
                raise ConventionError(
                    f"{err.cause}; object skipped (--keep-unlabelled keeps it)",
                    path=self.objects_path,
                    obj=oid,
                ) from None
            meta["label"] = None
        return meta

    def _stamp(
        self,
        row: int,
        file_col: str,
        hdu_col: str,
        oid: str,
        files: dict[Path, FitsFile],
        table_path: Path | None = None,
    ) -> np.ndarray:
        """The stamp a row of the epochs table (or of another table read from
        ``table_path``: the references) names."""
        table_path = table_path or self.epochs_path
        table = self.epochs if table_path == self.epochs_path else self.references
        name = _text(table[file_col][row]) if file_col in table.colnames else ""
        if not name:
            name = _text(table["file"][row])
        if not name:
            raise ConventionError(f"row {row + 1} names no file", path=table_path, obj=oid)
        hdu = 0
        if hdu_col in table.colnames and not np.ma.is_masked(table[hdu_col][row]):
            value = _number(table[hdu_col][row], hdu_col, table_path, oid)
            if not value.is_integer():
                raise ConventionError(
                    f"{hdu_col} {value} is not an HDU number", path=table_path, obj=oid
                )
            hdu = int(value)
        try:
            path = inside_folder(self.folder, name)
        except ConventionError as err:
            raise ConventionError(f"row {row + 1}: {err.cause}", path=table_path, obj=oid) from None
        if path not in files:
            if not path.is_file():
                raise ConventionError(
                    f"missing stamp file (row {row + 1} of {table_path.name})",
                    path=path,
                    obj=oid,
                )
            files[path] = FitsFile(path, obj=oid)
        return files[path].image(hdu)

    def _reference(
        self, row: int, oid: str, frames: StampSeries, files: dict[Path, FitsFile]
    ) -> tuple[int, Reference]:
        """The reference a row of the references table names, checked against the
        object's frames.

        Raises:
            ConventionError: naming the file and object: unreadable, or not a reference of
                these frames (band, shape, pixel scale).
        """
        path = self.references_path
        try:
            band = get_band(_text(self.references["band"][row]), self.survey).id
        except ConventionError as err:
            raise ConventionError(f"row {row + 1}: {err.cause}", path=path, obj=oid) from None
        if band not in frames.band:
            raise ConventionError(
                f"row {row + 1}: a {get_band(band).name} reference, but no frame in that band",
                path=path,
                obj=oid,
            )
        stamp = self._stamp(row, "file", "hdu", oid, files, path)
        if stamp.shape != frames.frames.shape[1:]:
            raise ConventionError(
                f"row {row + 1}: reference stamp {stamp.shape[0]}x{stamp.shape[1]}, frames "
                f"{frames.frames.shape[1]}x{frames.frames.shape[2]}",
                path=path,
                obj=oid,
            )
        values = {
            name: _number(self.references[name][row], name, path, oid)
            for name in (*PROVENANCE, "pixel_scale")
            if name in self.references.colnames and not np.ma.is_masked(self.references[name][row])
        }
        scale = values.pop("pixel_scale", np.nan)
        if (
            np.isfinite(scale)
            and np.isfinite(frames.pixel_scale)
            and not np.isclose(scale, frames.pixel_scale, rtol=PIXEL_SCALE_TOLERANCE)
        ):
            raise ConventionError(
                f'row {row + 1}: reference at {scale:g}"/pixel, frames at '
                f'{frames.pixel_scale:g}"/pixel',
                path=path,
                obj=oid,
            )
        return band, Reference(stamp, TEMPLATE, **values)

    def _references(self, oid: str, frames: StampSeries) -> dict[int, Reference]:
        """The object's references; one that cannot serve is left out with a warning (its
        band falls back to the median of the frames)."""
        references: dict[int, Reference] = {}
        files: dict[Path, FitsFile] = {}
        try:
            for row in self.reference_rows.get(oid, []):
                try:
                    band, reference = self._reference(row, oid, frames, files)
                    if band in references:
                        raise ConventionError(
                            f"row {row + 1}: a second {get_band(band).name} reference",
                            path=self.references_path,
                            obj=oid,
                        )
                    references[band] = reference
                except ConventionError as err:
                    warnings.warn(f"{err.message}: median-of-frames reference", stacklevel=2)
        finally:
            for fits_file in files.values():
                fits_file.close()
        return references

    def series(self, oid: str, rows: list[int]) -> tuple[StampSeries, list[DroppedFrame]]:
        """The object of these epoch rows, and the frames that could not be used.

        Raises:
            ConventionError: no usable frame, or two frames at one time in one band.
        """
        meta = self._meta(oid)
        rows = sorted(rows, key=lambda r: (self.mjd[r], self.band_ids[r]))
        keys = [(self.mjd[r], self.band_ids[r]) for r in rows]
        for a, b in pairwise(keys):
            if a == b:
                raise ConventionError(
                    f"two frames at mjd {a[0]} in band {get_band(int(a[1])).name}",
                    path=self.epochs_path,
                    obj=oid,
                )
        files: dict[Path, FitsFile] = {}  # each file opened once per object
        images, kept, dropped = [], [], []
        try:
            for r in rows:
                try:
                    frame = [self._stamp(r, "file", "hdu", oid, files)]
                    frame += [
                        self._stamp(r, f"file_{c}", f"hdu_{c}", oid, files) for c in self.channels
                    ]
                except ConventionError as err:
                    dropped.append(DroppedFrame(err))
                    continue
                images.append(frame)
                kept.append(r)
        finally:
            for fits_file in files.values():
                fits_file.close()
        if not kept:
            raise ConventionError(
                f"no usable frame (first: {dropped[0].error.cause})", path=self.epochs_path, obj=oid
            )
        shape = Counter(frame[0].shape for frame in images).most_common(1)[0][0]
        frames = np.stack([fit_stamp(frame[0], shape) for frame in images])
        channels = {
            c: np.stack([fit_stamp(frame[1 + k], shape) for frame in images])
            for k, c in enumerate(self.channels)
        }
        rows = kept
        sel = np.asarray(rows)
        series = StampSeries(
            frames=frames,
            mjd=self.mjd[sel],
            band=self.band_ids[sel],
            **{name: values[sel] for name, values in self.frame_columns.items()},
            object_id=oid,
            survey=self.survey or get_band(int(self.band_ids[0])).survey,
            pixel_scale=self.pixel_scale,
            channels=channels,
            lightcurve=self.lightcurves.get(oid),
            **meta,
        )
        series.references = self._references(oid, series)
        return series, dropped

    def items(self) -> Iterator[StampSeries | Rejected | DroppedFrame]:
        groups: dict[str, list[int]] = defaultdict(list)
        for row, oid in enumerate(self.epochs["object_id"]):
            groups[_text(oid)].append(row)
        # The objects table's order, then the rest by id: the epoch rows' order is free.
        order = [oid for oid in self.objects if oid in groups]
        order += sorted(set(groups) - set(order))
        for oid in order:
            rows = groups[oid]
            try:
                series, dropped = self.series(oid, rows)
            except ConventionError as err:
                yield Rejected(err)
                continue
            yield from dropped
            yield series


def scan_stamp_folders(
    folders: list[Path],
    *,
    survey: str | None = None,
    pixel_scale: float | None = None,
    taxonomy: str = "4-class",
    keep_unlabelled: bool = False,
    channels: tuple[str, ...] | None = None,
) -> Collection:
    """Read stamp folders (all must share survey, bands and channels).

    Args:
        folders: the stamp folders.
        survey: the survey of bare band letters (``g`` -> ``sdss::g``).
        pixel_scale: arcsec per pixel (else the epochs table's metadata).
        taxonomy: the class taxonomy of the labels.
        keep_unlabelled: keep objects of an unknown label, unlabelled.
        channels: the extra images to read (``file_<name>`` columns); None: every one.

    Raises:
        ConventionError: a folder without a readable epochs table, a missing column, an
            unknown band (naming the row), folders that disagree.
    """
    if survey is not None:
        survey_bands(survey)
    if pixel_scale is not None and not (np.isfinite(pixel_scale) and pixel_scale > 0):
        raise ConventionError(f"pixel_scale must be a positive number, got {pixel_scale:g}")
    parsed = [_Folder(Path(f), survey, taxonomy, keep_unlabelled, channels) for f in folders]
    first = parsed[0]
    for other in parsed[1:]:
        if other.channels != first.channels:
            raise ConventionError(
                f"channels {other.channels} differ from {first.channels} of {first.folder}",
                path=other.folder,
            )
    band_ids = sorted(
        {int(b) for p in parsed for b in p.band_ids}
        | {get_band(b).id for p in parsed for b in p.epochs.meta.get("bands", [])}
        | {get_band(b).id for p in parsed for lc in p.lightcurves.values() for b in lc["band"]}
    )
    bands = [get_band(b).name for b in band_ids]
    surveys = {get_band(b).survey for b in band_ids}
    untimed = sum(p.untimed_rows for p in parsed)
    scale = pixel_scale if pixel_scale is not None else first.pixel_scale
    for p in parsed:
        p.pixel_scale = scale

    def items() -> Iterator[StampSeries | Rejected | DroppedFrame]:
        for p in parsed:
            yield from p.items()

    return Collection(
        survey=first.survey or "+".join(sorted(surveys)),
        bands=bands,
        class_names=first.taxonomy.classes,
        pixel_scale=scale,
        items=items(),
        n_files=sum(len({_text(f) for f in p.epochs["file"]}) for p in parsed),
        channels=first.channels,
        provenance={
            "format": "fits",
            "inputs": [str(f) for f in folders],
            "taxonomy": first.taxonomy.name,
            "lightcurve_rows_dropped": untimed,
        },
        notes=(f"dropped {untimed} light-curve rows without a time",) if untimed else (),
    )


MAX_STEM = 100  # characters of an object id kept in its file's name


def _file_stem(object_id: str, used: set[str]) -> str:
    """A file name for an object: its id with other characters than letters, digits and
    ``._-`` replaced, a long id cut and told apart by its hash, unique (case aside)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", object_id) or "object"
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(object_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        stem = f"{stem[:MAX_STEM]}-{digest}"
    candidate, k = stem, 1
    while candidate.lower() in used:
        k += 1
        candidate = f"{stem}_{k}"
    used.add(candidate.lower())
    return candidate


def write_stamp_folder(store: Store, out: str | Path) -> Path:
    """Export a store as a stamp folder that ``fits`` ingest reads back to the same data.

    One FITS file per object under ``stamps/`` (HDU k = frame k, extra channels after the
    frames, then the references), ``epochs.ecsv`` (survey and pixel scale in its metadata),
    ``objects.ecsv`` and, where objects carry them, ``lightcurves.ecsv`` and
    ``references.ecsv``. Written to a temporary folder renamed into place at the end.

    Raises:
        ConventionError: the output exists or its parent folder is missing.
    """
    out = Path(out)
    if out.exists():
        raise ConventionError("output folder exists; choose a new one", path=out)
    if not out.parent.is_dir():
        raise ConventionError(f"output folder {str(out.parent)!r} does not exist", path=out)
    tmp = temporary_beside(out, folder=True)
    try:
        (tmp / "stamps").mkdir()
        epochs: dict[str, list] = defaultdict(list)
        objects: dict[str, list] = defaultdict(list)
        curves: list[Table] = []
        references: dict[str, list] = defaultdict(list)
        used: set[str] = set()
        for series in store:
            name = f"stamps/{_file_stem(series.object_id, used)}.fits"
            m = len(series)
            hdus = [fits.PrimaryHDU()]
            hdus += [fits.ImageHDU(frame) for frame in series.frames]
            for images in (series.channels[c] for c in store.channels):
                hdus += [fits.ImageHDU(frame) for frame in images]
            for band, reference in sorted(series.references.items()):
                references["object_id"].append(series.object_id)
                references["band"].append(get_band(band).name)
                references["file"].append(name)
                references["hdu"].append(len(hdus))
                for column in PROVENANCE:
                    references[column].append(getattr(reference, column))
                hdus.append(fits.ImageHDU(reference.stamp))
            fits.HDUList(hdus).writeto(tmp / name)
            epochs["object_id"] += [series.object_id] * m
            epochs["mjd"] += list(series.mjd)
            epochs["band"] += series.band_names
            epochs["file"] += [name] * m
            epochs["hdu"] += list(range(1, m + 1))
            for column in ("psf_fwhm", "sky_sigma", "zeropoint", "true_flux"):
                epochs[column] += list(getattr(series, column))
            for k, channel in enumerate(store.channels):
                epochs[f"hdu_{channel}"] += list(range(1 + (k + 1) * m, 1 + (k + 2) * m))
            objects["object_id"].append(series.object_id)
            objects["label"].append(series.label or "")
            for column in ("ra", "dec", "redshift"):
                objects[column].append(getattr(series, column))
            objects["subtype"].append(series.subtype or "")
            if series.lightcurve is not None:
                curve = series.lightcurve.copy()
                curve.add_column([series.object_id] * len(curve), name="object_id", index=0)
                curves.append(curve)
        table = Table(dict(epochs))
        for column in ("psf_fwhm", "sky_sigma", "zeropoint", "true_flux"):
            table[column] = np.asarray(table[column], dtype=np.float32)
        table.meta.update(survey=store.survey, pixel_scale=store.pixel_scale, bands=store.bands)
        table.write(tmp / "epochs.ecsv", format="ascii.ecsv")
        Table(dict(objects)).write(tmp / "objects.ecsv", format="ascii.ecsv")
        if curves:
            vstack(curves).write(tmp / "lightcurves.ecsv", format="ascii.ecsv")
        if references:
            Table(dict(references)).write(tmp / "references.ecsv", format="ascii.ecsv")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


register_reader(
    Reader(
        name="fits",
        help="folders of FITS stamps described by an epochs table (convention export fits)",
        detect=is_stamp_folder,
        open=opened_by_scanning(scan_stamp_folders),
        scan=scan_stamp_folders,
        options=(
            ReaderOption("survey", "survey of bare band letters (g -> sdss::g)"),
            ReaderOption("pixel_scale", "arcsec per pixel", parse_number),
            ReaderOption("taxonomy", "class taxonomy of the labels (4-class, 3-class)"),
            ReaderOption("keep_unlabelled", "keep objects of an unknown label", parse_flag),
            ReaderOption("channels", "extra images read, comma-separated [all]", parse_names),
        ),
    )
)
