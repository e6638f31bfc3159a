"""Reading a store: gzip-compressed against uncompressed frames, object by object against a
batch of consecutive objects per read.

Copies the first ``--objects`` objects of a store twice (frames gzip level 1 with shuffle,
as stores were written before, and uncompressed, as they are now; same chunks), then
prints each copy's size and its objects/s read one object at a time (``store[i]``) and
64 consecutive objects per read (``store.read_range``).

    python benchmarks/store_read.py --data store.h5 --objects 1000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import h5py


def copy_store(source: Path, out: Path, n_objects: int, compress: bool) -> None:
    """The first ``n_objects`` objects of ``source`` (frames, frame columns, index)."""
    with h5py.File(source) as src, h5py.File(out, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        count = src["object/count"][:n_objects]
        n_frames = int(count.sum())
        lc_count = src["object/lc_count"][:n_objects]
        n_lc = int((src["object/lc_start"][:n_objects] + lc_count)[lc_count >= 0].max(initial=0))

        def copy(name: str, obj) -> None:
            if not isinstance(obj, h5py.Dataset):
                return
            rows = {"object": n_objects, "lightcurve": n_lc}.get(name.split("/")[0], n_frames)
            data = obj[:rows]
            extra = {}
            if name == "frames" and compress:
                extra = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
            dst.create_dataset(
                name, data=data, chunks=obj.chunks, maxshape=obj.maxshape, dtype=obj.dtype, **extra
            )

        src.visititems(copy)


def read_rates(path: Path) -> dict:
    """Objects/s read one by one and 64 consecutive objects per read (fresh handles)."""
    import convention

    store = convention.read(path)
    start = time.perf_counter()
    for i in range(len(store)):
        store[i]
    one = len(store) / (time.perf_counter() - start)
    store = convention.read(path)
    start = time.perf_counter()
    for first in range(0, len(store), 64):
        store.read_range(first, min(first + 64, len(store)))
    batch = len(store) / (time.perf_counter() - start)
    return {"one_by_one_objects_per_s": one, "batch_of_64_objects_per_s": batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="JSON file for the figures")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, compress in (("gzip-1", True), ("uncompressed", False)):
            path = Path(tmp) / f"{name}.h5"
            copy_store(args.data, path, args.objects, compress)
            results[name] = {"mib": path.stat().st_size / 2**20, **read_rates(path)}
            r = results[name]
            print(
                f"{name:>12}: {r['mib']:.0f} MiB; one by one {r['one_by_one_objects_per_s']:.0f} "
                f"objects/s, 64 per read {r['batch_of_64_objects_per_s']:.0f} objects/s"
            )
    print(f"load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    if args.out:
        report = {"data": str(args.data), "objects": args.objects, "results": results}
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
