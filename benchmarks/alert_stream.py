"""Alert classification throughput and latency: Spark Structured Streaming on ``local[N]``
against the single-process loop, on the same packets.

Replicates the real ZTF alerts of ``--alerts`` (their ``objectId`` and ``candid`` made
new) into ``--packets`` Avro files, classifies them all with each engine (``--once``:
what has landed) and prints alerts/s; then starts a watching Spark query (trigger every
``--trigger-seconds``), lands one file at a time and prints the seconds from the rename
into the folder to its prediction's Parquet being in place.

    python benchmarks/alert_stream.py --run convention-demo-ztf/run \\
        --alerts ../shared/data/ztf-alerts/valid --out benchmarks/results/alert-stream
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import fastavro
import torch

from convention.alert_folder import AlertFolderStream, read_table
from convention.alert_stream import AlertClassifier
from convention.spark import stream_alerts


def replicate(alerts: Path, folder: Path, n: int) -> None:
    """``n`` packets cycling through the alerts of ``alerts``, each with new ids."""
    sources = []
    for path in sorted(alerts.glob("*.avro")):
        with path.open("rb") as f:
            reader = fastavro.reader(f)
            sources.append((reader.writer_schema, list(reader)))
    for k in range(n):
        schema, records = sources[k % len(sources)]
        renamed = [
            {**r, "objectId": f"ZTF99bench{k:07d}", "candid": 9_000_000_000_000 + k}
            for r in records
        ]
        with (folder / f"alert_{k:07d}.avro").open("wb") as f:
            fastavro.writer(f, schema, renamed)


def time_local(run: Path, inbox: Path, out: Path, max_files: int) -> dict:
    start = time.perf_counter()
    classifier = AlertClassifier.load(run)
    loaded = time.perf_counter()
    AlertFolderStream(inbox, out, classifier, max_files).run()
    end = time.perf_counter()
    n = len(read_table(out))
    return {
        "alerts": n,
        "seconds": round(end - loaded, 2),
        "load_seconds": round(loaded - start, 2),
        "alerts_per_s": round(n / (end - loaded), 1),
        "torch_threads": torch.get_num_threads(),
    }


def time_spark(run: Path, inbox: Path, out: Path, max_files: int, master: str) -> dict:
    started: dict = {}
    start = time.perf_counter()
    stream_alerts(
        inbox,
        out,
        run,
        max_files_per_trigger=max_files,
        master=master,
        on_start=lambda q: started.update(t=time.perf_counter(), query=q),
    )
    end = time.perf_counter()
    n = len(read_table(out))
    seconds = end - started["t"]
    batches = [p["durationMs"]["triggerExecution"] / 1000 for p in started["query"].recentProgress]
    return {
        "alerts": n,
        "seconds": round(seconds, 2),
        "session_start_seconds": round(started["t"] - start, 2),
        "alerts_per_s": round(n / seconds, 1),
        # The first batch starts the Python workers, each loading the model.
        "batch_seconds": [round(b, 2) for b in batches],
        "master": master,
    }


def time_latency(
    run: Path, alerts: Path, work: Path, samples: int, trigger: float, master: str
) -> dict:
    inbox, out, spare = work / "lat-in", work / "lat-out", work / "lat-spare"
    for folder in (inbox, spare):
        folder.mkdir()
    replicate(alerts, spare, samples + 1)
    files = sorted(spare.iterdir())
    shutil.copy(files[0], inbox / files[0].name)  # a first batch: workers warm
    result: dict = {}

    def land() -> None:
        query = result["query"]
        while query.lastProgress is None or not (out / "predictions" / "batch=0").exists():
            time.sleep(0.05)
        delays = []
        for k, path in enumerate(files[1:], start=1):
            time.sleep(trigger * 1.5)
            landed = time.perf_counter()
            os.rename(path, inbox / path.name)
            while not (out / "predictions" / f"batch={k}").exists():
                time.sleep(0.01)
            delays.append(time.perf_counter() - landed)
        result["delays"] = delays
        query.stop()

    lander = threading.Thread(target=land)
    stream_alerts(
        inbox,
        out,
        run,
        available_now=False,
        trigger_seconds=trigger,
        master=master,
        on_start=lambda q: (result.setdefault("query", q), lander.start()),
    )
    lander.join()
    delays = sorted(result["delays"])
    return {
        "samples": len(delays),
        "trigger_seconds": trigger,
        "median_seconds": round(delays[len(delays) // 2], 2),
        "max_seconds": round(delays[-1], 2),
        "seconds": [round(d, 2) for d in result["delays"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a ZTF model's run folder")
    parser.add_argument("--alerts", type=Path, required=True, help="real ZTF alert files")
    parser.add_argument("--packets", type=int, default=10_000)
    parser.add_argument("--max-files", type=int, default=1000, help="files per micro-batch")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--latency-samples", type=int, default=8)
    parser.add_argument("--trigger-seconds", type=float, default=1.0)
    parser.add_argument("--out", type=Path, help="folder for alert_stream.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=args.out or None) as tmp:
        work = Path(tmp)
        inbox = work / "inbox"
        inbox.mkdir()
        replicate(args.alerts, inbox, args.packets)
        size = sum(p.stat().st_size for p in inbox.iterdir())
        print(f"{args.packets} packets, {size / 2**20:.0f} MiB")
        local = time_local(args.run, inbox, work / "local", args.max_files)
        print(f"local (one process, {local['torch_threads']} threads): {local}")
        spark = time_spark(args.run, inbox, work / "spark", args.max_files, args.master)
        print(f"spark {args.master}: {spark}")
        latency = time_latency(
            args.run, args.alerts, work, args.latency_samples, args.trigger_seconds, args.master
        )
        print(f"latency, file landing -> prediction: {latency}")
    result = {
        "packets": args.packets,
        "max_files_per_batch": args.max_files,
        "local": local,
        "spark": spark,
        "spark_over_local": round(spark["alerts_per_s"] / local["alerts_per_s"], 2),
        "latency": latency,
        "cpu_count": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "alert_stream.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
