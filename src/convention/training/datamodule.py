"""The LightningDataModule of one fold: the model's input encoder fitted on the training
split, every object encoded once into an on-disk cache (memory flat in the data's size),
class-balanced oversampling and augmentation, and for early classification a fraction of
the training objects cut to their first nights."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from convention.classes import class_targets
from convention.data.collection import SeriesCollection, Subset
from convention.data.cutoff import cut_to_nights, truncation_draws
from convention.errors import ConventionError
from convention.inputs import Example, InputEncoder
from convention.training.example_cache import ExampleCache

ENCODE_CHUNK = 64  # objects per task of the encoding workers
AHEAD = 2  # tasks in flight per encoding worker
_WORKER: dict = {}  # what an encoding worker reads: the data, targets and encoder


def encode_rows(
    data: SeriesCollection,
    rows: np.ndarray,
    targets: np.ndarray,
    encoder: InputEncoder,
    workers: int = 1,
    cuts: np.ndarray | None = None,
) -> Iterator[Example]:
    """Yield the objects at ``rows`` encoded, in order, with their class index from
    ``targets``, each cut by ``cut_to_nights`` with its draw in ``cuts`` (one per object
    of ``data``; None: all whole); ``workers`` processes share the work (the result does
    not depend on how many), ``AHEAD`` chunks per worker ahead at most."""
    rows = [int(i) for i in rows]
    if cuts is None:
        cuts = np.full(len(data), np.nan)
    if workers <= 1 or len(rows) <= ENCODE_CHUNK:
        for i in rows:
            yield encoder.encode(cut_to_nights(data[i], cuts[i]), int(targets[i]))
        return
    chunks = iter([rows[k : k + ENCODE_CHUNK] for k in range(0, len(rows), ENCODE_CHUNK)])
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    state = {"data": data, "targets": targets, "encoder": encoder, "cuts": cuts}
    with mp.get_context(method).Pool(workers, _start_worker, (state,)) as pool:
        # At most AHEAD chunks per worker in flight (Pool.imap runs ahead without bound,
        # and its finished chunks would pile up in memory while they are written).
        pending = deque(
            pool.apply_async(_encode_chunk, (chunk,))
            for chunk in itertools.islice(chunks, AHEAD * workers)
        )
        while pending:
            done = pending.popleft().get()
            following = next(chunks, None)
            if following is not None:
                pending.append(pool.apply_async(_encode_chunk, (following,)))
            yield from done


def _start_worker(state: dict) -> None:
    from threadpoolctl import threadpool_limits

    # A forked worker inherits Lightning's SIGTERM handler, which only logs: the pool's
    # terminate() on leaving would then wait for ever on a worker blocked on the task
    # queue's lock that the pool holds.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threadpool_limits(1)
    _WORKER.update(state)


def _encode_chunk(rows: list[int]) -> list[Example]:
    data, targets, encoder, cuts = (_WORKER[k] for k in ("data", "targets", "encoder", "cuts"))
    return [encoder.encode(cut_to_nights(data[i], cuts[i]), int(targets[i])) for i in rows]


class ExampleDataset(Dataset):
    """Encoded objects, augmented on every access with ``rng`` when it is given."""

    def __init__(
        self,
        examples: Sequence[Example],
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
        cache_folder: where the encoded objects' temporary file lives (None: the system's
            temporary folder).
        truncate_fraction: the fraction of training objects (drawn once, from ``seed``)
            cut to their first k observing nights, k uniform from one to all: the model
            learns to classify young objects. Validation and test objects stay whole.
        fit_encoder: fit the encoder on the training split (False: it comes fitted, from a
            pre-trained backbone).

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
        cache_folder: str | Path | None = None,
        truncate_fraction: float = 0.0,
        fit_encoder: bool = True,
    ):
        super().__init__()
        self.data, self.classes, self.split = data, list(classes), split
        self.workers, self.cache_folder = workers, cache_folder
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
        if fit_encoder:
            encoder.fit(Subset(data, split["train"]), seed)
        self._cuts = truncation_draws(len(data), truncate_fraction, seed)
        self._encoded: dict[str, ExampleCache] = {}
        self._incomplete: dict[str, dict[str, int]] = {}
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

    def encoded(self, part: str) -> ExampleCache:
        """The encoded objects of ``train``, ``val`` or ``test`` (encoded once, cached on
        disk)."""
        if part not in self._encoded:
            counts = dict.fromkeys(self.encoder.spec.kinds, 0)

            def counted(examples: Iterator[Example]) -> Iterator[Example]:
                for example in examples:
                    for kind, n in self.encoder.incomplete([example]).items():
                        counts[kind] += n
                    yield example

            rows = self.split[part]
            cuts = self._cuts if part == "train" else None
            examples = encode_rows(self.data, rows, self.targets, self.encoder, self.workers, cuts)
            self._encoded[part] = ExampleCache(counted(examples), self.cache_folder)
            self._incomplete[part] = counts
        return self._encoded[part]

    def incomplete(self, part: str) -> dict[str, int]:
        """Per input kind, how many of the part's objects lack part of it (see
        ``InputEncoder.incomplete``), counted as they were encoded."""
        self.encoded(part)
        return self._incomplete[part]

    def close(self) -> None:
        """Remove the cached examples (the files also go when the process ends)."""
        for cache in self._encoded.values():
            cache.close()
        self._encoded.clear()

    def train_dataloader(self) -> DataLoader:
        items = self.encoded("train")
        generator = self._generator
        sampler = None
        if self.oversample:
            y = items.labels
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

    def _loader(self, part: str) -> DataLoader:
        dataset = ExampleDataset(self.encoded(part), self.encoder)
        return DataLoader(dataset, self.batch_size, collate_fn=self.encoder.collate)
