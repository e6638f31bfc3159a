"""Encoded examples kept on disk, not in the process: training's memory stays flat in the
size of the data set.

The examples are pickled one after another into an unnamed temporary file (``O_TMPFILE``
where the system has it: it has no name, so a killed run leaves nothing behind) and read
back one at a time with ``pread``. The operating system's page cache keeps the hot part in
memory as far as memory allows, outside the process's resident set; DataLoader worker
processes share the file (``pread`` keeps no file position).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from convention.inputs import Example


class ExampleCache(Sequence[Example]):
    """A write-once sequence of encoded examples in a temporary file.

    Args:
        examples: the examples, consumed one by one (an iterator keeps memory flat).
        folder: where the temporary file lives (None: the system's temporary folder).
    """

    def __init__(self, examples: Iterable[Example], folder: str | Path | None = None):
        self._file = tempfile.TemporaryFile(dir=folder)
        offsets, labels, end = [0], [], 0
        for example in examples:
            end += self._file.write(pickle.dumps(example, protocol=pickle.HIGHEST_PROTOCOL))
            offsets.append(end)
            labels.append(example.label)
        self._file.flush()
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.nbytes = end

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Example:  # type: ignore[override]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"example {index} out of range for {n}")
        i = index % n
        start, stop = int(self._offsets[i]), int(self._offsets[i + 1])
        return pickle.loads(os.pread(self._file.fileno(), stop - start, start))

    def __iter__(self) -> Iterator[Example]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        """Remove the file (also done when the object is collected or the process ends)."""
        self._file.close()
