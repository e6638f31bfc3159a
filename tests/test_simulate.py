import warnings

import numpy as np
import pytest
from astropy.table import Table

import convention
from convention.errors import ConventionError
from convention.sim.catalog import (
    PAPER_CLASS_COUNTS,
    REQUIRED_COLUMNS,
    FittedDistributions,
    read_sdss2_catalog,
)
from convention.sim.simulate import SimulationSettings, simulate, simulate_series


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    settings = SimulationSettings(n_objects=6, seed=11, stamp_size=16)
    one = simulate(settings, tmp_path / "one.h5", workers=1)
    two = simulate(settings, tmp_path / "two.h5", workers=2)
    assert one.read_bytes() == two.read_bytes()
    other = simulate(SimulationSettings(n_objects=6, seed=12, stamp_size=16), tmp_path / "o.h5")
    assert other.read_bytes() != one.read_bytes()


def test_tiny_store_contents(tiny_store, tiny_settings):
    store = convention.read(tiny_store)
    assert len(store) == 8
    assert store.class_names == ["AGN", "SNIa", "Variable", "SNOther"]
    assert store.provenance["command"] == tiny_settings.command()
    assert store.provenance["settings"]["seed"] == 3
    for series in store:
        assert series.frames.shape[1:] == (16, 16)
        assert np.all(np.diff(series.mjd) >= 0)
        assert set(series.band_names) <= set(store.bands)
        assert np.all(series.psf_fwhm > 0.5) and np.all(series.sky_sigma > 0)
        assert np.isfinite(series.true_flux).all()
        # bands interleave: a visit holds several bands within minutes
        assert len(set(series.band.tolist())) == 5


def test_builtin_distributions_give_paper_fractions():
    rng = np.random.default_rng(0)
    specs = FittedDistributions.builtin().draw_specs(sum(PAPER_CLASS_COUNTS.values()), rng)
    labels, counts = np.unique([s.label for s in specs], return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist(), strict=True)) == PAPER_CLASS_COUNTS
    assert 60 < np.median([s.n_obs for s in specs]) < 140


def test_catalog_twin(sdss2_catalog):
    specs = read_sdss2_catalog(sdss2_catalog)
    labels, counts = np.unique([s.label for s in specs], return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist(), strict=True)) == PAPER_CLASS_COUNTS
    settings = SimulationSettings(catalog=str(sdss2_catalog), seed=0, stamp_size=16)
    # one season holds ~27 visits of a strip: take objects observed within one season
    chosen = [
        next(s for s in specs if s.label == c and np.isfinite(s.redshift) and s.n_obs < 110)
        for c in ("SNIa", "AGN", "SNOther")
    ]
    for spec, series in zip(chosen, simulate_series(settings, specs=chosen), strict=True):
        assert series.object_id == spec.object_id and series.label == spec.label
        assert series.redshift == pytest.approx(spec.redshift, rel=1e-6)
        assert abs(np.median(series.mjd) - spec.peak_mjd) < 60
        assert abs(len(series) - spec.n_obs) < 0.1 * spec.n_obs + 5


def _catalog(tmp_path, **columns):
    table = Table({c: [1.0, 2.0, 3.0] for c in REQUIRED_COLUMNS})
    table["SNTYPE"] = [120, 999, 0]
    table["NOBS"] = [100, 100, 100]
    for name, values in columns.items():
        table[name] = values
    path = tmp_path / "head.fits"
    table.write(path)
    return path


def test_unknown_sntype_is_skipped_with_a_count(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        specs = read_sdss2_catalog(_catalog(tmp_path))
    assert [s.label for s in specs] == ["SNIa"]
    assert any("skipped 1 objects with SNTYPE codes of no class" in str(w.message) for w in caught)


def test_bad_catalogs(tmp_path):
    path = _catalog(tmp_path)
    table = Table.read(path)
    table.remove_columns(["MWEBV", "PEAKMJD"])
    table.write(tmp_path / "lacking.fits")
    with pytest.raises(ConventionError, match="lacks columns PEAKMJD, MWEBV"):
        read_sdss2_catalog(tmp_path / "lacking.fits")
    (tmp_path / "garbage.fits").write_bytes(b"\x00not a fits file")
    with pytest.raises(ConventionError, match=r"garbage\.fits: cannot read catalog"):
        read_sdss2_catalog(tmp_path / "garbage.fits")
    with pytest.raises(ConventionError, match="catalog not found"):
        read_sdss2_catalog(tmp_path / "absent.fits")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_objects": 0}, "must be positive"),
        ({"n_objects": -3}, "must be positive"),
        ({"survey": "hsc"}, "unknown survey"),
        ({"n_objects": 5, "catalog": "x.fits"}, "not both"),
        ({"stamp_size": 4}, "stamp size"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ConventionError, match=message):
        SimulationSettings(**kwargs)
