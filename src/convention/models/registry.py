"""Model registry: ``create_model(name, n_classes, n_bands, preset, **overrides)``.

Every model family registers a constructor ``f(n_classes, n_bands, config)``, its presets
(name -> config dataclass) and the input kinds it reads; presets and overrides are
resolved here, in one place. A registered model has the :class:`Network` surface (timm's):
the declared :class:`~convention.inputs.InputSpec` that training, prediction and the bench
feed it by, and ``forward_features``, ``forward_head``, ``reset_classifier`` that
pre-training and fine-tuning use. Model families live in their own modules of this
package, each registering itself; they load on first use.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from convention.errors import ConventionError
from convention.inputs.spec import InputSpec


@runtime_checkable
class Network(Protocol):
    """What a registered model is: an nn.Module whose ``forward`` takes the named tensors
    of its input kinds as keyword arguments and returns (B, n_classes) logits, as
    ``forward_head(forward_features(**inputs))``.

    Attributes:
        input_spec: what it reads.
        config: the resolved config dataclass (saved in ``training.json``).
        num_features: the width of ``forward_features``' output.
    """

    input_spec: InputSpec
    config: Any
    num_features: int

    def __call__(self, **inputs: Any) -> Any: ...

    def forward_features(self, **inputs: Any) -> torch.Tensor:
        """(B, num_features) the pooled features the head classifies."""
        ...

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) logits of (B, num_features) features."""
        ...

    def reset_classifier(self, n_classes: int) -> None:
        """Replace the head by a new, untrained one of ``n_classes`` outputs (0: none, so
        that ``forward`` gives the features)."""
        ...

    def get_classifier(self) -> nn.Module:
        """The head (its parameters are all that ``reset_classifier`` replaces)."""
        ...


@dataclass(frozen=True)
class ModelEntry:
    """A registered model family.

    Attributes:
        name: registry name.
        constructor: ``f(n_classes, n_bands, config) -> Network``.
        presets: preset name -> config (a frozen dataclass).
        inputs: the input kinds the model reads (a configuration may read fewer: the
            ablations of a multi-input model).
    """

    name: str
    constructor: Callable[..., nn.Module]
    presets: Mapping[str, Any]
    inputs: tuple[str, ...]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, presets: Mapping[str, Any], inputs: tuple[str, ...]) -> Callable:
    """Decorator registering a constructor ``f(n_classes, n_bands, config)`` with its
    presets and the input kinds it can read."""

    def decorate(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = ModelEntry(name, constructor, dict(presets), tuple(inputs))
        return constructor

    return decorate


def list_models() -> dict[str, ModelEntry]:
    """Registered model families by name."""
    _load_builtin()
    return dict(_REGISTRY)


def get_model_entry(name: str) -> ModelEntry:
    """A registered model family.

    Raises:
        ConventionError: unknown model.
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise ConventionError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def resolve_config(name: str, preset: str, **overrides: Any) -> Any:
    """A preset's config with some fields replaced (None values are ignored).

    Raises:
        ConventionError: unknown model, preset or config field.
    """
    entry = get_model_entry(name)
    if preset not in entry.presets:
        raise ConventionError(
            f"unknown preset {preset!r} for model {name!r}; known: {', '.join(entry.presets)}"
        )
    config = entry.presets[preset]
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConventionError(
            f"cannot build {name} ({preset}): no setting {', '.join(unknown)} "
            f"(settings: {', '.join(sorted(fields))})"
        )
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


def create_model(name: str, n_classes: int, n_bands: int, preset: str, **overrides) -> nn.Module:
    """Build a registered model; None-valued overrides are dropped.

    Raises:
        ConventionError: unknown model, preset or setting, or values the model refuses.
    """
    if n_classes < 2 or n_bands < 1:
        raise ConventionError(
            f"a model needs at least 2 classes and 1 band, got {n_classes} and {n_bands}"
        )
    entry = get_model_entry(name)
    config = resolve_config(name, preset, **overrides)
    try:
        model = entry.constructor(n_classes, n_bands, config)
    except (TypeError, ValueError) as err:
        raise ConventionError(f"cannot build {name} ({preset}): {err}") from None
    if not isinstance(model, Network):
        raise TypeError(f"model {name} lacks the Network surface (convention.models.registry)")
    if not set(model.input_spec.kinds) <= set(entry.inputs):
        raise ConventionError(
            f"model {name} reads {list(model.input_spec.kinds)}, registered as reading "
            f"{list(entry.inputs)}"
        )
    return model


def _load_builtin() -> None:
    """Import every module of this package once: each model file registers itself, so a
    new model is one new file."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not module.ispkg:
            importlib.import_module(f"{__package__}.{module.name}")


def gflops_per_object(model: nn.Module, n_bands: int, n_frames: int | None = None) -> float:
    """Forward GFLOPs (torch.utils.flop_counter; a multiply-add counts 2) of one object of
    ``n_frames`` frames (default: the model's ``max_frames``) for a model of ``n_bands``
    bands.

    Counted on a CPU copy with oneDNN and the fused attention path off: their fused LSTM
    and transformer-layer kernels are invisible to the counter, the plain kernels are not.
    """
    import copy
    import warnings

    from torch.utils.flop_counter import FlopCounterMode

    from convention.inputs import example_inputs

    spec = model.input_spec
    inputs = example_inputs(spec, n_bands, n_frames or spec.max_frames)
    model = copy.deepcopy(model).cpu().eval()
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            # Switching oneDNN off and on again warns about Intel GPUs on every CPU build.
            warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
            with (
                torch.no_grad(),
                torch.backends.mkldnn.flags(enabled=False),
                FlopCounterMode(display=False) as counter,
            ):
                model(**inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return counter.get_total_flops() / 1e9
