"""Classify alert packets as they arrive: one prediction row per alert, or a rejected row.

Each alert is classified as a broker sees it: its detection's science cutout is the last
frame (and the other cutouts its channels, where the model's inputs need them), the
object's earlier alerts kept by the stream (``convention.history``) the frames before it,
and the photometry they carry (their own and the previous rows) the object's light curve;
without a history, each alert alone. A file
that cannot be read (empty, truncated, not Avro, a cutout that is not FITS) or an alert
the model cannot read (another survey's bands) gives a rejected row naming the file and
the cause; nothing stops on one bad packet. Shared by both engines of
``classify-alerts``: the local folder loop (``convention.alert_folder``) and Spark
(``convention.spark``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from convention.bands import get_band
from convention.classifier import BatchPrediction, Classifier
from convention.data.reference import MEDIAN_OF_FRAMES
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.history import HistoryBounds
from convention.io.formats.alerts import CUTOUTS, SCHEMAS, Alert, alert_series, read_alert_bytes

REJECTED_COLUMNS = ("file", "cause")


def schema_bands(schema: str) -> list[str]:
    """The bands of an alert schema (``ztf`` or ``rubin``), canonical names.

    Raises:
        ConventionError: an unknown schema.
    """
    for known in SCHEMAS:
        if known.name == schema:
            return [get_band(b, known.survey).name for b in known.band_codes.values()]
    raise ConventionError(
        f"unknown alert schema {schema!r}; known: {', '.join(s.name for s in SCHEMAS)}"
    )


def model_version(path: str | Path) -> str:
    """The model's name for its predictions: the run's folder name and the first 12 hex
    digits of the SHA-256 of its weights (every fold's ``model.pt``, or the ``.onnx``)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("model.pt"))
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return f"{path.stem}-{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class ClassifiedAlerts:
    """What one batch of packets gave.

    Attributes:
        predictions: a row per classified alert: ``object_id``, ``candidate_id``, ``mjd``,
            ``band``, ``file``, ``dropped_photometry`` (previous photometry rows left out:
            out of their range, without a time, or past the most recent kept),
            ``n_epochs`` (alerts of the object it was classified with, itself included),
            ``n_photometry`` (light-curve rows it was classified with), ``reference``
            (what served as the reference of the alert's band: ``template``, the packet's
            or an earlier alert's; ``median-of-frames`` where none could, a packet without
            a usable template; ``none`` for a model that reads no reference),
            ``p_<class>`` for each class, ``predicted``, ``model_version``.
        rejected: a row per file or alert that could not be classified: ``file``,
            ``cause`` (one line naming the file and, where known, the object).
    """

    predictions: pd.DataFrame
    rejected: pd.DataFrame

    @classmethod
    def joined(cls, parts: list[ClassifiedAlerts]) -> ClassifiedAlerts:
        """Several batches' tables as one."""
        return cls(
            pd.concat([p.predictions for p in parts], ignore_index=True),
            pd.concat([p.rejected for p in parts], ignore_index=True),
        )


class AlertClassifier:
    """A checkpoint ready for alert packets of one schema.

    Args:
        classifier: the loaded model.
        version: the model's version string, written with every prediction.
        schema: the alert schema the stream carries (``ztf`` or ``rubin``); None: the one
            whose bands the model reads.
        batch_size: alerts per forward pass.
        source: the checkpoint's path, for errors.

    Raises:
        ConventionError: the model was trained on other bands than the schema's, or reads
            images an alert does not carry.
    """

    def __init__(
        self,
        classifier: Classifier,
        version: str,
        schema: str | None = None,
        batch_size: int = 64,
        source: str | Path | None = None,
    ):
        self.classifier = classifier
        self.version = version
        self.batch_size = batch_size
        reads = set(classifier.settings.bands)
        if schema is None:
            carried = [s.name for s in SCHEMAS if reads & set(schema_bands(s.name))]
            if len(carried) != 1:
                schemas = "; ".join(f"{s.name} {schema_bands(s.name)}" for s in SCHEMAS)
                raise ConventionError(
                    f"the model reads bands {list(classifier.settings.bands)}, which no one "
                    f"alert schema carries ({schemas}): train it on an alert twin "
                    "(convention demo --survey ztf or rubin)",
                    path=source,
                )
            schema = carried[0]
        self.schema = schema
        bands = schema_bands(schema)
        if not set(bands) & reads:
            raise ConventionError(
                f"the model reads bands {list(classifier.settings.bands)}, the {schema} alerts "
                f"carry {bands}: train it on {schema} data (convention demo --survey {schema})",
                path=source,
            )
        channels = classifier.encoder.needs.channels
        unknown = [c for c in channels if c not in CUTOUTS]
        if unknown:
            raise ConventionError(
                f"the model reads {unknown} images, an alert carries the cutouts {list(CUTOUTS)}",
                path=source,
            )
        # The images a kind makes itself where the source gives none: every packet of
        # both schemas carries its difference cutout.
        own = [c for c in classifier.encoder.needs.own_channels if c not in channels]
        self.cutouts = ("science", *channels, *(c for c in own if c in CUTOUTS))
        self.references = classifier.encoder.needs.reads_references

    @classmethod
    def load(
        cls,
        path: str | Path,
        schema: str | None = None,
        engine: str = "auto",
        batch_size: int = 64,
    ) -> AlertClassifier:
        """Load a run folder, a model folder or an ``.onnx`` export for ``schema`` alerts
        (None: the schema whose bands the model reads).

        Raises:
            ConventionError: an unreadable checkpoint, or one of other bands.
        """
        classifier = Classifier.load(path, engine=engine)
        return cls(classifier, model_version(path), schema, batch_size, source=path)

    @property
    def prediction_columns(self) -> list[str]:
        """The predictions table's columns, in order."""
        return [
            "object_id",
            "candidate_id",
            "mjd",
            "band",
            "file",
            "dropped_photometry",
            "n_epochs",
            "n_photometry",
            "reference",
            "missing_cutouts",
            *(f"p_{c}" for c in self.classifier.classes),
            "predicted",
            "model_version",
        ]

    def arrow_schema(self, table: str):
        """The Arrow schema of the ``predictions`` or ``rejected`` table."""
        import pyarrow as pa

        if table == "rejected":
            return pa.schema([(name, pa.string()) for name in REJECTED_COLUMNS])
        numeric = {"mjd", *(f"p_{c}" for c in self.classifier.classes)}

        def kind(column: str):
            if column in ("dropped_photometry", "n_epochs", "n_photometry"):
                return pa.int64()
            return pa.float64() if column in numeric else pa.string()

        return pa.schema([(c, kind(c)) for c in self.prediction_columns])

    @property
    def history_owner(self) -> dict[str, str]:
        """What a history of this stream's alerts belongs to: the model (its version) and
        the images each epoch keeps."""
        return {
            "model_version": self.version,
            "schema": self.schema,
            "cutouts": ",".join(self.cutouts),
            "references": str(self.references),
        }

    def default_bounds(self) -> HistoryBounds:
        """A history keeping the frames the model reads at most, a year of them."""
        return HistoryBounds(epochs=self.classifier.encoder.spec.max_frames)

    def read(
        self, packets: Iterable[tuple[str, bytes]]
    ) -> tuple[list[Alert], list[tuple[str, str]]]:
        """The alerts of ``(file name, Avro bytes)`` packets (each alert's ``path`` its
        file name), and a rejected row ``(file, cause)`` for each file or alert that could
        not be read. Never raises for a packet: one that fails for a cause no check
        foresaw is rejected with it."""
        alerts: list[Alert] = []
        rejected: list[tuple[str, str]] = []
        for name, data in packets:
            try:
                found = read_alert_bytes(bytes(data), name, self.cutouts, self.references)
            except ConventionError as err:
                rejected.append((name, str(err)))
                continue
            except Exception as err:  # a packet no check foresaw: reject it, keep the others
                rejected.append((name, _unforeseen(name, err)))
                continue
            rejected += [(name, str(err)) for err in found.errors]
            for alert in found.alerts:
                if alert.schema == self.schema:
                    alerts.append(alert)
                else:
                    rejected.append((name, str(self._other_schema(alert))))
        return alerts, rejected

    def _other_schema(self, alert: Alert) -> ConventionError:
        return ConventionError(
            f"a {alert.schema} alert, and the model reads {self.schema} alerts (bands "
            f"{', '.join(schema_bands(self.schema))}): serve it a {alert.schema} model",
            path=alert.path,
            obj=alert.object_id,
        )

    def classify(self, packets: Iterable[tuple[str, bytes]]) -> ClassifiedAlerts:
        """Classify the alerts of ``(file name, Avro bytes)`` packets, each alone."""
        alerts, rejected = self.read(packets)
        return self.classify_sequences([[alert] for alert in alerts], rejected)

    def classify_sequences(
        self, sequences: list[list[Alert]], rejected: Sequence[tuple[str, str]] = ()
    ) -> ClassifiedAlerts:
        """Classify the last alert of each sequence with the earlier ones as its past
        (one object's alerts in time order; ``convention.history``), beside the rows
        ``rejected`` already. A batch that fails for a reason no check foresaw is split in
        halves until the sequence that fails is alone, and rejected: the others are
        classified."""
        try:
            result = self._classify(sequences)
        except Exception as err:  # a packet no check foresaw: find it, keep the others
            if len(sequences) > 1:
                half = len(sequences) // 2
                result = ClassifiedAlerts.joined(
                    [
                        self.classify_sequences(sequences[:half]),
                        self.classify_sequences(sequences[half:]),
                    ]
                )
            else:
                name = str(sequences[0][-1].path) if sequences else "?"
                result = ClassifiedAlerts(
                    self._predictions([], [], np.zeros((0, len(self.classifier.classes)))),
                    pd.DataFrame([(name, _unforeseen(name, err))], columns=list(REJECTED_COLUMNS)),
                )
        if not rejected:
            return result
        rows = pd.DataFrame(list(rejected), columns=list(REJECTED_COLUMNS), dtype=str)
        return ClassifiedAlerts(
            result.predictions, pd.concat([rows, result.rejected], ignore_index=True)
        )

    def _classify(self, sequences: list[list[Alert]]) -> ClassifiedAlerts:
        read: list[tuple[Alert, StampSeries]] = []
        rejected: list[tuple[str, str]] = []
        for sequence in sequences:
            alert = sequence[-1]
            try:
                read.append((alert, alert_series(sequence, self.cutouts)))
            except ConventionError as err:
                rejected.append((str(alert.path), str(_named(err, alert))))
        batches = self.classifier.classify(
            (series for _, series in read), batch_size=self.batch_size, skip_unreadable=True
        )
        classified = BatchPrediction.join(batches, self.classifier.classes)
        for skipped in classified.skipped:
            alert, _ = read[skipped.row]
            rejected.append((str(alert.path), str(_named(skipped.error, alert))))
        rows = classified.rows
        return ClassifiedAlerts(
            self._predictions(
                [read[row][0] for row in rows], [read[row][1] for row in rows], classified.proba
            ),
            pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS), dtype=str),
        )

    def _reference_of(self, alert: Alert, series: StampSeries) -> str:
        """What served as the reference of the alert's band in its series."""
        if not self.references:
            return "none"
        reference = series.references.get(get_band(alert.band_name).id)
        return MEDIAN_OF_FRAMES if reference is None else reference.kind

    def _predictions(
        self, alerts: list[Alert], series: list[StampSeries], proba: np.ndarray
    ) -> pd.DataFrame:
        classes = self.classifier.classes
        columns: dict[str, object] = {
            "object_id": pd.Series([a.object_id for a in alerts], dtype=str),
            "candidate_id": pd.Series([a.candidate_id for a in alerts], dtype=str),
            "mjd": np.array([a.mjd for a in alerts], dtype=np.float64),
            "band": pd.Series([a.band_name for a in alerts], dtype=str),
            "file": pd.Series([str(a.path) for a in alerts], dtype=str),
            "dropped_photometry": np.array([a.dropped_rows for a in alerts], dtype=np.int64),
            "n_epochs": np.array([len(s) for s in series], dtype=np.int64),
            "n_photometry": np.array([len(s.lightcurve) for s in series], dtype=np.int64),
            "reference": pd.Series(
                [self._reference_of(a, s) for a, s in zip(alerts, series, strict=True)], dtype=str
            ),
            "missing_cutouts": pd.Series([",".join(a.missing) for a in alerts], dtype=str),
        }
        for k, name in enumerate(classes):
            columns[f"p_{name}"] = proba[:, k].astype(np.float64)
        columns["predicted"] = pd.Series(
            [classes[int(k)] for k in np.argmax(proba, axis=1)], dtype=str
        )
        columns["model_version"] = pd.Series([self.version] * len(alerts), dtype=str)
        return pd.DataFrame(columns)


def _named(err: ConventionError, alert: Alert) -> ConventionError:
    """``err`` naming the alert's file and object."""
    return ConventionError(err.cause, path=alert.path, obj=alert.object_id)


def _unforeseen(name: str, err: Exception) -> str:
    """The one-line cause of a packet that failed for a reason no check foresaw."""
    return f"{name}: could not be classified ({type(err).__name__}: {err})".splitlines()[0]
