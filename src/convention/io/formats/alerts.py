"""``alerts`` format: ZTF alert packets (Avro), and Rubin's where it differs only by names.

Every alert holds one detection (its time, band and cutouts) and the object's previous
photometry. Alerts are grouped by object id and sorted by time; an alert of the same
object, time and band as one already read (a re-sent candidate) is dropped and counted.
The first requested cutout (``science`` by default) becomes the frame, the others extra
channels. Pixels are converted to nanomaggies (AB zero point 22.5) with the frame's zero
point; the science and template cutouts have their median background subtracted. The
light curve holds the detections as difference fluxes and the non-detections as
``flux = 0, flux_err = limit / 5`` with ``detected = False``.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import fastavro
import numpy as np

from convention.bands import get_band
from convention.data.lightcurve import make_lightcurve
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.io.ingest import Collection, Rejected
from convention.io.registry import (
    Reader,
    ReaderOption,
    opened_by_scanning,
    parse_names,
    register_reader,
)
from convention.io.stamps import background, fit_stamp, read_fits_image

AVRO_MAGIC = b"Obj\x01"
CUTOUTS = ("science", "template", "difference")
NANOMAGGY_ZEROPOINT = 22.5
JD_TO_MJD = -2400000.5
NJY_ZEROPOINT = 2.5 * np.log10(3631e9)  # AB magnitude of 1 nJy (~31.4)


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
    previous: str
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
    detector_shape: tuple[int, int] = (0, 0)  # (ny, nx) pixels, for edge-clipped cutouts
    recognise: tuple[str, ...] = field(default=())


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
    detector_shape=(3080, 3072),
    recognise=("candidate",),
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
    default_zeropoint={b: NJY_ZEROPOINT for b in "ugrizy"},  # calibrated pixels in nJy
    cutout={
        "science": "cutoutScience",
        "template": "cutoutTemplate",
        "difference": "cutoutDifference",
    },
    photometry="flux",
    flux="psfFlux",
    flux_err="psfFluxErr",
    flux_zeropoint=NJY_ZEROPOINT,
    recognise=("diaSource",),
)

SCHEMAS = (ZTF, RUBIN)


def _get(record: dict, path: str):
    value = record
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def is_alert_file(path: Path) -> bool:
    """An Avro object container file (the alert packets' format)."""
    with path.open("rb") as f:
        return f.read(4) == AVRO_MAGIC


def _schema_of(record: dict) -> AlertSchema | None:
    for schema in SCHEMAS:
        if all(_get(record, key) is not None for key in schema.recognise):
            return schema
    return None


@dataclass
class Alert:
    """One alert packet, decoded: its detection's cutouts (nanomaggies), metadata and the
    photometry it carries (its own and the previous rows)."""

    object_id: str
    candidate_id: str
    mjd: float
    band: str
    images: dict[str, np.ndarray]
    meta: dict
    lightcurve: list[tuple[float, str, float, float, bool]]
    path: Path
    schema: str

    @property
    def band_name(self) -> str:
        """The detection's band, canonical name (``ztf::r``)."""
        survey = next(s.survey for s in SCHEMAS if s.name == self.schema)
        return get_band(self.band, survey).name


def _nmgy(value: float, zeropoint: float) -> float:
    return value * 10 ** (-0.4 * (zeropoint - NANOMAGGY_ZEROPOINT))


def _photometry_row(schema: AlertSchema, row: dict) -> tuple[float, str, float, float, bool] | None:
    time, code = row.get(schema.time), row.get(schema.band)
    if time is None or code not in schema.band_codes:
        return None
    mjd, band = float(time) + schema.time_to_mjd, schema.band_codes[code]
    if schema.photometry == "flux":
        flux, err = row.get(schema.flux), row.get(schema.flux_err)
        if flux is None or err is None:
            return None
        scale = _nmgy(1.0, schema.flux_zeropoint)
        return mjd, band, float(flux) * scale, float(err) * scale, True
    mag, sigma = row.get(schema.mag), row.get(schema.mag_err)
    if mag is not None and sigma is not None:
        sign = -1.0 if str(row.get(schema.sign)).lower() in ("f", "0", "false") else 1.0
        flux = 10 ** (-0.4 * (float(mag) - NANOMAGGY_ZEROPOINT))
        return mjd, band, sign * flux, flux * float(sigma) * np.log(10) / 2.5, True
    limit = row.get(schema.limit)
    if limit is None:
        return None
    return mjd, band, 0.0, 10 ** (-0.4 * (float(limit) - NANOMAGGY_ZEROPOINT)) / 5, False


def _anchor(size: int, want: int, position: float | None, detector: int) -> str:
    """Which side of a clipped cutout lost its pixels, from the source's detector pixel."""
    if size >= want or position is None or detector == 0:
        return "centre"
    return "start" if position < detector / 2 else "end"


def _parse(schema: AlertSchema, record: dict, path: Path, cutouts: tuple[str, ...]) -> Alert:
    det = _get(record, schema.detection)
    row = _photometry_row(schema, det) if isinstance(det, dict) else None
    if row is None:
        raise ConventionError("alert lacks its detection's time or band", path=path)
    mjd, band = row[0], row[1]
    zp = det.get(schema.zeropoint) if schema.zeropoint else None
    zp = float(zp) if zp is not None else schema.default_zeropoint[band]
    fwhm = det.get(schema.fwhm_pixels) if schema.fwhm_pixels else None
    fwhm = float(fwhm) * schema.pixel_scale if fwhm is not None and fwhm > 0 else np.nan
    want = schema.stamp_size
    x = det.get(schema.x) if schema.x else None
    y = det.get(schema.y) if schema.y else None
    images, sky_sigma = {}, np.nan
    for name in cutouts:
        raw = _get(record, schema.cutout[name])
        if not isinstance(raw, bytes):
            raise ConventionError(f"alert has no {name} cutout", path=path)
        image = read_fits_image(raw, 0, path=path, what=f"{name} cutout")
        if name != "difference":
            level, _ = background(image)
            image = image - level
        image = image * np.float32(_nmgy(1.0, zp))
        anchor = (
            _anchor(image.shape[0], want, y, schema.detector_shape[0]),
            _anchor(image.shape[1], want, x, schema.detector_shape[1]),
        )
        images[name] = fit_stamp(image, (want, want), anchor)
        if name == "science":
            sky_sigma = background(images[name])[1]
    object_id = _get(record, schema.object_id)
    if object_id is None:
        raise ConventionError(f"alert lacks its object id ({schema.object_id})", path=path)
    lightcurve = [row]
    for prv in _get(record, schema.previous) or []:
        prv_row = _photometry_row(schema, prv) if isinstance(prv, dict) else None
        if prv_row is not None:
            lightcurve.append(prv_row)
    meta = {
        "ra": float(det.get(schema.ra) or np.nan),
        "dec": float(det.get(schema.dec) or np.nan),
        "psf_fwhm": fwhm,
        "sky_sigma": sky_sigma,
        "zeropoint": zp,
    }
    candidate_id = _get(record, schema.candidate_id)
    return Alert(
        str(object_id),
        "" if candidate_id is None else str(candidate_id),
        mjd,
        band,
        images,
        meta,
        lightcurve,
        path,
        schema.name,
    )


def read_alert_file(path: Path, cutouts: tuple[str, ...] = ("science",)) -> list[Alert]:
    """The alerts of one Avro file.

    Raises:
        ConventionError: empty, not Avro, truncated or corrupt, an unknown schema, a
            cutout that is not FITS.
    """
    return read_alert_bytes(path.read_bytes(), path, cutouts)


def read_alert_bytes(
    data: bytes, path: str | Path, cutouts: tuple[str, ...] = ("science",)
) -> list[Alert]:
    """The alerts of one Avro file's bytes (``path`` names it in errors).

    Raises:
        ConventionError: as :func:`read_alert_file`.
    """
    path = Path(path)
    try:
        head = data[:4]
        if not head:
            raise ConventionError("empty file", path=path)
        if head != AVRO_MAGIC:
            raise ConventionError(f"not an Avro alert file (starts with {head!r})", path=path)
        records = list(fastavro.reader(io.BytesIO(data)))
    except ConventionError:
        raise
    except EOFError:
        raise ConventionError("truncated Avro file", path=path) from None
    except Exception as err:  # fastavro raises many types on corrupt data
        cause = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise ConventionError(f"corrupt Avro file ({cause})", path=path) from None
    if not records:
        raise ConventionError("Avro file holds no alert", path=path)
    alerts = []
    for record in records:
        schema = _schema_of(record) if isinstance(record, dict) else None
        if schema is None:
            raise ConventionError("unknown alert schema (neither ZTF nor Rubin)", path=path)
        alerts.append(_parse(schema, record, path, cutouts))
    return alerts


def alert_series(alerts: list[Alert], cutouts: tuple[str, ...] = ("science",)) -> StampSeries:
    """One object's series from its alerts (sorted by time; one alert: the object as that
    alert shows it): a frame per alert, the light curve of every photometry row they carry.
    """
    return _series(alerts, next(s for s in SCHEMAS if s.name == alerts[0].schema), cutouts)


def _series(alerts: list[Alert], schema: AlertSchema, cutouts: tuple[str, ...]) -> StampSeries:
    first = alerts[0]
    rows = {}
    for alert in alerts:
        for row in alert.lightcurve:
            rows.setdefault((row[0], row[1]), row)
    lc = list(rows.values())
    images = {name: np.stack([a.images[name] for a in alerts]) for name in cutouts}
    return StampSeries(
        frames=images[cutouts[0]],
        mjd=[a.mjd for a in alerts],
        band=[get_band(a.band, schema.survey).id for a in alerts],
        psf_fwhm=[a.meta["psf_fwhm"] for a in alerts],
        sky_sigma=[a.meta["sky_sigma"] for a in alerts],
        zeropoint=[a.meta["zeropoint"] for a in alerts],
        object_id=first.object_id,
        ra=first.meta["ra"],
        dec=first.meta["dec"],
        survey=schema.survey,
        pixel_scale=schema.pixel_scale,
        channels={name: images[name] for name in cutouts[1:]},
        lightcurve=make_lightcurve(
            [r[0] for r in lc],
            [r[1] for r in lc],
            [r[2] for r in lc],
            [r[3] for r in lc],
            [r[4] for r in lc],
            survey=schema.survey,
        ),
    )


def alert_files(inputs: list[Path]) -> list[Path]:
    """The Avro files named, or found (``*.avro``, sorted) in the folders named."""
    files: list[Path] = []
    for item in inputs:
        files += sorted(item.glob("*.avro")) if item.is_dir() else [item]
    return files


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
    files = alert_files(inputs)
    rejected: list[Rejected] = []
    by_object: dict[str, list[Alert]] = defaultdict(list)
    schemas: set[str] = set()
    for path in files:
        try:
            for alert in read_alert_file(path, cutouts):
                by_object[alert.object_id].append(alert)
                schemas.add(alert.schema)
        except ConventionError as err:
            rejected.append(Rejected(err))
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
        n_files=len(files),
        stamp_shape=(schema.stamp_size, schema.stamp_size),
        channels=cutouts[1:],
        provenance={
            "format": "alerts",
            "schema": schema.name,
            "cutouts": list(cutouts),
            "inputs": [str(p) for p in inputs],
            "duplicates_dropped": n_duplicates,
            "units": "nanomaggies (AB zero point 22.5)",
        },
        notes=(
            (f"dropped {n_duplicates} re-sent alerts (same object, time and band)",)
            if n_duplicates
            else ()
        ),
    )


def is_alert_input(path: Path) -> bool:
    """An Avro file, or a folder holding ``*.avro`` files."""
    if path.is_dir():
        return any(path.glob("*.avro"))
    return is_alert_file(path)


register_reader(
    Reader(
        name="alerts",
        help="ZTF or Rubin alert packets (Avro files, or folders of them), grouped by object",
        detect=is_alert_input,
        open=opened_by_scanning(scan_alerts),
        scan=scan_alerts,
        options=(
            ReaderOption(
                "cutouts", "cutouts kept, the first as the frame [science]", parse_names
            ),
            ReaderOption(
                "channels", "more cutouts kept as channels (template, difference)", parse_names
            ),
        ),
    )
)
