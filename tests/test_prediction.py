"""The prediction stream: the same probabilities with any number of worker processes, and
an object the model cannot read named with its file, from a worker too."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import convention
from convention.classifier import BatchPrediction, Classifier
from convention.classifier.stream import consecutive_runs
from convention.data.collection import MemoryCollection
from convention.errors import ConventionError
from tests.helpers import probabilities


def test_consecutive_runs():
    assert consecutive_runs([0, 1, 2, 5, 6, 9]) == [(0, 3), (5, 7), (9, 10)]
    assert consecutive_runs([]) == []


def test_workers_and_batch_sizes_give_the_same_probabilities(trained_run, train_store):
    data = convention.read(train_store)
    classifier = Classifier.load(trained_run)
    rows = [0, 1, 2, 7, 8, 20, 33, 47]
    reference = probabilities(classifier, (data[r] for r in rows))
    for workers, batch_size in ((0, 3), (2, 2), (1, 64)):
        batches = classifier.classify(data, rows, batch_size, workers)
        joined = BatchPrediction.join(batches, classifier.classes)
        assert joined.ids == [data.object_ids[r] for r in rows]
        assert joined.rows.tolist() == rows
        # Other batch compositions pad differently: float32 rounding only.
        assert np.abs(joined.proba - reference).max() < 1e-6


def _collection(series, data) -> MemoryCollection:
    return MemoryCollection(
        series,
        path="bad.h5",
        survey=data.survey,
        bands=data.bands,
        class_names=data.class_names,
        pixel_scale=data.pixel_scale,
    )


def test_a_bad_object_is_named_from_a_worker(trained_run, train_store):
    data = convention.read(train_store)
    series = [data[i] for i in range(6)]
    series[4].frames[:] = np.nan  # no valid pixel in any frame
    bad = _collection(series, data)
    classifier = Classifier.load(trained_run)
    for workers in (0, 1):
        with pytest.raises(ConventionError) as err:
            list(classifier.classify(bad, batch_size=2, workers=workers))
        assert str(err.value) == f"bad.h5: object {series[4].object_id}: no frame with valid pixels"
    with pytest.raises(ConventionError, match="--workers"):
        next(classifier.classify(bad, workers=-1))


def test_unreadable_objects_are_skipped_and_named_when_asked(trained_run, train_store):
    data = convention.read(train_store)
    series = [data[i] for i in range(6)]
    series[4].frames[:] = np.nan  # no valid pixel in any frame
    classifier = Classifier.load(trained_run)
    for objects in (series, _collection(series, data)):
        joined = BatchPrediction.join(
            classifier.classify(objects, batch_size=4, skip_unreadable=True), classifier.classes
        )
        assert joined.rows.tolist() == [0, 1, 2, 3, 5]
        assert [s.row for s in joined.skipped] == [4]
        assert joined.skipped[0].error.cause == "no frame with valid pixels"
        alone = probabilities(classifier, [series[5]])
        assert np.abs(joined.proba[-1] - alone[0]).max() < 1e-6


def test_errors_cross_processes_whole():
    err = pickle.loads(pickle.dumps(ConventionError("bad", path="x.h5", obj="7")))
    assert (err.cause, err.path, err.obj, str(err)) == ("bad", "x.h5", "7", "x.h5: object 7: bad")
