"""The Classifier: a trained model (or an ensemble of fold models) ready to predict, with
two calls: :meth:`Classifier.classify` (the probabilities of a collection's objects, or of
objects arriving one by one, batch by batch) and :meth:`Classifier.over_time` (what the
model said of one object after each of its nights)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from convention.classes import as_class_of
from convention.classifier.engines import ProbabilityEngine, TorchEngine
from convention.classifier.folder import load_models
from convention.classifier.settings import ModelSettings
from convention.classifier.stream import (
    EncodedBatch,
    Skipped,
    collection_batches,
    series_batches,
)
from convention.data.collection import SeriesCollection
from convention.data.cutoff import Cutoff
from convention.data.series import StampSeries
from convention.device import resolve_device
from convention.errors import ConventionError

ENGINES = ("auto", "torch", "onnxruntime")


@dataclass
class BatchPrediction:
    """Predictions of a batch of objects (or of several batches joined).

    Attributes:
        rows: (n,) positions in the input of the objects classified (a collection's rows,
            or the order in which objects arrived).
        ids: their object ids.
        proba: (n, C) class probabilities, the ensemble's mean.
        spread: (n, C) their standard deviation over the ensemble's members (fold models,
            dropout samples); None for a single model.
        skipped: the objects not classified, each with the ConventionError saying why.
    """

    rows: np.ndarray
    ids: list[str]
    proba: np.ndarray
    spread: np.ndarray | None
    skipped: list[Skipped]

    @classmethod
    def of(cls, batch: EncodedBatch, members: np.ndarray) -> BatchPrediction:
        """The prediction of ``batch`` from its members' (K, n, C) probabilities."""
        spread = members.std(0) if len(members) > 1 else None
        return cls(batch.rows, batch.ids, members.mean(0), spread, batch.skipped)

    @classmethod
    def join(cls, batches: Iterable[BatchPrediction], classes: Sequence[str]) -> BatchPrediction:
        """Batches (of one classifier, whose classes are ``classes``) as one, their arrays'
        types kept."""
        batches = list(batches)
        full = [b for b in batches if len(b.ids)]
        if not full:
            empty = np.zeros((0, len(classes)), dtype=np.float32)
            skipped = [s for b in batches for s in b.skipped]
            return cls(np.zeros(0, dtype=np.int64), [], empty, None, skipped)
        spread = full[0].spread is not None
        return cls(
            np.concatenate([b.rows for b in full]),
            [oid for b in full for oid in b.ids],
            np.concatenate([b.proba for b in full]),
            np.concatenate([b.spread for b in full]) if spread else None,
            [s for b in batches for s in b.skipped],
        )


@dataclass(frozen=True)
class ProbabilityHistory:
    """A model's class probabilities as an object was observed (``Classifier.over_time``).

    Attributes:
        mjd: (N,) the MJD of each observing night's last frame.
        proba: (N, C) the probabilities of what was seen by then.
        classes: the C class names.
    """

    mjd: np.ndarray
    proba: np.ndarray
    classes: tuple[str, ...]


class Classifier:
    """A trained model (or an ensemble of fold models) ready to predict.

    Use ``Classifier.load(path)`` with a model folder, a run folder or an exported
    ``.onnx`` file.
    """

    def __init__(self, settings: ModelSettings, engine: ProbabilityEngine):
        self.settings = settings
        self.engine = engine
        self.encoder = settings.encoder()

    @property
    def classes(self) -> list[str]:
        """Output classes, in order."""
        return list(self.settings.classes)

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "cpu",
        engine: str = "auto",
        precision: str = "32",
        dropout_samples: int = 0,
    ) -> Classifier:
        """Load a model folder (``settings.json`` + ``model.pt``), a run of fold folders or
        an ``.onnx`` export, to predict on ``device`` (cpu, cuda or auto) with ``engine``
        (``auto``: onnxruntime for an ``.onnx`` file, PyTorch otherwise) in ``precision``
        (PyTorch: ``32`` or ``bf16``), with ``dropout_samples`` Monte Carlo dropout runs of
        each fold model (PyTorch; 0: none, the fold models alone).

        Raises:
            ConventionError: missing, unreadable or corrupt checkpoint; cuda without a GPU;
                an engine that cannot read the checkpoint.
        """
        path = Path(path)
        is_onnx = path.suffix.lower() == ".onnx"
        if engine not in ENGINES:
            raise ConventionError(f"--engine must be one of {list(ENGINES)}, got {engine!r}")
        if engine == "torch" and is_onnx:
            raise ConventionError("an ONNX file runs with --engine onnxruntime", path=path)
        if engine == "onnxruntime" and not is_onnx:
            raise ConventionError(
                "--engine onnxruntime reads an .onnx file: write one with "
                "convention export onnx RUN --out model.onnx",
                path=path,
            )
        if is_onnx:
            resolve_device(device)  # a known device name
            if device == "cuda":
                raise ConventionError("ONNX models run on the CPU here: --device cpu", path=path)
            if precision != "32":
                raise ConventionError("an ONNX model runs in its exported precision", path=path)
            if dropout_samples:
                raise ConventionError(
                    "an ONNX model has no dropout: --dropout-samples needs the run folder",
                    path=path,
                )
            from convention.classifier.onnx import OnnxEngine

            onnx_engine = OnnxEngine(path, threads=torch.get_num_threads())
            return cls(onnx_engine.settings, onnx_engine)
        settings, models = load_models(path)
        return cls(settings, TorchEngine(models, device, precision, dropout_samples))

    def check_bands(self, bands: Iterable[str], source: str | Path | None = None) -> None:
        """Fail unless every band of the data is one the model was trained on (for a model of
        a subset of the bands: unless the data has one of them)."""
        bands = set(bands)
        if self.settings.other_bands == "drop":
            if not bands & set(self.settings.bands):
                raise ConventionError(
                    f"data has none of the model's bands {list(self.settings.bands)}",
                    path=source,
                )
            return
        extra = sorted(bands - set(self.settings.bands))
        if extra:
            raise ConventionError(
                f"data has bands {extra} the model was not trained on "
                f"(model bands: {list(self.settings.bands)})",
                path=source,
            )

    def check_classes(self, class_names: Iterable[str], source: str | Path | None = None) -> None:
        """Fail unless the data's labels can be scored against the model's classes (directly,
        or 4-class labels onto the 3-class taxonomy)."""
        names = set(class_names)
        mapped = {as_class_of(name, self.classes) for name in names}
        missing = sorted(set(self.classes) - mapped)
        if missing:
            raise ConventionError(
                f"data has classes {sorted(names)}, without the model's {missing} "
                f"(model classes: {self.classes})",
                path=source,
            )

    def check_data(self, data: SeriesCollection) -> None:
        """Fail, before any object is read, on data the model cannot read: other bands,
        or what its inputs need and the data lacks (``InputEncoder.lacks``).

        Raises:
            ConventionError: naming the data's file and every cause.
        """
        self.check_bands(data.bands, data.path)
        self.encoder.check_collection(data)

    def classify(
        self,
        objects: SeriesCollection | Iterable[StampSeries],
        rows: Sequence[int] | None = None,
        batch_size: int = 64,
        workers: int = 0,
        cutoff: Cutoff | None = None,
        skip_unreadable: bool = False,
    ) -> Iterator[BatchPrediction]:
        """Yield the predictions of the objects batch by batch, in order.

        Args:
            objects: a collection (read a batch at a time, by ``workers`` processes while
                the model runs), or objects arriving one by one (encoded here).
            rows: a collection's positions to classify (default all).
            batch_size: objects per forward pass.
            workers: processes reading and encoding a collection's batches (0: none).
            cutoff: each object is cut at it (early classification); one with no frame by
                then is named in its batch's ``skipped``, the others classified.
            skip_unreadable: an object the model cannot read is named in ``skipped``
                instead of stopping the stream (the alert stream's rejected rows).

        Raises:
            ConventionError: bad ``batch_size`` or ``workers``; ``rows`` or ``workers``
                for objects that are not a collection; an object the model cannot read
                (unless ``skip_unreadable``).
        """
        if isinstance(objects, SeriesCollection):
            batches = collection_batches(
                objects, self.encoder, rows, batch_size, workers, cutoff, skip_unreadable
            )
        elif rows is not None or workers:
            raise ConventionError("rows and workers are for a collection, not a stream")
        else:
            batches = series_batches(objects, self.encoder, batch_size, cutoff, skip_unreadable)
        for batch in batches:
            yield BatchPrediction.of(batch, self._members(batch))

    def _members(self, batch: EncodedBatch) -> np.ndarray:
        """(K, n, C) the ensemble members' probabilities of an encoded batch."""
        if batch.inputs is None:
            return np.zeros((1, 0, len(self.classes)))
        return self.engine(batch.inputs)

    def over_time(self, series: StampSeries) -> ProbabilityHistory:
        """What the model said as the object was observed: after each observing night,
        the probabilities of what was seen by its end.

        Raises:
            ConventionError: an object the model cannot read.
        """
        nights = np.unique(series.nights())
        cuts = [series.first_nights(k) for k in range(1, len(nights) + 1)]
        proba = BatchPrediction.join(self.classify(cuts), self.classes).proba
        return ProbabilityHistory(np.array([c.mjd[-1] for c in cuts]), proba, tuple(self.classes))
