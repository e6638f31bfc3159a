"""Kill test: SIGKILL every writing command at random moments, then check the outputs.

    python benchmarks/kill_test.py [--n 10] [--seed 0] [--work DIR]

For each of simulate, ingest, train, predict and export, N times: start the command,
SIGKILL it after a random delay (uniform over its measured running time), then check
that its final output is absent or complete, run the same command again to the end,
check that it succeeds, that its output is complete and that no temporary file (nor a
partial run) is left beside it. Prints one line per command and a total; exits 1 if any
check failed. ``tests/test_kill.py`` runs it with N = 1.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CONVENTION = [sys.executable, "-m", "convention"]


@dataclass(frozen=True)
class Case:
    """One command: its arguments, its output and how to tell a complete output."""

    name: str
    args: list[str]
    out: Path
    complete: Callable[[Path], bool]


def _store_complete(path: Path) -> bool:
    from convention.data.store import Store

    store = Store(path)
    return len(store) > 0 and all(len(s) > 0 for s in store)


def _run_complete(path: Path) -> bool:
    from convention.classifier import Classifier
    from convention.training import RunFolder

    run = RunFolder(path)
    return all(Classifier.load(run.fold(k)) for k in range(run.n_folds))


def _csv_complete(rows: int) -> Callable[[Path], bool]:
    return lambda path: len(path.read_text().splitlines()) == rows + 1


def _export_complete(path: Path) -> bool:
    from convention.io import read

    return len(read(path)) > 0


def prepare(work: Path) -> list[Case]:
    """The inputs every case needs, made once in ``work``, and the cases."""
    data = work / "data.h5"
    subprocess.run(
        [*CONVENTION, "simulate", "--n-objects", "48", "--stamp-size", "16", "--seed", "5",
         "--workers", "1", "--out", str(data)],
        check=True, capture_output=True,
    )  # fmt: skip
    run = work / "model"
    subprocess.run(
        [*CONVENTION, "train", "--data", str(data), "--out", str(run), "--preset", "tiny",
         "--stamp-size", "16", "--epochs", "1", "--batch-size", "8"],
        check=True, capture_output=True,
    )  # fmt: skip
    stamps = work / "stamps"
    subprocess.run(
        [*CONVENTION, "export", "fits", str(data), "--out", str(stamps)],
        check=True,
        capture_output=True,
    )
    out = work / "out"
    out.mkdir()
    return [
        Case(
            "simulate",
            [
                "simulate",
                "--n-objects",
                "40",
                "--stamp-size",
                "16",
                "--workers",
                "1",
                "--out",
                str(out / "sim.h5"),
            ],
            out / "sim.h5",
            _store_complete,
        ),
        Case(
            "ingest",
            ["ingest", "fits", str(stamps), "--out", str(out / "ingested.h5")],
            out / "ingested.h5",
            _store_complete,
        ),
        Case(
            "train",
            [
                "train",
                "--data",
                str(data),
                "--out",
                str(out / "run"),
                "--preset",
                "tiny",
                "--stamp-size",
                "16",
                "--epochs",
                "3",
                "--batch-size",
                "8",
            ],
            out / "run",
            _run_complete,
        ),
        Case(
            "predict",
            [
                "predict",
                "--checkpoint",
                str(run),
                "--data",
                str(data),
                "--out",
                str(out / "preds.csv"),
                "--batch-size",
                "4",
            ],
            out / "preds.csv",
            _csv_complete(48),
        ),
        Case(
            "export",
            ["export", "fits", str(data), "--out", str(out / "exported")],
            out / "exported",
            _export_complete,
        ),
    ]


def _leftovers(case: Case) -> list[Path]:
    folder = case.out.parent
    return sorted(
        [*folder.glob(f".{case.out.name}.*.tmp"), *folder.glob(f"{case.out.name}.partial")]
    )


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def kill_once(case: Case, seconds: float, rng: random.Random) -> list[str]:
    """Kill the case once at a random moment, rerun it; the problems found."""
    problems = []
    _remove(case.out)
    process = subprocess.Popen(
        [*CONVENTION, *case.args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(rng.uniform(0.0, seconds))
    process.send_signal(signal.SIGKILL)
    process.wait()
    if case.out.exists():
        try:
            if not case.complete(case.out):
                problems.append("a killed run left an incomplete output")
        except Exception as err:
            problems.append(f"a killed run left an unreadable output ({type(err).__name__})")
        _remove(case.out)
    if case.name == "train":  # a killed run is resumed (and then has no partial left)
        again = [*CONVENTION, "train", "--resume", str(case.out)]
        if not (case.out.parent / f"{case.out.name}.partial" / "config.json").exists():
            again = [*CONVENTION, *case.args]
    else:
        again = [*CONVENTION, *case.args]
    result = subprocess.run(again, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        problems.append(f"the next run failed: {(result.stderr or result.stdout)[-300:]}")
    elif not case.complete(case.out):
        problems.append("the next run's output is incomplete")
    left = _leftovers(case)
    if left:
        problems.append(f"temporary files left: {[p.name for p in left]}")
    return problems


def measure(case: Case) -> float:
    """Seconds one uninterrupted run takes (the range the kills are drawn from)."""
    _remove(case.out)
    start = time.perf_counter()
    subprocess.run([*CONVENTION, *case.args], check=True, capture_output=True)
    return time.perf_counter() - start


def main(n: int, seed: int, work: Path) -> int:
    """Run the kill test; the number of failed checks."""
    rng = random.Random(seed)
    failures = 0
    total = 0
    for case in prepare(work):
        seconds = measure(case)
        problems = []
        for _ in range(n):
            problems += kill_once(case, seconds, rng)
        total += n
        failures += len(problems)
        status = "ok" if not problems else f"{len(problems)} problem(s): {problems[:3]}"
        print(f"{case.name}: {n} kills within {seconds:.1f} s runs: {status}", flush=True)
    print(f"{total} kills, {failures} failed checks")
    return failures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="kills per command")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill times")
    parser.add_argument("--work", type=Path, help="scratch folder [a temporary one]")
    args = parser.parse_args()
    if args.work is None:
        with tempfile.TemporaryDirectory() as tmp:
            sys.exit(1 if main(args.n, args.seed, Path(tmp)) else 0)
    args.work.mkdir(parents=True, exist_ok=False)
    sys.exit(1 if main(args.n, args.seed, args.work) else 0)
