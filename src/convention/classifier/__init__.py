"""Inference: trained models loaded from their folders (or an ONNX export) and run on
collections or streams of objects.

- :class:`Classifier` (``classifier.py``): ``Classifier.load(path)``, then ``classify``
  (probabilities batch by batch) and ``over_time`` (after each night of one object).
- ``settings.py``: what a checkpoint says about its model (:class:`ModelSettings`).
- ``folder.py``: checkpoint folders written and read (``save_model``, ``load_models``,
  ``load_backbone``).
- ``engines.py`` (PyTorch) and ``onnx.py`` (the ONNX export and onnxruntime): the
  probability engines.
- ``stream.py``: objects encoded and collated a batch at a time.
- ``calibration.py``: temperature scaling.
"""

from convention.classifier.classifier import BatchPrediction, Classifier, ProbabilityHistory
from convention.classifier.folder import load_backbone, load_models, read_settings, save_model
from convention.classifier.settings import ModelSettings
from convention.classifier.stream import Skipped

__all__ = [
    "BatchPrediction",
    "Classifier",
    "ModelSettings",
    "ProbabilityHistory",
    "Skipped",
    "load_backbone",
    "load_models",
    "read_settings",
    "save_model",
]
