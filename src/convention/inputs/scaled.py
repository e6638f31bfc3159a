"""Inputs that are a vector of named numbers per object, robustly scaled: each value
``asinh((x - median_f) / scale_f)`` with the median and robust scale (1.4826 MAD, else
half the 10-90% range) of the training split; a value that cannot be computed or was not
measured is 0 with its flag set. One key, ``(2F,)`` float32: the F scaled values, then the
F missing-value flags."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from itertools import islice
from typing import ClassVar

import numpy as np

from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.inputs.base import InputKind, Selection
from convention.inputs.normalisation import check_statistics

FIT_OBJECTS = 2000  # training objects whose values set the scales


class ScaledValues(InputKind):
    """A vector of named values per object; subclasses name them (``names``, set before
    ``__init__`` ends with ``reset``) and compute them (``raw``)."""

    key: ClassVar[str]
    names: list[str]

    def reset(self) -> None:
        """Unfitted: median 0 and scale 1 for every value."""
        n = len(self.names)
        self.load_state({"names": self.names, "median": [0.0] * n, "scale": [1.0] * n})

    @abstractmethod
    def raw(self, series: StampSeries, selection: Selection | None = None) -> np.ndarray:
        """(F,) float64 unscaled values of a series, NaN where not computable; with its
        ``selection``, of the frames read."""

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """Per-value median and robust scale over the first ``FIT_OBJECTS`` objects."""
        self.fit_values(self.raw_values(series))

    def raw_values(self, series: Sequence[StampSeries]) -> np.ndarray:
        """(N, F) the unscaled values of the first ``FIT_OBJECTS`` objects (N of them)."""
        return np.array([self.raw(s) for s in islice(series, FIT_OBJECTS)]).reshape(
            -1, len(self.names)
        )

    def fit_values(self, values: np.ndarray) -> None:
        """Each value's median and robust scale over the rows of ``values`` (N, F)."""
        median, scale = [], []
        for column in values.T:
            finite = column[np.isfinite(column)]
            if not finite.size:
                median.append(0.0)
                scale.append(1.0)
                continue
            centre = float(np.median(finite))
            spread = 1.4826 * float(np.median(np.abs(finite - centre)))
            if not spread > 0:
                low, high = np.percentile(finite, [10, 90])
                spread = float(high - low) / 2
            median.append(centre)
            scale.append(spread if spread > 0 else 1.0)
        self.load_state({"names": self.names, "median": median, "scale": scale})

    @property
    def state(self) -> dict:
        return {"names": self.names, "median": self._median.tolist(), "scale": self._scale.tolist()}

    def load_state(self, state: dict) -> None:
        if list(state["names"]) != self.names:
            raise ConventionError(f"the {self.name} were fitted for other bands or another set")
        median = np.asarray(state["median"], dtype=np.float64)
        scale = np.asarray(state["scale"], dtype=np.float64)
        if median.shape != (len(self.names),) or scale.shape != (len(self.names),):
            raise ValueError(f"{len(self.names)} values, a state of other lengths")
        check_statistics(median, scale)
        self._median, self._scale = median, scale

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        values = self.raw(selection.series, selection)
        missing = ~np.isfinite(values)
        with np.errstate(invalid="ignore"):
            scaled = np.arcsinh((values - self._median) / self._scale)
        scaled[missing] = 0.0
        return {self.key: np.concatenate([scaled, missing]).astype(np.float32)}

    def incomplete(self, arrays: dict[str, np.ndarray]) -> bool:
        """A value that could not be computed or was not measured."""
        return bool(arrays[self.key][len(self.names) :].any())
