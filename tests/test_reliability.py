"""Hostile but fair inputs (issue 15): nothing read outside its inputs, no input
overwritten, one line per user error, nothing left behind."""

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from typer.testing import CliRunner

from convention.cli import app
from convention.io import scan
from convention.io.ingest import Rejected

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], lines[0]


def _stamp_folder(root: Path, files: list[str], made: int = 1) -> Path:
    """A stamp folder of one object whose epochs name ``files``; the first ``made`` exist."""
    (root / "img").mkdir(parents=True)
    for k, name in enumerate(files[:made]):
        fits.PrimaryHDU(np.full((16, 16), float(k), np.float32)).writeto(root / name)
    rows = [("a", 53700.0 + k, "sdss::g", name) for k, name in enumerate(files)]
    Table(rows=rows, names=("object_id", "mjd", "band", "file")).write(root / "epochs.csv")
    return root


@pytest.mark.parametrize("kind", ["absolute", "parent", "symlink", "passwd"])
def test_stamp_folder_never_reads_outside_itself(tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.fits"
    fits.PrimaryHDU(np.ones((16, 16), np.float32)).writeto(secret)
    name = {
        "absolute": str(secret),
        "parent": "../outside/secret.fits",
        "symlink": "img/link.fits",
        "passwd": "../../../../../../../../etc/passwd",
    }[kind]
    root = _stamp_folder(tmp_path / "stamps", ["img/ok.fits", name])
    if kind == "symlink":
        os.symlink(secret, root / "img" / "link.fits")
    (item,) = scan("fits", [root], survey="sdss2").items
    assert isinstance(item, Rejected)
    assert "outside the folder" in item.message or "absolute path" in item.message
    assert "root:" not in item.message  # no byte of the file is echoed
    out = tmp_path / "x.h5"
    result = run("ingest", "fits", root, "--survey", "sdss2", "--out", out, "--strict")
    one_error_line(result, "row 2: ")
    assert not (tmp_path / "x.h5").exists()
