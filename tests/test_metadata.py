"""Catalogue metadata: the fields of ZTF's packets and PLAsTiCC's, kept in the store,
simulated for the twins, read by the ``metadata`` input kind, the flagship and boosting."""

from __future__ import annotations

import warnings
from dataclasses import replace

import h5py
import numpy as np
import pytest

from convention.data import Store, write_store
from convention.inputs import InputEncoder, InputSpec
from convention.inputs.metadata import FIELDS as METADATA_KIND_FIELDS
from convention.io import scan
from convention.io.plasticc import plasticc_metadata
from convention.metadata import checked, galactic_latitude
from convention.sim.catalog import FittedDistributions, read_sdss2_catalog
from convention.sim.host_redshift import SPECTROSCOPIC_ERROR, host_redshift_fields
from convention.sim.neighbours import catalogue_fields
from convention.sim.simulate import SimulationSettings, simulate_series
from convention.sim.sources.host import HostGalaxy
from tests.helpers import flagship_reads
from tests.test_references import _edited_alert
from tests.test_series import make_series
from tests.test_simulate import _catalog

GR = ["ztf::g", "ztf::r"]


def test_a_null_or_an_unphysical_value_is_not_measured():
    assert checked("star_score", 0.25) == 0.25
    for value in (-999.0, 1.5, float("inf"), float("nan"), None):
        assert np.isnan(checked("star_score", value))
    assert np.isnan(checked("star_distance", 31.0))
    for name, value in (("host_redshift", -0.1), ("host_redshift", 5.0), ("mw_ebv", 5.5)):
        assert np.isnan(checked(name, value))


def test_plasticc_metadata_masks_what_is_out_of_range():
    """A Galactic object's redshift 0 is PLAsTiCC's statement, kept; an E(B-V) of 7 or a
    negative redshift (PLAsTiCC's -9 for a missing distance modulus) is not measured."""
    assert plasticc_metadata({"hostgal_photoz": 0.0, "hostgal_photoz_err": 0.0, "mwebv": 7}) == {
        "host_redshift": 0.0,
        "host_redshift_error": 0.0,
    }
    assert plasticc_metadata({"hostgal_photoz": -9, "mwebv": "n/a"}) == {}


def test_the_sdss2_twin_gives_hosts_spectroscopic_or_photometric_redshifts():
    rng = np.random.default_rng(0)
    assert host_redshift_fields(0.2, True, True, 0.05, rng) == {
        "host_redshift": 0.2,
        "host_redshift_error": SPECTROSCOPIC_ERROR,
        "mw_ebv": 0.05,
    }
    assert host_redshift_fields(0.0, False, False, 0.05, rng) == {"mw_ebv": 0.05}
    # A star carries the redshift the catalogue gives the source it matched as host.
    assert host_redshift_fields(0.0, False, False, 0.05, rng, (0.21, 0.04)) == {
        "host_redshift": 0.21,
        "host_redshift_error": 0.04,
        "mw_ebv": 0.05,
    }
    # At z 1.5 a catastrophic estimate (0-0.8) lies far outside the scatter of 0.075.
    photometric = [host_redshift_fields(1.5, False, True, 0.05, rng) for _ in range(4000)]
    estimates = np.array([f["host_redshift"] for f in photometric])
    assert np.allclose([f["host_redshift_error"] for f in photometric], 0.075)
    off = np.abs(estimates - 1.5) > 5 * 0.075
    assert 0.04 < off.mean() < 0.06 and estimates[off].max() <= 0.8
    assert np.std(estimates[~off] - 1.5) == pytest.approx(0.075, rel=0.1)
    drawn = list(simulate_series(SimulationSettings(n_objects=16, seed=1, stamp_size=16)))
    for series in drawn:
        assert "mw_ebv" in series.metadata
        assert "host_redshift" in series.metadata or series.label == "Variable"


def test_twin_variables_carry_the_catalogue_redshift_of_their_match(tmp_path):
    """The final redshift where the catalogue has one, else the photometric one; SNANA's
    -9 is none. A drawn Variable has one as often as SDSS-II's do (63%), so the field's
    presence does not give the class away."""
    catalog = _catalog(
        tmp_path,
        SNTYPE=[5, 5, 5],
        REDSHIFT_FINAL=[0.098, -9.0, -9.0],
        REDSHIFT_FINAL_ERR=[0.0001, -9.0, -9.0],
        HOSTGAL_PHOTOZ=[0.2, -9.0, 0.3],
        HOSTGAL_PHOTOZ_ERR=[0.04, -9.0, 0.05],
    )
    specs = read_sdss2_catalog(catalog)
    matched = [(s.matched_redshift, s.matched_redshift_error) for s in specs]
    assert matched[0] == (0.098, 0.0001) and matched[2] == (0.3, 0.05)
    assert np.isnan(matched[1]).all()
    drawn = FittedDistributions.builtin().draw_specs(3000, np.random.default_rng(0))
    variables = np.array([s.matched_redshift for s in drawn if s.label == "Variable"])
    assert np.isfinite(variables).mean() == pytest.approx(0.63, abs=0.03)


def test_ztf_packets_bring_their_catalogue_fields(ztf_alerts, tmp_path):
    source = ztf_alerts / "valid" / "1661382530015060001.avro"
    folder = tmp_path / "in"
    folder.mkdir()
    _edited_alert(source, folder / "a.avro", sgscore1=0.97, distpsnr1=-999.0, distnr=2.0)
    (series,) = scan("alerts", [folder]).items
    # distnr is in pixels (1.01"); ZTF's -999 is a null: not measured.
    assert series.metadata == pytest.approx({"star_score": 0.97, "reference_distance": 2.02})


def test_the_store_keeps_the_fields_and_older_stores_have_none(tmp_path):
    fields = {"star_score": 0.9, "star_distance": 0.2}
    path = write_store(
        tmp_path / "s.h5",
        [make_series(object_id="a", metadata=fields), make_series(object_id="b")],
        survey="sdss2",
        bands=["sdss::g", "sdss::r"],
        class_names=["SNIa"],
        stamp_shape=(8, 8),
        pixel_scale=0.396,
    )
    store = Store(path)
    assert store.get("a").metadata == pytest.approx(fields)
    assert store.get("b").metadata == {}
    assert np.isnan(store.object_table()["reference_distance"]).all()
    store.close()
    with h5py.File(path, "r+") as f:
        del f["object/meta"]
        f.attrs["schema_version"] = 3
    assert Store(path).get("a").metadata == {}
    with pytest.raises(Exception, match=r"metadata fields \['distance'\] are not catalogue"):
        write_store(
            tmp_path / "t.h5",
            [make_series(object_id="a", metadata={"distance": 1.0})],
            survey="sdss2",
            bands=["sdss::g", "sdss::r"],
            class_names=["SNIa"],
            stamp_shape=(8, 8),
            pixel_scale=0.396,
        )


def test_the_twin_sees_stars_as_their_own_point_sources_in_the_disk_and_the_rest_elsewhere():
    series = list(simulate_series(SimulationSettings(survey="ztf", n_objects=60, seed=5)))
    by_class: dict[str, list[dict]] = {}
    for s in series:
        by_class.setdefault(s.label, []).append(s.metadata)
    # A star fainter than Pan-STARRS1's depth (one the twin never detects) has a field
    # source as its nearest.
    stars = by_class["Variable"]
    assert np.mean([m["star_distance"] < 1.0 and m["star_score"] > 0.5 for m in stars]) > 0.9
    supernovae = by_class["SNIa"] + by_class["SNOther"]
    # Never the supernova itself: its host or a field source, most of them galaxies.
    assert np.median([m.get("star_distance", np.inf) for m in supernovae]) > 0.3
    assert np.mean([m.get("star_score", 0.0) < 0.5 for m in supernovae]) > 0.6
    # Stars along the Galactic disk, the rest away from its dust; all in ZTF's sky.
    latitude = {
        label: [galactic_latitude(s.ra, s.dec) for s in series if s.label == label]
        for label in by_class
    }
    extragalactic = latitude["SNIa"] + latitude["SNOther"] + latitude["AGN"]
    assert min(extragalactic) >= 10.0
    assert np.median(latitude["Variable"]) < np.median(extragalactic) - 15
    assert min(s.dec for s in series) >= -30.0
    again = list(simulate_series(SimulationSettings(survey="ztf", n_objects=60, seed=5)))
    assert [(s.metadata, s.ra, s.dec) for s in again] == [(s.metadata, s.ra, s.dec) for s in series]


def test_a_supernovas_host_is_its_nearest_catalogue_source_where_seen():
    host = HostGalaxy(
        mags=(21.0, 19.5, 19.0, 18.8, 18.7),
        half_light_radius=2.0,
        sersic_n=1.0,
        axis_ratio=0.7,
        position_angle=0.3,
        offset=(1.2, -0.9),
    )
    # Before it explodes, the supernova's model gives a flux of ~1e-17 nanomaggies.
    for k in range(20):
        fields = catalogue_fields("SNIa", 1e-17, host, np.random.default_rng(k))
        assert fields["star_distance"] == pytest.approx(1.5, abs=0.6)
        assert fields["reference_distance"] == pytest.approx(1.5, abs=0.6)
        assert fields["star_score"] < 0.5


def test_the_metadata_kind_masks_what_was_not_measured_and_the_flagship_reads_it():
    measured = make_series(m=4, survey="ztf", band=np.array(GR * 2), metadata={"star_score": 0.9})
    spec = InputSpec(("metadata",), 8)
    encoder = InputEncoder(spec, GR)
    encoder.fit([measured, make_series(m=4, survey="ztf", band=np.array(GR * 2))])
    values = encoder.encode(measured).inputs["metadata"]
    # star_score measured; no other field, nor the latitude (no position).
    n = len(METADATA_KIND_FIELDS)
    assert values[n:].tolist() == [0.0] + [1.0] * (n - 1)
    placed = replace(measured, ra=266.4, dec=-28.9)  # near the Galactic centre
    assert encoder.kinds[0].raw(placed)[-1] == pytest.approx(0.0226, abs=1e-3)
    bare = make_series(m=4, survey="ztf", band=np.array(GR * 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InputEncoder(spec, GR).fit([bare])
    assert any("no training object has catalogue metadata" in str(w.message) for w in caught)
    assert flagship_reads("metadata", GR, 8, [measured])


def test_boosting_reads_the_metadata_beside_the_light_curve(tiny_store):
    """The boosting rows' metadata columns are the metadata kind's values, last; the SDSS-II
    twin's objects carry their host redshift and dust."""
    from convention.baselines.gbm import feature_matrix, fit_feature_gbm
    from convention.inputs.metadata import Metadata

    store = Store(tiny_store)
    rows = list(range(len(store)))
    plain, with_metadata = (feature_matrix(store, rows, metadata=m) for m in (False, True))
    n = len(METADATA_KIND_FIELDS)
    assert np.array_equal(with_metadata[:, :-n], plain, equal_nan=True)
    for row in rows:
        series = store[row]
        expected = Metadata.values(series.metadata, series.ra, series.dec)
        assert np.array_equal(with_metadata[row, -n:], expected, equal_nan=True)
    assert any(np.isfinite(store[r].metadata.get("host_redshift", np.nan)) for r in rows)
    # The SDSS-II twin has no star/galaxy score: a column no object has still fits.
    assert np.isnan(with_metadata[:, -n]).all()
    labels = np.arange(len(rows)) % 2
    model = fit_feature_gbm(with_metadata, labels, with_metadata, labels, 0)
    assert model.predict_proba(with_metadata).shape == (len(rows), 2)
