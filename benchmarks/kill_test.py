"""Kill test: SIGKILL every writing command at random moments, then check the outputs.

    python benchmarks/kill_test.py [--n 10] [--seed 0] [--work DIR]
        [--streams local,spark] [--alerts FOLDER] [--n-alerts 800]

For each of simulate, ingest, train, predict and export, N times: start the command,
SIGKILL it after a random delay (uniform over its measured running time), then check
that its final output is absent or complete, run the same command again to the end,
check that it succeeds, that its output is complete and that no temporary file (nor a
partial run) is left beside it. ``tests/test_kill.py`` runs it with N = 1.

With ``--streams``, each named engine of ``classify-alerts`` is killed instead: a landing
folder of ``--n-alerts`` real alerts (half there at the start, the rest landing while the
stream runs, under names with glob characters, hidden and not), N SIGKILLs of the watching
stream at random moments, then one run to the end; every file must be classified or
rejected exactly once, with the probabilities of one uninterrupted run, and no staging
folder left. Prints one line per command and a total; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
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


# Names the landed copies get: glob characters, hidden, spaces (Spark once read names as
# patterns and never took hidden ones).
PREFIXES = ["", "a?", "b*", "c[1]", "_", ".", "d {e} ~ ", "f%20", "g:h", "#", "\\"]
# Seconds a watching stream runs before its kill: drawn up to the time one start takes
# to classify its first batches (a JVM and a Spark session start first).
KILL_WINDOW = {"local": 6.0, "spark": 25.0}


def _land(sources: list[Path], names: list[str], inbox: Path) -> None:
    """Land files as a broker does: written beside under a name not ending .avro, then
    renamed in."""
    for source, name in zip(sources, names, strict=True):
        shutil.copy(source, inbox / f"{name}.part")
        os.rename(inbox / f"{name}.part", inbox / name)


def _stream_problems(out: Path, inbox: Path, reference: Path) -> list[str]:
    """What is wrong with a stream's output: a file not taken exactly once, probabilities
    other than an uninterrupted run's, a staging folder left."""
    import numpy as np

    from convention.alert_folder import read_table
    from convention.io.formats.alerts import display_name

    problems = []
    predictions, rejected = read_table(out), read_table(out, "rejected")
    taken = [Path(f).name for f in [*predictions["file"], *rejected["file"]]]
    landed = sorted(display_name(p.name) for p in inbox.iterdir() if p.name.endswith(".avro"))
    if sorted(taken) != landed:
        twice = len(taken) - len(set(taken))
        missing = len(set(landed) - set(taken))
        problems.append(f"{twice} files taken twice, {missing} never taken")
    expected = read_table(reference).set_index("file").sort_index()
    got = predictions.set_index("file").sort_index()
    if not got.index.equals(expected.index):
        problems.append("other files classified than by one uninterrupted run")
    elif not np.allclose(got.filter(like="p_"), expected.filter(like="p_"), atol=1e-6):
        problems.append("other probabilities than one uninterrupted run's")
    left = [p.name for t in ("predictions", "rejected") for p in (out / t).glob(".*")]
    if left:
        problems.append(f"staging folders left: {left[:3]}")
    return problems


def stream_kills(engine: str, n: int, rng: random.Random, alerts: Path, n_alerts: int,
                 work: Path) -> list[str]:  # fmt: skip
    """Kill a watching ``classify-alerts`` of ``engine`` N times while alerts land, then
    run it to the end; the problems found."""
    from convention.alert_folder import AlertFolderStream
    from convention.alert_stream import AlertClassifier

    sources = sorted(alerts.glob("*.avro"))[:n_alerts]
    names = [f"{PREFIXES[k % len(PREFIXES)]}{p.name}" for k, p in enumerate(sources)]
    inbox, out = work / f"in*[{engine}]", work / f"out?{{{engine}}}"
    inbox.mkdir()
    run = work / "ztf-model"
    if not run.exists():
        prepare_ztf_model(run)
    half = len(sources) // 2
    _land(sources[:half], names[:half], inbox)
    command = [
        *CONVENTION, "classify-alerts", "--engine", engine, "--checkpoint", str(run),
        "--input", str(inbox), "--out", str(out), "--max-files-per-batch", "40",
    ]  # fmt: skip
    later = iter(range(half, len(sources)))
    for _ in range(n):
        stream = subprocess.Popen(
            [*command, "--watch", "--trigger-seconds", "0.5"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + rng.uniform(0.0, KILL_WINDOW[engine])
        while time.monotonic() < deadline:  # the rest lands while the stream runs
            k = next(later, None)
            if k is not None:
                _land([sources[k]], [names[k]], inbox)
            time.sleep(0.02)
        os.killpg(stream.pid, signal.SIGKILL)
        stream.wait()
    rest = list(later)
    _land([sources[k] for k in rest], [names[k] for k in rest], inbox)
    result = subprocess.run([*command, "--once"], capture_output=True, text=True)
    if result.returncode != 0:
        return [f"the run to the end failed: {(result.stderr or result.stdout)[-300:]}"]
    reference = work / f"reference-{engine}"
    AlertFolderStream(inbox, reference, AlertClassifier.load(run)).run()
    return _stream_problems(out, inbox, reference)


def prepare_ztf_model(run: Path) -> None:
    """A tiny model of simulated ZTF stamps (the bands and size alerts carry)."""
    data = run.parent / "ztf.h5"
    subprocess.run(
        [*CONVENTION, "simulate", "--survey", "ztf", "--n-objects", "48", "--seed", "5",
         "--workers", "1", "--out", str(data)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*CONVENTION, "train", "--data", str(data), "--out", str(run), "--preset", "tiny",
         "--epochs", "1", "--batch-size", "8", "--stamp-size", "63", "--max-frames", "16"],
        check=True, capture_output=True,
    )  # fmt: skip


def main_streams(engines: list[str], n: int, seed: int, alerts: Path, n_alerts: int,
                 work: Path) -> int:  # fmt: skip
    """Run the stream kill test; the number of failed checks."""
    rng = random.Random(seed)
    failures = 0
    for engine in engines:
        start = time.perf_counter()
        problems = stream_kills(engine, n, rng, alerts, n_alerts, work)
        failures += len(problems)
        status = "ok" if not problems else f"{len(problems)} problem(s): {problems[:3]}"
        seconds = time.perf_counter() - start
        print(f"classify-alerts ({engine}): {n} kills over {n_alerts} alerts in "
              f"{seconds:.0f} s: {status}", flush=True)  # fmt: skip
    print(f"{n * len(engines)} kills, {failures} failed checks")
    return failures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="kills per command")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill times")
    parser.add_argument("--work", type=Path, help="scratch folder [a temporary one]")
    parser.add_argument("--streams", help="kill classify-alerts instead: local,spark")
    parser.add_argument(
        "--alerts", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
        / "ztf-alerts" / "unlabelled", help="the alert files landed",
    )  # fmt: skip
    parser.add_argument("--n-alerts", type=int, default=800, help="alerts landed")
    args = parser.parse_args()

    def go(work: Path) -> int:
        if args.streams:
            engines = args.streams.split(",")
            return main_streams(engines, args.n, args.seed, args.alerts, args.n_alerts, work)
        return main(args.n, args.seed, work)

    if args.work is None:
        with tempfile.TemporaryDirectory() as tmp:
            sys.exit(1 if go(Path(tmp)) else 0)
    args.work.mkdir(parents=True, exist_ok=False)
    sys.exit(1 if go(args.work) else 0)
