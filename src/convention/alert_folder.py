"""``classify-alerts --engine local``: a folder where alert files land, classified in one
process, with the same outputs and the same restart guarantee as the Spark query.

Layout of the output folder (both engines)::

    predictions/batch=<N>/part-*.parquet   a row per classified alert of micro-batch N
    rejected/batch=<N>/part-*.parquet      a row per entry or alert that was not (file, cause)
    _landing/<N>.jsonl                      the entries of batch N (``convention.landing``),
                                           written before it runs
    _local_log/<N>                         written once both tables of batch N are in place
    _history.sqlite                        each object's earlier alerts (``convention.history``)

(the Spark engine keeps its commits, and its history, in ``_checkpoint/``). A batch's
tables are written to a hidden folder and renamed into place; a batch whose manifest
exists without a commit (a killed run) is run again on the same entries and its tables
replaced (and the history its first attempt changed put back first), so a restart neither
loses nor duplicates an alert. Readers see whole batches only (``pyarrow.dataset`` and
Spark skip hidden folders). An entry is taken once its name ends in ``.avro``: producers
write elsewhere (or under another name) and rename it in. The output folder is locked
while a stream writes it: a second stream on it is refused.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from convention.alert_stream import AlertClassifier, ClassifiedAlerts
from convention.errors import ConventionError
from convention.files import (
    check_output_folder,
    check_output_path,
    claim_folder,
    temporary_beside,
    write_atomic,
)
from convention.history import HistoryBounds, HistoryStore
from convention.landing import COMPACT_EVERY, Entry, LandingLog, log_folder

LOCAL_LOG = "_local_log"
SPARK_CHECKPOINT = "_checkpoint"
HISTORY = "_history.sqlite"
TABLES = ("predictions", "rejected")


def batch_folder(out: Path, table: str, batch_id: int) -> Path:
    """Where micro-batch ``batch_id`` of ``table`` lives (a Hive-style partition)."""
    return out / table / f"batch={batch_id}"


def replace_folder(staging: Path, target: Path) -> None:
    """Move a complete staging folder onto ``target``, replacing an earlier attempt's."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def check_stream_folders(input_folder: Path, out: Path, engine: str) -> None:
    """Refuse a landing folder that is none, or an output folder that overlaps it, is no
    folder, or belongs to the other engine, before anything is read or written.

    Raises:
        ConventionError: naming the folder and the cause.
    """
    if not input_folder.exists():
        raise ConventionError("the alert folder does not exist", path=input_folder)
    if not input_folder.is_dir():
        raise ConventionError(
            "--input is a file: name the folder where alerts land", path=input_folder
        )
    inp, dst = input_folder.resolve(), out.resolve()
    if dst == inp or inp in dst.parents or dst in inp.parents:
        raise ConventionError("the output folder must lie outside the alert folder", path=out)
    check_output_folder(out)
    if (out / LOCAL_LOG / "offsets").is_dir():
        raise ConventionError(
            "holds a stream of an earlier version of convention: classify into another --out",
            path=out,
        )
    other = SPARK_CHECKPOINT if engine == "local" else LOCAL_LOG
    if (out / other).exists():
        raise ConventionError(
            f"holds the {'spark' if engine == 'local' else 'local'} engine's stream: "
            "continue it with that engine, or pick another --out",
            path=out,
        )


def read_entries(
    entries: list[Entry], landing: Path
) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """The alert files of a batch's entries as ``(file, bytes)`` packets, and a rejected
    row ``(file, cause)`` for each other entry (both engines)."""
    packets, rejected = [], []
    for entry in entries:
        try:
            packets.append((entry.file, entry.read(landing)))
        except ConventionError as err:
            rejected.append((entry.file, str(err)))
    return packets, rejected


def classify_entries(
    classifier: AlertClassifier,
    entries: list[Entry],
    landing: Path,
    history: HistoryStore | None = None,
    batch_id: int = 0,
) -> ClassifiedAlerts:
    """Micro-batch ``batch_id``'s predictions and rejected rows, each alert classified with
    the object's past kept in ``history`` (which the batch's alerts join), or alone."""
    packets, unread = read_entries(entries, landing)
    alerts, rejected = classifier.read(packets)
    sequences = [[a] for a in alerts] if history is None else history.advance(batch_id, alerts)
    return classifier.classify_sequences(sequences, unread + rejected)


class AlertFolderStream:
    """Classify the alert files landing in ``input_folder`` into ``out``, batch by batch.

    Args:
        input_folder: where alert files land.
        out: the output folder (see the module's layout).
        classifier: the loaded model.
        max_files: entries per micro-batch at most.
        history: what each object keeps of its past (None: each alert classified alone).
        history_path: the history's file (default ``out/_history.sqlite``).
        reset_history: start the history afresh.

    Raises:
        ConventionError: bad folders or ``max_files``, a damaged log.
    """

    def __init__(
        self,
        input_folder: Path,
        out: Path,
        classifier: AlertClassifier,
        max_files: int = 1000,
        history: HistoryBounds | None = None,
        history_path: Path | None = None,
        reset_history: bool = False,
    ):
        if max_files < 1:
            raise ConventionError(f"--max-files-per-batch must be at least 1, got {max_files}")
        check_stream_folders(input_folder, out, "local")
        self.input_folder, self.out, self.classifier = input_folder, out, classifier
        self.max_files = max_files
        self.commits = out / LOCAL_LOG
        self.history_bounds, self.reset_history = history, reset_history
        self.history_path = out / HISTORY if history_path is None else history_path
        if history_path is not None:
            check_output_path(history_path)

    def run(
        self,
        available_now: bool = True,
        poll_seconds: float = 1.0,
        on_batch: Callable[[int, int, list[str]], None] | None = None,
    ) -> int:
        """Classify what has landed (``available_now``), or keep watching the folder
        until interrupted; ``on_batch`` is called after each batch with its number, the
        alerts classified and the causes of the rows rejected. Returns the number of
        batches run.

        Raises:
            ConventionError: another stream writes ``out``, its log is damaged, its history
                damaged or of another model.
        """
        self.out.mkdir(exist_ok=True)
        lock = claim_folder(self.out, "stream")
        history = None
        try:
            log_folder(self.commits)
            if self.history_bounds is not None:
                history = HistoryStore(
                    self.history_path,
                    self.classifier.history_owner,
                    self.history_bounds,
                    self.reset_history,
                )
            log = LandingLog(self.out, self.input_folder)
            runs = 0
            while True:
                batch_id = self._pending(log)
                if batch_id is None:
                    batch_id = log.take_new(self.max_files)
                if batch_id is not None:
                    result = self._run_batch(log, batch_id, history)
                    runs += 1
                    if on_batch is not None:
                        on_batch(batch_id, len(result.predictions), list(result.rejected["cause"]))
                    continue
                if available_now:
                    return runs
                time.sleep(poll_seconds)
        finally:
            if history is not None:
                history.close()
            os.close(lock)

    def _committed(self) -> set[int]:
        return {int(p.name) for p in self.commits.iterdir() if p.name.isdigit()}

    def _pending(self, log: LandingLog) -> int | None:
        """The first batch with a manifest and no commit (a killed run's), or None."""
        committed = self._committed()
        pending = sorted(b for b in log.manifests if b not in committed)
        return pending[0] if pending else None

    def _run_batch(
        self, log: LandingLog, batch_id: int, history: HistoryStore | None
    ) -> ClassifiedAlerts:
        result = classify_entries(
            self.classifier, log.manifests[batch_id], self.input_folder, history, batch_id
        )
        for table, frame in zip(TABLES, (result.predictions, result.rejected), strict=True):
            target = batch_folder(self.out, table, batch_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = temporary_beside(target, folder=True)
            schema = self.classifier.arrow_schema(table)
            arrow = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            with (staging / "part-0.parquet").open("wb") as f:  # any name, UTF-8 or not
                pq.write_table(arrow, f)
            replace_folder(staging, target)
        write_atomic(self.commits / str(batch_id), lambda tmp: tmp.write_text(""))
        if (batch_id + 1) % COMPACT_EVERY == 0:  # committed batches' manifests, then marks
            done = sorted(b for b in self._committed() if b <= batch_id)
            for old in done:
                log.drop_manifest(old)
            for old in done:
                (self.commits / str(old)).unlink(missing_ok=True)
        return result


def read_table(out: str | Path, table: str = "predictions") -> pd.DataFrame:
    """Every committed batch of one output table (``predictions`` or ``rejected``) of
    either engine, with its ``batch`` number.

    Raises:
        ConventionError: an unknown table.
    """
    if table not in TABLES:
        raise ConventionError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    folder = Path(out) / table
    if not folder.is_dir():
        return pd.DataFrame()
    parts = []
    for batch in folder.iterdir():  # read through Python's files: any name, UTF-8 or not
        if not batch.name.startswith("batch=") or not batch.name[6:].isdigit():
            continue
        for path in sorted(batch.glob("*.parquet")):
            with path.open("rb") as f:
                part = pq.read_table(f).to_pandas()
            parts.append(part.assign(batch=int(batch.name[6:])))
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).sort_values(
        "batch", kind="stable", ignore_index=True
    )
