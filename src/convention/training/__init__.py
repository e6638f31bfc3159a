"""Training: settings, the data module and its example cache, the Lightning module, fit
(train and resume), contrastive pre-training, run folders and calibration of older runs.

The names below load on first use, so that reading the settings (the command line does)
does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convention.training.fit import train
    from convention.training.run_folder import RunFolder
    from convention.training.settings import TrainSettings

_EXPORTS = {
    "RunFolder": "convention.training.run_folder",
    "TrainSettings": "convention.training.settings",
    "train": "convention.training.fit",
}

__all__ = ["RunFolder", "TrainSettings", "train"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'convention.training' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
