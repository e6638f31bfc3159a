"""References as the surveys make them: templates in the data model, the store, the
simulator, the alert reader and forced photometry."""

from __future__ import annotations

import gzip
import io
import re

import fastavro
import h5py
import numpy as np
import pytest
from astropy.io import fits

from convention.data import MemoryCollection, Store, write_store
from convention.data.collection import median_reference_objects
from convention.data.reference import MEDIAN_OF_FRAMES, TEMPLATE, Reference
from convention.data.series import median_reference
from convention.errors import ConventionError
from convention.features import SCENE_KINDS, scene_features
from convention.inputs.base import get_input_kind
from convention.io import scan
from convention.io.formats.alerts import read_alert_bytes
from convention.lightcurves import lightcurve_of
from convention.photometry import forced_photometry
from convention.sim.references import resampled_noise
from convention.sim.render import FrameConditions, render_frames
from convention.sim.simulate import SimulationSettings, plan_objects, simulate_series
from convention.sim.survey import ZTF
from tests.helpers import run
from tests.test_series import make_series


def test_pre_explosion_difference_flux_is_zero_against_the_template():
    """Over 50 simulated supernovae, the mean difference flux of the frames before each
    explodes is within one standard error of zero against the survey's template; against
    the median of the object's own frames it is far below (its light in the median)."""
    settings = SimulationSettings(n_objects=160, seed=11, stamp_size=16)
    specs = [s for s in plan_objects(settings) if s.label in ("SNIa", "SNOther")][:50]
    assert len(specs) == 50
    template, median = [], []
    for series in simulate_series(settings, workers=2, specs=specs):
        before = series.true_flux == 0
        fallback = {int(b): median_reference(series, int(b)) for b in np.unique(series.band)}
        for out, references in ((template, None), (median, fallback)):
            lc = lightcurve_of(series, references=references)
            out.append(np.stack([lc["flux"], lc["flux_err"]])[:, before])

    def weighted_mean(parts: list[np.ndarray]) -> tuple[float, float]:
        flux, err = np.concatenate(parts, axis=1)
        weight = 1 / err**2
        return float((weight * flux).sum() / weight.sum()), float(weight.sum() ** -0.5)

    mean, error = weighted_mean(template)
    assert sum(p.shape[1] for p in template) > 200
    assert abs(mean) < error
    mean, error = weighted_mean(median)
    assert mean < -5 * error


def _host_and_point_source(seed: int, fwhm: np.ndarray, reference_fwhm: float):
    """Frames of a bright static galaxy with a point source of known flux on it, and a
    deep reference of the galaxy alone in another seeing, both rendered by the
    simulator."""
    import galsim

    rng = np.random.default_rng(seed)
    n = len(fwhm)
    flux = rng.uniform(0, 20, n)
    host = galsim.Exponential(half_light_radius=1.2).shift(0.5, -0.3)

    def draw(fwhms, gain, point, noise_seed):
        conditions = FrameConditions(
            fwhms,
            np.full(len(fwhms), gain),
            np.full(len(fwhms), 400.0 * gain / 200),
            5.0,
            np.zeros((len(fwhms), 2)),
        )
        frames = render_frames(
            host, np.full(len(fwhms), 60.0), point, conditions, 32, 0.396, 3.5, noise_seed
        )
        return frames, conditions

    frames, conditions = draw(fwhm, 200.0, flux, seed)
    stamp, deep = draw(np.array([reference_fwhm]), 200.0 * 20, np.zeros(1), seed + 1)
    series = make_series(
        m=n,
        size=32,
        band=np.full(n, "sdss::r"),
        object_id="host",
        frames=frames,
        psf_fwhm=fwhm,
        sky_sigma=conditions.sky_sigma,
        zeropoint=conditions.zeropoint,
    )
    reference = Reference(
        stamp[0], TEMPLATE, n_frames=20, psf_fwhm=reference_fwhm, sky_sigma=deep.sky_sigma[0]
    )
    return series, flux, reference


@pytest.mark.parametrize("reference_fwhm", [1.1, 2.2])
def test_a_template_in_other_seeing_is_psf_matched_before_it_is_subtracted(reference_fwhm):
    # Frames both sharper and broader than the template: each side gets the kernel.
    fwhm = np.random.default_rng(3).uniform(1.0, 2.4, 120)
    series, flux, reference = _host_and_point_source(4, fwhm, reference_fwhm)
    band = int(series.band[0])
    lc = forced_photometry(series, "psf", {band: reference})
    pull = (np.asarray(lc["flux"]) - flux) / np.asarray(lc["flux_err"])
    assert abs(pull.mean()) < 3 / np.sqrt(len(pull)) + 0.05
    assert np.std(pull) == pytest.approx(1.0, abs=0.15)
    # Unmatched, the galaxy's core is left in every difference.
    plain = Reference(reference.stamp, TEMPLATE, sky_sigma=reference.sky_sigma)
    unmatched = forced_photometry(series, "psf", {band: plain})
    off = (np.asarray(unmatched["flux"]) - flux) / np.asarray(unmatched["flux_err"])
    assert np.std(off) > 2


def test_the_store_keeps_references_and_an_older_store_falls_back(tmp_path):
    stamp = np.arange(64, dtype=np.float32).reshape(8, 8)
    template = Reference(stamp, TEMPLATE, 15, 58100.0, 58130.5, 1.7, 0.2)
    series = make_series(m=6, size=8, object_id="a", references={2: template, 3: template})
    bare = make_series(m=4, size=8, object_id="b")
    path = write_store(
        tmp_path / "s.h5",
        [series, bare],
        survey="sdss2",
        bands=["sdss::u", "sdss::g", "sdss::r", "sdss::i", "sdss::z"],
        class_names=["SNIa", "SNOther", "AGN", "Variable"],
        stamp_shape=(8, 8),
        pixel_scale=0.396,
    )
    store = Store(path)
    back = store.get("a").references[3]
    assert np.array_equal(back.stamp, stamp)
    assert (back.kind, back.n_frames, back.mjd_start, back.mjd_end) == (
        TEMPLATE,
        15,
        58100,
        58130.5,
    )
    assert back.psf_fwhm == pytest.approx(1.7) and store.get("b").references == {}
    assert median_reference_objects(store).tolist() == [False, True]
    store.close()
    # A store of schema 2: no references, every band falls back to the median.
    with h5py.File(path, "r+") as f:
        del f["reference"], f["object/ref_start"], f["object/ref_count"]
        f.attrs["schema_version"] = 2
    older = Store(path)
    assert older.get("a").references == {}
    assert median_reference_objects(older).tolist() == [True, True]
    result = run("describe", str(path))
    assert result.exit_code == 0, result.output
    assert re.search(r"sdss::g\s*│\s*0\s*│\s*2\s*│", result.output), result.output


def test_a_reference_of_another_shape_is_refused_naming_the_object():
    with pytest.raises(ConventionError, match=r"object odd: the sdss::g reference has shape"):
        make_series(m=4, size=8, object_id="odd", references={2: Reference(np.zeros((9, 8)))})


def _edited_alert(source, out, **changes):
    """A copy of a real ZTF alert with some of its fields changed."""
    with open(source, "rb") as f:
        reader = fastavro.reader(f)
        schema, (record,) = reader.writer_schema, list(reader)
    for key, value in changes.items():
        if key == "template":
            buffer = io.BytesIO()
            fits.PrimaryHDU(value.astype(np.float32)).writeto(buffer)
            record["cutoutTemplate"]["stampData"] = gzip.compress(buffer.getvalue())
        else:
            record["candidate"][key] = value
    with open(out, "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(schema), [record])
    return record


def test_alerts_bring_their_templates_with_provenance_and_flag_a_late_one(ztf_alerts, tmp_path):
    source = ztf_alerts / "valid" / "1661382530015060001.avro"
    folder = tmp_path / "in"
    folder.mkdir()
    record = _edited_alert(source, folder / "a.avro")
    (series,) = [s for s in scan("alerts", [folder]).items]
    (reference,) = series.references.values()
    candidate = record["candidate"]
    assert reference.kind == TEMPLATE and reference.n_frames == candidate["nframesref"]
    assert reference.mjd_end == pytest.approx(candidate["jdendref"] - 2400000.5)
    # No template seeing in the packet: the ZTF twin's, so photometry PSF-matches as trained.
    band = series.band_names[0]
    assert reference.psf_fwhm == pytest.approx(
        ZTF.seeing_fwhm_median(band) * ZTF.reference_seeing_ratio
    )
    assert series.late_references() == []
    _edited_alert(source, folder / "a.avro", jdendref=candidate["jd"] + 1.0)
    (series,) = [s for s in scan("alerts", [folder]).items]
    assert series.late_references() == list(series.references)


@pytest.mark.parametrize(
    ("template", "cause"),
    [
        (np.ones((63, 60)), "pixel grid"),
        # As the real ZTF17aacymkh_2475433850015015000.avro: zeros and a 1e37 fill (on
        # the 41x63 grid of this clipped science cutout).
        (np.where(np.arange(41 * 63).reshape(41, 63) % 5 < 2, 1e37, 0.0), "no sky noise"),
    ],
)
def test_a_template_that_cannot_serve_falls_back_with_one_line(
    ztf_alerts, tmp_path, template, cause
):
    folder = tmp_path / "in"
    folder.mkdir()
    source = ztf_alerts / "valid" / "396522680015040001.avro"
    _edited_alert(source, folder / "a.avro", template=template)
    collection = scan("alerts", [folder])
    (series,) = list(collection.items)
    assert series.references == {}
    (note,) = [n for n in collection.notes if cause in n]
    assert "a.avro" in note and series.object_id in note
    assert "\n" not in note
    lc = lightcurve_of(series)
    assert np.isfinite(lc["flux"]).all()


@pytest.mark.parametrize(
    ("kinds", "reads"),
    [(("stamps",), False), (("stamps", "scene"), True), (("lightcurve",), True)],
)
def test_an_alert_template_is_read_only_for_models_that_use_references(ztf_alerts, kinds, reads):
    needs = get_input_kind(kinds[0]).needs
    for kind in kinds[1:]:
        needs = needs | get_input_kind(kind).needs
    assert needs.reads_references is reads
    data = (ztf_alerts / "valid" / "1661382530015060001.avro").read_bytes()
    (alert,) = read_alert_bytes(data, "a.avro", ("science",), needs.reads_references).alerts
    assert (alert.reference is not None) is reads


def test_simulated_references_are_deep_sharp_templates_made_before_the_frames():
    settings = SimulationSettings(n_objects=6, seed=2, stamp_size=16)
    for series in simulate_series(settings):
        assert sorted(series.references) == sorted(np.unique(series.band).tolist())
        for band, reference in series.references.items():
            frames = series.band == band
            assert reference.kind == TEMPLATE and reference.n_frames == 20
            assert reference.mjd_end < series.mjd[0]
            assert reference.psf_fwhm < np.median(series.psf_fwhm[frames])
            assert reference.sky_sigma < 0.3 * np.median(series.sky_sigma[frames])


def test_a_resampled_template_has_less_noise_per_pixel_and_the_same_over_many():
    """ZTF's templates are resampled coadds: their pixels' noise is lower and correlated
    between neighbours, while a sum over many pixels (what photometry sees) keeps the
    coadd's depth."""
    rng = np.random.default_rng(3)
    fields = np.array([resampled_noise(15, 63, rng) for _ in range(40)])
    per_pixel = fields.std()
    assert 0.78 < per_pixel < 0.88
    neighbours = np.mean(fields[:, :, :-1] * fields[:, :, 1:]) / per_pixel**2
    assert 0.15 < neighbours < 0.25
    blocks = fields[:, :60, :60].reshape(40, 6, 10, 6, 10).sum(axis=(2, 4))
    assert blocks.std() / 10 == pytest.approx(1.0, abs=0.06)


def test_a_collection_counts_objects_whose_bands_fall_back():
    template = Reference(np.zeros((8, 8)), TEMPLATE)
    full = make_series(m=4, size=8, object_id="full", references={2: template, 3: template})
    partial = make_series(m=4, size=8, object_id="partial", references={2: template})
    collection = MemoryCollection(
        [full, partial],
        path="mem",
        survey="sdss2",
        bands=["sdss::r"],
        class_names=[],
        pixel_scale=0.4,
    )
    assert median_reference_objects(collection).tolist() == [False, True]
    assert median_reference(partial, 3).kind == MEDIAN_OF_FRAMES


@pytest.mark.parametrize("method", ["psf", "aperture"])
def test_photometry_through_weights_measures_the_matched_difference_stamps(method):
    """Forced photometry moves the PSF matching onto its weights; it must measure what the
    plots show: the PSF-matched difference stamps, missing pixels included."""
    from convention.photometry import aperture_flux, difference_stamps, psf_flux
    from convention.psf import moffat_enclosed

    series = next(iter(simulate_series(SimulationSettings(n_objects=1, seed=1, stamp_size=24))))
    series.frames[3, :6] = np.nan  # a frame clipped at a CCD edge
    references = {b: r for b, r in series.references.items()}
    lc = forced_photometry(series, method, references)
    differences = difference_stamps(series, references)
    scale = series.pixel_scale
    reference_fwhm = np.array([references[int(b)].psf_fwhm for b in series.band])
    # The PSF of a difference is the broader one; FWHMs are taken to 0.01 pixel.
    broad = np.maximum(np.round(series.psf_fwhm / scale, 2), np.round(reference_fwhm / scale, 2))
    if method == "psf":
        expected, _ = psf_flux(differences, broad, series.sky_sigma)
    else:
        expected, _ = aperture_flux(differences, 3.0 / scale)
        expected = expected / moffat_enclosed(3.0 / scale, broad)
    assert np.isfinite(lc["flux"][3])
    assert np.allclose(lc["flux"], expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_a_weight_bank_that_fills_empties_and_measures_the_same(monkeypatch):
    """Frames' weights come from a bank bounded in bytes: one too small empties when a
    series brings new pairs of FWHMs, holds what one series needs, and measures every
    series as a bank that never fills does."""
    import convention.photometry as photometry

    objects = list(simulate_series(SimulationSettings(n_objects=2, seed=3, stamp_size=24)))
    objects[0].frames[2, :5] = np.nan  # a frame of its own weights
    for series in objects:
        series.references[min(series.references)].stamp[0, 0] = np.nan  # a band's too

    def measured() -> list[np.ndarray]:
        return [
            np.stack([lc["flux"], lc["flux_err"]])
            for series in [*objects, objects[0]]
            for lc in [forced_photometry(series, "psf", dict(series.references))]
        ]

    photometry._weight_bank.cache_clear()
    expected = measured()
    monkeypatch.setattr(photometry, "WEIGHT_BANK_BYTES", 3 * 2 * 8 * 24 * 24)  # 3 pairs
    photometry._weight_bank.cache_clear()
    try:
        got = measured()
        bank = photometry._weight_bank((24, 24), None)
        last = objects[0]
        pairs = {
            round(float(fwhm) / last.pixel_scale, 2) for fwhm in last.psf_fwhm
        }  # at least as many frame FWHMs as pairs: more than the bank's 3
        assert bank.capacity == 3 and len(bank.row_of) >= len(pairs) > 3
    finally:
        photometry._weight_bank.cache_clear()
    for a, b in zip(got, expected, strict=True):
        assert np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True)
        assert np.isfinite(a[:, 2]).all()


def test_scene_features_measure_the_host_in_each_band_reference():
    """The hybrid's host features read each band's reference: a Gaussian host of sigma
    1.5 pixels, 2 pixels down and 1 across, has that centroid offset and an RMS size of
    sigma * sqrt(2); a reference with no positive light has neither, and a band without
    frames has no feature."""
    y, x = np.mgrid[:32, :32]
    host = 10 * np.exp(-((y - 17.5) ** 2 + (x - 16.5) ** 2) / (2 * 1.5**2))
    series = make_series(m=4, size=32, psf_fwhm=np.array([1.0, 1.2, 1.4, 1.8]))
    g, r, i = 2, 3, 4
    references = {g: Reference(host), r: Reference(-host)}
    features = scene_features(series, [g, r, i], references).reshape(3, len(SCENE_KINDS))
    measured = dict(zip(SCENE_KINDS, features[0], strict=True))
    assert measured["offset"] == pytest.approx(np.hypot(2, 1), abs=0.01)
    assert measured["size"] == pytest.approx(1.5 * np.sqrt(2), rel=0.02)
    assert measured["light r<6"] == pytest.approx(host[np.hypot(y - 15.5, x - 15.5) <= 6].sum())
    assert measured["seeing"] == pytest.approx(1.2)  # the median of g's frames (1.0, 1.4)
    negative = dict(zip(SCENE_KINDS, features[1], strict=True))
    assert np.isnan([negative["offset"], negative["size"], negative["concentration"]]).all()
    assert negative["light r<3"] < 0 and negative["seeing"] == pytest.approx(1.5)
    assert np.isnan(features[2]).all()


def test_a_band_seeing_is_the_median_of_its_frames_and_unknown_with_one_unknown():
    """The scene features' seeing of each band is its frames' median FWHM (arcsec): the
    middle one of an odd count, the mean of the two middle ones of an even count, and
    missing where one of the band's frames has no FWHM, as np.median gives it."""
    fwhm = np.array([1.6, 1.0, 1.2, 1.4, 1.1, np.nan, 1.3, 1.8], dtype=np.float32)
    names = ["sdss::g", "sdss::r", "sdss::g", "sdss::r", "sdss::g"] + ["sdss::z"] * 3
    series = make_series(m=8, size=16, psf_fwhm=fwhm, band=np.array(names))
    u, g, r, i, z = 1, 2, 3, 4, 5
    references = {b: Reference(np.ones((16, 16))) for b in (g, r, i, z)}
    features = scene_features(series, [u, g, r, i, z], references).reshape(5, len(SCENE_KINDS))
    seeing = features[:, SCENE_KINDS.index("seeing")]
    assert seeing[1] == np.float32(1.2) and seeing[2] == np.float32(1.2)
    assert np.isnan(seeing[[0, 3]]).all()  # u and i: no frames
    assert np.isnan(seeing[4])  # z: one frame without a FWHM (not 1.55, theirs without it)
