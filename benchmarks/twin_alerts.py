"""A ZTF twin's test split served as ``classify-alerts`` serves real alerts: each of an
object's alerts written as a ZTF packet (its science cutout, its band's template with
``nframesref``/``jdstartref``/``jdendref``, the catalogue fields ``sgscore1``,
``distpsnr1``, ``distnr``, the ``prv_candidates`` of the 30 days before, the candidate
fields the reader takes), all landed, and classified by the local
engine one alert at a time in time order with each object's history. Each object is
scored at its first alert and at its last: what ``benchmarks/alert_depth.py`` scores on
the store with each object cut, here through the packets, the reader and the history.

    python benchmarks/twin_alerts.py --run convention-demo-ztf/run \\
        --data convention-demo-ztf/data.h5 --out benchmarks/results/alert-stream
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
from astropy.io import fits

from convention.alert_folder import AlertFolderStream, read_table
from convention.alert_stream import AlertClassifier
from convention.bands import get_band
from convention.data.series import StampSeries
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.io.formats.alerts import JD_TO_MJD, NANOMAGGY_ZEROPOINT, ZTF
from convention.sim.survey import ZTF as ZTF_SURVEY
from convention.training import RunFolder

HISTORY_DAYS = ZTF_SURVEY.history_days  # how far back a packet's prv_candidates reach
FID = {get_band(letter, "ztf").name: code for code, letter in ZTF.band_codes.items()}
NULLABLE_DOUBLE = ["null", "double"]
NULL = -999.0  # ZTF's value of a catalogue field without a match
CUTOUT = {
    "type": "record",
    "name": "cutout",
    "fields": [{"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes"}],
}
PHOTOMETRY_FIELDS = [
    {"name": "jd", "type": "double"},
    {"name": "fid", "type": "int"},
    {"name": "magpsf", "type": NULLABLE_DOUBLE},
    {"name": "sigmapsf", "type": NULLABLE_DOUBLE},
    {"name": "isdiffpos", "type": ["null", "string"]},
    {"name": "diffmaglim", "type": NULLABLE_DOUBLE},
]
SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "alert",
        "namespace": "twin",
        "fields": [
            {"name": "objectId", "type": "string"},
            {"name": "candid", "type": "long"},
            {
                "name": "candidate",
                "type": {
                    "type": "record",
                    "name": "candidate",
                    "fields": [
                        *PHOTOMETRY_FIELDS,
                        *(
                            {"name": name, "type": "double"}
                            for name in ("magzpsci", "fwhm", "ra", "dec", "jdstartref", "jdendref")
                        ),
                        {"name": "nframesref", "type": "int"},
                        *(
                            {"name": name, "type": "float"}
                            for name in ("sgscore1", "distpsnr1", "distnr")
                        ),
                    ],
                },
            },
            {
                "name": "prv_candidates",
                "type": [
                    "null",
                    {
                        "type": "array",
                        "items": {"type": "record", "name": "prv", "fields": PHOTOMETRY_FIELDS},
                    },
                ],
            },
            {"name": "cutoutScience", "type": ["null", CUTOUT]},
            {"name": "cutoutTemplate", "type": ["null", "cutout"]},
        ],
    }
)


def fits_gz(pixels: np.ndarray) -> bytes:
    """A gzipped FITS image, as a ZTF packet's ``stampData``."""
    buffer = io.BytesIO()
    fits.PrimaryHDU(pixels.astype(np.float32)).writeto(buffer)
    return gzip.compress(buffer.getvalue())


def photometry_row(mjd: float, band: str, flux: float, err: float, detected: bool) -> dict:
    """One row in ZTF's magnitudes: a detection's ``magpsf``/``sigmapsf``/``isdiffpos``, or
    a non-detection's 5-sigma ``diffmaglim`` (flux and error in nanomaggies)."""
    limit = NANOMAGGY_ZEROPOINT - 2.5 * np.log10(5 * err)
    row = {"jd": mjd - JD_TO_MJD, "fid": FID[band], "diffmaglim": limit}
    if detected and flux != 0:
        row |= {
            "magpsf": NANOMAGGY_ZEROPOINT - 2.5 * np.log10(abs(flux)),
            "sigmapsf": 2.5 / np.log(10) * err / abs(flux),
            "isdiffpos": "t" if flux > 0 else "f",
        }
    return row


def catalogue_fields(series: StampSeries) -> dict[str, float]:
    """The object's catalogue fields in the packet's names and units (ZTF's null, -999,
    where not measured)."""
    fields = {}
    for name, (where, factor) in ZTF.catalogue.items():
        value = series.metadata.get(name, np.nan)
        fields[where] = value / factor if np.isfinite(value) else NULL
    return fields


def packets(series: StampSeries) -> list[dict]:
    """Each of the object's alerts as a ZTF packet record."""
    lc = series.lightcurve
    times = np.asarray(lc["mjd"])
    bands = [str(b) for b in lc["band"]]
    records = []
    for k, mjd in enumerate(series.mjd):
        band = get_band(int(series.band[k])).name
        here = [j for j in np.flatnonzero(times == mjd) if bands[j] == band]
        rows = [
            photometry_row(
                float(times[j]),
                bands[j],
                *map(float, (lc["flux"][j], lc["flux_err"][j])),
                bool(lc["detected"][j]),
            )
            for j in np.flatnonzero((times < mjd) & (times >= mjd - HISTORY_DAYS))
        ]
        # The alert's own detection (an object never detected alerts on its best frame).
        own = photometry_row(
            float(mjd), band, float(lc["flux"][here[0]]), float(lc["flux_err"][here[0]]), True
        )
        zeropoint = float(series.zeropoint[k])
        # Nanomaggies to the packet's counts.
        to_dn = 10 ** (0.4 * (zeropoint - NANOMAGGY_ZEROPOINT))
        reference = series.references[int(series.band[k])]
        records.append(
            {
                "objectId": series.object_id,
                "candid": round(mjd * 1e6) * 10 + k % 10,
                "candidate": own
                | {
                    "magzpsci": zeropoint,
                    "fwhm": float(series.psf_fwhm[k]) / series.pixel_scale,
                    "ra": series.ra,
                    "dec": series.dec,
                    "nframesref": int(reference.n_frames),
                    "jdstartref": reference.mjd_start - JD_TO_MJD,
                    "jdendref": reference.mjd_end - JD_TO_MJD,
                    **catalogue_fields(series),
                },
                "prv_candidates": rows,
                "cutoutScience": {
                    "fileName": "sci.fits.gz",
                    "stampData": fits_gz(series.frames[k] * to_dn),
                },
                "cutoutTemplate": {
                    "fileName": "ref.fits.gz",
                    "stampData": fits_gz(reference.stamp * to_dn),
                },
            }
        )
    return records


def scored(
    predictions: pd.DataFrame, labels: dict[str, str], classes: list[str], which: str
) -> dict:
    """Each object's ``first`` or ``last`` alert scored against its label."""
    ordered = predictions.sort_values(["mjd", "candidate_id"]).groupby("object_id")
    rows = ordered.head(1) if which == "first" else ordered.tail(1)
    targets = np.array([classes.index(labels[o]) for o in rows["object_id"]])
    metrics = classification_metrics(targets, rows[[f"p_{c}" for c in classes]].to_numpy(), classes)
    return {
        "objects": len(rows),
        "macro_f1": round(float(metrics["macro_f1"]), 4),
        "accuracy": round(float(metrics["accuracy"]), 4),
        "mean_epochs_read": round(float(rows["n_epochs"].mean()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the run's ZTF twin store")
    parser.add_argument("--max-files", type=int, default=1000, help="files per micro-batch")
    parser.add_argument(
        "--history-days", type=float, help="the history's age limit (default: the stream's)"
    )
    parser.add_argument("--out", type=Path, help="folder for twin_alerts.json")
    args = parser.parse_args()
    run, data = RunFolder(args.run), read(args.data)
    rows = run.rows(data, 0)
    classifier = AlertClassifier.load(args.run)
    classes = list(classifier.classifier.classes)
    labels = {}
    with tempfile.TemporaryDirectory() as work:
        inbox, out = Path(work) / "in", Path(work) / "out"
        inbox.mkdir()
        n = 0
        for i in rows:
            series = data[int(i)]
            labels[series.object_id] = series.label
            for k, record in enumerate(packets(series)):
                name = f"{record['candidate']['jd']:.6f}_{series.object_id}_{k}.avro"
                with (inbox / name).open("wb") as f:
                    fastavro.writer(f, SCHEMA, [record])
                n += 1
        started = time.perf_counter()
        bounds = classifier.default_bounds()
        if args.history_days is not None:
            bounds = replace(bounds, days=args.history_days)
        AlertFolderStream(inbox, out, classifier, args.max_files, history=bounds).run()
        seconds = time.perf_counter() - started
        predictions = read_table(out)
        rejected = read_table(out, "rejected")
    result = {
        "run": str(args.run),
        "data": str(args.data),
        "packets": n,
        "classified": len(predictions),
        "rejected": len(rejected),
        "history": {"epochs": bounds.epochs, "days": bounds.days},
        "seconds": round(seconds, 1),
        "first_alert": scored(predictions, labels, classes, "first"),
        "last_alert": scored(predictions, labels, classes, "last"),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "twin_alerts.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
