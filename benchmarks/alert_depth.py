"""How a ZTF model does with the alerts it has: macro-F1 on its run's test split with each
object cut to its first n alerts (n = 1 is what ``classify-alerts`` sees of one packet).

    python benchmarks/alert_depth.py --run convention-demo-ztf/run \\
        --data convention-demo-ztf/data.h5 --out benchmarks/results/alert-stream
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np

from convention.data.series import StampSeries
from convention.evaluate.metrics import classification_metrics
from convention.io import read
from convention.training import RunFolder


def first_alerts(series: StampSeries, _row: int, n: int) -> StampSeries:
    """What the object's ``n``-th alert carries: its first ``n`` frames and the photometry
    taken by then (a slice of the frames alone would keep the whole supplied light curve)."""
    return series.until(float(series.mjd[min(n, len(series)) - 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--alerts", default="1,2,3,5,10,0", help="n per row; 0: all")
    parser.add_argument("--out", type=Path, help="folder for alert_depth.json")
    args = parser.parse_args()
    run, data = RunFolder(args.run), read(args.data)
    lengths = data.lengths[run.rows(data, 0)]
    rows = []
    for n in (int(x) for x in args.alerts.split(",")):
        scores = run.score(data, 0, transform=partial(first_alerts, n=n) if n else None)
        classes = run.classifier(0).classes
        metrics = classification_metrics(scores.targets, scores.proba, classes)
        row = {
            "alerts": n or "all",
            "objects_with_fewer": int(np.sum(lengths < n)) if n else 0,
            "macro_f1": round(metrics["macro_f1"], 4),
            "accuracy": round(metrics["accuracy"], 4),
        }
        rows.append(row)
        print(row)
    result = {
        "run": str(args.run),
        "data": str(args.data),
        "test_objects": len(lengths),
        "median_alerts": float(np.median(lengths)),
        "rows": rows,
    }
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "alert_depth.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
