"""A ZTF model on real labelled ZTF alerts, served as ``classify-alerts`` serves them: the
packets land in a folder in time order (a micro-batch of ``--chunk`` files at a time) and
the local engine classifies them, once with each object's history and once each alert
alone; every object is scored at its latest alert (macro-F1, accuracy, confusion matrix).
Beside it, the light-curve-only baseline: the practitioners' light-curve features and
gradient-boosted trees (and the same with the metadata model's fields beside them: the
packets' catalogue fields and the Galactic latitude),
trained on the run's own training split of the twin (``--data``, the photometry a twin
alert carries) and applied to each object's photometry at its latest alert (every
``prv_candidates`` row of its alerts so far).

The labelled alerts are for evaluation only: nothing here trains, selects or tunes.

    python benchmarks/real_alerts.py --run convention-demo-ztf/run \\
        --data convention-demo-ztf/data.h5 --out benchmarks/results/real-alerts
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from convention.alert_folder import AlertFolderStream, read_table
from convention.alert_stream import AlertClassifier
from convention.baselines.gbm import feature_matrix, fit_feature_gbm
from convention.classes import class_targets
from convention.data.series import StampSeries
from convention.evaluate.metrics import classification_metrics
from convention.features import lightcurve_features
from convention.history import HistoryBounds, advance
from convention.inputs.metadata import Metadata
from convention.io import read
from convention.io.formats.alerts import Alert, alert_series, read_alert_file
from convention.lightcurves import SUPPLIED_ELSE_FORCED, lightcurve_of
from convention.training import RunFolder

LABELLED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ztf-alerts" / "labelled"


def time_order(folder: Path) -> list[Path]:
    """The folder's alert files by their detection's time (then name)."""
    files = sorted(folder.glob("*.avro"))
    times = [read_alert_file(f, references=False).alerts[0].mjd for f in files]
    return [f for _, f in sorted(zip(times, files, strict=True), key=lambda t: (t[0], t[1].name))]


def serve(
    classifier: AlertClassifier, files: list[Path], history: HistoryBounds | None, chunk: int
) -> tuple[pd.DataFrame, float, dict]:
    """Land ``files`` ``chunk`` at a time and classify each chunk with the local engine;
    the predictions, the seconds it took and the history's size."""
    with tempfile.TemporaryDirectory() as work:
        landing, out = Path(work) / "landing", Path(work) / "out"
        landing.mkdir()
        started = time.perf_counter()
        for first in range(0, len(files), chunk):
            for path in files[first : first + chunk]:
                shutil.copyfile(path, landing / path.name)
            AlertFolderStream(landing, out, classifier, max_files=chunk, history=history).run()
        seconds = time.perf_counter() - started
        size = {}
        if history is not None:
            size = {"history_bytes": (out / "_history.sqlite").stat().st_size}
        return read_table(out), seconds, size


def score(predictions: pd.DataFrame, labels: pd.Series, classes: list[str]) -> dict:
    """Each object's latest alert scored against its label."""
    latest = predictions.sort_values(["mjd", "candidate_id"]).groupby("object_id").tail(1)
    latest = latest[latest["object_id"].isin(labels.index)]
    targets = np.array([classes.index(labels[o]) for o in latest["object_id"]])
    proba = latest[[f"p_{c}" for c in classes]].to_numpy()
    metrics = classification_metrics(targets, proba, classes)
    confusion = pd.crosstab(
        pd.Categorical([classes[t] for t in targets], classes),
        pd.Categorical(latest["predicted"], classes),
        dropna=False,
    )
    return {
        "objects": len(latest),
        "macro_f1": round(float(metrics["macro_f1"]), 4),
        "accuracy": round(float(metrics["accuracy"]), 4),
        "epochs_read": {
            "mean": round(float(latest["n_epochs"].mean()), 3),
            "max": int(latest["n_epochs"].max()),
        },
        "photometry_rows_mean": round(float(latest["n_photometry"].mean()), 1),
        "confusion": {t: confusion.loc[t].astype(int).to_dict() for t in classes},
    }


def latest_series(files: list[Path], bounds: HistoryBounds) -> dict[str, StampSeries]:
    """Each object's series at its latest alert, as the stream's history gives it."""
    alerts: dict[str, list[Alert]] = {}
    for path in files:  # time order
        for alert in read_alert_file(path, references=False).alerts:
            alerts.setdefault(alert.object_id, []).append(alert)
    return {o: alert_series(advance([], a, bounds)[0][-1]) for o, a in alerts.items()}


def lightcurve_baselines(
    run: Path, data: Path, series: dict[str, StampSeries], labels: pd.Series, seed: int = 0
) -> dict[str, dict]:
    """Light-curve features + boosting, and the same with the catalogue fields and |b|
    beside (NaN where not measured), trained on the run's training split of ``data``
    (early-stopped on its validation split), scored on each object's latest alert."""
    folder, store = RunFolder(run), read(data)
    classes = list(folder.classifier(0).classes)
    targets = class_targets(store.labels, classes)
    train, val = folder.rows(store, 0, "train"), folder.rows(store, 0, "val")
    scored = [o for o in series if o in labels.index]
    x = np.array(
        [
            lightcurve_features(lightcurve_of(series[o], SUPPLIED_ELSE_FORCED), store.bands)
            for o in scored
        ]
    )
    metadata = np.array(
        [Metadata.values(series[o].metadata, series[o].ra, series[o].dec) for o in scored]
    )
    y = np.array([classes.index(labels[o]) for o in scored])
    # The metadata columns come last (``feature_matrix(metadata=True)``).
    x_train, x_val = (
        feature_matrix(store, rows, "source", workers=2, metadata=True) for rows in (train, val)
    )
    plain = slice(0, x_train.shape[1] - metadata.shape[1])
    rows = {}
    for name, columns, test in (
        ("light-curve features + boosting", plain, x),
        ("light-curve features + metadata + boosting", slice(None), np.column_stack([x, metadata])),
    ):
        fit_train, fit_val = x_train[:, columns], x_val[:, columns]
        model = fit_feature_gbm(fit_train, targets[train], fit_val, targets[val], seed)
        proba = np.zeros((len(scored), len(classes)))
        proba[:, model.classes_] = model.predict_proba(test)
        metrics = classification_metrics(y, proba, classes)
        rows[name] = {
            "objects": len(scored),
            "macro_f1": round(float(metrics["macro_f1"]), 4),
            "accuracy": round(float(metrics["accuracy"]), 4),
            "boosting_iterations": int(model.n_iter_),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--alerts", type=Path, default=LABELLED)
    parser.add_argument("--data", type=Path, help="the run's twin store: the baseline")
    parser.add_argument("--chunk", type=int, default=32, help="files landing at a time")
    parser.add_argument("--out", type=Path, help="folder for real_alerts.json")
    args = parser.parse_args()
    classifier = AlertClassifier.load(args.run)
    classes = list(classifier.classifier.classes)
    labels = pd.read_csv(args.alerts / "labels.csv").set_index("objectId")["class4"]
    files = time_order(args.alerts)
    rows = {}
    for name, history in (("alone", None), ("with history", classifier.default_bounds())):
        predictions, seconds, size = serve(classifier, files, history, args.chunk)
        rows[name] = {
            **score(predictions, labels, classes),
            "alerts": len(predictions),
            "alerts_per_second": round(len(predictions) / seconds, 1),
            **size,
        }
        print(name, {k: v for k, v in rows[name].items() if k != "confusion"})
    if args.data:
        series = latest_series(files, classifier.default_bounds())
        for name, row in lightcurve_baselines(args.run, args.data, series, labels).items():
            rows[name] = row
            print(name, row)
    result = {
        "run": str(args.run),
        "alerts_folder": str(args.alerts),
        "files": len(files),
        "chunk": args.chunk,
        "history_epochs": classifier.default_bounds().epochs,
        "rows": rows,
    }
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "real_alerts.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
