"""Checkpoints and the Classifier that loads them.

A trained model is a folder holding ``model.pt`` (the state dict, loaded with
``weights_only=True``) and ``settings.json`` (:class:`ModelSettings`): model name, preset
and overrides, class list in order, band list, the model's input spec, each input kind's
fitted normalisation, schema and package versions. A run of k folds holds one such folder
per fold; loading the run gives their ensemble (probabilities averaged, their standard
deviation over the folds reported as the spread).

``model.pt`` also holds the settings that define the model's outputs (model, preset,
overrides, classes, bands, inputs), and ``settings.json`` the SHA-256 of ``model.pt``: a
settings file edited or paired with other weights is refused, naming the field. A model
whose settings would build more than ``MAX_PARAMETERS`` parameters is refused before
anything is allocated.

``settings.json`` of checkpoint version 1 (one ``normalisation``, ``stamp_size`` and
``max_frames`` beside the model, and a bare state dict) still loads: its input spec is
the model's own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from convention.classes import TO_THREE_CLASS
from convention.data.collection import SeriesCollection
from convention.data.cutoff import Cutoff
from convention.data.series import StampSeries
from convention.data.store import SCHEMA_VERSION
from convention.errors import ConventionError
from convention.files import write_atomic
from convention.inputs import Example, InputEncoder, InputSpec
from convention.models import create_model
from convention.training.calibration import TemperatureScaled
from convention.training.device import resolve_device
from convention.training.prediction import EncodedBatch, stream_batches

SETTINGS_FILE = "settings.json"
WEIGHTS_FILE = "model.pt"
PRETRAINING_FILE = "pretraining.json"  # marks a pre-trained backbone (training.pretrain)
CHECKPOINT_VERSION = 2
READABLE_CHECKPOINTS = (1, 2)
MAX_PARAMETERS = 50_000_000  # 200 MB of float32 weights: 40 times the paper preset
ENGINES = ("auto", "torch", "onnxruntime")
PRECISIONS = ("32", "bf16")


@dataclass(frozen=True)
class ModelSettings:
    """Everything needed to rebuild a trained model and feed it.

    Attributes:
        model, preset, overrides: the registered model and its configuration.
        classes: output classes, in order.
        bands: the bands it reads, in order (band index k + 1 is ``bands[k]``).
        inputs: its declared input spec.
        encoders: each input kind's fitted state (normalisation), by kind name.
        other_bands: ``error`` refuses data of other bands; ``drop`` (a model trained on
            a subset of the bands) ignores them.
        temperature: the calibration temperature its logits are divided by
            (``training.calibration``); None: uncalibrated (checkpoints from before it).
    """

    model: str
    preset: str
    overrides: dict
    classes: tuple[str, ...]
    bands: tuple[str, ...]
    inputs: InputSpec
    encoders: dict
    other_bands: str = "error"
    weights_sha256: str | None = None
    temperature: float | None = None

    def outputs(self) -> dict:
        """The settings that define what the weights compute (saved with them)."""
        return {
            "model": self.model,
            "preset": self.preset,
            "overrides": self.overrides,
            "classes": list(self.classes),
            "bands": list(self.bands),
            "inputs": self.inputs.to_dict(),
            "other_bands": self.other_bands,
        }

    def to_dict(self) -> dict:
        """JSON form, with versions."""
        from convention import __version__

        return {
            "checkpoint_version": CHECKPOINT_VERSION,
            **self.outputs(),
            "encoders": self.encoders,
            "weights_sha256": self.weights_sha256,
            "temperature": self.temperature,
            "store_schema_version": SCHEMA_VERSION,
            "package_version": __version__,
            "torch_version": torch.__version__,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ModelSettings:
        """Inverse of to_dict; reads checkpoint versions 1 and 2.

        Raises:
            ConventionError: a checkpoint version this package cannot read.
        """
        version = d.get("checkpoint_version")
        if version not in READABLE_CHECKPOINTS:
            raise ConventionError(
                f"checkpoint version {version} is not one of {READABLE_CHECKPOINTS}: "
                "retrain the model with this version of convention"
            )
        common = {
            "model": d["model"],
            "preset": d["preset"],
            "overrides": dict(d["overrides"]),
            "classes": tuple(d["classes"]),
            "bands": tuple(d["bands"]),
            "other_bands": str(d.get("other_bands", "error")),
        }
        if version == 2:
            return cls(
                **common,
                inputs=InputSpec.from_dict(d["inputs"]),
                encoders=d["encoders"],
                weights_sha256=d.get("weights_sha256"),
                temperature=_temperature(d.get("temperature")),
            )
        spec = create_model(
            d["model"], len(d["classes"]), len(d["bands"]), d["preset"], **d["overrides"]
        ).input_spec
        return cls(
            **common, inputs=spec, encoders={spec.kinds[0]: {"normalisation": d["normalisation"]}}
        )

    def build(self) -> torch.nn.Module:
        """A fresh model of these settings.

        Raises:
            ConventionError: more than ``MAX_PARAMETERS`` parameters, or declared inputs
                that are not the saved ones.
        """
        with torch.device("meta"):  # counts the parameters without allocating them
            shape_only = create_model(
                self.model, len(self.classes), len(self.bands), self.preset, **self.overrides
            )
        n = sum(p.numel() for p in shape_only.parameters())
        if n > MAX_PARAMETERS:
            raise ConventionError(
                f"the settings build {n:,} parameters, more than the {MAX_PARAMETERS:,} "
                "a checkpoint may hold"
            )
        model = create_model(
            self.model, len(self.classes), len(self.bands), self.preset, **self.overrides
        )
        if model.input_spec != self.inputs:
            raise ConventionError(
                f"the settings' inputs {self.inputs} are not what {self.model} "
                f"({self.preset}) reads: {model.input_spec}"
            )
        return model

    def encoder(self) -> InputEncoder:
        """The fitted input encoder of the model."""
        return InputEncoder(self.inputs, self.bands, self.other_bands, self.encoders)


def save_model(folder: Path, model: torch.nn.Module, settings: ModelSettings) -> None:
    """Write ``model.pt`` (the weights and the settings that define their outputs) and
    ``settings.json`` (with the SHA-256 of ``model.pt``) into ``folder``, atomically each."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {"state_dict": model.state_dict(), "outputs": settings.outputs()}
    write_atomic(folder / WEIGHTS_FILE, lambda p: torch.save(saved, p))
    digest = _sha256(folder / WEIGHTS_FILE)
    text = json.dumps(replace(settings, weights_sha256=digest).to_dict(), indent=1)
    write_atomic(folder / SETTINGS_FILE, lambda p: p.write_text(text + "\n"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_pair(settings: ModelSettings, saved: dict, folder: Path) -> None:
    """Refuse weights saved with other output-defining settings than ``settings.json``'s.

    Raises:
        ConventionError: naming the first field that differs.
    """
    outputs = settings.outputs()
    for field, value in saved.items():
        if outputs.get(field) != value:
            raise ConventionError(
                f"{field} {outputs.get(field)!r} is not what the weights were trained with "
                f"({value!r}): settings.json was edited or comes from another model",
                path=folder / SETTINGS_FILE,
            )


def _temperature(value) -> float | None:
    """A saved temperature, checked.

    Raises:
        ValueError: not a positive finite number.
    """
    if value is None:
        return None
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"temperature must be positive, got {value}")
    return value


def _load_folder(folder: Path) -> tuple[ModelSettings, torch.nn.Module]:
    if (folder / PRETRAINING_FILE).exists():
        raise ConventionError(
            "a pre-trained backbone, not a classifier: fine-tune it with "
            "convention train --init FOLDER",
            path=folder,
        )
    settings, model = _read_folder(folder)
    if settings.temperature is not None:
        model = TemperatureScaled(model, settings.temperature)
    return settings, model.eval()


def load_backbone(folder: str | Path) -> tuple[ModelSettings, torch.nn.Module]:
    """A pre-trained backbone folder's settings and model (``convention pretrain``).

    Raises:
        ConventionError: not a backbone folder, or a missing, unreadable or corrupt one.
    """
    folder = Path(folder)
    if not (folder / PRETRAINING_FILE).is_file():
        raise ConventionError(
            f"no {PRETRAINING_FILE}: not a backbone written by convention pretrain", path=folder
        )
    return _read_folder(folder)


def _read_folder(folder: Path) -> tuple[ModelSettings, torch.nn.Module]:
    path = folder / SETTINGS_FILE
    try:
        settings = ModelSettings.from_dict(json.loads(path.read_text()))
        settings.encoder()
    except ConventionError as err:
        raise ConventionError(err.cause, path=path) from None
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        OverflowError,
    ) as err:
        raise ConventionError(
            f"unreadable settings ({type(err).__name__}: {err})", path=path
        ) from None
    weights = folder / WEIGHTS_FILE
    try:
        saved = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConventionError("missing weights", path=weights) from None
    except Exception as err:  # torch raises many types for corrupt files
        raise ConventionError(f"corrupt weights ({type(err).__name__})", path=weights) from None
    if settings.weights_sha256 is not None and _sha256(weights) != settings.weights_sha256:
        raise ConventionError(
            "model.pt is not the file this settings.json was saved with (SHA-256 differs)",
            path=weights,
        )
    is_legacy = not isinstance(saved, dict) or "state_dict" not in saved  # version 1
    if not is_legacy:
        _check_pair(settings, saved["outputs"], folder)
    try:
        model = settings.build()
    except ConventionError as err:
        raise ConventionError(err.cause, path=path) from None
    try:
        model.load_state_dict(saved if is_legacy else saved["state_dict"])
    except Exception as err:  # missing or unexpected keys, other shapes
        raise ConventionError(f"corrupt weights ({type(err).__name__})", path=weights) from None
    return settings, model


def load_models(path: str | Path) -> tuple[ModelSettings, list[torch.nn.Module]]:
    """The settings and eval-mode models of a model folder, or of a run's fold folders.

    Raises:
        ConventionError: missing, unreadable or corrupt checkpoint; folds that disagree.
    """
    path = Path(path)
    if path.is_file() and path.name == SETTINGS_FILE:
        path = path.parent
    if not path.exists():
        raise ConventionError("no such checkpoint", path=path)
    folders = (
        [path]
        if (path / SETTINGS_FILE).exists()
        else sorted(p.parent for p in path.glob(f"fold_*/{SETTINGS_FILE}"))
    )
    if not folders:
        raise ConventionError(f"no {SETTINGS_FILE} here or in fold_* folders", path=path)
    loaded = [_load_folder(f) for f in folders]
    settings = loaded[0][0]
    if any(s.temperature is None for s, _ in loaded):
        warnings.warn(
            f"{path}: uncalibrated probabilities (a checkpoint from before calibration; "
            "convention calibrate --run RUN --data DATA fits it)",
            stacklevel=2,
        )
    for other, _ in loaded[1:]:
        if (other.classes, other.bands) != (settings.classes, settings.bands):
            raise ConventionError("fold models disagree on classes or bands", path=path)
    return settings, [m for _, m in loaded]


def member_probabilities(
    models: Sequence[torch.nn.Module], inputs: dict[str, torch.Tensor]
) -> torch.Tensor:
    """(K, B, C) the softmax of each of the K ``models`` on a collated batch's inputs."""
    return torch.stack([torch.softmax(m(**inputs).float(), dim=1) for m in models])


class ProbabilityEngine(Protocol):
    """What computes a collated batch's class probabilities: (K, B, C), one (B, C) slice
    per member of the ensemble (fold models, and dropout samples of each)."""

    def __call__(self, inputs: dict[str, torch.Tensor]) -> np.ndarray: ...


class TorchEngine:
    """The fold models' softmax with PyTorch, on ``device``, in ``precision`` (``32``, or
    ``bf16``: bfloat16 autocast, faster where the hardware has it).

    ``dropout_samples`` > 0: Monte Carlo dropout (Gal & Ghahramani 2016): each fold model
    runs that many times with its dropout layers active, each run a member of the ensemble.
    The draws are seeded by the batch's position in the stream, so a data set's predictions
    repeat run to run.
    """

    def __init__(
        self,
        models: Sequence[torch.nn.Module],
        device: str = "cpu",
        precision: str = "32",
        dropout_samples: int = 0,
    ):
        if precision not in PRECISIONS:
            raise ConventionError(
                f"--precision must be one of {list(PRECISIONS)}, got {precision!r}"
            )
        if dropout_samples < 0:
            raise ConventionError(f"--dropout-samples must be 0 or more, got {dropout_samples}")
        self.device = resolve_device(device)
        self.models = [m.to(self.device) for m in models]
        self.precision = precision
        self.dropout_samples = dropout_samples
        self._batches = 0

    @torch.no_grad()
    def __call__(self, inputs: dict[str, torch.Tensor]) -> np.ndarray:
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.autocast(self.device, torch.bfloat16, enabled=self.precision == "bf16"):
            if not self.dropout_samples:
                return member_probabilities(self.models, inputs).cpu().numpy()
            with torch.random.fork_rng(devices=[]), _dropout_active(self.models):
                torch.manual_seed(self._batches)
                self._batches += 1
                members = [
                    member_probabilities(self.models, inputs) for _ in range(self.dropout_samples)
                ]
            return torch.cat(members).cpu().numpy()


@contextlib.contextmanager
def _dropout_active(models: Sequence[torch.nn.Module]) -> Iterator[None]:
    """The models' dropout layers in training mode (everything else stays in eval)."""
    layers = [m for model in models for m in model.modules() if isinstance(m, nn.Dropout)]
    for layer in layers:
        layer.train()
    try:
        yield
    finally:
        for layer in layers:
            layer.eval()


@dataclass
class BatchPrediction:
    """One batch's predictions.

    Attributes:
        ids: object ids of the objects classified.
        proba: (n, C) class probabilities, the ensemble's mean.
        spread: (n, C) their standard deviation over the ensemble's members (fold models,
            dropout samples); None for a single model.
        skipped: the objects not classified, each with the ConventionError saying why.
    """

    ids: list[str]
    proba: np.ndarray
    spread: np.ndarray | None
    skipped: list[ConventionError]

    @classmethod
    def of(cls, batch: EncodedBatch, members: np.ndarray) -> BatchPrediction:
        """The prediction of ``batch`` from its members' (K, n, C) probabilities."""
        spread = members.std(0) if len(members) > 1 else None
        return cls(batch.ids, members.mean(0), spread, batch.skipped)


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
            from convention.training.onnx import OnnxEngine

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
        mapped = {TO_THREE_CLASS.get(n, n) for n in names} if "SN" in self.classes else names
        missing = sorted(set(self.classes) - mapped)
        if missing:
            raise ConventionError(
                f"data has classes {sorted(names)}, without the model's {missing} "
                f"(model classes: {self.classes})",
                path=source,
            )

    def predict_proba(
        self, series: Iterable[StampSeries], batch_size: int = 64
    ) -> Iterator[tuple[list[str], np.ndarray]]:
        """Yield (object ids, (n, C) class probabilities) batch by batch.

        Raises:
            ConventionError: ``batch_size`` below 1, or a series the model cannot read.
        """
        if batch_size < 1:
            raise ConventionError(f"--batch-size must be at least 1, got {batch_size}")
        batch: list[StampSeries] = []
        for s in series:
            batch.append(s)
            if len(batch) == batch_size:
                yield self._predict_batch(batch)
                batch = []
        if batch:
            yield self._predict_batch(batch)

    def predict_collection(
        self,
        data: SeriesCollection,
        rows: Sequence[int] | None = None,
        batch_size: int = 64,
        workers: int = 0,
    ) -> Iterator[tuple[list[str], np.ndarray]]:
        """Yield (object ids, (n, C) class probabilities) of ``rows`` of ``data`` (default
        all) batch by batch, read and encoded by ``workers`` processes while the model runs
        (see :func:`~convention.training.prediction.stream_batches`).

        Raises:
            ConventionError: bad ``batch_size`` or ``workers``, or an object the model
                cannot read.
        """
        for batch in self.classify(data, rows, batch_size, workers):
            yield batch.ids, batch.proba

    def classify(
        self,
        data: SeriesCollection,
        rows: Sequence[int] | None = None,
        batch_size: int = 64,
        workers: int = 0,
        cutoff: Cutoff | None = None,
    ) -> Iterator[BatchPrediction]:
        """Yield the predictions of ``rows`` of ``data`` (default all) batch by batch, each
        object cut at ``cutoff`` when one is given (an object with no frame by then is
        named in its batch's ``skipped``, the others classified).

        Raises:
            ConventionError: bad ``batch_size`` or ``workers``, or an object the model
                cannot read.
        """
        for batch in stream_batches(data, self.encoder, rows, batch_size, workers, cutoff):
            yield BatchPrediction.of(batch, self._members(batch.inputs, len(batch.ids)))

    def _members(self, inputs: dict[str, torch.Tensor] | None, n: int) -> np.ndarray:
        """(K, n, C) the ensemble members' probabilities of a collated batch."""
        if inputs is None:
            return np.zeros((1, n, len(self.classes)))
        return self.engine(inputs)

    def predict_examples(self, examples: Sequence[Example]) -> np.ndarray:
        """(n, C) the ensemble's mean class probabilities of examples made by
        ``self.encoder.encode``, in one batch (for callers that encode as they read, like
        the alert stream)."""
        return self.engine(self.encoder.collate(examples)["inputs"]).mean(0)

    def _predict_batch(self, batch: list[StampSeries]) -> tuple[list[str], np.ndarray]:
        return [s.object_id for s in batch], self.predict_examples(
            [self.encoder.encode(s) for s in batch]
        )

    def predict_over_time(self, series: StampSeries) -> tuple[np.ndarray, np.ndarray]:
        """What the model said as the object was observed: after each observing night,
        the probabilities of what was seen by its end.

        Returns:
            (N,) the MJD of each night's last frame, (N, C) the class probabilities then.
        """
        nights = np.unique(series.nights())
        cuts = [series.first_nights(k) for k in range(1, len(nights) + 1)]
        proba = np.concatenate([p for _, p in self.predict_proba(cuts)])
        return np.array([c.mjd[-1] for c in cuts]), proba

    def predict(self, series: StampSeries) -> dict[str, float]:
        """Class probabilities of one object, by class name."""
        _, proba = self._predict_batch([series])
        return dict(zip(self.classes, proba[0].tolist(), strict=True))
