"""SNANA-style light-curve CSV, as SuperNNova reads it.

``<name>_HEAD.csv``: one row per object, ``SNID, SNTYPE, PEAKMJD, HOSTGAL_SPECZ,
HOSTGAL_SPECZ_ERR, HOSTGAL_PHOTOZ, HOSTGAL_PHOTOZ_ERR, SIM_REDSHIFT_CMB, RA, DECL``;
``<name>_PHOT.csv``: one row per observation, ``SNID, MJD, FLT, FLUXCAL, FLUXCALERR``
(FLUXCAL: AB zero point 27.5); ``sntypes.json``: SNTYPE code -> class name, as
SuperNNova's ``--sntypes`` takes it. SNTYPE is 101 + the class's index (0 = unlabelled).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from convention.bands import get_band
from convention.data.lightcurve import LabelledLightCurve, make_lightcurve
from convention.errors import ConventionError
from convention.files import temporary_beside
from convention.io.tables import group_rows, read_table

NMGY_TO_FLUXCAL = 10 ** (0.4 * (27.5 - 22.5))
SNTYPE_OFFSET = 101
UNLABELLED_SNTYPE = 0
# SuperNNova clips its inputs at FLUXCAL -2000 but takes its normalisation statistics from
# the unclipped minimum, so large negative fluxes flatten every input: clip them here.
DEFAULT_CLIP_FLUXCAL = -2000.0
HEAD_COLUMNS = (
    "SNID",
    "SNTYPE",
    "PEAKMJD",
    "HOSTGAL_SPECZ",
    "HOSTGAL_SPECZ_ERR",
    "HOSTGAL_PHOTOZ",
    "HOSTGAL_PHOTOZ_ERR",
    "SIM_REDSHIFT_CMB",
    "RA",
    "DECL",
)
PHOT_COLUMNS = ("SNID", "MJD", "FLT", "FLUXCAL", "FLUXCALERR")


def sntype_codes(class_names: list[str]) -> dict[str, str]:
    """SNTYPE code (as text, the way ``--sntypes`` takes it) -> class name."""
    return {str(SNTYPE_OFFSET + k): name for k, name in enumerate(class_names)}


def _peak_mjd(lc) -> float:
    if len(lc) == 0:
        return float("nan")
    return float(lc["mjd"][int(np.argmax(np.asarray(lc["flux"])))])


def write_snana(
    objects: Iterable[LabelledLightCurve],
    class_names: list[str],
    out: str | Path,
    name: str = "convention",
    clip_fluxcal: float | None = DEFAULT_CLIP_FLUXCAL,
) -> Path:
    """Write light curves as SNANA HEAD/PHOT CSV files in a new folder ``out``.

    Args:
        objects: light curves in nanomaggies (AB zero point 22.5), with labels and redshift.
        class_names: the taxonomy's classes, for the SNTYPE codes.
        out: the folder to create (written beside it, renamed when complete).
        name: the files' prefix.
        clip_fluxcal: FLUXCAL (and its error) below this is raised to it; None keeps all.

    Raises:
        ConventionError: the output exists or its parent is missing; a name that is not a
            plain file-name prefix; a clip that is not a finite number; a label outside
            ``class_names``.
    """
    out = Path(out)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise ConventionError(
            f"--name {name!r} must be a plain prefix (letters, digits, '_', '-', '.')",
            path=out,
        )
    if clip_fluxcal is not None and not np.isfinite(clip_fluxcal):
        raise ConventionError(f"--clip-fluxcal must be a finite number, got {clip_fluxcal}")
    if out.exists():
        raise ConventionError("output folder exists; choose a new one", path=out)
    if not out.parent.is_dir():
        raise ConventionError(f"output folder {str(out.parent)!r} does not exist", path=out)
    codes = {c: int(k) for k, c in sntype_codes(list(class_names)).items()}
    tmp = temporary_beside(out, folder=True)
    try:
        with (
            (tmp / f"{name}_HEAD.csv").open("w", newline="") as head_file,
            (tmp / f"{name}_PHOT.csv").open("w", newline="") as phot_file,
        ):
            head = csv.writer(head_file)
            phot = csv.writer(phot_file)
            head.writerow(HEAD_COLUMNS)
            phot.writerow(PHOT_COLUMNS)
            for obj in objects:
                if obj.label is not None and obj.label not in codes:
                    raise ConventionError(
                        f"label {obj.label!r} is not one of {list(class_names)}",
                        obj=obj.object_id,
                    )
                sntype = codes[obj.label] if obj.label is not None else UNLABELLED_SNTYPE
                z = obj.redshift if np.isfinite(obj.redshift) else -9.0
                z_err = 0.0 if np.isfinite(obj.redshift) else -9.0
                peak = f"{_peak_mjd(obj.lightcurve):.5f}"
                head.writerow([obj.object_id, sntype, peak, z, z_err, z, z_err, z, obj.ra, obj.dec])
                lc = obj.lightcurve
                fluxcal = np.asarray(lc["flux"], dtype=np.float64) * NMGY_TO_FLUXCAL
                errcal = np.asarray(lc["flux_err"], dtype=np.float64) * NMGY_TO_FLUXCAL
                if clip_fluxcal is not None:
                    fluxcal = np.maximum(fluxcal, clip_fluxcal)
                for mjd, band, f, e in zip(lc["mjd"], lc["band"], fluxcal, errcal, strict=True):
                    if np.isfinite(mjd) and np.isfinite(f) and np.isfinite(e):
                        letter = get_band(band).letter
                        phot.writerow(
                            [obj.object_id, repr(float(mjd)), letter, f"{f:.6g}", f"{e:.6g}"]
                        )
        (tmp / "sntypes.json").write_text(json.dumps(sntype_codes(list(class_names)), indent=1))
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_snana(head: str | Path, survey: str, sntypes: dict[str, str] | None = None):
    """Light curves from SNANA HEAD/PHOT CSV files (the PHOT file beside the HEAD file).

    Args:
        head: the ``*_HEAD.csv`` file.
        survey: survey of the bare filter letters in ``FLT``.
        sntypes: SNTYPE code -> class name; by default ``sntypes.json`` beside the files.

    Returns:
        list of LabelledLightCurve in nanomaggies.

    Raises:
        ConventionError: missing files or columns, an unknown filter.
    """
    head = Path(head)
    phot_path = head.with_name(head.name.replace("HEAD", "PHOT"))
    for path in (head, phot_path):
        if not path.is_file():
            raise ConventionError("no such file", path=path)
    if sntypes is None:
        codes_path = head.with_name("sntypes.json")
        sntypes = json.loads(codes_path.read_text()) if codes_path.is_file() else {}
    heads = read_table(head, ("SNID", "SNTYPE"))
    phot = read_table(phot_path, PHOT_COLUMNS)
    rows_of = group_rows(np.asarray(phot["SNID"]).astype(str))
    objects = []
    for row in heads:
        snid = str(row["SNID"])
        rows = rows_of.get(snid, np.array([], dtype=np.int64))
        z = float(row["HOSTGAL_SPECZ"]) if "HOSTGAL_SPECZ" in heads.colnames else np.nan
        try:
            lc = make_lightcurve(
                phot["MJD"][rows],
                [str(b).strip() for b in phot["FLT"][rows]],
                np.asarray(phot["FLUXCAL"][rows], dtype=np.float64) / NMGY_TO_FLUXCAL,
                np.asarray(phot["FLUXCALERR"][rows], dtype=np.float64) / NMGY_TO_FLUXCAL,
                survey=survey,
            )
        except ConventionError as err:
            raise ConventionError(err.cause, path=phot_path, obj=snid) from None
        objects.append(
            LabelledLightCurve(
                object_id=snid,
                lightcurve=lc,
                label=sntypes.get(str(int(row["SNTYPE"]))),
                redshift=z if z >= 0 else np.nan,
                ra=float(row["RA"]) if "RA" in heads.colnames else np.nan,
                dec=float(row["DECL"]) if "DECL" in heads.colnames else np.nan,
            )
        )
    return objects
