"""Model registry: ``create_model(name, preset=..., **kwargs)`` and ``list_models()``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from convention.errors import ConventionError


@dataclass(frozen=True)
class ModelEntry:
    """A registered constructor and the presets it accepts."""

    name: str
    constructor: Callable[..., nn.Module]
    presets: tuple[str, ...]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, presets: tuple[str, ...]) -> Callable:
    """Decorator registering a constructor ``f(n_classes, n_bands, preset, **kwargs)``."""

    def decorate(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = ModelEntry(name, constructor, presets)
        return constructor

    return decorate


def list_models() -> dict[str, tuple[str, ...]]:
    """Registered model names and their presets."""
    _load_builtin()
    return {name: entry.presets for name, entry in _REGISTRY.items()}


def create_model(name: str, n_classes: int, n_bands: int, preset: str, **kwargs) -> nn.Module:
    """Build a registered model; None-valued kwargs are dropped.

    Raises:
        ConventionError: unknown model or preset, or kwargs the model does not take.
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise ConventionError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}")
    entry = _REGISTRY[name]
    if preset not in entry.presets:
        raise ConventionError(
            f"unknown preset {preset!r} for model {name!r}; known: {', '.join(entry.presets)}"
        )
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return entry.constructor(n_classes=n_classes, n_bands=n_bands, preset=preset, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConventionError(f"cannot build {name} ({preset}): {err}") from None


def _load_builtin() -> None:
    import convention.models.convention
    import convention.models.lightcurve
    import convention.models.recurrent
    import convention.models.scone  # noqa: F401


def gflops_per_object(model: nn.Module, n_frames: int = 99) -> float:
    """Forward GFLOPs (torch.utils.flop_counter; a multiply-add counts 2) of one object of
    ``n_frames`` frames (or light-curve points), for models taking (frames, bands, times,
    mask).

    Counted on a CPU copy with oneDNN and the fused attention path off: their fused LSTM
    and transformer-layer kernels are invisible to the counter, the plain kernels are not.
    """
    import copy
    import warnings

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(model).cpu().eval()
    if hasattr(model, "example_frames"):
        frames = model.example_frames(n_frames)
        n_frames = frames.shape[1]
    else:
        size = model.config.stamp_size
        frames = torch.zeros(1, n_frames, size, size)
    bands = torch.ones(1, n_frames, dtype=torch.long)
    times = torch.arange(n_frames, dtype=torch.float32)[None]
    mask = torch.ones(1, n_frames, dtype=torch.bool)
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with (
            warnings.catch_warnings(),
            torch.no_grad(),
            torch.backends.mkldnn.flags(enabled=False),
            FlopCounterMode(display=False) as counter,
        ):
            warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
            model(frames, bands, times, mask)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return counter.get_total_flops() / 1e9
