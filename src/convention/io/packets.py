"""A series' frames as the alert packets its survey would have sent: one per frame, in the
field names of the public schemas (ZTF's, and Rubin's ``lsst.v7_4``, the subset the
``alerts`` reader takes plus the fields a packet must have), so that a twin's objects are
served as real alerts are (``benchmarks/twin_alerts.py``) and read back by the reader.

Each packet carries its frame as the science cutout, its band's reference as the template,
the frame less its PSF-matched template as the difference (``photometry.difference_stamps``,
what forced photometry measures), the photometry of the survey's ``history_days`` before
it (ZTF: ``prv_candidates``, detections and 5-sigma limits; Rubin: ``prvDiaSources``, the
detections, and ``prvDiaForcedSources``, every visit's forced difference flux) and its
catalogue fields (ZTF). A ZTF cutout is gzipped FITS in counts of its zero point; a Rubin
cutout is FITS in nJy.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import fastavro
import numpy as np
from astropy.io import fits

from convention.bands import get_band
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.files import check_output_folder, inside_folder, write_atomic
from convention.io.formats.alerts import (
    JD_TO_MJD,
    NJY_ZEROPOINT,
    RUBIN,
    ZTF,
    AlertSchema,
)
from convention.photometry import NANOMAGGY_ZEROPOINT, difference_stamps
from convention.sim.survey import RUBIN as RUBIN_SURVEY
from convention.sim.survey import ZTF as ZTF_SURVEY

NULL = -999.0  # ZTF's value of a catalogue field without a match
NJY_PER_NMGY = 10 ** (0.4 * (NJY_ZEROPOINT - NANOMAGGY_ZEROPOINT))  # 3631
_DOUBLE, _FLOAT = ["null", "double"], ["null", "float"]
_ZTF_CUTOUT = {
    "type": "record",
    "name": "cutout",
    "fields": [{"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes"}],
}
_ZTF_PHOTOMETRY = [
    {"name": "jd", "type": "double"},
    {"name": "fid", "type": "int"},
    {"name": "magpsf", "type": _DOUBLE},
    {"name": "sigmapsf", "type": _DOUBLE},
    {"name": "isdiffpos", "type": ["null", "string"]},
    {"name": "diffmaglim", "type": _DOUBLE},
]
ZTF_AVRO = fastavro.parse_schema(
    {
        "type": "record",
        "name": "alert",
        "namespace": "ztf",
        "fields": [
            {"name": "objectId", "type": "string"},
            {"name": "candid", "type": "long"},
            {
                "name": "candidate",
                "type": {
                    "type": "record",
                    "name": "candidate",
                    "fields": [
                        *_ZTF_PHOTOMETRY,
                        *(
                            {"name": name, "type": "double"}
                            for name in ("magzpsci", "fwhm", "ra", "dec", "jdstartref", "jdendref")
                        ),
                        {"name": "nframesref", "type": "int"},
                        *({"name": path, "type": "float"} for path, _ in ZTF.catalogue.values()),
                    ],
                },
            },
            {
                "name": "prv_candidates",
                "type": [
                    "null",
                    {
                        "type": "array",
                        "items": {"type": "record", "name": "prv", "fields": _ZTF_PHOTOMETRY},
                    },
                ],
            },
            {"name": "cutoutScience", "type": ["null", _ZTF_CUTOUT]},
            {"name": "cutoutTemplate", "type": ["null", "cutout"]},
            {"name": "cutoutDifference", "type": ["null", "cutout"]},
        ],
    }
)
_RUBIN_POSITION = [
    {"name": "diaObjectId", "type": ["null", "long"]},
    {"name": "ra", "type": "double"},
    {"name": "dec", "type": "double"},
    {"name": "visit", "type": "long"},
    {"name": "detector", "type": "int"},
    {"name": "midpointMjdTai", "type": "double"},
    {"name": "band", "type": ["null", "string"]},
    {"name": "psfFlux", "type": _FLOAT},
    {"name": "psfFluxErr", "type": _FLOAT},
]
RUBIN_AVRO = fastavro.parse_schema(
    {
        "type": "record",
        "name": "alert",
        "namespace": "lsst.v7_4",
        "fields": [
            {"name": "alertId", "type": "long"},
            {
                "name": "diaSource",
                "type": {
                    "type": "record",
                    "name": "diaSource",
                    "fields": [
                        {"name": "diaSourceId", "type": "long"},
                        *_RUBIN_POSITION,
                        {"name": "x", "type": "float"},
                        {"name": "y", "type": "float"},
                        {"name": "snr", "type": _FLOAT},
                    ],
                },
            },
            {
                "name": "prvDiaSources",
                "type": ["null", {"type": "array", "items": "lsst.v7_4.diaSource"}],
                "default": None,
            },
            {
                "name": "prvDiaForcedSources",
                "type": [
                    "null",
                    {
                        "type": "array",
                        "items": {
                            "type": "record",
                            "name": "diaForcedSource",
                            "fields": [
                                {"name": "diaForcedSourceId", "type": "long"},
                                *_RUBIN_POSITION,
                            ],
                        },
                    },
                ],
                "default": None,
            },
            {
                "name": "diaObject",
                "type": [
                    "null",
                    {
                        "type": "record",
                        "name": "diaObject",
                        "fields": [
                            {"name": "diaObjectId", "type": "long"},
                            {"name": "ra", "type": "double"},
                            {"name": "dec", "type": "double"},
                        ],
                    },
                ],
                "default": None,
            },
            *(
                {"name": name, "type": ["null", "bytes"], "default": None}
                for name in ("cutoutDifference", "cutoutScience", "cutoutTemplate")
            ),
        ],
    }
)
SCHEMAS = {"ztf": (ZTF, ZTF_AVRO), "rubin": (RUBIN, RUBIN_AVRO)}


def _fits(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(pixels.astype(np.float32)).writeto(buffer)
    return buffer.getvalue()


def limiting_magnitude(flux_err: float) -> float:
    """A packet's 5-sigma limit (``diffmaglim``, AB mag) of a flux error in nanomaggies."""
    return NANOMAGGY_ZEROPOINT - 2.5 * np.log10(5 * flux_err)


def _ztf_row(mjd: float, band: str, flux: float, err: float, detected: bool) -> dict:
    """One ``prv_candidates`` row: a detection's ``magpsf``/``sigmapsf``/``isdiffpos``, or a
    non-detection's 5-sigma ``diffmaglim`` (flux and error in nanomaggies)."""
    limit = limiting_magnitude(err)
    code = next(c for c, letter in ZTF.band_codes.items() if letter == get_band(band).letter)
    row = {"jd": mjd - JD_TO_MJD, "fid": code, "diffmaglim": limit}
    if detected and flux != 0:
        row |= {
            "magpsf": NANOMAGGY_ZEROPOINT - 2.5 * np.log10(abs(flux)),
            "sigmapsf": 2.5 / np.log(10) * err / abs(flux),
            "isdiffpos": "t" if flux > 0 else "f",
        }
    return row


class _Photometry:
    """An object's light curve, and the rows of it one packet carries."""

    def __init__(self, series: StampSeries, history_days: float) -> None:
        lc = series.lightcurve
        if lc is None:
            raise ConventionError(
                "has no light curve: only an alert twin's objects make packets",
                obj=series.object_id,
            )
        self.mjd = np.asarray(lc["mjd"], dtype=float)
        self.band = [str(b) for b in lc["band"]]
        self.flux = np.asarray(lc["flux"], dtype=float)
        self.flux_err = np.asarray(lc["flux_err"], dtype=float)
        self.detected = np.asarray(lc["detected"], dtype=bool)
        self.history_days = history_days

    def own(self, mjd: float, band: str) -> int:
        """The row of a frame's own detection."""
        return next(j for j in np.flatnonzero(self.mjd == mjd) if self.band[j] == band)

    def before(self, mjd: float) -> np.ndarray:
        """The rows a packet at ``mjd`` carries: those of the history before it."""
        return np.flatnonzero((self.mjd < mjd) & (self.mjd >= mjd - self.history_days))


def ztf_packets(series: StampSeries) -> list[dict]:
    """Each of a ZTF twin object's frames as a ZTF packet record (``ZTF_AVRO``).

    Raises:
        ConventionError: the object has no light curve (not an alert twin's).
    """
    photometry = _Photometry(series, ZTF_SURVEY.history_days)
    fields = {}
    for name, (path, factor) in ZTF.catalogue.items():
        value = series.metadata.get(name, np.nan)
        fields[path] = value / factor if np.isfinite(value) else NULL
    differences = difference_stamps(series, series.references)
    records = []
    for k, mjd in enumerate(series.mjd):
        band = get_band(int(series.band[k])).name
        own = photometry.own(float(mjd), band)
        rows = [
            _ztf_row(
                photometry.mjd[j],
                photometry.band[j],
                photometry.flux[j],
                photometry.flux_err[j],
                bool(photometry.detected[j]),
            )
            for j in photometry.before(float(mjd))
        ]
        zeropoint = float(series.zeropoint[k])
        to_counts = 10 ** (0.4 * (zeropoint - NANOMAGGY_ZEROPOINT))
        reference = series.references[int(series.band[k])]
        candidate = _ztf_row(
            float(mjd), band, photometry.flux[own], photometry.flux_err[own], True
        ) | {
            "magzpsci": zeropoint,
            "fwhm": float(series.psf_fwhm[k]) / series.pixel_scale,
            "ra": series.ra,
            "dec": series.dec,
            "nframesref": int(reference.n_frames),
            "jdstartref": reference.mjd_start - JD_TO_MJD,
            "jdendref": reference.mjd_end - JD_TO_MJD,
            **fields,
        }
        records.append(
            {
                "objectId": series.object_id,
                "candid": round(float(mjd) * 1e6) * 10 + k % 10,
                "candidate": candidate,
                "prv_candidates": rows,
                "cutoutScience": {
                    "fileName": "sci.fits.gz",
                    "stampData": gzip.compress(_fits(series.frames[k] * to_counts)),
                },
                "cutoutTemplate": {
                    "fileName": "ref.fits.gz",
                    "stampData": gzip.compress(_fits(reference.stamp * to_counts)),
                },
                "cutoutDifference": {
                    "fileName": "diff.fits.gz",
                    "stampData": gzip.compress(_fits(differences[k] * to_counts)),
                },
            }
        )
    return records


def _object_number(object_id: str) -> int:
    """A Rubin ``diaObjectId`` for an object id: its digits (a twin's ``sim000123`` is
    123), else its last four bytes as a number; below 1e13, so that the source ids made
    from it (times 1e5, plus a row) stay within Avro's long."""
    digits = "".join(c for c in object_id if c.isdigit())
    if digits and len(digits) <= 12:
        return int(digits)
    return int.from_bytes(object_id.encode()[-4:], "big")


def rubin_packets(series: StampSeries) -> list[dict]:
    """Each of a Rubin twin object's frames as a Rubin packet record (``RUBIN_AVRO``).

    Raises:
        ConventionError: the object has no light curve (not an alert twin's).
    """
    photometry = _Photometry(series, RUBIN_SURVEY.history_days)
    object_number = _object_number(series.object_id)
    centre = (series.frames.shape[-1] - 1) / 2

    def row(j: int, name: str, number: int) -> dict:
        flux, err = photometry.flux[j] * NJY_PER_NMGY, photometry.flux_err[j] * NJY_PER_NMGY
        return {
            name: number,
            "diaObjectId": object_number,
            "ra": series.ra,
            "dec": series.dec,
            "visit": round(photometry.mjd[j] * 1e5),
            "detector": 0,
            "midpointMjdTai": photometry.mjd[j],
            "band": get_band(photometry.band[j]).letter,
            "psfFlux": flux,
            "psfFluxErr": err,
        }

    def source(j: int) -> dict:
        number = object_number * 100000 + j
        snr = photometry.flux[j] / photometry.flux_err[j]
        return row(j, "diaSourceId", number) | {"x": centre, "y": centre, "snr": snr}

    differences = difference_stamps(series, series.references)
    records = []
    for k, mjd in enumerate(series.mjd):
        band = get_band(int(series.band[k])).name
        own = photometry.own(float(mjd), band)
        earlier = photometry.before(float(mjd))
        reference = series.references[int(series.band[k])]
        records.append(
            {
                "alertId": object_number * 100000 + own,
                "diaSource": source(own),
                "prvDiaSources": [source(j) for j in earlier if photometry.detected[j]],
                "prvDiaForcedSources": [
                    row(j, "diaForcedSourceId", object_number * 100000 + j) for j in earlier
                ],
                "diaObject": {"diaObjectId": object_number, "ra": series.ra, "dec": series.dec},
                "cutoutDifference": _fits(differences[k] * NJY_PER_NMGY),
                "cutoutScience": _fits(series.frames[k] * NJY_PER_NMGY),
                "cutoutTemplate": _fits(reference.stamp * NJY_PER_NMGY),
            }
        )
    return records


PACKETS = {"ztf": ztf_packets, "rubin": rubin_packets}


def packet_object_id(series: StampSeries) -> str:
    """The object id a twin object's packets carry, as the reader gives it back: ZTF's
    ``objectId`` is the series' own; Rubin's ``diaObjectId`` is a number
    (``_object_number``)."""
    return str(_object_number(series.object_id)) if series.survey == "rubin" else series.object_id


def packet_schema(survey: str) -> tuple[AlertSchema, dict]:
    """The alert schema and the parsed Avro schema of a twin survey's packets.

    Raises:
        ConventionError: a survey without alert packets.
    """
    if survey not in SCHEMAS:
        raise ConventionError(
            f"survey {survey!r} sends no alert packets; known: {', '.join(SCHEMAS)}"
        )
    return SCHEMAS[survey]


def write_packets(series: StampSeries, folder: str | Path) -> list[Path]:
    """Write each of a twin object's packets to its own Avro file in ``folder`` (created),
    named by its time, object and frame so that names sort in time order (characters of
    the object id other than letters, digits, ``-`` and ``_`` become ``_``), each written
    whole under a temporary name first.

    Raises:
        ConventionError: a survey without alert packets, an object without a light curve,
            or ``folder`` not a place for a folder.
    """
    _, avro = packet_schema(series.survey)
    folder = check_output_folder(folder)
    folder.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", series.object_id)
    paths = []
    for k, record in enumerate(PACKETS[series.survey](series)):
        path = inside_folder(folder, f"{float(series.mjd[k]):.6f}_{name}_{k}.avro")

        def write(tmp: Path, record: dict = record) -> None:
            with tmp.open("wb") as f:
                fastavro.writer(f, avro, [record])

        write_atomic(path, write)
        paths.append(path)
    return paths
