"""Ingest and render speed of every reader on this machine.

Prints objects/s and frames/s for: the ``alerts`` reader on the ZTF alert folder, the
``fits`` reader on a stamp folder exported from a simulated store, the ``crts`` reader on
CRTS-TAO files written from the same store, and the PLAsTiCC render of the training set
(``--plasticc``; the target is <= 10 minutes). Writes the figures as JSON with ``--out``.

    python benchmarks/ingest_speed.py --plasticc \
        --data ../shared/data --out benchmarks/results/ingest/speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.table import Table

from convention.data.store import Store
from convention.io import scan
from convention.io.formats.fits import write_stamp_folder
from convention.io.ingest import ingest
from convention.io.plasticc import RenderSettings, scan_plasticc
from convention.sim.simulate import SimulationSettings, simulate


def timed_ingest(make_collection, out: Path) -> dict:
    """Time reading (the reader's scan) and writing the store together."""
    start = time.perf_counter()
    summary = ingest(make_collection(), out)
    seconds = time.perf_counter() - start
    return {
        "objects": summary.n_objects,
        "frames": summary.n_frames,
        "rejected": summary.n_rejected,
        "seconds": round(seconds, 2),
        "objects_per_s": round(summary.n_objects / seconds, 1),
        "frames_per_s": round(summary.n_frames / seconds, 1),
    }


def write_crts_files(store: Store, folder: Path) -> None:
    """CRTS-TAO-layout files (one per object) holding a simulated store's r-band stamps."""
    folder.mkdir()
    for series in store:
        r = series.select_band("r")
        header = fits.Header()
        header["CRTS_ID"] = series.object_id
        header["Class"] = {"AGN": "AGN", "SNIa": "SN", "SNOther": "SN"}.get(series.label, "OTHER")
        with warnings.catch_warnings():  # the layout's keys are not standard FITS keywords
            warnings.simplefilter("ignore", VerifyWarning)
            header["RA_(J2000)"] = series.ra
            header["Dec_(J2000)"] = series.dec
        table = fits.BinTableHDU(Table({"HDU_Ext": np.arange(2, len(r) + 2), "MJD": r.mjd}))
        images = [fits.ImageHDU(frame) for frame in r.frames]
        fits.HDUList([fits.PrimaryHDU(header=header), table, *images]).writeto(
            folder / f"{series.object_id}.fits"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--objects", type=int, default=200, help="simulated objects")
    parser.add_argument("--plasticc", action="store_true", help="also render PLAsTiCC")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict = {"cpu_count": os.cpu_count(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results["alerts"] = timed_ingest(
            lambda: scan("alerts", [args.data / "ztf-alerts/valid"]), tmp / "alerts.h5"
        )
        print("alerts", results["alerts"], flush=True)
        sim = simulate(SimulationSettings(n_objects=args.objects, seed=0), tmp / "sim.h5", 2)
        write_stamp_folder(Store(sim), tmp / "stamps")
        results["fits"] = timed_ingest(lambda: scan("fits", [tmp / "stamps"]), tmp / "fits.h5")
        print("fits", results["fits"], flush=True)
        write_crts_files(Store(sim), tmp / "crts")
        results["crts"] = timed_ingest(lambda: scan("crts", [tmp / "crts"]), tmp / "crts.h5")
        print("crts", results["crts"], flush=True)
        if args.plasticc:
            folder = args.data / "plasticc-train"
            skipped: list[int] = []

            def render():
                collection, n = scan_plasticc(
                    folder / "plasticc_train_lightcurves.csv.gz",
                    folder / "plasticc_train_metadata.csv.gz",
                    RenderSettings(),
                    workers=args.workers,
                )
                skipped.append(n)
                return collection

            results["plasticc_render"] = timed_ingest(render, tmp / "plasticc.h5")
            results["plasticc_render"]["excluded_skipped"] = skipped[0]
            results["plasticc_render"]["workers"] = args.workers
            results["plasticc_render"]["store_mib"] = round(
                (tmp / "plasticc.h5").stat().st_size / 2**20, 1
            )
            print("plasticc render", results["plasticc_render"], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
