"""Peak memory of training and prediction against the data's size: flat, not linear.

Runs ``convention train`` (one split, ``--epochs`` epochs) and ``convention predict`` on a
small and a large store (default: 4,000 and 40,000 catalog-free simulated objects) in
subprocesses and prints, for each, the peak resident memory of the command's main process
(``ru_maxrss``) and the peak proportional set size of its whole process tree (the encoding
and loader workers included, shared pages counted once; sampled every 0.2 s), with the
large store's figures as a ratio of the small one's.

    python benchmarks/memory.py --small small.h5 --large large.h5 --out benchmarks/results/memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

CONVENTION = [sys.executable, "-m", "convention"]


def tree_pss_mib(process: psutil.Process) -> float:
    """PSS of a process and its descendants, MiB (0 for those that just ended)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


def run_measured(command: list[str]) -> dict:
    """Run ``command``; its wall time, main-process peak RSS and process-tree peak PSS."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    process = psutil.Process(child.pid)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_pss_mib(process))
            done.wait(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {child.stderr.read().decode()[-2000:]}")
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "main_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "tree_peak_pss_mib": round(peak[0], 1),
    }


def measure(store: Path, args: argparse.Namespace, folder: Path) -> dict:
    """Train and predict on one store."""
    run = folder / f"run-{store.stem}"
    train = run_measured(
        [*CONVENTION, "train", "--data", str(store), "--out", str(run), "--model", args.model,
         "--preset", args.preset, "--epochs", str(args.epochs), "--patience", str(args.epochs)]
    )  # fmt: skip
    predict = run_measured(
        [*CONVENTION, "predict", "--checkpoint", str(run), "--data", str(store),
         "--out", str(folder / f"p-{store.stem}.csv"), "--device", "cpu"]
    )  # fmt: skip
    import h5py

    with h5py.File(store) as f:
        n_objects, n_frames = len(f["object/count"]), len(f["frames"])
    return {
        "store": str(store),
        "objects": n_objects,
        "frames": n_frames,
        "store_gib": round(store.stat().st_size / 2**30, 2),
        "train": train,
        "predict": predict,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=Path, help="small store (default: simulate 4,000)")
    parser.add_argument("--large", type=Path, help="large store (default: simulate 40,000)")
    parser.add_argument("--model", default="convention")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, help="folder for memory.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stores = {}
        for name, path, n in (("small", args.small, 4000), ("large", args.large, 40000)):
            if path is None:
                path = folder / f"{name}.h5"
                subprocess.run(
                    [
                        *CONVENTION,
                        "simulate",
                        "--n-objects",
                        str(n),
                        "--seed",
                        "1",
                        "--out",
                        str(path),
                    ],
                    check=True,
                )
            stores[name] = path
        results = {name: measure(path, args, folder) for name, path in stores.items()}
    ratios = {
        f"{command}_{figure}": results["large"][command][figure] / results["small"][command][figure]
        for command in ("train", "predict")
        for figure in ("main_peak_rss_mib", "tree_peak_pss_mib")
    }
    load_after = os.getloadavg()[0]
    for name, r in results.items():
        train, predict = r["train"], r["predict"]
        print(
            f"{name}: {r['objects']} objects ({r['store_gib']} GiB): "
            f"train {train['seconds']} s, peak RSS {train['main_peak_rss_mib']:.0f} MiB "
            f"(tree PSS {train['tree_peak_pss_mib']:.0f}); predict {predict['seconds']} s, "
            f"peak RSS {predict['main_peak_rss_mib']:.0f} MiB "
            f"(tree PSS {predict['tree_peak_pss_mib']:.0f})"
        )
    print("large / small: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print(f"load average: {load_before:.2f} before, {load_after:.2f} after")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {
            "command": " ".join(["python", "benchmarks/memory.py", *sys.argv[1:]]),
            "model": args.model,
            "preset": args.preset,
            "epochs": args.epochs,
            "load_before": load_before,
            "load_after": load_after,
            "results": results,
            "large_over_small": ratios,
        }
        (args.out / "memory.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
