"""Running a suite: data, every row on every split (each in its own process), resuming
where a previous run stopped, and the results written after every row.

Layout: ``OUT/results.json``, ``OUT/results.md``, ``OUT/macro_f1.png`` (small, committed)
and ``WORK/data.h5`` and ``WORK/runs/<row>/seed_<k>/`` (data and checkpoints) with each
finished row's result in ``OUT/runs/<row>/seed_<k>.json``, which a rerun keeps.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from convention.bench.report import write_results
from convention.bench.suites import BenchModel, Suite, slug
from convention.bench.supernnova import venv_path
from convention.device import device_name, resolve_device
from convention.errors import ConventionError

LIBRARIES = ("torch", "lightning", "numpy", "scikit-learn", "astropy", "galsim", "light-curve")


def environment(command: str, device: str = "cpu") -> dict:
    """Where the results come from: command, git commit, CPUs, device, library versions."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "command": command,
        "git_commit": commit,
        "cpu_count": os.cpu_count(),
        "device": device_name(device),
        "python": platform.python_version(),
        "libraries": versions,
    }


PLASTICC_FILES = ("plasticc_train_lightcurves.csv", "plasticc_train_metadata.csv")


def prepare_data(
    suite: Suite,
    work: Path,
    data: Path | None,
    catalog: Path | None,
    plasticc: Path | None = None,
) -> Path:
    """The suite's store: ``data`` if given, else made once in ``work`` (seed 0) from the
    suite's source: simulated, the SDSS-II twin of ``catalog``, or PLAsTiCC's training set
    in folder ``plasticc`` rendered to stamps.

    Raises:
        ConventionError: a missing data set, or the suite's source file missing.
    """
    from convention.sim.simulate import SimulationSettings, simulate

    if data is not None:
        if not data.is_file():
            raise ConventionError("no such data set", path=data)
        return data
    path = work / "data.h5"
    if path.is_file():
        return path
    workers = os.cpu_count() or 1
    if suite.source == "plasticc":
        return _render_plasticc(suite, plasticc, path, workers)
    if suite.source == "sdss2-catalog":
        if catalog is None or not catalog.is_file():
            raise ConventionError(
                "the SDSS-II twin needs the HEAD catalog (--catalog) or a store (--data)",
                path=catalog,
            )
        settings = SimulationSettings(catalog=str(catalog), seed=0, stamp_size=suite.stamp_size)
    else:
        settings = SimulationSettings(
            n_objects=suite.n_objects, seed=0, stamp_size=suite.stamp_size
        )
    work.mkdir(parents=True, exist_ok=True)
    return simulate(settings, path, workers=workers)


def _render_plasticc(suite: Suite, folder: Path | None, path: Path, workers: int) -> Path:
    """PLAsTiCC's training objects of the four classes rendered (seed 0) into ``path``.

    Raises:
        ConventionError: the folder or one of its two files (gzipped or not) missing.
    """
    from convention.io.ingest import ingest
    from convention.io.plasticc import RenderSettings, scan_plasticc

    if folder is None or not folder.is_dir():
        raise ConventionError(
            "the plasticc suite needs PLAsTiCC's training folder (--plasticc) or a store (--data)",
            path=folder,
        )
    found = []
    for name in PLASTICC_FILES:
        candidates = [folder / f"{name}.gz", folder / name]
        existing = [p for p in candidates if p.is_file()]
        if not existing:
            raise ConventionError(f"no {name}(.gz) in PLAsTiCC's training folder", path=folder)
        found.append(existing[0])
    lightcurves, metadata = found
    settings = RenderSettings(stamp_size=suite.stamp_size, seed=0)
    collection, _ = scan_plasticc(lightcurves, metadata, settings, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    ingest(collection, path, strict=True, command=settings.command(lightcurves, metadata, False))
    return path


def _run_row(spec: dict, result_path: Path, log: Path, commit: str) -> dict:
    spec_path = result_path.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec, indent=1))
    # Every library's thread pool (SuperNNova's too) gets the run's share of the CPUs.
    threads = str(spec["threads"])
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    start = time.perf_counter()
    with log.open("w") as stderr:
        process = subprocess.run(
            [sys.executable, "-m", "convention.bench.worker", str(spec_path), str(result_path)],
            stdout=stderr,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    spec_path.unlink(missing_ok=True)
    if process.returncode == 0 and result_path.is_file():
        result = json.loads(result_path.read_text())
        result["wall_seconds"] = time.perf_counter() - start
        result["git_commit"] = commit
        result_path.write_text(json.dumps(result, indent=1) + "\n")
        return result
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    cause = lines[-1] if lines else f"exit code {process.returncode}"
    return {"status": "failed", "seed": spec["seed"], "error": cause, "log": str(log)}


def run_suite(
    suite: Suite,
    out: Path,
    work: Path,
    *,
    data: Path | None = None,
    catalog: Path | None = None,
    plasticc: Path | None = None,
    only: list[str] | None = None,
    command: str = "",
    device: str = "cpu",
    jobs: int = 1,
    on_row: Callable[[str, int, dict], None] | None = None,
) -> dict:
    """Run every row of a suite on every seed's split, skipping rows already finished.

    ``jobs`` runs go at once, each with ``cpu_count // jobs`` threads; on two cores two
    single-threaded runs train about 1.3x more per hour than one run on both (small
    tensors leave a second thread idle). Metrics depend on the seed and the threads per
    run, not on the machine's load.

    Args:
        suite: what to run.
        out: results folder (results.json, results.md, figure, finished rows).
        work: data and checkpoints.
        data: an existing store to use instead of making one.
        catalog: the SDSS-II HEAD catalog, for the twin.
        plasticc: PLAsTiCC's training folder (light curves and metadata), for ``plasticc``.
        only: row names or slugs to run (default all).
        command: the command line, recorded.
        device: where the networks train and predict (cpu or cuda); ``suite`` should be
            the suite as it runs there (``get_suite(name, device)``).
        jobs: runs at once.
        on_row: called with (row name, seed, result) after each run.

    Returns:
        The results (also written to ``out/results.json``).

    Raises:
        ConventionError: unknown rows in ``only``, missing data, cuda without a GPU,
            ``jobs`` < 1, or ``out`` holding results made on another device.
    """
    rows = list(suite.models)
    if only:
        known = {slug(r.name): r for r in rows}
        unknown = [name for name in only if slug(name) not in known]
        if unknown:
            raise ConventionError(f"unknown model(s) {unknown}; known: {', '.join(known)}")
        rows = [known[slug(name)] for name in only]
    if jobs < 1:
        raise ConventionError(f"--jobs must be at least 1, got {jobs}")
    resolve_device(device)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**environment(command, device), "jobs": jobs, "threads_per_run": threads}
    _check_same_device(out, env["device"])
    data_path = prepare_data(suite, work, data, catalog, plasticc)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    # Seed by seed: a stopped suite leaves whole tables of the first splits.
    pending = [
        (seed, row)
        for seed in suite.seeds
        for row in rows
        if not (out / "runs" / slug(row.name) / f"seed_{seed}.json").is_file()
    ]

    def start(seed: int, row: BenchModel) -> dict:
        result_path = out / "runs" / slug(row.name) / f"seed_{seed}.json"
        result_path.parent.mkdir(parents=True, exist_ok=True)
        run_dir = work / "runs" / slug(row.name) / f"seed_{seed}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        spec = {
            "data": str(data_path),
            "model": asdict(row),
            "seed": seed,
            **suite.budget(),
            "threads": threads,
            "run_dir": str(run_dir),
            "supernnova_venv": str(venv_path(work)),
            "device": device,
        }
        log = work / f"{slug(row.name)}_seed_{seed}.log"
        return _run_row(spec, result_path, log, env["git_commit"])

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        running = {pool.submit(start, seed, row): (seed, row) for seed, row in pending}
        for done in as_completed(running):
            seed, row = running[done]
            result = done.result()
            failed = out / "runs" / slug(row.name) / f"seed_{seed}.failed.json"
            if result["status"] == "ok":
                failed.unlink(missing_ok=True)
            else:
                failed.write_text(json.dumps(result, indent=1) + "\n")
            if on_row is not None:
                on_row(row.name, seed, result)
            write_results(suite, out, str(data_path), env)
            _robustness(suite, out, work, data_path, threads, device)
    finally:
        # On an interrupt, no queued run starts; the running ones end with it.
        pool.shutdown(wait=True, cancel_futures=True)
    return write_results(suite, out, str(data_path), env)


def _check_same_device(out: Path, device: str) -> None:
    """Refuse to resume, on one device, a results folder made on another.

    Raises:
        ConventionError: ``out/results.json`` records another device.
    """
    path = out / "results.json"
    if not path.is_file():
        return
    try:
        made_on = json.loads(path.read_text())["environment"].get("device", "cpu")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConventionError("unreadable results", path=path) from None
    if made_on != device:
        raise ConventionError(
            f"these results were made on {made_on}, this run is on {device}: "
            "give the run another --out",
            path=path,
        )


def _robustness(suite: Suite, out: Path, work: Path, data: Path, threads: int, device: str) -> None:
    """The robustness figure on the first split, once every model it needs has finished
    (scored here with a run's share of the CPUs, beside the runs still going)."""
    import torch

    from convention.bench.robustness import robustness, write_robustness

    seed = suite.seeds[0]
    runs = {
        name: work / "runs" / slug(row) / f"seed_{seed}" for name, row in suite.robustness.items()
    }
    finished = all(
        (out / "runs" / slug(row) / f"seed_{seed}.json").is_file()
        for row in suite.robustness.values()
    )
    if not runs or not finished or (out / "robustness.json").is_file():
        return
    torch.set_num_threads(threads)
    write_robustness(robustness(runs, data, seed=seed, device=device), out)
