"""``classify-alerts --engine local``: a folder where alert files land, classified in one
process, with the same outputs and the same restart guarantee as the Spark query.

Layout of the output folder (both engines)::

    predictions/batch=<N>/part-*.parquet   a row per classified alert of micro-batch N
    rejected/batch=<N>/part-*.parquet      a row per file or alert that was not (file, cause)
    _local_log/offsets/<N>.json            the files of batch N, written before it runs
    _local_log/commits/<N>                 written once both tables of batch N are in place

(the Spark engine keeps its own log in ``_checkpoint/``). A batch's tables are written to a
hidden folder and renamed into place; a batch whose offsets exist without a commit (a
killed run) is run again on the same files and its tables replaced, so a restart neither
loses nor duplicates an alert. Readers see whole batches only (``pyarrow.dataset`` and
Spark skip hidden folders). A file is taken once its name ends in ``.avro``: producers
write elsewhere (or under another name) and rename it in, as for Spark's file source.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from convention.alert_stream import AlertClassifier, ClassifiedAlerts
from convention.errors import ConventionError
from convention.files import temporary_beside, write_atomic

LOCAL_LOG = "_local_log"
SPARK_CHECKPOINT = "_checkpoint"
TABLES = ("predictions", "rejected")


def batch_folder(out: Path, table: str, batch_id: int) -> Path:
    """Where micro-batch ``batch_id`` of ``table`` lives (a Hive-style partition)."""
    return out / table / f"batch={batch_id}"


def replace_folder(staging: Path, target: Path) -> None:
    """Move a complete staging folder onto ``target``, replacing an earlier attempt's."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def check_output_folder(input_folder: Path, out: Path, engine: str) -> None:
    """Refuse an output folder that overlaps the input folder or belongs to the other
    engine, before anything is read or written.

    Raises:
        ConventionError: naming the folder and the cause.
    """
    if not input_folder.is_dir():
        raise ConventionError("the alert folder does not exist", path=input_folder)
    inp, dst = input_folder.resolve(), out.resolve()
    if dst == inp or inp in dst.parents or dst in inp.parents:
        raise ConventionError("the output folder must lie outside the alert folder", path=out)
    if out.exists() and not out.is_dir():
        raise ConventionError("output exists and is not a folder", path=out)
    other = SPARK_CHECKPOINT if engine == "local" else LOCAL_LOG
    if (out / other).exists():
        raise ConventionError(
            f"holds the {'spark' if engine == 'local' else 'local'} engine's stream: "
            "continue it with that engine, or pick another --out",
            path=out,
        )


class AlertFolderStream:
    """Classify the ``*.avro`` files of ``input_folder`` into ``out``, batch by batch.

    Args:
        input_folder: where alert files land.
        out: the output folder (see the module's layout).
        classifier: the loaded model.
        max_files: files per micro-batch at most.
    """

    def __init__(
        self, input_folder: Path, out: Path, classifier: AlertClassifier, max_files: int = 1000
    ):
        if max_files < 1:
            raise ConventionError(f"--max-files-per-batch must be at least 1, got {max_files}")
        check_output_folder(input_folder, out, "local")
        self.input_folder, self.out, self.classifier = input_folder, out, classifier
        self.max_files = max_files
        self.offsets = out / LOCAL_LOG / "offsets"
        self.commits = out / LOCAL_LOG / "commits"

    def run(
        self,
        available_now: bool = True,
        poll_seconds: float = 1.0,
        on_batch: Callable[[int, ClassifiedAlerts], None] | None = None,
    ) -> int:
        """Classify what has landed (``available_now``), or keep watching the folder
        until interrupted. Returns the number of batches run."""
        for folder in (self.offsets, self.commits):
            folder.mkdir(parents=True, exist_ok=True)
        runs = 0
        while True:
            batch_id, files = self._next_batch()
            if files:
                result = self._run_batch(batch_id, files)
                runs += 1
                if on_batch is not None:
                    on_batch(batch_id, result)
                continue
            if available_now:
                return runs
            time.sleep(poll_seconds)

    def _logged(self) -> dict[int, list[str]]:
        return {
            int(p.stem): json.loads(p.read_text())["files"] for p in self.offsets.glob("*.json")
        }

    def _next_batch(self) -> tuple[int, list[str]]:
        """The batch to run: an uncommitted one again, else the next files not yet taken."""
        logged = self._logged()
        committed = {int(p.name) for p in self.commits.iterdir() if p.name.isdigit()}
        pending = sorted(set(logged) - committed)
        if pending:
            return pending[0], logged[pending[0]]
        taken = {name for files in logged.values() for name in files}
        new = [
            p.name
            for p in sorted(self.input_folder.glob("*.avro"))
            if p.name not in taken and p.is_file()
        ][: self.max_files]
        batch_id = max(logged, default=-1) + 1
        if new:
            write_atomic(
                self.offsets / f"{batch_id}.json",
                lambda tmp: tmp.write_text(json.dumps({"files": new})),
            )
        return batch_id, new

    def _run_batch(self, batch_id: int, names: list[str]) -> ClassifiedAlerts:
        packets = []
        missing = []
        for name in names:
            path = self.input_folder / name
            try:
                packets.append((str(path.resolve()), path.read_bytes()))
            except OSError as err:
                missing.append((str(path), f"{path}: {err.strerror or err}"))
        result = self.classifier.classify(packets)
        if missing:
            rejected = pd.DataFrame(missing, columns=result.rejected.columns)
            result = ClassifiedAlerts(result.predictions, pd.concat([result.rejected, rejected]))
        for table, frame in zip(TABLES, (result.predictions, result.rejected), strict=True):
            target = batch_folder(self.out, table, batch_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = temporary_beside(target, folder=True)
            schema = self.classifier.arrow_schema(table)
            arrow = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            pq.write_table(arrow, staging / "part-0.parquet")
            replace_folder(staging, target)
        write_atomic(self.commits / str(batch_id), lambda tmp: tmp.write_text(""))
        return result


def read_table(out: str | Path, table: str = "predictions") -> pd.DataFrame:
    """Every committed batch of one output table (``predictions`` or ``rejected``) of
    either engine, with its ``batch`` number.

    Raises:
        ConventionError: an unknown table.
    """
    if table not in TABLES:
        raise ConventionError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    import pyarrow.dataset as ds

    folder = Path(out) / table
    if not folder.is_dir():
        return pd.DataFrame()
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pandas()
