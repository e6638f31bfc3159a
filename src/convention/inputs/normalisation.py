"""Per-band scales of the model inputs, fitted on a training split."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from convention.bands import get_band
from convention.data.series import StampSeries

# What a fitted median and scale may be: float32 arithmetic on them stays finite.
STATISTIC_RANGE = 1e20
SCALE_FLOOR = 1e-20


def check_statistics(median: Sequence[float], scale: Sequence[float]) -> None:
    """Refuse fitted statistics no fit gives: a median past +-1e20, a scale outside
    1e-20..1e20, or a value that is not finite.

    Raises:
        ValueError: naming what is wrong.
    """
    median, scale = np.asarray(median, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    if not (np.all(np.isfinite(median)) and np.all(np.isfinite(scale))):
        raise ValueError("normalisation values that are not finite")
    if np.any(np.abs(median) > STATISTIC_RANGE):
        raise ValueError(f"a normalisation median past {STATISTIC_RANGE:g}")
    if np.any((scale < SCALE_FLOOR) | (scale > STATISTIC_RANGE)):
        raise ValueError(f"a normalisation scale outside {SCALE_FLOOR:g}..{STATISTIC_RANGE:g}")


@dataclass(frozen=True)
class Normalisation:
    """Per-band statistics: pixels ``asinh((x - median[b]) / scale[b])``, or for light
    curves ``scale[b]`` the band's median flux error (median unused, 0)."""

    bands: tuple[str, ...]
    median: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def identity(cls, bands: Sequence[str]) -> Normalisation:
        """Median 0 and scale 1 in every band."""
        return cls(tuple(bands), (0.0,) * len(bands), (1.0,) * len(bands))

    @classmethod
    def fit_pixels(
        cls,
        series: Iterable[StampSeries],
        bands: Sequence[str],
        max_frames: int = 4000,
        seed: int = 0,
    ) -> Normalisation:
        """Median and robust sigma (1.4826 MAD) of the pixels of each band, from one random
        frame per object and band, up to ``max_frames`` frames per band."""
        rng = np.random.default_rng(seed)
        pixels: dict[int, list[np.ndarray]] = {get_band(b).id: [] for b in bands}
        for s in series:
            for band_id, chosen in pixels.items():
                frames = s.frames[s.band == band_id]
                if len(frames) and len(chosen) < max_frames:
                    # A copy: a view would keep the object's whole band of frames alive.
                    chosen.append(frames[rng.integers(len(frames))].ravel().copy())
        medians, scales = [], []
        for band in bands:
            values = np.concatenate(pixels[get_band(band).id] or [np.zeros(1)])
            values = values[np.isfinite(values)]
            med = float(np.median(values)) if values.size else 0.0
            mad = float(np.median(np.abs(values - med))) * 1.4826 if values.size else 1.0
            medians.append(med)
            scales.append(mad if mad > 0 else 1.0)
        return cls(tuple(bands), tuple(medians), tuple(scales))

    @classmethod
    def fit_flux_errors(
        cls, errors: Iterable[tuple[np.ndarray, np.ndarray]], bands: Sequence[str]
    ) -> Normalisation:
        """The median flux error of each band, from (band ids (M,), flux errors (M,)) pairs,
        one per object."""
        chosen: dict[int, list[np.ndarray]] = {get_band(b).id: [] for b in bands}
        for band, err in errors:
            for band_id, values in chosen.items():
                values.append(err[band == band_id])
        scales = []
        for band in bands:
            values = np.concatenate(chosen[get_band(band).id] or [np.ones(1)])
            values = values[np.isfinite(values) & (values > 0)]
            scales.append(float(np.median(values)) if values.size else 1.0)
        return cls(tuple(bands), (0.0,) * len(bands), tuple(scales))

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {"bands": list(self.bands), "median": list(self.median), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, d: dict, bands: Sequence[str] | None = None) -> Normalisation:
        """Inverse of to_dict; with ``bands``, those must be its bands.

        Raises:
            ValueError: lists of different lengths, values that are not finite numbers
                (or scales not positive), or other bands.
        """
        norm = cls(
            tuple(str(b) for b in d["bands"]),
            tuple(float(m) for m in d["median"]),
            tuple(float(s) for s in d["scale"]),
        )
        if not len(norm.bands) == len(norm.median) == len(norm.scale):
            raise ValueError("normalisation lists of different lengths")
        check_statistics(norm.median, norm.scale)
        if bands is not None and list(norm.bands) != list(bands):
            raise ValueError(f"normalisation of bands {list(norm.bands)}, not {list(bands)}")
        return norm
