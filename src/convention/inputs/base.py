"""What every input kind provides, their registry, and the frame selection they share.

An input kind turns one StampSeries into named arrays of the batch. Kinds whose arrays are
sequences over the selected frames (``sequence`` keys, ragged along their first axis) are
padded to a batch's longest and get a boolean mask (``mask`` key); ``fixed`` keys have one
shape for every object. A kind is registered under its name with ``@register_input_kind``;
every module of this package loads on first use, so a new kind is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from convention.bands import get_band
from convention.data.reference import Reference
from convention.data.series import StampSeries, references_of
from convention.errors import ConventionError
from convention.inputs.spec import InputSpec
from convention.lightcurves import PhotometryRule, lightcurve_of

if TYPE_CHECKING:
    from astropy.table import Table


@dataclass(frozen=True)
class Needs:
    """What an input kind reads of a series besides its frames' sequence: what a reader
    must supply, and what ``InputEncoder.lacks`` checks a data set for before it is read.

    Attributes:
        pixels: it reads stamp pixels at the spec's ``stamp_size`` (other sizes refused).
        channels: per-frame images by name (``StampSeries.channels``: ``template``,
            ``difference``), each the frames' shape.
        photometry: the rules of the light curves it reads (``convention.lightcurves``).
        metadata: the object fields it reads (columns of
            ``SeriesCollection.object_table()``: ``redshift``, ``ra``, ``dec``).
        references: it reads each band's reference stamp itself (the scene).
        own_channels: per-frame images it reads where the source gives them and makes
            itself otherwise (``difference``: a survey's own difference stamps); never
            required. The alert stream asks packets for them; a store gives every channel
            it holds when no channel is required.
    """

    pixels: bool = False
    channels: tuple[str, ...] = ()
    photometry: tuple[PhotometryRule, ...] = ()
    metadata: tuple[str, ...] = ()
    references: bool = False
    own_channels: tuple[str, ...] = ()

    def __or__(self, other: Needs) -> Needs:
        """What two kinds need together."""
        return Needs(
            self.pixels or other.pixels,
            tuple(dict.fromkeys((*self.channels, *other.channels))),
            tuple(dict.fromkeys((*self.photometry, *other.photometry))),
            tuple(dict.fromkeys((*self.metadata, *other.metadata))),
            self.references or other.references,
            tuple(dict.fromkeys((*self.own_channels, *other.own_channels))),
        )

    @property
    def reads_references(self) -> bool:
        """Whether the source's references are read: by the kind itself, or by forced
        photometry against them (any rule that may force)."""
        return self.references or any(rule.source != "supplied" for rule in self.photometry)


@dataclass(frozen=True)
class Selection:
    """The frames of one series a model reads.

    Attributes:
        series: the series, less the frames of bands outside the model's (when it drops them).
        index: (M,) positions in ``series`` of the frames read: frames with a valid pixel,
            the central ``max_frames`` of them.
        bands: (M,) the model's band index of each frame read (1..n_bands; 0 is padding).
    """

    series: StampSeries
    index: np.ndarray
    bands: np.ndarray
    _lightcurves: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def times(self) -> np.ndarray:
        """(M,) float32 days since the first frame read."""
        mjd = self.series.mjd[self.index]
        return (mjd - mjd[0]).astype(np.float32)

    @cached_property
    def references(self) -> dict[int, Reference]:
        """Band id -> the band's reference (its static scene: the source's template, else
        the median of its frames in ``series``), made once for every kind that reads it."""
        return references_of(self.series)

    def lightcurve(self, rule: PhotometryRule) -> Table:
        """The series' light curve under ``rule`` (``lightcurves.lightcurve_of``, forced
        against ``references``), made once per rule for every kind that reads it;
        forced rows are one per frame of ``series`` (index them with ``index``)."""
        if rule not in self._lightcurves:
            self._lightcurves[rule] = lightcurve_of(self.series, rule, self.references)
        return self._lightcurves[rule]


@dataclass(frozen=True)
class Augmentation:
    """One random draw of the training augmentation of a sequence: the frames kept
    (positions into the encoded sequence), a rotation by ``rotation`` x 90 degrees and
    flips, the same for every frame and input."""

    keep: np.ndarray
    rotation: int = 0
    flip_x: bool = False
    flip_y: bool = False


class InputKind(ABC):
    """One kind of model input.

    Args:
        spec: what the model reads.
        bands: the model's bands, in order (band index k + 1 is ``bands[k]``).
    """

    name: ClassVar[str]
    needs: ClassVar[Needs] = Needs()
    sequence: ClassVar[tuple[str, ...]] = ()
    mask: ClassVar[str | None] = None
    fixed: ClassVar[tuple[str, ...]] = ()
    spatial: ClassVar[bool] = False  # its images rotate and flip with the augmentation

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        self.spec = spec
        self.bands = list(bands)
        self.band_ids = [get_band(b).id for b in self.bands]  # the registry's, in order

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:  # noqa: B027
        """Fit the normalisation on the training split (kinds without one keep nothing)."""

    @property
    def state(self) -> dict:
        """What ``fit`` learnt, JSON-able (saved in the checkpoint)."""
        return {}

    def load_state(self, state: dict) -> None:  # noqa: B027
        """Restore what ``fit`` learnt."""

    @abstractmethod
    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        """The kind's arrays of one series."""

    def augment(self, arrays: dict[str, np.ndarray], draw: Augmentation) -> dict[str, np.ndarray]:
        """The arrays under one augmentation draw (kinds without a sequence: unchanged)."""
        return arrays

    def incomplete(self, arrays: dict[str, np.ndarray]) -> bool:
        """Whether an object's arrays lack part of this input (masked for the model, and
        counted in the run's summary)."""
        return False

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        """What this kind reads under ``spec``, in a few words (``convention models``)."""
        return cls.name

    @classmethod
    @abstractmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        """Zero inputs of one object of ``n_frames`` frames for a model of ``n_bands`` bands
        (batch of one), for counting FLOPs."""


_KINDS: dict[str, type[InputKind]] = {}


def register_input_kind(name: str) -> Callable[[type[InputKind]], type[InputKind]]:
    """Class decorator registering an input kind under ``name``."""

    def decorate(cls: type[InputKind]) -> type[InputKind]:
        cls.name = name
        _KINDS[name] = cls
        return cls

    return decorate


def input_kinds() -> dict[str, type[InputKind]]:
    """The registered input kinds by name."""
    _load_builtin()
    return dict(_KINDS)


def get_input_kind(name: str) -> type[InputKind]:
    """A registered input kind.

    Raises:
        ConventionError: unknown kind.
    """
    _load_builtin()
    if name not in _KINDS:
        raise ConventionError(f"unknown input kind {name!r}; known: {', '.join(_KINDS)}")
    return _KINDS[name]


def needs_of(spec: InputSpec) -> Needs:
    """What the kinds of ``spec`` need together."""
    needs = Needs()
    for name in spec.kinds:
        needs = needs | get_input_kind(name).needs
    return needs


def _load_builtin() -> None:
    """Import every module of this package once: each kind's file registers itself, so a
    new input kind is one new file."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{module.name}")


class FrameSelector:
    """Chooses the frames a model reads from a series (see :class:`Selection`).

    ``other_bands``: ``error`` refuses frames of bands outside the model's; ``drop`` leaves
    them out (a model trained on a subset of the bands, such as g alone).
    """

    def __init__(self, bands: Sequence[str], max_frames: int, other_bands: str = "error"):
        self.bands = list(bands)
        self.max_frames = max_frames
        self.other_bands = other_bands
        self._lut = np.zeros(max(get_band(b).id for b in bands) + 1, dtype=np.int64)
        for k, band in enumerate(self.bands):
            self._lut[get_band(band).id] = k + 1

    def select(self, series: StampSeries) -> Selection:
        """The frames read of one series.

        Raises:
            ConventionError: bands the model does not know, or no frame with valid pixels.
        """
        if self.other_bands == "drop":
            known = series.band < len(self._lut)
            known[known] = self._lut[series.band[known]] > 0
            if not known.any():
                raise ConventionError(
                    f"no frame in the model's bands {self.bands}", obj=series.object_id
                )
            series = series[known]
        if series.band.max(initial=0) >= len(self._lut) or np.any(self._lut[series.band] == 0):
            unknown = sorted({get_band(int(b)).name for b in series.band} - set(self.bands))
            raise ConventionError(
                f"bands {unknown} are not the model's bands {self.bands}", obj=series.object_id
            )
        valid = np.isfinite(series.frames).any(axis=(1, 2))
        if not valid.any():
            raise ConventionError("no frame with valid pixels", obj=series.object_id)
        index = np.flatnonzero(valid)
        if len(index) > self.max_frames:
            start = (len(index) - self.max_frames) // 2
            index = index[start : start + self.max_frames]
        return Selection(series, index, self._lut[series.band[index]])


def turn_images(images: np.ndarray, draw: Augmentation) -> np.ndarray:
    """(..., H, W) images rotated by ``draw.rotation`` x 90 degrees and flipped as drawn
    (contiguous)."""
    turned = np.rot90(images, k=draw.rotation, axes=(-2, -1))
    if draw.flip_x:
        turned = turned[..., :, ::-1]
    if draw.flip_y:
        turned = turned[..., ::-1, :]
    return np.ascontiguousarray(turned)


def keep_frames(
    arrays: dict[str, np.ndarray], keys: Sequence[str], keep: np.ndarray
) -> dict[str, np.ndarray]:
    """The frames ``keep`` of a sequence kind's arrays; ``keys`` name (values, bands,
    times), the times counted again from the first frame kept."""
    values, bands, times = keys
    kept = arrays[times][keep]
    return {
        values: np.ascontiguousarray(arrays[values][keep]),
        bands: arrays[bands][keep],
        times: kept - kept[0],
    }


def sequence_example(n_frames: int, frames: torch.Tensor, keys: Sequence[str]) -> dict:
    """Zero example of a sequence kind: ``frames`` (1, n_frames, ...), band 1 everywhere,
    times 0..n-1 days, every frame real; ``keys`` name (values, bands, times, mask)."""
    values, bands, times, mask = keys
    return {
        values: frames,
        bands: torch.ones(1, n_frames, dtype=torch.long),
        times: torch.arange(n_frames, dtype=torch.float32)[None],
        mask: torch.ones(1, n_frames, dtype=torch.bool),
    }
