"""Reading the small tables that describe inputs (CSV, ECSV, FITS), with one-line errors."""

from __future__ import annotations

import gzip
import warnings
import zlib
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
from astropy.io.ascii import convert_numpy
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning

from convention.errors import ConventionError

TABLE_SUFFIXES = (".ecsv", ".csv", ".fits", ".csv.gz")


MAX_TABLE_BYTES = 4 * 2**30  # a table inflated: PLAsTiCC's training light curves are 0.3 GB


def find_table(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` with the first suffix of TABLE_SUFFIXES that exists, or None."""
    for suffix in TABLE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_table(path: Path, required: Sequence[str] = (), text: Sequence[str] = ()) -> Table:
    """A table from CSV (optionally gzipped), ECSV or FITS, checked for required columns.

    Args:
        path: the table.
        required: columns it must have.
        text: columns (wildcards allowed) a CSV keeps as text, never guessed as numbers:
            identifiers and file names (``007`` stays ``007``, ``nan.fits`` a name).

    Raises:
        ConventionError: unreadable, or a required column is missing.
    """
    name = path.name.lower()
    fmt = (
        "ascii.ecsv"
        if name.endswith(".ecsv")
        else "fits"
        if name.endswith((".fits", ".fit", ".fits.gz"))
        else "ascii.csv"
    )
    if name.endswith(".gz"):
        _check_gzip(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            options = (
                {"converters": {c: [convert_numpy(str)] for c in text}}
                if fmt == "ascii.csv" and text
                else {}
            )
            table = Table.read(path, format=fmt, **options)
    except Exception as err:  # astropy raises many types for a corrupt table
        raise ConventionError(f"unreadable table ({err})", path=path) from None
    missing = [c for c in required if c not in table.colnames]
    if missing:
        raise ConventionError(
            f"table lacks column(s) {', '.join(missing)} (has: {', '.join(table.colnames)})",
            path=path,
        )
    return table


def _check_gzip(path: Path) -> None:
    """Read a gzipped file through once: a truncated one would otherwise reach the table
    parser as garbage, and one that inflates past ``MAX_TABLE_BYTES`` is refused before
    the parser holds it.

    Raises:
        ConventionError: truncated or corrupt, or too large inflated.
    """
    inflated = 0
    try:
        with gzip.open(path) as f:
            while chunk := f.read(1 << 22):
                inflated += len(chunk)
                if inflated > MAX_TABLE_BYTES:
                    raise ConventionError(
                        f"table inflates past {MAX_TABLE_BYTES:,} bytes", path=path
                    )
    except (OSError, EOFError, zlib.error):
        raise ConventionError("unreadable table (truncated or corrupt gzip)", path=path) from None


def group_rows(keys: np.ndarray) -> dict[str, np.ndarray]:
    """Row indices of each distinct key (in row order within a key)."""
    keys = np.asarray(keys)
    if len(keys) == 0:
        return {}
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    bounds = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    return {str(ordered[a]): order[a:b] for a, b in pairwise(bounds)}
