"""What several test files use: a classifier's probabilities as plain arrays."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from convention.classifier import BatchPrediction, Classifier
from convention.data.series import StampSeries


def probabilities(classifier: Classifier, objects, **options) -> np.ndarray:
    """(n, C) the probabilities ``classifier.classify(objects, **options)`` gives."""
    return BatchPrediction.join(classifier.classify(objects, **options), classifier.classes).proba


def probabilities_of(classifier: Classifier, series: StampSeries | Iterable) -> np.ndarray:
    """(C,) the probabilities of one object."""
    return probabilities(classifier, [series])[0]
