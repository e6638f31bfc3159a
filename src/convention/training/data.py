"""From stores to batches: splits, per-band normalisation, augmentation, padding and masks.

A sequence becomes arrays the model reads: frames normalised per band with
``asinh((x - median_b) / scale_b)`` (statistics of the training split), NaN pixels set to 0,
frames with no valid pixel dropped, band ids mapped to the model's band indices (1..n, 0 is
padding), times in days since the first frame, capped at ``max_frames`` frames.

Light-curve models (``input = "lightcurve"`` in their config) read, in place of each
frame, its forced PSF photometry on the stamps less each band's median stamp:
``(asinh(flux / scale_b), log(flux_err / scale_b))`` with ``scale_b`` the band's median
flux error on the training split. Heatmap models (``input = "heatmap"``, SCONE) read one
(2, wavelength, time) Gaussian-process image of that photometry per object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from convention.bands import get_band
from convention.classes import TO_THREE_CLASS, get_taxonomy
from convention.data.series import StampSeries
from convention.data.store import Store
from convention.errors import ConventionError

INPUTS = ("stamps", "lightcurve", "heatmap")


def photometry_features(series: StampSeries) -> np.ndarray:
    """(M, 2) raw forced PSF flux and error of every frame (median stamp subtracted)."""
    lc = series.to_lightcurve(method="psf", reference="median")
    return np.stack([np.asarray(lc["flux"]), np.asarray(lc["flux_err"])], axis=1)


@dataclass(frozen=True)
class Normalisation:
    """Per-band statistics: pixels ``asinh((x - median[b]) / scale[b])``, or for light
    curves ``scale[b]`` the band's median flux error (median unused, 0)."""

    bands: tuple[str, ...]
    median: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(
        cls,
        series: Sequence[StampSeries],
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
                    chosen.append(frames[rng.integers(len(frames))].ravel())
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
    def fit_lightcurves(
        cls, series: Sequence[StampSeries], bands: Sequence[str], max_objects: int = 2000
    ) -> Normalisation:
        """The median forced-photometry flux error of each band over up to ``max_objects``
        objects."""
        errors: dict[int, list[np.ndarray]] = {get_band(b).id: [] for b in bands}
        for k, s in enumerate(series):
            if k >= max_objects:
                break
            err = photometry_features(s)[:, 1]
            for band_id, chosen in errors.items():
                chosen.append(err[s.band == band_id])
        scales = []
        for band in bands:
            values = np.concatenate(errors[get_band(band).id] or [np.ones(1)])
            values = values[np.isfinite(values) & (values > 0)]
            scales.append(float(np.median(values)) if values.size else 1.0)
        return cls(tuple(bands), tuple(0.0 for _ in bands), tuple(scales))

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {"bands": list(self.bands), "median": list(self.median), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        """Inverse of to_dict."""
        return cls(tuple(d["bands"]), tuple(d["median"]), tuple(d["scale"]))


@dataclass(frozen=True)
class Encoded:
    """One sequence as model inputs (all arrays of length M <= max_frames)."""

    frames: np.ndarray  # (M, H, W) float32 stamps, or (M, 2) light-curve features
    bands: np.ndarray  # (M,) int64, 1..n_bands
    times: np.ndarray  # (M,) float32, days since the first frame
    label: int  # class index, -1 when unlabelled


class SequenceEncoder:
    """Turns StampSeries into model inputs for a given band list and normalisation.

    ``other_bands``: ``error`` refuses frames of bands outside the list; ``drop`` leaves
    them out (a model trained on a subset of the bands, such as g alone).
    """

    def __init__(
        self,
        bands: Sequence[str],
        norm: Normalisation,
        stamp_size: int,
        max_frames: int,
        input: str = "stamps",
        other_bands: str = "error",
        heatmap_shape: tuple[int, int] = (32, 48),
    ):
        if input not in INPUTS:
            raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
        self.input = input
        self.other_bands = other_bands
        self.heatmap_shape = tuple(heatmap_shape)
        self.bands = list(bands)
        self.norm = norm
        self.stamp_size = stamp_size
        self.max_frames = max_frames
        self._lut = np.zeros(max(get_band(b).id for b in bands) + 1, dtype=np.int64)
        for k, band in enumerate(self.bands):
            self._lut[get_band(band).id] = k + 1
        self._median = np.array([0.0, *norm.median], dtype=np.float32)
        self._scale = np.array([1.0, *norm.scale], dtype=np.float32)

    def encode(self, series: StampSeries, label: int = -1) -> Encoded:
        """Encode one sequence; a longer one keeps its central ``max_frames`` frames.

        Args:
            series: the object's frames.
            label: its class index (-1 = unlabelled).

        Raises:
            ConventionError: other stamp size, bands the model does not know, or no frame
                with valid pixels.
        """
        stamps = self.input == "stamps"
        if stamps and series.frames.shape[1:] != (self.stamp_size, self.stamp_size):
            raise ConventionError(
                f"stamps are {series.frames.shape[1]}x{series.frames.shape[2]}, the model "
                f"reads {self.stamp_size}x{self.stamp_size}",
                obj=series.object_id,
            )
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
        idx = np.flatnonzero(valid)
        if len(idx) > self.max_frames:
            start = (len(idx) - self.max_frames) // 2
            idx = idx[start : start + self.max_frames]
        bands = self._lut[series.band[idx]]
        if stamps:
            frames = (series.frames[idx] - self._median[bands, None, None]) / self._scale[
                bands, None, None
            ]
            frames = np.nan_to_num(np.arcsinh(frames), nan=0.0).astype(np.float32)
        elif self.input == "heatmap":
            from convention.baselines.heatmaps import heatmap

            lc = series[idx].to_lightcurve(method="psf", reference="median")
            image = heatmap(lc, self.bands, *self.heatmap_shape)
            return Encoded(image[None], np.ones(1, dtype=np.int64), np.zeros(1, np.float32), label)
        else:
            flux, err = photometry_features(series)[idx].T
            scale = self._scale[bands]
            with np.errstate(divide="ignore", invalid="ignore"):
                features = np.stack([np.arcsinh(flux / scale), np.log(err / scale)], axis=1)
            frames = np.nan_to_num(features, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        times = (series.mjd[idx] - series.mjd[idx[0]]).astype(np.float32)
        return Encoded(frames, bands, times, label)


def augment(
    item: Encoded, rng: np.random.Generator, drop: float = 0.1, min_keep: float = 0.6
) -> Encoded:
    """Random frame drop, random crop of the sequence, and for stamps rotation by k*90 deg
    and flips, the same for every frame of the sequence."""
    m = len(item.frames)
    keep = rng.random(m) >= drop
    if not keep.any():
        keep[rng.integers(m)] = True
    length = int(rng.integers(max(1, int(np.ceil(min_keep * m))), m + 1))
    start = int(rng.integers(m - length + 1))
    window = np.zeros(m, dtype=bool)
    window[start : start + length] = True
    idx = np.flatnonzero(keep & window)
    if idx.size == 0:
        idx = np.array([start])
    frames = item.frames[idx]
    if frames.ndim == 3:  # stamps: rotations and flips; light-curve features have none
        frames = np.rot90(frames, k=int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            frames = frames[:, :, ::-1]
        if rng.random() < 0.5:
            frames = frames[:, ::-1, :]
    times = item.times[idx] - item.times[idx[0]]
    return Encoded(np.ascontiguousarray(frames), item.bands[idx], times, item.label)


def collate(items: Sequence[Encoded]) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sequence: frames, bands, times, mask, label."""
    m = max(len(it.frames) for it in items)
    frames = np.zeros((len(items), m, *items[0].frames.shape[1:]), dtype=np.float32)
    bands = np.zeros((len(items), m), dtype=np.int64)
    times = np.zeros((len(items), m), dtype=np.float32)
    mask = np.zeros((len(items), m), dtype=bool)
    for k, it in enumerate(items):
        n = len(it.frames)
        frames[k, :n], bands[k, :n], times[k, :n], mask[k, :n] = it.frames, it.bands, it.times, True
    return {
        "frames": torch.from_numpy(frames),
        "bands": torch.from_numpy(bands),
        "times": torch.from_numpy(times),
        "mask": torch.from_numpy(mask),
        "label": torch.tensor([it.label for it in items], dtype=torch.long),
    }


class SequenceDataset(Dataset):
    """Encoded objects of a store (all in memory: encoded once, augmented per access)."""

    def __init__(self, encoded: list[Encoded], augment_seed: int | None = None):
        self.encoded = encoded
        self.augment_seed = augment_seed
        self._rng = np.random.default_rng(augment_seed) if augment_seed is not None else None

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, index: int) -> Encoded:
        item = self.encoded[index]
        return augment(item, self._rng) if self._rng is not None else item


def class_targets(labels: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    """Class index per object (-1 for unlabelled), mapping 4-class labels onto 3 classes
    when ``classes`` is the 3-class taxonomy."""
    three = list(classes) == list(get_taxonomy(3).classes)
    out = []
    for label in labels:
        if label is None:
            out.append(-1)
            continue
        label = TO_THREE_CLASS.get(label, label) if three else label
        out.append(list(classes).index(label) if label in classes else -1)
    return np.array(out, dtype=np.int64)


def make_splits(
    targets: np.ndarray,
    folds: int,
    seed: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> list[dict[str, np.ndarray]]:
    """Stratified, seeded splits over the labelled objects (targets >= 0).

    ``folds`` >= 2: k-fold, each fold's test part once; the validation part is drawn from the
    rest (``val_fraction`` of all objects). ``folds`` <= 1: one split train/val/test of
    (1 - val - test)/val/test.
    """
    labelled = np.flatnonzero(targets >= 0)
    y = targets[labelled]
    if folds >= 2:
        kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        parts = [(labelled[a], labelled[b]) for a, b in kfold.split(labelled, y)]
    else:
        rest, test = train_test_split(
            labelled, test_size=test_fraction, stratify=y, random_state=seed
        )
        parts = [(rest, test)]
    splits = []
    for rest, test in parts:
        val_share = val_fraction * len(labelled) / len(rest)
        train, val = train_test_split(
            rest, test_size=val_share, stratify=targets[rest], random_state=seed
        )
        splits.append({"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)})
    return splits


class StampDataModule(L.LightningDataModule):
    """Splits, normalisation, oversampling and loaders of one fold of a store.

    Args:
        store: the data set.
        classes: class names in model order.
        split: index arrays ``train``, ``val``, ``test`` into the store.
        stamp_size, max_frames: what the model reads.
        batch_size: objects per batch.
        oversample: draw training objects with class-balanced weights.
        seed: seeds the normalisation sample, sampler and augmentation.
        norm: normalisation to use (fitted on the training split when None).
        input: ``stamps`` or ``lightcurve`` (what the model reads).
        bands: the bands the model reads (default all of the store's; others are dropped).
        heatmap_shape: (wavelength, time) bins of a heatmap model's input.
    """

    def __init__(
        self,
        store: Store,
        classes: Sequence[str],
        split: dict[str, np.ndarray],
        stamp_size: int,
        max_frames: int,
        batch_size: int = 32,
        oversample: bool = True,
        seed: int = 0,
        norm: Normalisation | None = None,
        input: str = "stamps",
        bands: Sequence[str] | None = None,
        heatmap_shape: tuple[int, int] = (32, 48),
    ):
        super().__init__()
        self.bands = list(bands or store.bands)
        other = "error" if self.bands == list(store.bands) else "drop"
        self.store, self.classes, self.split = store, list(classes), split
        self.batch_size, self.oversample, self.seed = batch_size, oversample, seed
        self.targets = class_targets(store.labels, self.classes)
        missing = [
            c for k, c in enumerate(self.classes) if not np.any(self.targets[split["train"]] == k)
        ]
        if missing:
            raise ConventionError(
                f"no training objects of class {', '.join(missing)}", path=store.path
            )
        train = (store[int(i)] for i in split["train"])
        if norm is None and input == "heatmap":  # each heatmap is scaled on its own
            norm = Normalisation(
                tuple(self.bands), (0.0,) * len(self.bands), (1.0,) * len(self.bands)
            )
        if norm is None:
            norm = (
                Normalisation.fit(train, self.bands, seed=seed)
                if input == "stamps"
                else Normalisation.fit_lightcurves(train, self.bands)
            )
        self.norm = norm
        self.encoder = SequenceEncoder(
            self.bands, self.norm, stamp_size, max_frames, input, other, heatmap_shape
        )
        self._encoded: dict[str, list[Encoded]] = {}

    def encoded(self, part: str) -> list[Encoded]:
        """The encoded objects of ``train``, ``val`` or ``test`` (encoded once, kept)."""
        if part not in self._encoded:
            self._encoded[part] = [
                self.encoder.encode(self.store[int(i)], int(self.targets[i]))
                for i in self.split[part]
            ]
        return self._encoded[part]

    def train_dataloader(self) -> DataLoader:
        items = self.encoded("train")
        generator = torch.Generator().manual_seed(self.seed)
        sampler = None
        if self.oversample:
            y = np.array([it.label for it in items])
            weights = 1.0 / np.bincount(y, minlength=len(self.classes))[y]
            sampler = WeightedRandomSampler(
                torch.as_tensor(weights, dtype=torch.double),
                len(items),
                replacement=True,
                generator=generator,
            )
        return DataLoader(
            SequenceDataset(items, augment_seed=self.seed),
            self.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=generator,
            collate_fn=collate,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(SequenceDataset(self.encoded("val")), self.batch_size, collate_fn=collate)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(
            SequenceDataset(self.encoded("test")), self.batch_size, collate_fn=collate
        )
