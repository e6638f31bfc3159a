"""Speed and memory of the simulator on the full SDSS-II twin (8,249 objects, 32x32 stamps).

    python benchmarks/simulate_speed.py \
        --catalog ../shared/data/sdss2-candidates/SDSS2_DS17_HEAD.FITS.gz

Prints objects/s, frames/s and peak resident memory (the parent and the largest worker),
and writes them to benchmarks/results/simulator/speed.json. Target: <= 10 minutes and
<= 4 GiB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import convention
from convention.sim.simulate import SimulationSettings, simulate

RESULTS = Path(__file__).parent / "results" / "simulator" / "speed.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="store to write (default: a temporary file, removed)")
    args = parser.parse_args()

    settings = SimulationSettings(catalog=args.catalog, seed=args.seed, stamp_size=32)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "twin.h5"
        start = time.perf_counter()
        simulate(settings, out, workers=args.workers)
        seconds = time.perf_counter() - start
        store = convention.read(out)
        n_objects, n_frames = len(store), int(store.lengths.sum())
        size_mb = out.stat().st_size / 2**20
    rss_parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    rss_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
    result = {
        "command": f"python benchmarks/simulate_speed.py --catalog {args.catalog} "
        f"--workers {args.workers} --seed {args.seed}",
        "objects": n_objects,
        "frames": n_frames,
        "seconds": round(seconds, 1),
        "objects_per_s": round(n_objects / seconds, 2),
        "frames_per_s": round(n_frames / seconds, 1),
        "peak_rss_parent_mib": round(rss_parent, 1),
        "peak_rss_largest_worker_mib": round(rss_worker, 1),
        "peak_rss_total_bound_mib": round(rss_parent + args.workers * rss_worker, 1),
        "store_mib": round(size_mb, 1),
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "convention": convention.__version__,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    for key, value in result.items():
        print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
