import h5py
import pytest
from typer.testing import CliRunner

from convention.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_simulate_describe_plot(tmp_path):
    out = tmp_path / "sim.h5"
    result = run(
        "simulate", "--n-objects", 5, "--seed", 2, "--stamp-size", 16, "--workers", 1, "--out", out
    )
    assert result.exit_code == 0, result.output
    assert "classes" in result.output and "seeing FWHM" in result.output
    with h5py.File(out) as f:
        object_id = f["object/object_id"][0].decode()
    result = run("describe", out)
    assert result.exit_code == 0 and "5 objects" in result.output
    png = tmp_path / "obj.png"
    result = run("plot", out, "--object", object_id, "--out", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--n-objects", "0"], "must be positive"),
        (["simulate", "--survey", "lsst"], "unknown survey 'lsst'"),
        (["simulate", "--catalog", "{tmp}/absent.fits"], "catalog not found"),
        (["simulate", "--out", "{tmp}/missing/x.h5"], "does not exist"),
        (["describe", "{tmp}/absent.h5"], "no such file"),
        (["plot", "{tmp}/absent.h5", "--object", "1", "--out", "{tmp}/x.png"], "no such file"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    if args[0] == "simulate" and "--out" not in args:
        args += ["--out", str(tmp_path / "x.h5")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_plot_unknown_object(tiny_store, tmp_path):
    result = run("plot", tiny_store, "--object", "nope", "--out", tmp_path / "x.png")
    assert result.exit_code == 2 and "object nope: no such object" in result.output
    assert list(tmp_path.iterdir()) == []


def test_catalog_with_unknown_codes_warns(tmp_path):
    from tests.test_simulate import _catalog

    catalog = _catalog(
        tmp_path,
        DECL=[0.1, 0.2, 0.3],
        PEAKMJD=[53650.0] * 3,
        REDSHIFT_FINAL=[0.1, -9, -9],
        HOSTGAL_SNSEP=[0.5, 0.5, 0.5],
    )
    out = tmp_path / "twin.h5"
    result = run("simulate", "--catalog", catalog, "--stamp-size", 16, "--workers", 1, "--out", out)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "skipped 1 objects" in result.output
    assert out.is_file()


def test_describe_empty_store(tmp_path):
    from convention.data.store import write_store

    path = write_store(
        tmp_path / "empty.h5",
        [],
        survey="sdss2",
        bands=["sdss::g"],
        class_names=["AGN"],
        stamp_shape=(8, 8),
        pixel_scale=0.396,
    )
    result = run("describe", path)
    assert result.exit_code == 0 and "holds no objects" in result.output


def test_text_file_as_catalog_is_one_line(tmp_path, sdss2_catalog):
    readme = sdss2_catalog.parent / "SNANA_README.txt"
    result = run("simulate", "--catalog", readme, "--out", tmp_path / "x.h5")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot read catalog: IORegistryError" in lines[0]
    assert list(tmp_path.iterdir()) == []
