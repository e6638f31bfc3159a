"""Fuzzing the readers: corrupted copies of valid files never escape as anything but a
one-line ConventionError, and never hang (1,300 generated corruptions in all;
``CONVENTION_FUZZ_SCALE=10`` multiplies them, see benchmarks/fuzz.sh)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convention.errors import ConventionError
from convention.io import scan
from convention.io.formats.alerts import read_alert_file
from convention.io.formats.crts import read_crts_file
from convention.io.ingest import Rejected
from convention.io.stamps import read_fits_image

SCALE = int(os.environ.get("CONVENTION_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=400 * SCALE,
    deadline=2000,  # ms per example: a hang fails the test
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@st.composite
def corruptions(draw, size: int):
    """A list of edits: (offset, kind, payload) -- overwrite, insert, delete, truncate."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["overwrite", "insert", "delete", "truncate"]))
        offset = draw(st.integers(0, max(size - 1, 0)))
        payload = draw(st.binary(min_size=1, max_size=16))
        edits.append((offset, kind, payload))
    return edits


def corrupt(data: bytes, edits) -> bytes:
    data = bytearray(data)
    for offset, kind, payload in edits:
        offset = min(offset, len(data))
        if kind == "overwrite":
            data[offset : offset + len(payload)] = payload
        elif kind == "insert":
            data[offset:offset] = payload
        elif kind == "delete":
            del data[offset : offset + len(payload)]
        else:
            del data[offset:]
    return bytes(data)


def one_line(err: ConventionError) -> None:
    assert "\n" not in err.message and err.message


@pytest.fixture(scope="module")
def alert_bytes(ztf_alerts) -> bytes:
    return (ztf_alerts / "valid" / "472263571115115008.avro").read_bytes()


@FUZZ
@given(data=st.data())
def test_corrupt_alerts(alert_bytes, tmp_path_factory, data):
    edits = data.draw(corruptions(len(alert_bytes)))
    path = tmp_path_factory.mktemp("fuzz") / "alert.avro"
    path.write_bytes(corrupt(alert_bytes, edits))
    try:
        read_alert_file(path, ("science", "template", "difference"))
    except ConventionError as err:
        one_line(err)


def _stamp_bytes() -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.arange(256, dtype=np.float32).reshape(16, 16)).writeto(buffer)
    return buffer.getvalue()


@FUZZ
@given(data=st.data())
def test_corrupt_fits_stamps(data):
    raw = _stamp_bytes()
    edits = data.draw(corruptions(len(raw)))
    try:
        image = read_fits_image(corrupt(raw, edits), 0, path="stamp.fits")
        assert image.ndim == 2
    except ConventionError as err:
        one_line(err)


@pytest.fixture(scope="module")
def crts_bytes(tmp_path_factory) -> bytes:
    import warnings

    header = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header["CRTS_ID"] = "CRTS_1"
        header["Class"] = "SN"
        header["RA_(J2000)"] = 1.0
        header["Dec_(J2000)"] = 2.0
    table = fits.BinTableHDU(Table({"HDU_Ext": [2, 3], "MJD": [53500.0, 53501.0]}))
    images = [fits.ImageHDU(np.ones((8, 8), np.float32) * k) for k in (1, 2)]
    path = tmp_path_factory.mktemp("crts") / "a.fits"
    fits.HDUList([fits.PrimaryHDU(header=header), table, *images]).writeto(path)
    return path.read_bytes()


@settings(FUZZ, max_examples=200 * SCALE)
@given(data=st.data())
def test_corrupt_crts_files(crts_bytes, tmp_path_factory, data):
    edits = data.draw(corruptions(len(crts_bytes)))
    path = tmp_path_factory.mktemp("fuzz") / "a.fits"
    path.write_bytes(corrupt(crts_bytes, edits))
    try:
        read_crts_file(path)
    except ConventionError as err:
        one_line(err)


TABLES = {
    "epochs.csv": (
        b"object_id,mjd,band,file,hdu\n"
        b"a,53700.0,sdss::g,s.fits,0\n"
        b"a,53701.0,sdss::r,s.fits,0\n"
        b"b,53700.5,sdss::i,s.fits,0\n"
    ),
    "objects.csv": b"object_id,label,ra,dec,redshift\na,SNIa,1.0,2.0,0.1\nb,AGN,3.0,4.0,0.5\n",
    "lightcurves.csv": (
        b"object_id,mjd,band,flux,flux_err,detected\n"
        b"a,53700.0,sdss::g,1.5,0.1,True\n"
        b"b,53700.5,sdss::i,-0.5,0.2,False\n"
    ),
}


@settings(FUZZ, max_examples=300 * SCALE)
@given(data=st.data())
def test_corrupt_tables_of_a_stamp_folder(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    fits.PrimaryHDU(np.ones((8, 8), np.float32)).writeto(folder / "s.fits")
    damaged = data.draw(st.sampled_from(sorted(TABLES)))
    for name, text in TABLES.items():
        if name == damaged:
            text = corrupt(text, data.draw(corruptions(len(text))))
        (folder / name).write_bytes(text)
    try:
        for item in scan("fits", [folder]).items:
            if isinstance(item, Rejected):
                one_line(item.error)
    except ConventionError as err:
        one_line(err)
