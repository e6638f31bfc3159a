"""Progress as plain lines, for output that goes to a file or a pipe (a scheduler's log):
the stage, what is done of how much, the rate and the time left, a line at most every
``EVERY`` seconds and one at the end. On a terminal the commands draw a bar instead."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

EVERY = 10.0  # seconds between lines


def to_terminal() -> bool:
    """Whether standard output is a terminal (a bar is drawn) rather than a file or pipe
    (plain lines are written)."""
    return sys.stdout.isatty()


def duration(seconds: float) -> str:
    """A duration in words a log reader takes in at once: ``45 s``, ``12 min``, ``2.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressLines:
    """One stage's progress as plain lines.

    Args:
        stage: what is done (``simulating``).
        total: how much there is to do, None while unknown.
        unit: what is counted (``objects``).
        write: where a line goes (standard output by default).
        every: seconds between lines at most.
        clock: the time in seconds (for tests).
    """

    def __init__(
        self,
        stage: str,
        total: int | None = None,
        unit: str = "objects",
        write: Callable[[str], None] | None = None,
        every: float = EVERY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stage, self.total, self.unit = stage, total, unit
        self.write = write or (lambda line: print(line, flush=True))
        self.every, self.clock = every, clock
        self.done = 0
        self.start = clock()
        self.last: float | None = None

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` of ``total`` now; a line when ``every`` seconds have passed since the
        last, or when the stage is complete."""
        self.done = done
        self.total = total if total is not None else self.total
        now = self.clock()
        complete = self.total is not None and done >= self.total
        if complete or self.last is None or now - self.last >= self.every:
            self.write(self.line(now))
            self.last = now

    def advance(self, n: int = 1) -> None:
        """``n`` more done."""
        self.update(self.done + n)

    def line(self, now: float) -> str:
        """``stage: done/total unit (p%), rate, time left``."""
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = self.done / self.total
            text = f"{self.stage}: {self.done:,}/{self.total:,} {self.unit} ({share:.0%})"
        else:
            text = f"{self.stage}: {self.done:,} {self.unit}"
        text += f", {rate:.3g} {self.unit}/s"
        if self.total and self.done >= self.total:
            return text + f", done in {duration(elapsed)}"
        if self.total and rate > 0:
            text += f", about {duration((self.total - self.done) / rate)} left"
        return text
