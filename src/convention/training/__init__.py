"""Training: data module, Lightning module, checkpoints and the Classifier."""

from convention.training.checkpoint import Classifier
from convention.training.train import TrainSettings, train

__all__ = ["Classifier", "TrainSettings", "train"]
