"""A twin's test split served as ``classify-alerts`` serves real alerts: each of an
object's alerts written as its survey's packet (``convention.io.packets``: ZTF's with its
science cutout, its band's template with ``nframesref``/``jdstartref``/``jdendref``, the
catalogue fields and the ``prv_candidates`` of the 30 days before; Rubin's with the
template, ``prvDiaSources`` and ``prvDiaForcedSources`` of the 365 days before), all
landed, and classified by the local engine one alert at a time in time order with each
object's history. Each object is scored at its first alert and at its last: what
``benchmarks/alert_depth.py`` scores on the store with each object cut, here through the
packets, the reader and the history.

    python benchmarks/twin_alerts.py --run convention-demo-ztf/run \\
        --data convention-demo-ztf/data.h5 --out benchmarks/results/alert-stream
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from convention.alert_folder import AlertFolderStream, read_table
from convention.alert_stream import AlertClassifier
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.io.packets import packet_object_id, write_packets
from convention.training import RunFolder


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
    parser.add_argument("--data", type=Path, required=True, help="the run's twin store")
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
            labels[packet_object_id(series)] = series.label
            n += len(write_packets(series, inbox))
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
