"""Cutoffs: how much of each object an early classification sees.

A broker classifies an object while it is young; a cutoff stands for that moment: an
absolute date (``until``, MJD), a number of days since the object's first frame, or its
first observing nights. Applied to a series, it keeps the frames (and light-curve points)
taken by then; an object with no frame by then cannot be classified.

Training for it cuts a fraction of the training objects to their first k nights, k drawn
once per object (``truncation_draws``, ``cut_to_nights``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convention.data.series import StampSeries
from convention.errors import ConventionError

TRUNCATION_STREAM = 7  # the draws' random stream, apart from a seed's other streams


@dataclass(frozen=True)
class Cutoff:
    """One of: ``until`` (MJD, the same date for every object), ``days`` since each
    object's first frame (inclusive), or each object's first ``nights`` observing nights."""

    until: float | None = None
    days: float | None = None
    nights: int | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.until, self.days, self.nights) if v is not None]
        if len(given) != 1:
            raise ConventionError("give one of --until, --days and --nights")
        if self.days is not None and not self.days >= 0:
            raise ConventionError(f"--days must be 0 or more, got {self.days:g}")
        if self.nights is not None and self.nights < 1:
            raise ConventionError(f"--nights must be at least 1, got {self.nights}")

    @classmethod
    def from_options(
        cls, until: float | None, days: float | None, nights: int | None
    ) -> Cutoff | None:
        """The cutoff the command-line options ask for; None when none is given."""
        if until is None and days is None and nights is None:
            return None
        return cls(until, days, nights)

    def apply(self, series: StampSeries) -> StampSeries:
        """The part of ``series`` observed by the cutoff.

        Raises:
            ConventionError: no frame by then (naming the object).
        """
        if self.nights is not None:
            return series.first_nights(self.nights)
        if self.days is not None:
            if not len(series):
                raise ConventionError("no frame (it has none)", obj=series.object_id)
            return series.until(float(series.mjd[0]) + self.days)
        return series.until(self.until)

    def __str__(self) -> str:
        if self.nights is not None:
            return f"its first {self.nights} night(s)"
        if self.days is not None:
            return f"{self.days:g} day(s) after its first frame"
        return f"MJD {self.until:.5f}"


def truncation_draws(
    n_objects: int, fraction: float, seed: int, stream: tuple[int, ...] = (TRUNCATION_STREAM,)
) -> np.ndarray:
    """(n_objects,) one draw per object of a data set, uniform in [0, 1) for a random
    ``fraction`` of them and NaN (kept whole) for the rest; drawn for every object, not
    only a split's, so an object's cut does not depend on the split. ``stream`` picks
    independent draws for the same seed."""
    draws = np.random.default_rng([seed, *stream]).random((2, n_objects))
    return np.where(draws[0] < fraction, draws[1], np.nan)


def cut_to_nights(series: StampSeries, draw: float) -> StampSeries:
    """``series`` cut to its first k observing nights, k = 1 + floor(``draw`` x nights):
    a ``draw`` uniform in [0, 1) gives k uniform from one night to all; NaN keeps it
    whole."""
    if np.isnan(draw) or not len(series):
        return series
    nights = len(np.unique(series.nights()))
    return series.first_nights(1 + int(draw * nights))
