"""What a checkpoint says about its model: :class:`ModelSettings`, their JSON schema and
its versions.

``settings.json`` of checkpoint version 2 holds the model name, preset and overrides, the
classes and bands in order, the model's input spec, each input kind's fitted state, how
other bands are treated, the SHA-256 of ``model.pt``, the calibration temperature and the
versions that wrote it. Version 1 (one ``normalisation``, ``stamp_size`` and
``max_frames`` beside the model) still reads: its input spec is the model's own. Settings
that would build more than ``MAX_PARAMETERS`` parameters are refused before anything is
allocated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from convention.data.store import SCHEMA_VERSION
from convention.errors import ConventionError
from convention.inputs import InputEncoder, InputSpec
from convention.models import create_model
from convention.version import __version__

CHECKPOINT_VERSION = 2
READABLE_CHECKPOINTS = (1, 2)
MAX_PARAMETERS = 50_000_000  # 200 MB of float32 weights: 40 times the paper preset
TEMPERATURE_RANGE = (1e-3, 1e3)


class _SkipInitialisers(TorchFunctionMode):
    """Makes ``torch.nn.init``'s initialisers no-ops. A model on the meta device has no
    values to initialise, and ``normal_`` on a meta tensor (an Embedding's) first imports
    PyTorch's Python meta kernels: a second of every process that loads a model."""

    initialisers = frozenset(
        getattr(torch.nn.init, name) for name in torch.nn.init.__all__ if name.endswith("_")
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.initialisers:  # in place: the tensor is the result
            return kwargs["tensor"] if "tensor" in kwargs else args[0]
        return func(*args, **kwargs)


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
        weights_sha256: the SHA-256 of the ``model.pt`` it was saved with (None: older).
        temperature: the calibration temperature its logits are divided by
            (``classifier.calibration``); None: uncalibrated (checkpoints from before it).
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

    def __post_init__(self) -> None:
        # The overrides as settings.json holds them (a tuple reads back as a list), so the
        # weights are saved with what the file will say.
        object.__setattr__(self, "overrides", json.loads(json.dumps(self.overrides)))

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
            "model": str(d["model"]),
            "preset": str(d["preset"]),
            "overrides": dict(d["overrides"]),
            "classes": _names(d["classes"], "classes"),
            "bands": _names(d["bands"], "bands"),
            "other_bands": str(d.get("other_bands", "error")),
        }
        if version == 2:
            return cls(
                **common,
                inputs=InputSpec.from_dict(d["inputs"]),
                encoders=d["encoders"],
                weights_sha256=d.get("weights_sha256"),
                temperature=checked_temperature(d.get("temperature")),
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
        with torch.device("meta"), _SkipInitialisers():  # counts them, allocating nothing
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


def checked_temperature(value) -> float | None:
    """A saved temperature, checked: calibration fits one in 0.05..20 (a refit on top of
    an earlier one multiplies them), and one far outside makes every probability one class
    or NaN.

    Raises:
        ValueError: not a number in ``TEMPERATURE_RANGE``.
    """
    if value is None:
        return None
    value = float(value)
    low, high = TEMPERATURE_RANGE
    if not (np.isfinite(value) and low <= value <= high):
        raise ValueError(f"temperature must be {low:g}..{high:g}, got {value:g}")
    return value


def _names(values, what: str) -> tuple[str, ...]:
    """A list of distinct, non-empty names (classes or bands, in the weights' order).

    Raises:
        ValueError: not such a list.
    """
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise ValueError(f"{what} is not a list of names")
    names = tuple(values)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{what} is not a list of names")
    if len(set(names)) < len(names):
        raise ValueError(f"{what} name one twice: {list(names)}")
    return names
