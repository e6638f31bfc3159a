"""The LightningDataModule of one fold: the model's input encoder fitted on the training
split, every object encoded once, class-balanced oversampling and augmentation."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from convention.classes import class_targets
from convention.data.collection import SeriesCollection, Subset
from convention.errors import ConventionError
from convention.inputs import Example, InputEncoder

ENCODE_CHUNK = 64  # objects per task of the encoding workers
_WORKER: dict = {}  # what an encoding worker reads: the data, targets and encoder


def encode_rows(
    data: SeriesCollection,
    rows: np.ndarray,
    targets: np.ndarray,
    encoder: InputEncoder,
    workers: int = 1,
) -> list[Example]:
    """The objects at ``rows`` encoded, in order, with their class index from ``targets``;
    ``workers`` processes share the work (the result does not depend on how many)."""
    rows = [int(i) for i in rows]
    if workers <= 1 or len(rows) <= ENCODE_CHUNK:
        return [encoder.encode(data[i], int(targets[i])) for i in rows]
    chunks = [rows[k : k + ENCODE_CHUNK] for k in range(0, len(rows), ENCODE_CHUNK)]
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    state = {"data": data, "targets": targets, "encoder": encoder}
    with mp.get_context(method).Pool(workers, _start_worker, (state,)) as pool:
        return [e for chunk in pool.imap(_encode_chunk, chunks) for e in chunk]


def _start_worker(state: dict) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _WORKER.update(state)


def _encode_chunk(rows: list[int]) -> list[Example]:
    data, targets, encoder = _WORKER["data"], _WORKER["targets"], _WORKER["encoder"]
    return [encoder.encode(data[i], int(targets[i])) for i in rows]


class ExampleDataset(Dataset):
    """Encoded objects (all in memory: encoded once), augmented on every access with
    ``rng`` when it is given."""

    def __init__(
        self,
        examples: list[Example],
        encoder: InputEncoder,
        rng: np.random.Generator | None = None,
    ):
        self.examples = examples
        self.encoder = encoder
        self._rng = rng

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Example:
        example = self.examples[index]
        return self.encoder.augment(example, self._rng) if self._rng is not None else example


class StampDataModule(L.LightningDataModule):
    """Splits, normalisation, oversampling and loaders of one fold of a data set.

    Args:
        data: the data set.
        classes: class names in model order.
        split: positions ``train``, ``val``, ``test`` into ``data``.
        encoder: the model's input encoder; fitted here on the training split.
        batch_size: objects per batch.
        oversample: draw training objects with class-balanced weights.
        seed: seeds the normalisation sample, sampler and augmentation.
        workers: processes encoding the objects (once, before the first epoch).

    Raises:
        ConventionError: a class without training objects.
    """

    def __init__(
        self,
        data: SeriesCollection,
        classes: Sequence[str],
        split: dict[str, np.ndarray],
        encoder: InputEncoder,
        batch_size: int = 32,
        oversample: bool = True,
        seed: int = 0,
        workers: int = 1,
    ):
        super().__init__()
        self.data, self.classes, self.split = data, list(classes), split
        self.workers = workers
        self.batch_size, self.oversample, self.seed = batch_size, oversample, seed
        self.targets = class_targets(data.labels, self.classes)
        missing = [
            c for k, c in enumerate(self.classes) if not np.any(self.targets[split["train"]] == k)
        ]
        if missing:
            raise ConventionError(
                f"no training objects of class {', '.join(missing)}", path=data.path
            )
        self.encoder = encoder
        encoder.fit(Subset(data, split["train"]), seed)
        self._encoded: dict[str, list[Example]] = {}
        # The training stream's generators: the sampler's and the augmentation's.
        self._generator = torch.Generator().manual_seed(seed)
        self._augment_rng = np.random.default_rng(seed)

    def state_dict(self) -> dict:
        """The training stream's random state (saved in Lightning's checkpoints, so a
        resumed run draws on where the stopped one was)."""
        return {
            "sampler": self._generator.get_state(),
            "augment": self._augment_rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the random state saved by ``state_dict``."""
        self._generator.set_state(state["sampler"])
        self._augment_rng.bit_generator.state = state["augment"]

    def encoded(self, part: str) -> list[Example]:
        """The encoded objects of ``train``, ``val`` or ``test`` (encoded once, kept)."""
        if part not in self._encoded:
            self._encoded[part] = encode_rows(
                self.data, self.split[part], self.targets, self.encoder, self.workers
            )
        return self._encoded[part]

    def train_dataloader(self) -> DataLoader:
        items = self.encoded("train")
        generator = self._generator
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
            ExampleDataset(items, self.encoder, self._augment_rng),
            self.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            generator=generator,
            collate_fn=self.encoder.collate,
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def _loader(self, part: str) -> DataLoader:
        dataset = ExampleDataset(self.encoded(part), self.encoder)
        return DataLoader(dataset, self.batch_size, collate_fn=self.encoder.collate)
