"""Prediction tables in CSV and Parquet."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
from astropy.table import Table

from convention.io.predictions import write_predictions


def test_csv_and_parquet_hold_the_same_rows(tmp_path):
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    classes = ["AGN", "SNIa", "Variable"]
    write_predictions(tmp_path / "p.csv", ["x", "y"], proba, classes, true=np.array([0, 1]))
    write_predictions(tmp_path / "p.parquet", ["x", "y"], proba, classes, true=np.array([0, 1]))
    csv = Table.read(tmp_path / "p.csv", format="ascii.csv")
    parquet = pq.read_table(tmp_path / "p.parquet").to_pydict()
    assert list(csv["predicted"]) == parquet["predicted"] == ["AGN", "Variable"]
    assert parquet["true"] == ["AGN", "SNIa"]
    assert np.allclose(csv["p_SNIa"], parquet["p_SNIa"])
    assert parquet["object_id"] == ["x", "y"]
    assert list(tmp_path.glob(".*")) == []


def test_empty_prediction_table(tmp_path):
    write_predictions(tmp_path / "p.parquet", [], np.zeros((0, 2)), ["a", "b"])
    assert pq.read_table(tmp_path / "p.parquet").num_rows == 0
