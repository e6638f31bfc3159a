"""``alerts`` format: ZTF alert packets (Avro), and Rubin's where it differs only by names.

Every alert holds one detection (its time, band and cutouts) and the object's previous
photometry (Rubin's: its previous detections and forced photometry at every visit).
Alerts are grouped by object id and sorted by time; an alert of the same object, time and
band as one already read (a re-sent candidate) is dropped and counted.
The first requested cutout (``science`` by default) becomes the frame, the others extra
channels. Each band's reference is the template cutout of the object's latest alert in
that band (with ZTF's ``nframesref``, ``jdstartref`` and ``jdendref``); an alert without a
template, or whose template is not on its frame cutout's pixel grid (a line in the
reader's notes), leaves its band to the median-of-frames fallback. Pixels are converted
to nanomaggies (AB zero point 22.5) with the frame's zero point; the science and template
cutouts have their median background subtracted. The light curve holds the detections as
difference fluxes and the non-detections as ``flux = 0, flux_err = limit / 5`` with
``detected = False``, or, where the packet carries forced photometry, as their measured
difference flux with ``detected = False`` (a detection of the same visit wins).

Every number a reader computes with is checked against its physical range first
(``AlertSchema.ranges``): a detection out of range rejects its alert, a history row out of
range (or without a time, or past the ``MAX_HISTORY_ROWS`` most recent) is dropped and
counted (``Alert.dropped_rows``). A file is read within bounds (``convention.io.avro``,
``MAX_CUTOUT_BYTES`` per cutout) and each alert of a file is taken or rejected alone.
"""

from __future__ import annotations

import math
import os
import stat
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convention.bands import get_band
from convention.data.lightcurve import make_lightcurve
from convention.data.reference import TEMPLATE, Reference
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.files import check_input_path
from convention.io.avro import records as avro_records
from convention.io.ingest import Collection, Rejected
from convention.io.registry import (
    Reader,
    ReaderOption,
    opened_by_scanning,
    parse_names,
    register_reader,
)
from convention.io.stamps import MAX_CUTOUT_BYTES, fit_stamp, read_fits_image
from convention.metadata import NAMES as METADATA
from convention.metadata import checked
from convention.photometry import NANOMAGGY_ZEROPOINT, background
from convention.sim.survey import NJY_ZEROPOINT
from convention.sim.survey import RUBIN as RUBIN_SURVEY
from convention.sim.survey import ZTF as ZTF_SURVEY

AVRO_MAGIC = b"Obj\x01"
CUTOUTS = ("science", "template", "difference")
JD_TO_MJD = -2400000.5
MAX_HISTORY_ROWS = 2000  # a packet's previous photometry kept: the most recent
MJD_RANGE = (40000.0, 80000.0)  # 1968-2078
# ZTF fills the part of a template cutout beyond its reference image with the largest
# float32 (9 of the 1,270 packets of ../shared/data/ztf-alerts/unlabelled): not light.
OFF_IMAGE = float(np.finfo(np.float32).max)
SKY = {"ra": (0.0, 360.0), "dec": (-90.0, 90.0)}


@dataclass(frozen=True)
class AlertSchema:
    """Where one alert schema keeps each quantity: the one table of field names.

    Paths are dotted (``diaSource.diaObjectId``); ``detection`` and ``previous`` fields are
    looked up inside the current detection and each previous one.
    """

    name: str
    survey: str
    pixel_scale: float  # arcsec per pixel
    stamp_size: int
    object_id: str
    candidate_id: str  # the detection's own id (one per alert)
    detection: str
    previous: str  # the previous detections (and, ZTF's, non-detection limits)
    time: str
    time_to_mjd: float  # added to ``time`` to give MJD
    band: str
    band_codes: dict  # value of ``band`` -> band letter
    ra: str
    dec: str
    fwhm_pixels: str | None
    zeropoint: str | None
    default_zeropoint: dict  # band letter -> AB zero point of one pixel count
    cutout: dict  # cutout name -> path of its bytes
    photometry: str  # "mag" (magpsf, sigmapsf, isdiffpos, diffmaglim) or "flux"
    mag: str = ""
    mag_err: str = ""
    sign: str = ""
    limit: str = ""
    flux: str = ""
    flux_err: str = ""
    flux_zeropoint: float = NANOMAGGY_ZEROPOINT
    x: str | None = None
    y: str | None = None
    # The template's provenance in the detection: frames coadded, first and last time.
    reference_frames: str | None = None
    reference_start: str | None = None
    reference_end: str | None = None
    detector_shape: tuple[int, int] = (0, 0)  # (ny, nx) pixels, for edge-clipped cutouts
    # Band letter -> a frame's PSF FWHM (arcsec) where the packet does not say it (Rubin's:
    # its twin's median seeing, which the twin stores too).
    frame_fwhm: dict = field(default_factory=dict)
    # Band letter -> the template's PSF FWHM (arcsec) where the packet does not say it:
    # what forced photometry matches the frame's PSF to (none: no PSF matching).
    reference_fwhm: dict = field(default_factory=dict)
    # Catalogue field (``convention.metadata``) -> (its path in the detection, the factor
    # to the field's unit); a null, or a value out of the field's range, is not measured.
    catalogue: dict = field(default_factory=dict)
    # The previous forced photometry (every visit's difference flux at the object), read
    # as non-detections; None: the schema has none.
    forced: str | None = None
    recognise: tuple[str, ...] = field(default=())
    ranges: dict = field(default_factory=dict)  # field -> (low, high): its physical range


ZTF = AlertSchema(
    name="ztf",
    survey="ztf",
    pixel_scale=1.01,
    stamp_size=63,
    object_id="objectId",
    candidate_id="candid",
    detection="candidate",
    previous="prv_candidates",
    time="jd",
    time_to_mjd=JD_TO_MJD,
    band="fid",
    band_codes={1: "g", 2: "r", 3: "i"},
    ra="ra",
    dec="dec",
    fwhm_pixels="fwhm",
    zeropoint="magzpsci",
    # Nominal ZTF zero points (DN, 30 s), for alert schemas before magzpsci (< 3.2).
    default_zeropoint={"g": 26.325, "r": 26.275, "i": 25.660},
    cutout={
        "science": "cutoutScience.stampData",
        "template": "cutoutTemplate.stampData",
        "difference": "cutoutDifference.stampData",
    },
    photometry="mag",
    mag="magpsf",
    mag_err="sigmapsf",
    sign="isdiffpos",
    limit="diffmaglim",
    x="xpos",
    y="ypos",
    reference_frames="nframesref",
    reference_start="jdstartref",
    reference_end="jdendref",
    detector_shape=(3080, 3072),
    # A packet does not carry its template's seeing. References coadd frames of better
    # than median seeing: the ZTF survey definition's figure (its median FWHM of the real
    # alerts times its reference_seeing_ratio), the one its twin renders.
    reference_fwhm={letter: ZTF_SURVEY.reference_fwhm(f"ztf::{letter}") for letter in "gri"},
    catalogue={
        "star_score": ("sgscore1", 1.0),
        "star_distance": ("distpsnr1", 1.0),
        "reference_distance": ("distnr", 1.01),  # pixels
    },
    recognise=("candidate",),
    ranges={
        "jd": tuple(m - JD_TO_MJD for m in MJD_RANGE),
        "magpsf": (0.0, 40.0),
        "sigmapsf": (0.0, 10.0),
        "diffmaglim": (0.0, 40.0),
        "magzpsci": (15.0, 40.0),
        "fwhm": (0.0, 100.0),  # pixels
        "xpos": (-10.0, 10000.0),
        "ypos": (-10.0, 10000.0),
        "nframesref": (0.0, 100000.0),
        "jdstartref": tuple(m - JD_TO_MJD for m in MJD_RANGE),
        "jdendref": tuple(m - JD_TO_MJD for m in MJD_RANGE),
        **SKY,
    },
)

RUBIN = AlertSchema(
    name="rubin",
    survey="lsst",
    pixel_scale=0.2,
    stamp_size=30,
    object_id="diaSource.diaObjectId",
    candidate_id="diaSource.diaSourceId",
    detection="diaSource",
    previous="prvDiaSources",
    time="midpointMjdTai",
    time_to_mjd=0.0,
    band="band",
    band_codes={b: b for b in "ugrizy"},
    ra="ra",
    dec="dec",
    fwhm_pixels=None,
    zeropoint=None,
    default_zeropoint={b: RUBIN_SURVEY.packet_zeropoint for b in "ugrizy"},  # pixels in nJy
    cutout={
        "science": "cutoutScience",
        "template": "cutoutTemplate",
        "difference": "cutoutDifference",
    },
    photometry="flux",
    flux="psfFlux",
    flux_err="psfFluxErr",
    flux_zeropoint=NJY_ZEROPOINT,
    frame_fwhm={letter: RUBIN_SURVEY.seeing_fwhm_median(f"lsst::{letter}") for letter in "ugrizy"},
    # As ZTF's: the template's seeing is not in the packet; the Rubin twin's figure.
    reference_fwhm={letter: RUBIN_SURVEY.reference_fwhm(f"lsst::{letter}") for letter in "ugrizy"},
    forced="prvDiaForcedSources",
    recognise=("diaSource",),
    ranges={
        "midpointMjdTai": MJD_RANGE,
        "psfFlux": (-1e12, 1e12),  # nJy: 1e12 is magnitude -6.6
        "psfFluxErr": (0.0, 1e12),
        **SKY,
    },
)

SCHEMAS = (ZTF, RUBIN)


def _get(record: dict, path: str):
    value = record
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _scaled(value: object, factor: float) -> float | None:
    """A packet's number times ``factor``; None for a null or anything not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) * factor


def is_alert_file(path: Path) -> bool:
    """An Avro object container file (the alert packets' format); a FIFO or a device is
    never opened."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == AVRO_MAGIC


def _schema_of(record: dict) -> AlertSchema | None:
    for schema in SCHEMAS:
        if all(_get(record, key) is not None for key in schema.recognise):
            return schema
    return None


@dataclass
class Alert:
    """One alert packet, decoded: its detection's cutouts (nanomaggies), ``meta`` (position,
    PSF FWHM, sky noise, zero point, and the catalogue fields of ``convention.metadata``,
    NaN where not measured) and the photometry it carries (its own and the previous rows;
    ``dropped_rows`` previous rows left out: out of their physical range, without a time,
    or past ``MAX_HISTORY_ROWS``)."""

    object_id: str
    candidate_id: str
    mjd: float
    band: str
    images: dict[str, np.ndarray]
    meta: dict
    lightcurve: list[tuple[float, str, float, float, bool]]
    path: Path
    schema: str
    dropped_rows: int = 0
    reference: Reference | None = None
    reference_note: str | None = None
    missing: tuple[str, ...] = ()  # the cutouts asked for that the packet lacks

    @property
    def band_name(self) -> str:
        """The detection's band, canonical name (``ztf::r``)."""
        survey = next(s.survey for s in SCHEMAS if s.name == self.schema)
        return get_band(self.band, survey).name


@dataclass
class AlertFile:
    """What one Avro file gave: its alerts, and an error for each alert (or the rest of
    the file) that could not be read."""

    alerts: list[Alert]
    errors: list[ConventionError]


class _OutOfRange(ValueError):
    """A number of a packet outside its physical range (or no number at all)."""


def _number(schema: AlertSchema, row: dict, name: str, where: str) -> float | None:
    """A field of a packet's row as a float, checked against its physical range; None
    when it is absent (null).

    Raises:
        _OutOfRange: not a finite number in its range, in words naming the field.
    """
    value = row.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _OutOfRange(f"{where}.{name} = {value!r} is not a number") from None
    low, high = schema.ranges.get(name, (-math.inf, math.inf))
    if not (math.isfinite(number) and low <= number <= high):
        raise _OutOfRange(f"{where}.{name} = {number:g} is outside its range [{low:g}, {high:g}]")
    return number


def _nmgy(value: float, zeropoint: float) -> float:
    return value * 10 ** (-0.4 * (zeropoint - NANOMAGGY_ZEROPOINT))


def _photometry_row(
    schema: AlertSchema, row: dict, where: str, detected: bool = True
) -> tuple[float, str, float, float, bool]:
    """One photometry row (MJD, band letter, flux and error in nanomaggies, detected); a
    flux schema's row is a detection unless ``detected`` is False (forced photometry).

    Raises:
        _OutOfRange: a number out of its range, or what the row lacks.
    """
    time, code = _number(schema, row, schema.time, where), row.get(schema.band)
    if time is None:
        raise _OutOfRange(f"{where} has no {schema.time}")
    if code not in schema.band_codes:
        raise _OutOfRange(f"{where}.{schema.band} = {code!r} is not a band of {schema.name}")
    mjd, band = time + schema.time_to_mjd, schema.band_codes[code]
    if schema.photometry == "flux":
        flux = _number(schema, row, schema.flux, where)
        err = _number(schema, row, schema.flux_err, where)
        if flux is None or err is None:
            missing = schema.flux if flux is None else schema.flux_err
            raise _OutOfRange(f"{where} has no {missing}")
        scale = _nmgy(1.0, schema.flux_zeropoint)
        return mjd, band, flux * scale, err * scale, detected
    mag = _number(schema, row, schema.mag, where)
    sigma = _number(schema, row, schema.mag_err, where)
    if mag is not None and sigma is not None:
        sign = -1.0 if str(row.get(schema.sign)).lower() in ("f", "0", "false") else 1.0
        flux = 10 ** (-0.4 * (mag - NANOMAGGY_ZEROPOINT))
        return mjd, band, sign * flux, flux * sigma * np.log(10) / 2.5, True
    limit = _number(schema, row, schema.limit, where)
    if limit is None:
        raise _OutOfRange(f"{where} has neither {schema.mag} nor {schema.limit}")
    return mjd, band, 0.0, 10 ** (-0.4 * (limit - NANOMAGGY_ZEROPOINT)) / 5, False


def _history(schema: AlertSchema, record: dict) -> tuple[list, int]:
    """The packet's previous photometry rows that are whole and in range (its detections
    first, then its forced photometry), the ``MAX_HISTORY_ROWS`` most recent, and how many
    were dropped."""
    lists = [(schema.previous, True)] + ([(schema.forced, False)] if schema.forced else [])
    rows, dropped = [], 0
    for path, detected in lists:
        previous = _get(record, path)
        for prv in previous if isinstance(previous, list) else []:
            try:
                row = prv if isinstance(prv, dict) else {}
                rows.append(_photometry_row(schema, row, "row", detected))
            except _OutOfRange:
                dropped += 1
    if len(rows) > MAX_HISTORY_ROWS:
        rows.sort(key=lambda r: r[0])
        dropped += len(rows) - MAX_HISTORY_ROWS
        rows = rows[-MAX_HISTORY_ROWS:]
    return rows, dropped


def _anchor(size: int, want: int, position: float | None, detector: int) -> str:
    """Which side of a clipped cutout lost its pixels, from the source's detector pixel."""
    if size >= want or position is None or detector == 0:
        return "centre"
    return "start" if position < detector / 2 else "end"


def _parse(
    schema: AlertSchema, record: dict, path: Path, cutouts: tuple[str, ...], references: bool
) -> Alert:
    """One alert record (its template made its band's reference when ``references``).

    Raises:
        ConventionError: a detection number out of its range, no object id, a missing or
            unreadable cutout.
    """
    object_id = _get(record, schema.object_id)
    obj = None if object_id is None else str(object_id)
    det = _get(record, schema.detection)
    det = det if isinstance(det, dict) else {}
    try:
        row = _photometry_row(schema, det, schema.detection)
        zp = _number(schema, det, schema.zeropoint, schema.detection) if schema.zeropoint else None
        fwhm = (
            _number(schema, det, schema.fwhm_pixels, schema.detection)
            if schema.fwhm_pixels
            else None
        )
        ra, dec = (_number(schema, det, name, schema.detection) for name in (schema.ra, schema.dec))
        x = _number(schema, det, schema.x, schema.detection) if schema.x else None
        y = _number(schema, det, schema.y, schema.detection) if schema.y else None
    except _OutOfRange as err:
        raise ConventionError(str(err), path=path, obj=obj) from None
    mjd, band = row[0], row[1]
    zp = zp if zp is not None else schema.default_zeropoint[band]
    fwhm = (
        fwhm * schema.pixel_scale
        if fwhm is not None and fwhm > 0
        else schema.frame_fwhm.get(band, np.nan)
    )
    read: dict[str, _Cutout] = {}
    for name in cutouts:
        cutout = _cutout(schema, record, name, path, obj, zp, (x, y))
        if cutout is not None:
            read[name] = cutout
    reference, reference_note = None, None
    try:
        if "template" in read:
            template = read["template"]
        elif references:
            template = _cutout(schema, record, "template", path, obj, zp, (x, y))
        else:  # not read: a third of the reading time of an alert
            template = None
        frame = read.get(cutouts[0])
        reference, reference_note = _template_reference(
            schema, det, band, template, frame.grid if frame is not None else None
        )
    except ConventionError as err:
        reference_note = f"{err.cause}: median-of-frames reference"
    if obj is None:
        raise ConventionError(f"alert lacks its object id ({schema.object_id})", path=path)
    history, dropped = _history(schema, record)
    meta = {
        "ra": np.nan if ra is None else ra,
        "dec": np.nan if dec is None else dec,
        "psf_fwhm": fwhm,
        "sky_sigma": read["science"].sky_sigma if "science" in read else np.nan,
        "zeropoint": zp,
        **{
            name: checked(name, _scaled(_get(det, where), factor))
            for name, (where, factor) in schema.catalogue.items()
        },
    }
    candidate_id = _get(record, schema.candidate_id)
    return Alert(
        obj,
        "" if candidate_id is None else str(candidate_id),
        mjd,
        band,
        {name: cutout.stamp for name, cutout in read.items()},
        meta,
        [row, *history],
        path,
        schema.name,
        dropped,
        reference,
        reference_note,
        tuple(name for name in cutouts if name not in read),
    )


@dataclass(frozen=True)
class _Cutout:
    """One cutout as read.

    Attributes:
        stamp: (S, S) pixels in nanomaggies, fitted to the schema's stamp size (S); the
            science and template with their median background subtracted.
        grid: the shape the cutout came in.
        sky_sigma: per-pixel background noise of the whole cutout, nanomaggies (NaN for a
            difference cutout, whose background is not measured).
    """

    stamp: np.ndarray
    grid: tuple[int, int]
    sky_sigma: float


def _cutout(
    schema: AlertSchema,
    record: dict,
    name: str,
    path: Path,
    obj: str | None,
    zeropoint: float,
    position: tuple[float | None, float | None],
) -> _Cutout | None:
    """One cutout of the packet; None when the packet has none.

    Raises:
        ConventionError: a cutout that cannot be read.
    """
    raw = _get(record, schema.cutout[name])
    if not isinstance(raw, bytes):
        return None
    image = read_fits_image(
        raw, 0, path=path, obj=obj, what=f"{name} cutout", limit=MAX_CUTOUT_BYTES
    )
    off_image = np.abs(image) >= OFF_IMAGE
    if off_image.any():
        image = np.where(off_image, np.float32(np.nan), image)
        if not np.isfinite(image).any():
            raise ConventionError(f"{name} cutout lies wholly off its image", path=path, obj=obj)
    scale = np.float32(_nmgy(1.0, zeropoint))
    sky_sigma = np.nan
    if name != "difference":
        level, sigma = background(image)
        image = image - level
        sky_sigma = sigma * float(scale)
    image = image * scale
    want, (x, y) = schema.stamp_size, position
    anchor = (
        _anchor(image.shape[0], want, y, schema.detector_shape[0]),
        _anchor(image.shape[1], want, x, schema.detector_shape[1]),
    )
    return _Cutout(fit_stamp(image, (want, want), anchor), image.shape, sky_sigma)


def _template_reference(
    schema: AlertSchema,
    detection: dict,
    band: str,
    template: _Cutout | None,
    frame_grid: tuple[int, int] | None,
) -> tuple[Reference | None, str | None]:
    """The packet's template cutout as its band's reference, with its provenance from the
    detection, and what the user should hear of it: None and why when it is not on the
    frame cutout's pixel grid (another shape; ``frame_grid`` None: the packet has no
    frame to be on) or has no sky noise (damaged), None and None when the packet has no
    template."""
    if template is None:
        return None, None
    if frame_grid is not None and template.grid != frame_grid:
        return None, (
            f"template cutout {template.grid[0]}x{template.grid[1]} is not on the frame "
            f"cutout's pixel grid ({frame_grid[0]}x{frame_grid[1]}): median-of-frames reference"
        )
    if not template.sky_sigma > 0:
        # Most pixels one value (zeros, a fill): a damaged template, as one real alert has.
        return (
            None,
            "template cutout has no sky noise (most pixels one value): median-of-frames reference",
        )
    provenance = {
        "n_frames": 0,
        "mjd_start": np.nan,
        "mjd_end": np.nan,
        "psf_fwhm": schema.reference_fwhm.get(band, np.nan),
    }
    fields = {
        "n_frames": (schema.reference_frames, 0.0),
        "mjd_start": (schema.reference_start, schema.time_to_mjd),
        "mjd_end": (schema.reference_end, schema.time_to_mjd),
    }
    note = None
    for key, (name, offset) in fields.items():
        try:
            value = _number(schema, detection, name, schema.detection) if name else None
        except _OutOfRange as err:
            note = f"{err}: the template's provenance left unknown"
            continue
        if value is not None:
            provenance[key] = value + offset
    reference = Reference(template.stamp, TEMPLATE, sky_sigma=template.sky_sigma, **provenance)
    return reference, note


def read_alert_file(
    path: Path, cutouts: tuple[str, ...] = ("science",), references: bool = True
) -> AlertFile:
    """The alerts of one Avro file (a regular file); ``read_alert_bytes``.

    Raises:
        ConventionError: the file gives no alert: not a regular file, empty, not Avro,
            truncated or corrupt before its first alert, bounds passed.
    """
    path = check_input_path(path, "alert file")
    if not path.is_file():
        raise ConventionError("alert file is a folder", path=path)
    return read_alert_bytes(path.read_bytes(), path, cutouts, references)


def read_alert_bytes(
    data: bytes,
    path: str | Path,
    cutouts: tuple[str, ...] = ("science",),
    references: bool = True,
) -> AlertFile:
    """The alerts of one Avro file's bytes (``path`` names it in errors), each read alone:
    one that cannot be read is an error beside the others. ``references``: make each
    alert's template its band's reference (False: the template is not read unless it is
    one of the ``cutouts``).

    Raises:
        ConventionError: the file gives no alert and one cause: the file itself (empty,
            not Avro, corrupt before its first alert, bounds passed) or its only alert.
    """
    path = Path(path)
    alerts: list[Alert] = []
    errors: list[ConventionError] = []
    try:
        for record in avro_records(bytes(data), path):
            schema = _schema_of(record) if isinstance(record, dict) else None
            try:
                if schema is None:
                    raise ConventionError("unknown alert schema (neither ZTF nor Rubin)", path=path)
                alerts.append(_parse(schema, record, path, cutouts, references))
            except ConventionError as err:
                errors.append(err)
    except ConventionError as err:
        if not alerts and not errors:
            raise
        errors.append(
            ConventionError(f"{err.cause}, after {len(alerts) + len(errors)} alerts", path=path)
        )
    if not alerts and not errors:
        raise ConventionError("Avro file holds no alert", path=path)
    if not alerts and len(errors) == 1:
        raise errors[0]
    return AlertFile(alerts, errors)


def alert_series(alerts: list[Alert], cutouts: tuple[str, ...] = ("science",)) -> StampSeries:
    """One object's series from its alerts (sorted by time; one alert: the object as that
    alert shows it): a frame per alert that has every cutout asked for, the light curve of
    every photometry row they carry, each band's latest template and the latest alert's
    catalogue fields.

    Raises:
        ConventionError: no alert has the cutouts (naming the latest and what it lacks).
    """
    return _series(alerts, next(s for s in SCHEMAS if s.name == alerts[0].schema), cutouts)


def _series(alerts: list[Alert], schema: AlertSchema, cutouts: tuple[str, ...]) -> StampSeries:
    first, latest = alerts[0], alerts[-1]
    framed = [a for a in alerts if not a.missing]
    if not framed:
        earlier = " nor has any earlier alert of the object" if len(alerts) > 1 else ""
        raise ConventionError(
            f"alert has no {' or '.join(latest.missing)} cutout{earlier}",
            path=latest.path,
            obj=latest.object_id,
        )
    rows = {}
    for alert in alerts:
        for row in alert.lightcurve:
            rows.setdefault((row[0], row[1]), row)
    lc = list(rows.values())
    images = {name: np.stack([a.images[name] for a in framed]) for name in cutouts}
    # Alerts are in time order: a band's latest template wins.
    references = {
        get_band(a.band, schema.survey).id: a.reference for a in alerts if a.reference is not None
    }
    fields = latest.meta
    return StampSeries(
        metadata={name: fields[name] for name in METADATA if np.isfinite(fields.get(name, np.nan))},
        frames=images[cutouts[0]],
        mjd=[a.mjd for a in framed],
        band=[get_band(a.band, schema.survey).id for a in framed],
        psf_fwhm=[a.meta["psf_fwhm"] for a in framed],
        sky_sigma=[a.meta["sky_sigma"] for a in framed],
        zeropoint=[a.meta["zeropoint"] for a in framed],
        object_id=first.object_id,
        ra=first.meta["ra"],
        dec=first.meta["dec"],
        survey=schema.survey,
        pixel_scale=schema.pixel_scale,
        channels={name: images[name] for name in cutouts[1:]},
        references=references,
        lightcurve=make_lightcurve(
            [r[0] for r in lc],
            [r[1] for r in lc],
            [r[2] for r in lc],
            [r[3] for r in lc],
            [r[4] for r in lc],
            survey=schema.survey,
        ),
    )


@dataclass(frozen=True)
class Landed:
    """An entry of a landing folder whose name ends in ``.avro``.

    Attributes:
        name: its name in the folder, as text (undecodable bytes escaped).
        raw: its name as the operating system gives it.
        path: where it is read from (the folder and the name).
        cause: None for an alert file to read; otherwise why it is not read (a folder, a
            FIFO, a device, a socket, a link to nothing or leading out of the folder).
    """

    name: str
    raw: str
    path: Path
    cause: str | None = None


def landed_files(folder: Path) -> list[Landed]:
    """The entries of a landing folder named ``*.avro`` (any other name: hidden, with glob
    characters or spaces), sorted by name: the one rule of what an alert file is, for both
    engines of ``classify-alerts`` and for ``ingest``. An alert file is a regular file
    inside the folder once links are followed; any other entry is given its cause.
    Nothing is opened (a FIFO would block)."""
    root = folder.resolve()
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.endswith(".avro"):
                continue
            path = folder / entry.name
            found.append(
                Landed(display_name(entry.name), entry.name, path, landing_cause(path, root))
            )
    return sorted(found, key=lambda landed: landed.name)


def display_name(name: str) -> str:
    """A file name as text any table takes: bytes that are not UTF-8 written ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def landing_cause(path: Path, root: Path) -> str | None:
    """Why a landing entry is not an alert file to read, or None (``root``: the landing
    folder, resolved). Nothing is opened."""
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        return "a link to nothing"
    except (OSError, RuntimeError) as err:  # a link loop
        return f"unreadable link ({getattr(err, 'strerror', None) or err})"
    if not resolved.is_relative_to(root):
        return "a link leading out of the landing folder"
    mode = resolved.stat().st_mode
    if stat.S_ISDIR(mode):
        return "a folder, not an alert file"
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        return f"{kind}, not an alert file"
    return None


def scan_alerts(
    inputs: list[Path], cutouts: tuple[str, ...] = ("science",), channels: tuple[str, ...] = ()
) -> Collection:
    """Read alert files (or folders of them) into one series per object; re-sent alerts
    (same object, time and band) are dropped, and counted in the provenance.

    Args:
        inputs: Avro files or folders holding them.
        cutouts: the cutouts kept (``science``, ``template``, ``difference``), the first
            as the frame, the others as channels of the same names.
        channels: more cutouts kept as channels (what a model's inputs ask for).

    Raises:
        ConventionError: an unknown cutout name, or alerts of two schemas mixed.
    """
    if not cutouts:
        raise ConventionError("name at least one cutout: the frame")
    cutouts = (*cutouts, *(c for c in channels if c not in cutouts))
    unknown = [c for c in cutouts if c not in CUTOUTS]
    if unknown:
        raise ConventionError(f"unknown cutout(s) {unknown}; known: {', '.join(CUTOUTS)}")
    if len(set(cutouts)) < len(cutouts):
        raise ConventionError(f"cutouts {list(cutouts)}: each may be named once")
    files: list[Path] = []
    rejected: list[Rejected] = []
    for item in inputs:
        if not item.is_dir():
            files.append(item)
            continue
        for landed in landed_files(item):
            if landed.cause is None:
                files.append(landed.path)
            else:
                rejected.append(Rejected(ConventionError(landed.cause, path=landed.path)))
    n_entries = len(files) + len(rejected)  # the files read and the entries refused
    by_object: dict[str, list[Alert]] = defaultdict(list)
    schemas: set[str] = set()
    dropped_rows, without_template, template_notes = 0, 0, []
    for path in files:
        try:
            found = read_alert_file(path, cutouts)
        except ConventionError as err:
            rejected.append(Rejected(err))
            continue
        rejected += [Rejected(err) for err in found.errors]
        for alert in found.alerts:
            by_object[alert.object_id].append(alert)
            schemas.add(alert.schema)
            dropped_rows += alert.dropped_rows
            if alert.reference_note is not None:
                template_notes.append(
                    str(ConventionError(alert.reference_note, path=path, obj=alert.object_id))
                )
            without_template += alert.reference is None
    if len(schemas) > 1:
        raise ConventionError(f"alerts of several schemas mixed: {sorted(schemas)}")
    schema = next((s for s in SCHEMAS if s.name in schemas), ZTF)
    n_duplicates = 0
    groups = []
    for alerts in by_object.values():
        alerts.sort(key=lambda a: (a.mjd, a.band, str(a.path)))
        unique = [alerts[0]]
        for alert in alerts[1:]:
            if (alert.mjd, alert.band) == (unique[-1].mjd, unique[-1].band):
                n_duplicates += 1
            else:
                unique.append(alert)
        groups.append(unique)

    def items() -> Iterator[StampSeries | Rejected]:
        yield from rejected
        for group in groups:
            try:
                yield _series(group, schema, cutouts)
            except ConventionError as err:
                yield Rejected(ConventionError(err.cause, path=group[0].path, obj=err.obj))

    return Collection(
        survey=schema.survey,
        bands=[get_band(b, schema.survey).name for b in schema.band_codes.values()],
        class_names=(),
        pixel_scale=schema.pixel_scale,
        items=items(),
        n_files=n_entries,
        stamp_shape=(schema.stamp_size, schema.stamp_size),
        channels=cutouts[1:],
        provenance={
            "format": "alerts",
            "schema": schema.name,
            "cutouts": list(cutouts),
            "inputs": [str(p) for p in inputs],
            "duplicates_dropped": n_duplicates,
            "photometry_rows_dropped": dropped_rows,
            "alerts_without_template": without_template,
            "units": "nanomaggies (AB zero point 22.5)",
        },
        notes=(*template_notes, *_scan_notes(n_duplicates, dropped_rows, without_template)),
    )


def _scan_notes(duplicates: int, dropped_rows: int, without_template: int) -> tuple[str, ...]:
    """What ``scan_alerts`` left out, a line each."""
    notes = []
    if without_template:
        notes.append(
            f"{without_template} alerts gave no template: their bands' references are the "
            "median of the object's frames (median-of-frames)"
        )
    if duplicates:
        notes.append(f"dropped {duplicates} re-sent alerts (same object, time and band)")
    if dropped_rows:
        notes.append(
            f"dropped {dropped_rows} previous photometry rows (out of their range, without a "
            f"time, or past the {MAX_HISTORY_ROWS} most recent of a packet)"
        )
    return tuple(notes)


def is_alert_input(path: Path) -> bool:
    """An Avro file, or a folder holding entries named ``*.avro``."""
    if path.is_dir():
        with os.scandir(path) as entries:
            return any(entry.name.endswith(".avro") for entry in entries)
    return is_alert_file(path)


register_reader(
    Reader(
        name="alerts",
        help="ZTF or Rubin alert packets (Avro files, or folders of them), grouped by object",
        detect=is_alert_input,
        open=opened_by_scanning(scan_alerts),
        scan=scan_alerts,
        options=(
            ReaderOption("cutouts", "cutouts kept, the first as the frame [science]", parse_names),
            ReaderOption(
                "channels", "more cutouts kept as channels (template, difference)", parse_names
            ),
        ),
        gives_channels=("template", "difference"),
    )
)
