"""``metadata``: the object's catalogue fields (``convention.metadata``: the nearest
Pan-STARRS1 source's star/galaxy score and distance, the nearest reference-image source's
distance, the host's redshift and its error, the Milky Way E(B-V)) and its Galactic
latitude (|b|, degrees, from its position), robustly scaled (``convention.inputs.scaled``).
A field the source did not measure (a ZTF null, a value outside its physical range, a
store without metadata, no position) is 0 with its flag set. Keys: ``metadata`` (2F,)
float32: the F scaled fields, then the F missing-value flags.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from convention.data.series import StampSeries
from convention.inputs.base import Selection, register_input_kind
from convention.inputs.scaled import ScaledValues
from convention.inputs.spec import InputSpec
from convention.metadata import NAMES, checked, galactic_latitude

FIELDS = (*NAMES, "galactic_latitude")


@register_input_kind("metadata")
class Metadata(ScaledValues):
    """The catalogue fields and Galactic latitude of the object, robustly scaled, each
    with a missing flag."""

    key = "metadata"
    fixed = (key,)

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self.names = list(FIELDS)
        self.reset()

    def raw(self, series: StampSeries, selection: Selection | None = None) -> np.ndarray:
        """(F,) float64 ``values`` of the series."""
        return self.values(series.metadata, series.ra, series.dec)

    @staticmethod
    def values(metadata: Mapping[str, float], ra: float, dec: float) -> np.ndarray:
        """(F,) float64 the fields of the registry in ``metadata``, NaN where not measured,
        then |b| of the position (degrees)."""
        fields = [checked(name, metadata.get(name)) for name in NAMES]
        return np.array([*fields, galactic_latitude(ra, dec)])

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """As ``ScaledValues.fit``; training objects without any field: a warning, and
        the model reads every field masked."""
        values = self.raw_values(series)
        if not np.isfinite(values).any():
            warnings.warn(
                f"no training object has catalogue metadata ({', '.join(self.names)}): "
                "the metadata input reads every field masked",
                stacklevel=2,
            )
        self.fit_values(values)

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return "catalogue metadata: " + ", ".join(FIELDS)

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        return {"metadata": torch.zeros(1, 2 * len(FIELDS))}
