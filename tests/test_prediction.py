"""The prediction stream: the same probabilities with any number of worker processes, and
an object the model cannot read named with its file, from a worker too."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import convention
from convention.data.collection import MemoryCollection
from convention.errors import ConventionError
from convention.training import Classifier
from convention.training.prediction import consecutive_runs


def test_consecutive_runs():
    assert consecutive_runs([0, 1, 2, 5, 6, 9]) == [(0, 3), (5, 7), (9, 10)]
    assert consecutive_runs([]) == []


def test_workers_and_batch_sizes_give_the_same_probabilities(trained_run, train_store):
    data = convention.read(train_store)
    classifier = Classifier.load(trained_run)
    rows = [0, 1, 2, 7, 8, 20, 33, 47]
    reference = np.concatenate([p for _, p in classifier.predict_proba(data[r] for r in rows)])
    for workers, batch_size in ((0, 3), (2, 2), (1, 64)):
        ids, probas = [], []
        for batch_ids, proba in classifier.predict_collection(data, rows, batch_size, workers):
            ids += batch_ids
            probas.append(proba)
        assert ids == [data.object_ids[r] for r in rows]
        # Other batch compositions pad differently: float32 rounding only.
        assert np.abs(np.concatenate(probas) - reference).max() < 1e-6


def test_a_bad_object_is_named_from_a_worker(trained_run, train_store):
    data = convention.read(train_store)
    series = [data[i] for i in range(6)]
    series[4].frames[:] = np.nan  # no valid pixel in any frame
    bad = MemoryCollection(
        series,
        path="bad.h5",
        survey=data.survey,
        bands=data.bands,
        class_names=data.class_names,
        pixel_scale=data.pixel_scale,
    )
    classifier = Classifier.load(trained_run)
    for workers in (0, 1):
        with pytest.raises(ConventionError) as err:
            list(classifier.predict_collection(bad, batch_size=2, workers=workers))
        assert str(err.value) == f"bad.h5: object {series[4].object_id}: no frame with valid pixels"
    with pytest.raises(ConventionError, match="--workers"):
        next(classifier.predict_collection(bad, workers=-1))


def test_errors_cross_processes_whole():
    err = pickle.loads(pickle.dumps(ConventionError("bad", path="x.h5", obj="7")))
    assert (err.cause, err.path, err.obj, str(err)) == ("bad", "x.h5", "7", "x.h5: object 7: bad")
