"""The ``fits`` stamp-folder reader and writer: layout, sizes, bands, labels, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from typer.testing import CliRunner

from convention.cli import app
from convention.data.store import Store
from convention.errors import ConventionError
from convention.io import read, scan
from convention.io.formats.fits import write_stamp_folder
from convention.io.ingest import DroppedFrame, Rejected, ingest
from convention.io.stamps import read_fits_image

runner = CliRunner()


def _stamp(path: Path, value: float, shape=(16, 16)) -> None:
    image = np.full(shape, value, dtype=np.float32)
    image[shape[0] // 2, shape[1] // 2] += 10
    fits.PrimaryHDU(image).writeto(path)


@pytest.fixture
def folder(tmp_path) -> Path:
    """Two objects, rows out of order, band spellings mixed, one stamp of another size."""
    root = tmp_path / "stamps"
    (root / "img").mkdir(parents=True)
    rows = [
        ("b", 53700.2, "sdss::r", "img/b2.fits"),
        ("a", 53701.0, "SDSSG", "img/a2.fits"),
        ("a", 53700.0, "g", "img/a1.fits"),
        ("b", 53700.1, "sdss-i", "img/b1.fits"),
        ("a", 53700.0, "r", "img/a3.fits"),
    ]
    for k, (_, _, _, name) in enumerate(rows):
        _stamp(root / name, float(k), shape=(20, 12) if name == "img/a2.fits" else (16, 16))
    Table(rows=rows, names=("object_id", "mjd", "band", "file")).write(root / "epochs.csv")
    Table(
        {
            "object_id": ["a", "b"],
            "label": ["SN Ia", "agn"],
            "ra": [1.0, 2.0],
            "redshift": [0.1, 0.2],
        }
    ).write(root / "objects.csv")
    return root


def _items(folder: Path, **options) -> list:
    return list(scan("fits", [folder], survey="sdss2", **options).items)


def test_reads_sorted_series_with_labels(folder):
    a, b = _items(folder)
    assert a.object_id == "a" and a.label == "SNIa" and b.label == "AGN"
    assert list(a.mjd) == [53700.0, 53700.0, 53701.0]
    assert a.band_names == ["sdss::g", "sdss::r", "sdss::g"]
    assert a.ra == 1.0 and a.redshift == pytest.approx(0.1)
    # the 20x12 stamp is centre-cropped in height and NaN-padded in width
    assert a.frames.shape == (3, 16, 16)  # the common size of its frames
    assert np.isnan(a.frames[2]).all(axis=0).sum() == 4


def test_ingest_fits_to_requested_size(folder, tmp_path):
    out = tmp_path / "out.h5"
    result = runner.invoke(
        app,
        [
            "ingest",
            "fits",
            str(folder),
            "--out",
            str(out),
            "--reader-option",
            "survey=sdss2",
            "--stamp-size",
            "16",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ingested 2 objects (5 frames) from 5 files; rejected 0" in result.output
    store = Store(out)
    assert store.stamp_shape == (16, 16)
    assert "centre-cropped or NaN-padded to 16x16" in store.provenance["stamp_fit"]
    series = store.get("a")
    assert series.frames[2, 8, 8] == pytest.approx(11.0)


def test_unknown_band_names_the_row(folder):
    epochs = Table.read(folder / "epochs.csv")
    epochs["band"][3] = "sdss::q"
    epochs.write(folder / "epochs.csv", overwrite=True)
    with pytest.raises(ConventionError, match=r"epochs.csv: row 4 \(object b\): unknown band"):
        _items(folder)


def test_unknown_label_skips_or_keeps(folder):
    Table({"object_id": ["a", "b"], "label": ["Ia", "quasar-ish"]}).write(
        folder / "objects.csv", overwrite=True
    )
    a, b = _items(folder)
    assert a.label == "SNIa"
    assert isinstance(b, Rejected) and "unknown label 'quasar-ish'" in b.message
    assert "object b" in b.message
    _, b = _items(folder, keep_unlabelled=True)
    assert b.label is None


@pytest.mark.parametrize(
    "damage, cause",
    [
        (lambda f: (f / "img/b1.fits").unlink(), "missing stamp file"),
        (lambda f: (f / "img/b1.fits").write_text("not fits"), "stamp is not FITS"),
        (lambda f: (f / "img/b1.fits").write_bytes(b""), "stamp is not FITS"),
        (
            lambda f: fits.PrimaryHDU(np.full((16, 16), np.nan, np.float32)).writeto(
                f / "img/b1.fits", overwrite=True
            ),
            "holds no finite pixel",
        ),
        (
            lambda f: fits.PrimaryHDU(np.zeros((0, 16), np.float32)).writeto(
                f / "img/b1.fits", overwrite=True
            ),
            "zero size",
        ),
    ],
)
def test_bad_stamp_costs_its_frame_only(folder, damage, cause):
    damage(folder)
    a, dropped, b = _items(folder)
    assert a.object_id == "a" and len(a) == 3
    assert isinstance(dropped, DroppedFrame)
    assert cause in dropped.message and "object b" in dropped.message
    assert "\n" not in dropped.message
    assert b.object_id == "b" and len(b) == 1


def test_an_object_without_a_usable_frame_is_rejected(folder):
    (folder / "img/b1.fits").unlink()
    (folder / "img/b2.fits").write_text("not fits")
    _, b = _items(folder)
    assert isinstance(b, Rejected)
    assert "no usable frame (first: missing stamp file" in b.message


def test_duplicate_time_is_rejected(folder):
    epochs = Table.read(folder / "epochs.csv")
    epochs["mjd"][1] = 53700.0
    epochs["band"][1] = "sdss::g"
    epochs.write(folder / "epochs.csv", overwrite=True)
    a, _ = _items(folder)
    assert isinstance(a, Rejected) and "two frames at mjd 53700.0 in band sdss::g" in a.message


def test_table_without_a_column(folder, tmp_path):
    epochs = Table.read(folder / "epochs.csv")
    epochs.remove_column("file")
    epochs.write(folder / "epochs.csv", overwrite=True)
    out = tmp_path / "out.h5"
    result = runner.invoke(app, ["ingest", "fits", str(folder), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {folder / 'epochs.csv'}: table lacks column(s) file (has: object_id, mjd, band)"
    )
    assert not out.exists()


def test_folder_without_epochs_table(tmp_path):
    with pytest.raises(ConventionError, match="no epochs table"):
        scan("fits", [tmp_path])


def test_strict_stops_at_the_first_bad_frame(folder, tmp_path):
    (folder / "img/b1.fits").unlink()
    out = tmp_path / "out.h5"
    args = ["ingest", "fits", str(folder), "--out", str(out), "-r", "survey=sdss2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "ingested 2 objects (4 frames)" in result.output
    assert "rejected 0; dropped 1 unusable" in result.output
    out.unlink()
    result = runner.invoke(app, [*args, "--strict"])
    assert result.exit_code == 2 and "missing stamp file" in result.output
    assert not out.exists()


def test_export_fits_round_trips_exactly(tiny_store, tmp_path):
    store = Store(tiny_store)
    write_stamp_folder(store, tmp_path / "exported")
    ingest(scan("fits", [tmp_path / "exported"]), tmp_path / "back.h5")
    back = Store(tmp_path / "back.h5")
    assert back.survey == store.survey and back.bands == store.bands
    assert back.pixel_scale == store.pixel_scale
    for a, b in zip(store, back, strict=True):
        assert (a.object_id, a.label, a.subtype) == (b.object_id, b.label, b.subtype)
        for name in ("frames", "mjd", "band", "psf_fwhm", "sky_sigma", "zeropoint", "true_flux"):
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
        assert (a.ra, a.dec) == (b.ra, b.dec)
        assert a.references.keys() == b.references.keys() and a.references
        for band, reference in a.references.items():
            again = b.references[band]
            assert np.array_equal(reference.stamp, again.stamp)
            assert (reference.kind, reference.n_frames) == (again.kind, again.n_frames)
            assert (reference.mjd_end, reference.psf_fwhm) == (again.mjd_end, again.psf_fwhm)


def test_reference_stamps_are_read_and_a_bad_one_falls_back_with_a_warning(folder):
    _stamp(folder / "img" / "ref_r.fits", 0.5)
    _stamp(folder / "img" / "ref_small.fits", 0.5, shape=(12, 12))
    rows = [
        ("a", "r", "img/ref_r.fits", 1.1, 20, float("nan")),  # kept
        ("a", "g", "img/ref_small.fits", 1.1, 20, float("nan")),  # not the frames' shape
        ("b", "g", "img/ref_r.fits", 1.1, 20, float("nan")),  # b has no g frame
        ("b", "r", "img/ref_r.fits", 1.1, 20, 1.0),  # another pixel scale
    ]
    names = ("object_id", "band", "file", "psf_fwhm", "n_frames", "pixel_scale")
    Table(rows=rows, names=names).write(folder / "references.csv")
    with pytest.warns(UserWarning) as caught:
        a, b = _items(folder, pixel_scale=0.396)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3 and all("references.csv: object " in m for m in messages)
    assert "object a: row 2: reference stamp 12x12, frames 16x16" in messages[0]
    assert "object b: row 3: a sdss::g reference, but no frame in that band" in messages[1]
    assert 'reference at 1"/pixel, frames at 0.396"/pixel' in messages[2]
    (band,) = a.references
    assert a.references[band].psf_fwhm == 1.1 and a.references[band].n_frames == 20
    assert b.references == {}


def test_export_refuses_an_existing_folder(tiny_store, tmp_path):
    result = runner.invoke(app, ["export", "fits", str(tiny_store), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "output folder exists" in result.output


def test_read_detects_a_stamp_folder(folder):
    # bare band letters need a survey, which read() cannot be told
    with pytest.raises(ConventionError, match=r"row 3 \(object a\): unknown band 'g'"):
        read(folder)
    epochs = Table.read(folder / "epochs.csv")
    epochs["band"] = ["sdss::r", "sdss::g", "sdss::g", "sdss::i", "sdss::r"]
    epochs.write(folder / "epochs.csv", overwrite=True)
    assert [s.object_id for s in read(folder)] == ["a", "b"]


def test_predict_on_an_ingested_folder_as_parquet(train_store, trained_run, tmp_path):
    import pyarrow.parquet as pq

    write_stamp_folder(Store(train_store), tmp_path / "stamps")
    data = tmp_path / "mine.h5"
    assert (
        runner.invoke(
            app, ["ingest", "fits", str(tmp_path / "stamps"), "--out", str(data)]
        ).exit_code
        == 0
    )
    out = tmp_path / "preds.parquet"
    result = runner.invoke(
        app, ["predict", "--checkpoint", str(trained_run), "--data", str(data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pydict()
    assert table["object_id"] == Store(train_store).object_ids
    assert set(table["predicted"]) <= {"AGN", "SNIa", "Variable", "SNOther"}


@pytest.mark.parametrize(
    "hdu",
    [
        fits.PrimaryHDU(np.arange(35, dtype=">f4").reshape(5, 7) / 3),
        fits.PrimaryHDU(np.arange(35, dtype=np.float64).reshape(7, 5) / 3),
        fits.PrimaryHDU(np.arange(35, dtype=np.int16).reshape(5, 7)),
        fits.PrimaryHDU(np.arange(35, dtype=np.float32).reshape(5, 7), fits.Header({"BZERO": 2})),
        fits.PrimaryHDU(np.arange(105, dtype=np.float32).reshape(3, 5, 7)),
    ],
    ids=["float32", "float64", "int16", "float-with-bzero", "3-d"],
)
def test_a_stamp_reads_as_astropy_reads_it(hdu, tmp_path):
    """Plain float images take the direct path, every other one astropy's: both give the
    pixels astropy gives, and the same refusal of a cube."""
    path = tmp_path / "stamp.fits"
    hdu.writeto(path)
    with fits.open(path) as hdul:
        expected = np.asarray(hdul[0].data, dtype=np.float32)
    for source in (path, path.read_bytes()):
        if expected.ndim != 2:
            with pytest.raises(ConventionError, match="3-D, not 2-D"):
                read_fits_image(source, path=path)
        else:
            np.testing.assert_array_equal(read_fits_image(source, path=path), expected)


def test_a_plain_stamp_cut_short_is_refused(tmp_path):
    path = tmp_path / "stamp.fits"
    fits.PrimaryHDU(np.ones((16, 16), np.float32)).writeto(path)
    data = path.read_bytes()
    with pytest.raises(ConventionError, match=r"stamp\.fits.*unreadable FITS stamp"):
        read_fits_image(data[: len(data) - 2880 + 100], path=path)
