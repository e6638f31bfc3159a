"""Shared fixtures: tiny simulated data, and the shared reference data where present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
