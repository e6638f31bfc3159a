"""The prediction stream: a collection's objects read a batch at a time (one read per
dataset of the store for each run of consecutive objects), encoded and collated in
DataLoader worker processes while the model classifies the previous batch.

Memory is bounded by the batches in flight (``workers`` x ``PREFETCH`` + 1), whatever the
collection's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from convention.data.collection import SeriesCollection
from convention.data.cutoff import Cutoff
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


@dataclass
class EncodedBatch:
    """One batch of the stream: the object ids, their collated inputs (None when a cutoff
    left none of the batch's objects a frame) and the objects skipped, each with the
    ConventionError that says why."""

    ids: list[str]
    inputs: dict[str, torch.Tensor] | None
    skipped: list[ConventionError] = field(default_factory=list)


class EncodedBatches(Dataset):
    """Batch k: the objects ``rows[k * batch_size : (k + 1) * batch_size]`` of ``data``,
    cut at ``cutoff`` when one is given, as an :class:`EncodedBatch`, or the
    ConventionError an object raised (returned, not raised, so that it crosses from a
    worker process intact)."""

    def __init__(
        self,
        data: SeriesCollection,
        rows: Sequence[int],
        encoder: InputEncoder,
        batch_size: int,
        cutoff: Cutoff | None = None,
    ):
        self.data = data
        self.rows = [int(r) for r in rows]
        self.encoder = encoder
        self.batch_size = batch_size
        self.cutoff = cutoff

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
        except ConventionError as err:
            return err
        skipped = []
        if self.cutoff is not None:
            kept = []
            for s in series:
                try:
                    kept.append(self.cutoff.apply(s))
                except ConventionError as err:
                    skipped.append(err)
            series = kept
        try:
            examples = [self.encoder.encode(s) for s in series]
        except ConventionError as err:
            return err
        inputs = self.encoder.collate(examples)["inputs"] if examples else None
        return EncodedBatch([s.object_id for s in series], inputs, skipped)


def _single_threaded_worker(_: int) -> None:
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def stream_batches(
    data: SeriesCollection,
    encoder: InputEncoder,
    rows: Sequence[int] | None = None,
    batch_size: int = 64,
    workers: int = 0,
    cutoff: Cutoff | None = None,
) -> Iterator[EncodedBatch]:
    """Yield the batches of ``rows`` of ``data`` (default all), in order, each object cut
    at ``cutoff`` when one is given, prepared by ``workers`` processes (0: in this one).
    An object with no frame by the cutoff is skipped and named in its batch's ``skipped``.

    Raises:
        ConventionError: ``batch_size`` below 1, negative ``workers``, or an object the
            encoder cannot read (naming the data's file and the object).
    """
    if batch_size < 1:
        raise ConventionError(f"--batch-size must be at least 1, got {batch_size}")
    if workers < 0:
        raise ConventionError(f"--workers must be 0 or more, got {workers}")
    rows = np.arange(len(data)) if rows is None else np.asarray(rows, dtype=np.int64)
    loader = DataLoader(
        EncodedBatches(data, rows, encoder, batch_size, cutoff),
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
