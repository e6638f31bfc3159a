"""Alert classification throughput and latency: Spark Structured Streaming on ``local[N]``
against the single-process loop, on the same packets.

Replicates the real ZTF alerts of ``--alerts`` (their ``objectId`` and ``candid`` made
new, ``--alerts-per-object`` packets of each object a day apart) into ``--packets`` Avro
files, classifies them all with each engine (``--once``: what has landed), each alert
alone and with its object's history, and prints alerts/s and the history's size; then
watches a folder with each engine (a Spark query triggered, or the local loop looking,
every ``--trigger-seconds``), lands one file at a time and prints the seconds from the
rename into the folder to its prediction's Parquet being in place.

The source is the unlabelled real alerts (1,270 packets as the stream delivers them), not
``valid/``'s 16 schema samples: two of those carry a source FWHM of 70 pixels (real
packets stay under 7), whose PSF matching takes about 4 ms a frame on 525x525 grids,
against about 1.4 ms for a real alert's whole forced photometry.

    python benchmarks/alert_stream.py --run convention-demo-ztf/run \\
        --alerts ../shared/data/ztf-alerts/unlabelled --out benchmarks/results/alert-stream
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


def replicate(alerts: Path, folder: Path, n: int, per_object: int = 1) -> None:
    """``n`` packets cycling through the alerts of ``alerts``, each with new ids,
    ``per_object`` consecutive packets of one object, each a day after the one before."""
    sources = []
    for path in sorted(alerts.glob("*.avro")):
        with path.open("rb") as f:
            reader = fastavro.reader(f)
            sources.append((reader.writer_schema, list(reader)))
    for k in range(n):
        schema, records = sources[k % len(sources)]
        # the time of the object's first packet's source, then a day a packet
        jd = sources[(k - k % per_object) % len(sources)][1][0]["candidate"]["jd"] + k % per_object
        renamed = [
            {
                **r,
                "objectId": f"ZTF99bench{k // per_object:07d}",
                "candid": 9_000_000_000_000 + k,
                "candidate": {**r["candidate"], "jd": jd},
            }
            for r in records
        ]
        with (folder / f"alert_{k:07d}.avro").open("wb") as f:
            fastavro.writer(f, schema, renamed)


def history_size(path: Path, predictions) -> dict:
    """The bytes a history takes (a file or a folder), per object and per million alerts."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    objects = predictions["object_id"].nunique()
    return {
        "bytes": size,
        "bytes_per_object": round(size / objects),
        "gib_per_million_alerts": round(size / len(predictions) * 1e6 / 2**30, 2),
    }


def time_local(run: Path, inbox: Path, out: Path, max_files: int, history: bool) -> dict:
    start = time.perf_counter()
    classifier = AlertClassifier.load(run)
    bounds = classifier.default_bounds() if history else None
    loaded = time.perf_counter()
    AlertFolderStream(inbox, out, classifier, max_files, history=bounds).run()
    end = time.perf_counter()
    predictions = read_table(out)
    n = len(predictions)
    return {
        "alerts": n,
        "mean_epochs_read": round(float(predictions["n_epochs"].mean()), 2),
        "seconds": round(end - loaded, 2),
        "load_seconds": round(loaded - start, 2),
        "alerts_per_s": round(n / (end - loaded), 1),
        "torch_threads": torch.get_num_threads(),
        **({"history": history_size(out / "_history.sqlite", predictions)} if history else {}),
    }


def time_spark(
    run: Path, inbox: Path, out: Path, max_files: int, master: str, history: bool
) -> dict:
    started: dict = {}
    bounds = AlertClassifier.load(run).default_bounds() if history else None
    start = time.perf_counter()
    stream_alerts(
        inbox,
        out,
        run,
        max_files_per_trigger=max_files,
        master=master,
        history=bounds,
        on_start=lambda q: started.update(t=time.perf_counter(), query=q),
    )
    end = time.perf_counter()
    predictions = read_table(out)
    n = len(predictions)
    seconds = end - started["t"]
    batches = [p["durationMs"]["triggerExecution"] / 1000 for p in started["query"].recentProgress]
    return {
        "alerts": n,
        "mean_epochs_read": round(float(predictions["n_epochs"].mean()), 2),
        "seconds": round(seconds, 2),
        "session_start_seconds": round(started["t"] - start, 2),
        "alerts_per_s": round(n / seconds, 1),
        # The first batch starts the Python workers, each loading the model.
        "batch_seconds": [round(b, 2) for b in batches],
        "master": master,
        **(
            {"history": history_size(out / "_checkpoint" / "state", predictions)} if history else {}
        ),
    }


class _Sampled(Exception):
    """The last latency sample is in: the watching local stream stops."""


def time_latency(
    run: Path, alerts: Path, work: Path, samples: int, trigger: float, engine: str, master: str
) -> dict:
    """Seconds from a file's rename into the watched folder to its prediction's Parquet,
    one file at a time, ``samples`` times, with the objects' history as ``classify-alerts``
    keeps it by default; ``engine`` ``spark`` (a query triggered every ``trigger``
    seconds) or ``local`` (the folder looked at every ``trigger`` seconds)."""
    base = work / f"latency-{engine}"
    inbox, out, spare = base / "in", base / "out", base / "spare"
    for folder in (inbox, spare):
        folder.mkdir(parents=True)
    replicate(alerts, spare, samples + 1)
    files = sorted(spare.iterdir())
    shutil.copy(files[0], inbox / files[0].name)  # a first batch: workers warm
    classifier = AlertClassifier.load(run)
    bounds = classifier.default_bounds()  # as classify-alerts serves
    result: dict = {}

    def land(ready, stop) -> None:
        while not ready():
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
        stop()

    if engine == "spark":

        def started(query) -> None:
            def ready() -> bool:
                return query.lastProgress is not None and (out / "predictions/batch=0").exists()

            threading.Thread(target=land, args=(ready, query.stop)).start()

        stream_alerts(
            inbox,
            out,
            run,
            history=bounds,
            available_now=False,
            trigger_seconds=trigger,
            master=master,
            on_start=started,
        )
    else:

        def after_batch(batch_id: int, classified: int, rejected: list[str]) -> None:
            if batch_id >= samples:  # the last file's batch is written
                raise _Sampled

        lander = threading.Thread(
            target=land,
            args=(lambda: (out / "predictions" / "batch=0").exists(), lambda: None),
        )
        lander.start()
        stream = AlertFolderStream(inbox, out, classifier, 1000, history=bounds)
        try:
            stream.run(available_now=False, poll_seconds=trigger, on_batch=after_batch)
        except _Sampled:
            pass
        lander.join()
    delays = sorted(result["delays"])
    return {
        "engine": engine,
        "history": True,
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
    parser.add_argument("--alerts-per-object", type=int, default=5)
    parser.add_argument("--max-files", type=int, default=1000, help="files per micro-batch")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--latency-samples", type=int, default=8)
    parser.add_argument("--trigger-seconds", type=float, default=1.0)
    parser.add_argument("--out", type=Path, help="folder for alert_stream.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out or None) as tmp:
        work = Path(tmp)
        inbox = work / "inbox"
        inbox.mkdir()
        replicate(args.alerts, inbox, args.packets, args.alerts_per_object)
        size = sum(p.stat().st_size for p in inbox.iterdir())
        print(f"{args.packets} packets, {size / 2**20:.0f} MiB")
        engines = {}
        for history in (False, True):
            mode = "with history" if history else "alone"
            local = time_local(args.run, inbox, work / f"local {mode}", args.max_files, history)
            print(f"local, {mode} (one process, {local['torch_threads']} threads): {local}")
            spark = time_spark(
                args.run, inbox, work / f"spark {mode}", args.max_files, args.master, history
            )
            print(f"spark {args.master}, {mode}: {spark}")
            engines[mode] = {
                "local": local,
                "spark": spark,
                "spark_over_local": round(spark["alerts_per_s"] / local["alerts_per_s"], 2),
            }
        latency = {
            engine: time_latency(
                args.run,
                args.alerts,
                work,
                args.latency_samples,
                args.trigger_seconds,
                engine,
                args.master,
            )
            for engine in ("local", "spark")
        }
        print(f"latency, file landing -> prediction: {latency}")
    result = {
        "packets": args.packets,
        "alerts_per_object": args.alerts_per_object,
        "max_files_per_batch": args.max_files,
        **engines,
        "latency": latency,
        "cpu_count": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
    }
    print(json.dumps(result, indent=1))
    if args.out:
        (args.out / "alert_stream.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
