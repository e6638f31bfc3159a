"""What training and pre-training share of Lightning's side: a quiet start, and its CSV
log read back."""

from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path


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
