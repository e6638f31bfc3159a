"""What training and pre-training share of Lightning's side: a quiet start, its CSV log
read back, and a plain line per epoch where output goes to a file or a pipe."""

from __future__ import annotations

import csv
import logging
import time
import warnings
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from convention.progress import duration


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter and known-harmless warnings off the user's screen."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    for message in (
        ".*LeafSpec.*",
        "The number of training batches.*",
        ".*does not have many workers.*",
        ".*exists and is not empty.*",  # a resumed fold's own logs and checkpoints
    ):
        warnings.filterwarnings("ignore", message=message)


def csv_rows(path: Path) -> list[dict]:
    """The rows of a CSV file (a Lightning metrics.csv) as dicts; none when it is absent."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


class EpochLines(Callback):
    """A plain line per epoch (for logs, where Lightning's bar would be one line redrawn):
    the stage, the epoch of how many, the logged figures, the time per epoch and the time
    left at most (early stopping may end sooner)."""

    def __init__(self, stage: str):
        self.stage = stage
        self.start, self.first = time.monotonic(), 0

    def on_fit_start(self, trainer, pl_module) -> None:
        print(f"{self.stage}: up to {trainer.max_epochs} epochs", flush=True)
        self.start, self.first = time.monotonic(), trainer.current_epoch  # resumed: later

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        done = trainer.current_epoch + 1
        each = (time.monotonic() - self.start) / max(done - self.first, 1)
        figures = ", ".join(
            f"{name} {float(value):.3f}"
            for name, value in sorted(trainer.callback_metrics.items())
            if name in ("train_loss", "val_loss", "val_macro_f1")
        )
        left = duration(each * max(trainer.max_epochs - done, 0))
        print(
            f"{self.stage}: epoch {done}/{trainer.max_epochs}: {figures} "
            f"({duration(each)} an epoch, {left} left at most)",
            flush=True,
        )
