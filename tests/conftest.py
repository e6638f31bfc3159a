"""Shared fixtures: tiny simulated data, and the shared reference data where present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from convention.sim.simulate import SimulationSettings, simulate

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SDSS2_CATALOG = SHARED_DATA / "sdss2-candidates" / "SDSS2_DS17_HEAD.FITS.gz"


def _shared(path: Path) -> Path:
    """A reference-data path; the test is skipped when it is absent, except under CI."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing under CI: {path}")
        pytest.skip(f"reference data not found: {path}")
    return path


@pytest.fixture(scope="session")
def sdss2_catalog() -> Path:
    """The real SDSS-II HEAD catalog."""
    return _shared(SDSS2_CATALOG)


@pytest.fixture(scope="session")
def ztf_alerts() -> Path:
    """The real ZTF alert folder (``valid/`` and ``malformed/``)."""
    return _shared(SHARED_DATA / "ztf-alerts")


@pytest.fixture(scope="session")
def plasticc_train() -> Path:
    """The PLAsTiCC training light curves and metadata folder."""
    return _shared(SHARED_DATA / "plasticc-train")


@pytest.fixture(scope="session")
def tiny_settings() -> SimulationSettings:
    return SimulationSettings(n_objects=8, seed=3, stamp_size=16)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_settings) -> Path:
    """A store of 8 simulated objects with 16x16 stamps."""
    return simulate(tiny_settings, tmp_path_factory.mktemp("data") / "tiny.h5")


@pytest.fixture(scope="session")
def train_store(tmp_path_factory) -> Path:
    """48 simulated objects with 16x16 stamps: enough for every class in every split."""
    settings = SimulationSettings(n_objects=48, seed=5, stamp_size=16)
    return simulate(settings, tmp_path_factory.mktemp("train") / "train.h5", workers=1)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, train_store) -> Path:
    """A 2-fold run of the tiny preset, 2 epochs."""
    from convention.training import TrainSettings, train

    out = tmp_path_factory.mktemp("runs") / "run"
    settings = TrainSettings(
        data=str(train_store),
        out=str(out),
        preset="tiny",
        folds=2,
        epochs=2,
        batch_size=8,
        progress=False,
        overrides={"stamp_size": 16},
    )
    return train(settings)


@pytest.fixture(scope="session")
def ztf_run(tmp_path_factory) -> Path:
    """ConvEntion (tiny preset) trained for one epoch on 48 simulated ZTF alert sequences."""
    from convention.training import TrainSettings, train

    folder = tmp_path_factory.mktemp("ztf")
    data = simulate(SimulationSettings(survey="ztf", n_objects=48, seed=2), folder / "ztf.h5")
    settings = TrainSettings(
        data=str(data),
        out=str(folder / "run"),
        preset="tiny",
        epochs=1,
        batch_size=8,
        progress=False,
        overrides={"stamp_size": 63, "max_frames": 16},
    )
    return train(settings)


@pytest.fixture
def plasticc_files(tmp_path):
    """PLAsTiCC's two training files, under their names, of three objects: an SN Ia at z 0.1
    with a host, an RR Lyrae, a kilonova (excluded)."""
    rng = np.random.default_rng(1)
    rows = []
    for oid, n in ((11, 30), (22, 24), (33, 10)):
        mjd = 60000 + np.sort(rng.uniform(0, 100, n))
        for k, t in enumerate(mjd):
            flux = 500 * np.exp(-(((t - 60040) / 15) ** 2)) if oid != 22 else 100 * np.sin(t)
            rows.append((oid, t, k % 6, flux + rng.normal(0, 20), 20.0, 1))
    lc = Table(
        rows=rows, names=("object_id", "mjd", "passband", "flux", "flux_err", "detected_bool")
    )
    meta = Table(
        {
            "object_id": [11, 22, 33],
            "ra": [1.0, 2.0, 3.0],
            "decl": [-1.0, -2.0, -3.0],
            "target": [90, 92, 64],
            "true_z": [0.1, 0.0, 0.05],
            "hostgal_photoz": [0.12, 0.0, -9.0],
            "hostgal_photoz_err": [0.02, 0.0, 0.1],
            "mwebv": [0.03, 7.0, 0.02],
            **{f"tflux_{b}": [2000.0, 5000.0, 0.0] for b in "ugrizy"},
        }
    )
    lc.write(tmp_path / "plasticc_train_lightcurves.csv")
    meta.write(tmp_path / "plasticc_train_metadata.csv")
    return tmp_path / "plasticc_train_lightcurves.csv", tmp_path / "plasticc_train_metadata.csv"
