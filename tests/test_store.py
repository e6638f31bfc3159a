import multiprocessing as mp

import h5py
import numpy as np
import pytest

import convention
from convention.data.lightcurve import make_lightcurve
from convention.data.store import Store, StoreWriter, write_store
from convention.errors import ConventionError
from tests.test_series import make_series


def writer_args(**kw):
    args = dict(
        survey="sdss2",
        bands=["sdss::g", "sdss::r"],
        class_names=["AGN", "SNIa"],
        stamp_shape=(8, 8),
        pixel_scale=0.396,
        provenance={"seed": 1},
    )
    args.update(kw)
    return args


def test_round_trip_in_batches(tmp_path):
    objects = [make_series(m=2 + 2 * k, object_id=f"o{k}") for k in range(5)]
    objects[2].label = None
    path = write_store(tmp_path / "s.h5", objects, batch_size=2, **writer_args())
    store = convention.read(path)
    assert isinstance(store, Store) and len(store) == 5
    assert store.bands == ["sdss::g", "sdss::r"] and store.provenance == {"seed": 1}
    for original, read_back in zip(objects, store, strict=True):
        assert read_back.object_id == original.object_id
        assert np.array_equal(read_back.frames, original.frames)
        assert np.array_equal(read_back.mjd, original.mjd)
        assert np.array_equal(read_back.band, original.band)
        assert read_back.label == original.label
    assert store.get("o3").object_id == "o3"
    assert store[-1].object_id == "o4"
    assert store.lengths.tolist() == [2, 4, 6, 8, 10]
    assert len(store.frame_table()) == 30
    with pytest.raises(IndexError):
        store[5]
    with pytest.raises(ConventionError, match="no such object"):
        store.get("nope")


def test_read_range_is_indexing_one_by_one(tmp_path):
    objects = [make_series(m=2 + 2 * k, object_id=f"o{k}") for k in range(6)]
    for k in (1, 2, 4):  # light curves on some objects only
        objects[k].lightcurve = make_lightcurve(
            mjd=[53600.0 + k, 53601.0],
            band=["sdss::g", "sdss::r"],
            flux=[1.0, k],
            flux_err=[0.1, 0.2],
        )
    store = convention.read(write_store(tmp_path / "s.h5", objects, batch_size=4, **writer_args()))
    for first, stop in ((0, 6), (1, 5), (3, 4), (5, 6)):
        together = store.read_range(first, stop)
        assert [s.object_id for s in together] == [f"o{k}" for k in range(first, stop)]
        for a, b in zip(together, (store[k] for k in range(first, stop)), strict=True):
            for name in (
                "frames",
                "mjd",
                "band",
                "psf_fwhm",
                "sky_sigma",
                "zeropoint",
                "true_flux",
            ):
                assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)
            assert (a.label, a.subtype, a.survey) == (b.label, b.subtype, b.survey)
            assert (a.lightcurve is None) == (b.lightcurve is None)
            if a.lightcurve is not None:
                assert np.array_equal(a.lightcurve["flux"], b.lightcurve["flux"])
    assert store.read_range(2, 2) == []
    with pytest.raises(IndexError):
        store.read_range(4, 7)


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "s.h5"
    with pytest.raises(ConventionError, match="duplicate object_id"):
        with StoreWriter(target, **writer_args()) as writer:
            writer.append([make_series(object_id="a")])
            writer.append([make_series(object_id="a")])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "series, message",
    [
        (make_series(size=16), "stamps are"),
        (make_series(band=np.array(["sdss::u"] * 6)), "not among the store's bands"),
        (make_series(label="Nova"), "is not one of the store's classes"),
    ],
)
def test_append_checks(tmp_path, series, message):
    with pytest.raises(ConventionError, match=message):
        write_store(tmp_path / "s.h5", [series], **writer_args())
    assert not (tmp_path / "s.h5").exists()


def test_output_path_checks(tmp_path):
    with pytest.raises(ConventionError, match="does not exist"):
        StoreWriter(tmp_path / "missing" / "s.h5", **writer_args())
    with pytest.raises(ConventionError, match="is a directory"):
        StoreWriter(tmp_path, **writer_args())


def test_bad_files(tmp_path):
    not_h5 = tmp_path / "x.h5"
    not_h5.write_text("hello")
    with pytest.raises(ConventionError, match="unrecognised format"):
        convention.read(not_h5)
    with pytest.raises(ConventionError, match="not an HDF5 store"):
        Store(not_h5)
    with pytest.raises(ConventionError, match="no such file"):
        convention.read(tmp_path / "absent.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(ConventionError, match="not a convention store"):
        convention.read(other)


def _first_frame_sum(args):
    store, index = args
    return float(np.nansum(store[index].frames))


def test_store_is_safe_in_worker_processes(tiny_store):
    store = convention.read(tiny_store)
    expected = [float(np.nansum(s.frames)) for s in store]  # opens the file in this process
    context = mp.get_context("spawn")
    with context.Pool(2) as pool:
        got = pool.map(_first_frame_sum, [(store, i) for i in range(len(store))])
    assert got == expected
