"""``crts`` format: the CRTS-TAO layout (Gomez et al. 2020), one FITS file per object.

The primary header names the object (``CRTS_ID``), its class (``Class``: AGN, BZ, CV, SN,
OTHER) and position (``RA_(J2000)``, ``Dec_(J2000)``, degrees); HDU 1 is a table with one
row per epoch, ``HDU_Ext`` (the extension holding its cutout) and ``MJD``; the image
extensions hold the unfiltered cutouts (band ``crts::V``). Each cutout has its median
background subtracted; its noise is measured from the pixels.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from convention.classes import CRTS, resolve_label
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.io.ingest import Collection, DroppedFrame, Rejected
from convention.io.registry import (
    Reader,
    ReaderOption,
    opened_by_scanning,
    parse_flag,
    register_reader,
)
from convention.io.stamps import FitsFile, fit_stamp
from convention.photometry import background

PIXEL_SCALE = 2.5  # arcsec per pixel, Catalina Schmidt Survey camera (Drake et al. 2009)
HEADER_KEYS = ("CRTS_ID", "Class", "RA_(J2000)", "Dec_(J2000)")
TABLE_COLUMNS = ("HDU_Ext", "MJD")


def is_crts_file(path: Path) -> bool:
    """A FITS file whose primary header has a ``CRTS_ID`` (a regular file: a FIFO or a
    device is never opened)."""
    if not path.is_file():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            return "CRTS_ID" in fits.getheader(path, 0)
    except Exception:  # anything unreadable is not a CRTS file
        return False


def read_crts_file(
    path: Path, keep_unlabelled: bool = False
) -> tuple[StampSeries, list[DroppedFrame]]:
    """One object's series from a CRTS-TAO file, and the epochs whose cutout could not be
    used (a missing extension, not a 2-D image, no finite pixel), left out.

    Raises:
        ConventionError: not FITS, a missing header key or table column, no usable
            cutout, duplicate times, an unknown class.
    """
    source = FitsFile(path, what="CRTS file")  # a regular file, inflated within bounds
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            return _series(path, source.hdul, keep_unlabelled)
    except ConventionError:
        raise
    except Exception as err:  # astropy raises many types for corrupt files
        raise ConventionError(f"unreadable CRTS file ({err})", path=path) from None
    finally:
        source.close()


def _series(
    path: Path, hdul: fits.HDUList, keep_unlabelled: bool
) -> tuple[StampSeries, list[DroppedFrame]]:
    header = hdul[0].header
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing:
        raise ConventionError(f"primary header lacks {', '.join(missing)}", path=path)
    oid = str(header["CRTS_ID"]).strip()
    try:
        label = resolve_label(str(header["Class"]), CRTS)
    except ConventionError as err:
        if not keep_unlabelled:
            raise ConventionError(err.cause, path=path, obj=oid) from None
        label = None
    if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU | fits.TableHDU):
        raise ConventionError("HDU 1 is not the epochs table", path=path, obj=oid)
    table = hdul[1].data
    names = table.columns.names
    lacking = [c for c in TABLE_COLUMNS if c not in names]
    if lacking:
        raise ConventionError(f"epochs table lacks {', '.join(lacking)}", path=path, obj=oid)
    mjd = np.asarray(table["MJD"], dtype=np.float64)
    ext = np.asarray(table["HDU_Ext"], dtype=np.int64)
    if len(mjd) == 0:
        raise ConventionError("no epochs", path=path, obj=oid)
    if not np.all(np.isfinite(mjd)):
        raise ConventionError("an epoch's MJD is not a number", path=path, obj=oid)
    order = np.argsort(mjd, kind="stable")
    if np.any(np.diff(mjd[order]) == 0):
        raise ConventionError("two epochs at the same MJD", path=path, obj=oid)
    images, sigmas, kept, dropped = [], [], [], []
    for row in order:
        try:
            image = _cutout(hdul, int(ext[row]), path, oid)
        except ConventionError as err:
            dropped.append(DroppedFrame(err))
            continue
        level, sigma = background(image)
        images.append(image - level)
        sigmas.append(sigma)
        kept.append(row)
    if not kept:
        raise ConventionError(
            f"no usable cutout (first: {dropped[0].error.cause})", path=path, obj=oid
        )
    shape = Counter(i.shape for i in images).most_common(1)[0][0]
    series = StampSeries(
        frames=np.stack([fit_stamp(i, shape) for i in images]),
        mjd=mjd[kept],
        band=np.full(len(kept), "crts::V"),
        psf_fwhm=np.full(len(kept), np.nan),
        sky_sigma=sigmas,
        zeropoint=np.full(len(kept), np.nan),
        object_id=oid,
        ra=float(header["RA_(J2000)"]),
        dec=float(header["Dec_(J2000)"]),
        label=label,
        survey="crts",
        pixel_scale=PIXEL_SCALE,
    )
    return series, dropped


def _cutout(hdul: fits.HDUList, k: int, path: Path, oid: str) -> np.ndarray:
    """The float32 cutout in extension k.

    Raises:
        ConventionError: no such extension, not a 2-D image, or no finite pixel.
    """
    if not 0 < k < len(hdul):
        raise ConventionError(f"no extension {k} (file has {len(hdul)})", path=path, obj=oid)
    data = hdul[k].data
    if data is None or data.ndim != 2 or data.size == 0:
        raise ConventionError(f"extension {k} is not a 2-D image", path=path, obj=oid)
    image = np.asarray(data, dtype=np.float32)
    if not np.isfinite(image).any():
        raise ConventionError(f"extension {k} holds no finite pixel", path=path, obj=oid)
    return image


def crts_files(inputs: list[Path]) -> list[Path]:
    """The files named, or the entries named like FITS files found (sorted) in the
    folders named (what is not a regular file is rejected when it is read)."""
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files += sorted(
                p for p in item.iterdir() if p.name.lower().endswith((".fits", ".fits.gz", ".fit"))
            )
        else:
            files.append(item)
    return files


def is_crts_input(path: Path) -> bool:
    """A CRTS-TAO file, or a folder whose first FITS file is one."""
    if path.is_dir():
        return any(is_crts_file(p) for p in sorted(path.glob("*.fits"))[:1])
    return is_crts_file(path)


def scan_crts(inputs: list[Path], keep_unlabelled: bool = False) -> Collection:
    """Read CRTS-TAO files (or folders of them), one object per file."""
    files = crts_files(inputs)

    def items() -> Iterator[StampSeries | Rejected | DroppedFrame]:
        for path in files:
            try:
                series, dropped = read_crts_file(path, keep_unlabelled)
            except ConventionError as err:
                yield Rejected(err)
                continue
            yield from dropped
            yield series

    return Collection(
        survey="crts",
        bands=["crts::V"],
        class_names=CRTS.classes,
        pixel_scale=PIXEL_SCALE,
        items=items(),
        n_files=len(files),
        provenance={
            "format": "crts",
            "inputs": [str(p) for p in inputs],
            "background": "median subtracted per cutout",
        },
    )


register_reader(
    Reader(
        name="crts",
        help="CRTS-TAO files, one object each (files, or folders of .fits files)",
        detect=is_crts_input,
        open=opened_by_scanning(scan_crts),
        scan=scan_crts,
        options=(
            ReaderOption(
                "keep_unlabelled", "keep objects of another class, unlabelled", parse_flag
            ),
        ),
    )
)
