"""The prediction stream: objects encoded and collated a batch at a time, for the
:class:`~convention.classifier.Classifier`.

A collection's objects are read a batch at a time (one read per dataset of a store for
each run of consecutive objects), encoded and collated in DataLoader worker processes
while the model classifies the previous batch; memory is bounded by the batches in
flight (``workers`` x ``PREFETCH`` + 1), whatever the collection's size. Objects that
arrive one by one (an alert stream, a generator) are encoded in this process, a batch at
a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from convention.data.collection import SeriesCollection
from convention.data.cutoff import Cutoff
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.inputs import InputEncoder

PREFETCH = 2  # batches each worker prepares ahead


def consecutive_runs(rows: Sequence[int]) -> list[tuple[int, int]]:
    """``(first, stop)`` of each run of consecutive positions in ``rows``, in order."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1)
        else:
            runs.append((row, row + 1))
    return runs


@dataclass(frozen=True)
class Skipped:
    """An object left out of the predictions: its position in the input and why (no frame
    by a cutoff, or, when unreadable objects are skipped, what its encoding raised)."""

    row: int
    error: ConventionError


@dataclass
class EncodedBatch:
    """One batch of the stream: the positions in the input and ids of the objects encoded,
    their collated inputs (None when none of the batch's objects was), and the objects
    skipped."""

    rows: np.ndarray
    ids: list[str]
    inputs: dict[str, torch.Tensor] | None
    skipped: list[Skipped] = field(default_factory=list)


def encode_batch(
    series: Sequence[StampSeries],
    rows: Sequence[int],
    encoder: InputEncoder,
    cutoff: Cutoff | None = None,
    skip_unreadable: bool = False,
) -> EncodedBatch:
    """``series`` (at positions ``rows`` of their input) cut at ``cutoff``, encoded and
    collated. An object with no frame by the cutoff is skipped; one the encoder refuses is
    skipped too when ``skip_unreadable``.

    Raises:
        ConventionError: an object the encoder refuses (not ``skip_unreadable``).
    """
    kept, kept_rows, examples, skipped = [], [], [], []
    for s, row in zip(series, rows, strict=True):
        if cutoff is not None:
            try:
                s = cutoff.apply(s)
            except ConventionError as err:
                skipped.append(Skipped(int(row), err))
                continue
        try:
            examples.append(encoder.encode(s))
        except ConventionError as err:
            if not skip_unreadable:
                raise
            skipped.append(Skipped(int(row), err))
            continue
        kept.append(s.object_id)
        kept_rows.append(int(row))
    inputs = encoder.collate(examples)["inputs"] if examples else None
    return EncodedBatch(np.array(kept_rows, dtype=np.int64), kept, inputs, skipped)


class EncodedBatches(Dataset):
    """Batch k: the objects ``rows[k * batch_size : (k + 1) * batch_size]`` of ``data``
    as an :class:`EncodedBatch` (see :func:`encode_batch`), or the ConventionError reading
    or encoding raised (returned, not raised, so that it crosses from a worker process
    intact)."""

    def __init__(
        self,
        data: SeriesCollection,
        rows: Sequence[int],
        encoder: InputEncoder,
        batch_size: int,
        cutoff: Cutoff | None = None,
        skip_unreadable: bool = False,
    ):
        self.data = data
        self.rows = [int(r) for r in rows]
        self.encoder = encoder
        self.batch_size = batch_size
        self.cutoff = cutoff
        self.skip_unreadable = skip_unreadable

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __getitem__(self, k: int) -> EncodedBatch | ConventionError:
        rows = self.rows[k * self.batch_size : (k + 1) * self.batch_size]
        try:
            series = [
                s
                for first, stop in consecutive_runs(rows)
                for s in self.data.read_range(first, stop)
            ]
            return encode_batch(series, rows, self.encoder, self.cutoff, self.skip_unreadable)
        except ConventionError as err:
            return err


def _single_threaded_worker(_: int) -> None:
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def check_batching(batch_size: int, workers: int) -> None:
    """Refuse a batch size below 1 or a negative number of workers.

    Raises:
        ConventionError: naming the option.
    """
    if batch_size < 1:
        raise ConventionError(f"--batch-size must be at least 1, got {batch_size}")
    if workers < 0:
        raise ConventionError(f"--workers must be 0 or more, got {workers}")


def collection_batches(
    data: SeriesCollection,
    encoder: InputEncoder,
    rows: Sequence[int] | None = None,
    batch_size: int = 64,
    workers: int = 0,
    cutoff: Cutoff | None = None,
    skip_unreadable: bool = False,
) -> Iterator[EncodedBatch]:
    """Yield the batches of ``rows`` of ``data`` (default all), in order, prepared by
    ``workers`` processes (0: in this one); see :func:`encode_batch`.

    Raises:
        ConventionError: bad ``batch_size`` or ``workers``, damaged data, or an object the
            encoder refuses (naming the data's file and the object).
    """
    check_batching(batch_size, workers)
    rows = np.arange(len(data)) if rows is None else np.asarray(rows, dtype=np.int64)
    loader = DataLoader(
        EncodedBatches(data, rows, encoder, batch_size, cutoff, skip_unreadable),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=PREFETCH if workers else None,
        worker_init_fn=_single_threaded_worker if workers else None,
        collate_fn=lambda item: item,
    )
    for item in loader:
        if isinstance(item, ConventionError):
            raise ConventionError(item.cause, path=item.path or data.path, obj=item.obj)
        yield item


def series_batches(
    series: Iterable[StampSeries],
    encoder: InputEncoder,
    batch_size: int = 64,
    cutoff: Cutoff | None = None,
    skip_unreadable: bool = False,
) -> Iterator[EncodedBatch]:
    """Yield batches of objects that arrive one by one, in order, encoded in this process
    (positions counted from 0); see :func:`encode_batch`.

    Raises:
        ConventionError: a batch size below 1, or an object the encoder refuses.
    """
    check_batching(batch_size, 0)
    objects = iter(series)
    first = 0
    while group := list(itertools.islice(objects, batch_size)):
        rows = range(first, first + len(group))
        yield encode_batch(group, rows, encoder, cutoff, skip_unreadable)
        first += len(group)
