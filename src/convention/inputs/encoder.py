"""A model's whole input: the encoders of its declared kinds, their augmentation and the
collation of examples into batches of named tensors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from convention.data.collection import SeriesCollection
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.inputs.base import Augmentation, FrameSelector, get_input_kind, needs_of
from convention.inputs.spec import InputSpec

FRAME_DROP = 0.1  # chance of each frame being dropped
MIN_KEEP = 0.6  # shortest random crop of the sequence, as a fraction of its frames


@dataclass(frozen=True)
class Example:
    """One object as model inputs: the arrays of every input kind, and its class index
    (-1 = unlabelled)."""

    inputs: dict[str, np.ndarray]
    label: int = -1


class InputEncoder:
    """Turns StampSeries into the inputs a model declares.

    Args:
        spec: the model's input spec.
        bands: the model's bands, in order.
        other_bands: ``error`` refuses frames of other bands, ``drop`` leaves them out.
        states: each kind's fitted state (from a checkpoint); None until ``fit``.

    Raises:
        ConventionError: an unknown input kind, or states of other kinds than the spec's.
    """

    def __init__(
        self,
        spec: InputSpec,
        bands: Sequence[str],
        other_bands: str = "error",
        states: Mapping[str, dict] | None = None,
    ):
        self.spec = spec
        self.bands = list(bands)
        self.other_bands = other_bands
        self.kinds = [get_input_kind(name)(spec, bands) for name in spec.kinds]
        self.needs = needs_of(spec)
        self.selector = FrameSelector(bands, spec.max_frames, other_bands)
        self._sequences = [k for k in self.kinds if k.sequence]
        self._augmented = [k for k in self.kinds if k.sequence or k.spatial]
        self._spatial = any(k.spatial for k in self.kinds)
        if states is not None:
            if sorted(states) != sorted(spec.kinds):
                raise ConventionError(
                    f"encoder states of {sorted(states)} for inputs {list(spec.kinds)}"
                )
            for kind in self.kinds:
                kind.load_state(states[kind.name])

    def fit(self, series: Sequence[StampSeries], seed: int = 0) -> None:
        """Fit every kind's normalisation on ``series`` (the training split)."""
        for kind in self.kinds:
            kind.fit(series, seed)

    @property
    def states(self) -> dict[str, dict]:
        """Each kind's fitted state, by kind name (saved in the checkpoint)."""
        return {kind.name: kind.state for kind in self.kinds}

    def lacks(self, data: SeriesCollection) -> list[str]:
        """What ``data`` lacks of the kinds' needs (``Needs``), each in a few words; none
        when every object can be encoded (checked on the collection, before any object is
        read: another stamp size, a channel, a light curve of its own, a metadata field)."""
        needs, causes = self.needs, []
        size = self.spec.stamp_size
        if needs.pixels and tuple(data.stamp_shape) != (size, size):
            h, w = data.stamp_shape
            causes.append(f"stamps are {h}x{w}, the model reads {size}x{size} (set stamp_size)")
        for channel in needs.channels:
            if channel not in data.channels:
                causes.append(f"no {channel!r} images (channels held: {list(data.channels)})")
        supplied_only = any(rule.source == "supplied" for rule in needs.photometry)
        if supplied_only and not (np.asarray(data.lightcurve_rows) >= 0).any():
            causes.append("no object has a light curve of its own")
        if needs.metadata:
            table = data.object_table()
            for name in needs.metadata:
                if name not in table.colnames:
                    causes.append(f"no {name!r} field")
                elif not np.isfinite(np.asarray(table[name], dtype=float)).any():
                    causes.append(f"no object has a {name!r}")
        return causes

    def check_collection(self, data: SeriesCollection) -> None:
        """Refuse data that lacks what the kinds need (see ``lacks``).

        Raises:
            ConventionError: naming the data's file and every cause.
        """
        causes = self.lacks(data)
        if causes:
            raise ConventionError("; ".join(causes), path=data.path)

    def check(self, series: StampSeries) -> None:
        """Refuse a series the kinds' needs cannot be met on.

        Raises:
            ConventionError: naming the object: other stamp size, a channel it lacks, no
                light curve of its own where one is needed.
        """
        needs = self.needs
        size = self.spec.stamp_size
        if needs.pixels and series.frames.shape[1:] != (size, size):
            raise ConventionError(
                f"stamps are {series.frames.shape[1]}x{series.frames.shape[2]}, the model "
                f"reads {size}x{size}",
                obj=series.object_id,
            )
        missing = [c for c in needs.channels if c not in series.channels]
        if missing:
            raise ConventionError(f"no {missing[0]!r} images", obj=series.object_id)
        supplied_only = any(rule.source == "supplied" for rule in needs.photometry)
        if supplied_only and series.lightcurve is None:
            raise ConventionError("no light curve of its own", obj=series.object_id)

    def encode(self, series: StampSeries, label: int = -1) -> Example:
        """Encode one series; a longer one keeps its central ``max_frames`` frames.

        Raises:
            ConventionError: a need not met (``check``), bands the model does not know, or
                no frame with valid pixels.
        """
        self.check(series)
        selection = self.selector.select(series)
        inputs: dict[str, np.ndarray] = {}
        for kind in self.kinds:
            inputs.update(kind.encode(selection))
        return Example(inputs, label)

    def incomplete(self, examples: Sequence[Example]) -> dict[str, int]:
        """Per input kind, how many of ``examples`` lack part of it (a band without a
        reference stamp, a light curve without a measured point, a missing feature)."""
        return {kind.name: sum(kind.incomplete(e.inputs) for e in examples) for kind in self.kinds}

    def augment(self, example: Example, rng: np.random.Generator) -> Example:
        """Random frame drop and crop of the sequence, and for stamps a rotation by k x 90
        degrees and flips: one draw, applied alike to every input."""
        if not self._sequences:
            return example
        first = self._sequences[0]
        draw = draw_augmentation(len(example.inputs[first.sequence[0]]), rng, self._spatial)
        inputs = dict(example.inputs)
        for kind in self._augmented:
            inputs.update(kind.augment(inputs, draw))
        return Example(inputs, example.label)

    @property
    def batch_keys(self) -> list[str]:
        """The keys of a collated batch's inputs, in collation order."""
        keys: list[str] = []
        for kind in self.kinds:
            if kind.sequence:
                keys += [*kind.sequence, kind.mask]
            keys += list(kind.fixed)
        return keys

    @property
    def sequence_keys(self) -> set[str]:
        """The batch keys whose second axis runs along the frames (masks included)."""
        return {key for kind in self.kinds if kind.sequence for key in (*kind.sequence, kind.mask)}

    def collate(self, examples: Sequence[Example]) -> dict:
        """A batch: ``{"inputs": {name: tensor}, "label": (B,) long}``; sequence inputs are
        zero-padded to the batch's longest, with their (B, M) bool mask."""
        inputs: dict[str, torch.Tensor] = {}
        for kind in self.kinds:
            if kind.sequence:
                inputs.update(_pad(examples, kind.sequence, kind.mask))
            for key in kind.fixed:
                inputs[key] = torch.from_numpy(np.stack([e.inputs[key] for e in examples]))
        label = torch.tensor([e.label for e in examples], dtype=torch.long)
        return {"inputs": inputs, "label": label}


def example_inputs(spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
    """Zero inputs of one object of ``n_frames`` frames for a model of ``n_bands`` bands,
    batch of one (for counting FLOPs)."""
    inputs: dict[str, torch.Tensor] = {}
    for name in spec.kinds:
        inputs.update(get_input_kind(name).example(spec, n_bands, n_frames))
    return inputs


def random_inputs(
    spec: InputSpec, n_bands: int, n_frames: int, batch: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """``batch`` objects of ``n_frames`` frames, every frame real: standard-normal values,
    band indices drawn from 1..n_bands (for timing and for checking exported graphs)."""
    generator = torch.Generator().manual_seed(seed)
    inputs: dict[str, torch.Tensor] = {}
    for key, value in example_inputs(spec, n_bands, n_frames).items():
        value = value.expand(batch, *value.shape[1:])
        if value.dtype == torch.bool:
            value = torch.ones(value.shape, dtype=torch.bool)
        elif value.dtype == torch.int64:
            value = torch.randint(1, n_bands + 1, value.shape, generator=generator)
        else:
            value = torch.randn(value.shape, generator=generator)
        inputs[key] = value
    return inputs


def draw_augmentation(
    m: int, rng: np.random.Generator, spatial: bool, drop: float = FRAME_DROP
) -> Augmentation:
    """One augmentation draw for a sequence of ``m`` frames: each frame dropped with
    probability ``drop`` (at least one kept), a random crop of at least ``MIN_KEEP`` of the
    sequence, and when ``spatial`` a rotation and two flips."""
    keep = rng.random(m) >= drop
    if not keep.any():
        keep[rng.integers(m)] = True
    length = int(rng.integers(max(1, int(np.ceil(MIN_KEEP * m))), m + 1))
    start = int(rng.integers(m - length + 1))
    window = np.zeros(m, dtype=bool)
    window[start : start + length] = True
    index = np.flatnonzero(keep & window)
    if index.size == 0:
        index = np.array([start])
    if not spatial:
        return Augmentation(index)
    rotation = int(rng.integers(4))
    return Augmentation(index, rotation, bool(rng.random() < 0.5), bool(rng.random() < 0.5))


def _pad(examples: Sequence[Example], keys: Sequence[str], mask: str) -> dict[str, torch.Tensor]:
    first = examples[0].inputs
    m = max(len(e.inputs[keys[0]]) for e in examples)
    padded = {
        key: np.zeros((len(examples), m, *first[key].shape[1:]), dtype=first[key].dtype)
        for key in keys
    }
    valid = np.zeros((len(examples), m), dtype=bool)
    for k, e in enumerate(examples):
        n = len(e.inputs[keys[0]])
        for key in keys:
            padded[key][k, :n] = e.inputs[key]
        valid[k, :n] = True
    tensors = {key: torch.from_numpy(v) for key, v in padded.items()}
    return {**tensors, mask: torch.from_numpy(valid)}
