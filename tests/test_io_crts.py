"""The CRTS-TAO reader on files written in its layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from convention.errors import ConventionError
from convention.io import read, scan
from convention.io.formats.crts import read_crts_file
from convention.io.ingest import Rejected

# The layout's header keys (RA_(J2000)) are not standard FITS keywords: astropy warns when
# writing them as HIERARCH cards.
pytestmark = pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")


def write_crts(path: Path, crts_id: str, label: str, mjd: list[float], **header) -> Path:
    primary = fits.Header()
    primary["CRTS_ID"] = crts_id
    primary["Class"] = label
    primary["RA_(J2000)"] = 150.5
    primary["Dec_(J2000)"] = 2.25
    for key, value in header.items():
        primary[key] = value
    rng = np.random.default_rng(0)
    table = fits.BinTableHDU(
        Table({"HDU_Ext": np.arange(2, len(mjd) + 2), "MJD": mjd, "Mag": np.full(len(mjd), 18.0)})
    )
    images = [fits.ImageHDU((100 + rng.normal(0, 5, (12, 12))).astype(np.float32)) for _ in mjd]
    fits.HDUList([fits.PrimaryHDU(header=primary), table, *images]).writeto(path)
    return path


def test_reads_one_object_per_file(tmp_path):
    write_crts(tmp_path / "a.fits", "CRTS_1", "CV", [53500.0, 53400.0, 53600.0])
    series, dropped = read_crts_file(tmp_path / "a.fits")
    assert series.object_id == "CRTS_1" and series.label == "CV" and dropped == []
    assert list(series.mjd) == [53400.0, 53500.0, 53600.0]
    assert series.band_names == ["crts::V"] * 3
    assert (series.ra, series.dec) == (150.5, 2.25)
    assert abs(np.median(series.frames)) < 1  # background subtracted
    assert np.allclose(series.sky_sigma, 5, rtol=0.3)


def test_a_bad_cutout_costs_its_epoch_only(tmp_path):
    path = write_crts(tmp_path / "a.fits", "CRTS_1", "CV", [53500.0, 53400.0, 53600.0])
    with fits.open(path, mode="update") as hdul:
        hdul[3].data[:] = np.nan
    (series, dropped) = read_crts_file(path)
    assert len(series) == 2 and len(dropped) == 1
    assert "holds no finite pixel" in dropped[0].message and "CRTS_1" in dropped[0].message


def test_folder_with_a_bad_file(tmp_path):
    write_crts(tmp_path / "a.fits", "CRTS_1", "blazar", [53500.0])
    write_crts(tmp_path / "b.fits", "CRTS_2", "BZ", [53500.0, 53501.0])
    (tmp_path / "c.fits").write_text("SIMPLE but not really")
    items = list(scan("crts", [tmp_path]).items)
    assert isinstance(items[0], Rejected) and "unknown label 'blazar'" in items[0].message
    assert items[1].label == "BZ"
    assert isinstance(items[2], Rejected) and "c.fits" in items[2].message
    kept = list(scan("crts", [tmp_path], keep_unlabelled=True).items)
    assert kept[0].label is None


@pytest.mark.parametrize(
    "mjd, cause",
    [([53500.0, 53500.0], "two epochs at the same MJD"), ([], "no epochs")],
)
def test_bad_epochs(tmp_path, mjd, cause):
    write_crts(tmp_path / "a.fits", "CRTS_1", "SN", mjd)
    with pytest.raises(ConventionError, match=cause):
        read_crts_file(tmp_path / "a.fits")


def test_missing_header_key(tmp_path):
    path = write_crts(tmp_path / "a.fits", "CRTS_1", "SN", [53500.0])
    with fits.open(path, mode="update") as hdul:
        del hdul[0].header["Class"]
    with pytest.raises(ConventionError, match="primary header lacks Class"):
        read_crts_file(path)


def test_read_detects_crts(tmp_path):
    path = write_crts(tmp_path / "a.fits", "CRTS_1", "AGN", [53500.0])
    (series,) = read(path)
    assert series.label == "AGN"
