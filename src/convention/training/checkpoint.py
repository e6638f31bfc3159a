"""Checkpoints and the Classifier that loads them.

A trained model is a folder holding ``model.pt`` (the state dict, loaded with
``weights_only=True``) and ``settings.json`` (:class:`ModelSettings`): model name, preset
and overrides, class list in order, band list, the model's input spec, each input kind's
fitted normalisation, schema and package versions. A run of k folds holds one such folder
per fold; loading the run gives their ensemble (probabilities averaged).

``settings.json`` of checkpoint version 1 (one ``normalisation``, ``stamp_size`` and
``max_frames`` beside the model) still loads: its input spec is the model's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from convention.classes import TO_THREE_CLASS
from convention.data.series import StampSeries
from convention.data.store import SCHEMA_VERSION
from convention.errors import ConventionError
from convention.files import write_atomic
from convention.inputs import InputEncoder, InputSpec
from convention.models import create_model
from convention.training.device import resolve_device

SETTINGS_FILE = "settings.json"
WEIGHTS_FILE = "model.pt"
CHECKPOINT_VERSION = 2
READABLE_CHECKPOINTS = (1, 2)


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
    """

    model: str
    preset: str
    overrides: dict
    classes: tuple[str, ...]
    bands: tuple[str, ...]
    inputs: InputSpec
    encoders: dict
    other_bands: str = "error"

    def to_dict(self) -> dict:
        """JSON form, with versions."""
        from convention import __version__

        return {
            "checkpoint_version": CHECKPOINT_VERSION,
            "model": self.model,
            "preset": self.preset,
            "overrides": self.overrides,
            "classes": list(self.classes),
            "bands": list(self.bands),
            "inputs": self.inputs.to_dict(),
            "encoders": self.encoders,
            "other_bands": self.other_bands,
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
            return cls(**common, inputs=InputSpec.from_dict(d["inputs"]), encoders=d["encoders"])
        spec = create_model(
            d["model"], len(d["classes"]), len(d["bands"]), d["preset"], **d["overrides"]
        ).input_spec
        return cls(
            **common, inputs=spec, encoders={spec.kinds[0]: {"normalisation": d["normalisation"]}}
        )

    def build(self) -> torch.nn.Module:
        """A fresh model of these settings.

        Raises:
            ConventionError: the model's declared inputs are not the saved ones.
        """
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
    """Write ``model.pt`` and ``settings.json`` into ``folder`` (atomically, each)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / WEIGHTS_FILE, lambda p: torch.save(model.state_dict(), p))
    text = json.dumps(settings.to_dict(), indent=1)
    write_atomic(folder / SETTINGS_FILE, lambda p: p.write_text(text + "\n"))


def _load_folder(folder: Path) -> tuple[ModelSettings, torch.nn.Module]:
    path = folder / SETTINGS_FILE
    try:
        settings = ModelSettings.from_dict(json.loads(path.read_text()))
        settings.encoder()
        model = settings.build()
    except ConventionError as err:
        raise ConventionError(err.cause, path=path) from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConventionError(
            f"unreadable settings ({type(err).__name__}: {err})", path=path
        ) from None
    try:
        state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except FileNotFoundError:
        raise ConventionError("missing weights", path=folder / WEIGHTS_FILE) from None
    except Exception as err:  # torch raises many types for corrupt files
        raise ConventionError(
            f"corrupt weights ({type(err).__name__})", path=folder / WEIGHTS_FILE
        ) from None
    return settings, model.eval()


class Classifier:
    """A trained model (or an ensemble of fold models) ready to predict.

    Use ``Classifier.load(path)`` with a model folder or a run folder.
    """

    def __init__(
        self, settings: ModelSettings, models: Sequence[torch.nn.Module], device: str = "cpu"
    ):
        self.settings = settings
        self.device = resolve_device(device)
        self.models = [m.to(self.device) for m in models]
        self.encoder = settings.encoder()

    @property
    def classes(self) -> list[str]:
        """Output classes, in order."""
        return list(self.settings.classes)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Classifier:
        """Load a model folder (``settings.json`` + ``model.pt``) or a run of fold folders,
        to predict on ``device`` (cpu, cuda or auto).

        Raises:
            ConventionError: missing, unreadable or corrupt checkpoint; cuda without a GPU.
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
        for other, _ in loaded[1:]:
            if (other.classes, other.bands) != (settings.classes, settings.bands):
                raise ConventionError("fold models disagree on classes or bands", path=path)
        return cls(settings, [m for _, m in loaded], device)

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
        """Yield (object ids, (n, C) class probabilities) batch by batch."""
        batch: list[StampSeries] = []
        for s in series:
            batch.append(s)
            if len(batch) == batch_size:
                yield self._predict_batch(batch)
                batch = []
        if batch:
            yield self._predict_batch(batch)

    @torch.no_grad()
    def _predict_batch(self, batch: list[StampSeries]) -> tuple[list[str], np.ndarray]:
        inputs = self.encoder.collate([self.encoder.encode(s) for s in batch])["inputs"]
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        proba = torch.stack([torch.softmax(m(**inputs), dim=1) for m in self.models]).mean(0)
        return [s.object_id for s in batch], proba.cpu().numpy()

    def predict(self, series: StampSeries) -> dict[str, float]:
        """Class probabilities of one object, by class name."""
        _, proba = self._predict_batch([series])
        return dict(zip(self.classes, proba[0].tolist(), strict=True))
