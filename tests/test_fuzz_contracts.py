"""Fuzzing beyond the readers: damaged stores (structure and bytes), edited and
corrupted checkpoints, and option values. Each case ends in success or one-line
ConventionError, never another exception or a hang (1,000 generated cases in all;
``CONVENTION_FUZZ_SCALE=10`` multiplies them, see benchmarks/fuzz.sh)."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convention.classifier import Classifier, ModelSettings, save_model
from convention.cli import app
from convention.data.store import Store
from convention.errors import ConventionError
from convention.inputs import InputSpec, Normalisation
from tests.helpers import probabilities_of
from tests.test_io_fuzz import SCALE, corrupt, corruptions, one_line
from tests.test_series import make_series


def fuzz(examples: int):
    return settings(
        max_examples=examples * SCALE,
        deadline=5000,  # ms per example: a hang fails the test
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
    )


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 40), max_size=4),
)

NUMBERS = st.one_of(
    st.integers(-(2**40), 2**40).map(float),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
)
DATASETS = [
    "frames",
    *(f"frame/{c}" for c in ("mjd", "band", "psf_fwhm", "sky_sigma", "zeropoint", "true_flux")),
    *(f"object/{c}" for c in ("ra", "dec", "redshift", "label", "start", "count", "object_id")),
    *(f"object/{c}" for c in ("subtype", "lc_start", "lc_count")),
]
ATTRS = ["schema_version", "survey", "bands", "class_names", "pixel_scale", "stamp_shape"]
ATTRS += ["channels", "provenance"]


@st.composite
def store_damage(draw):
    """A list of structural edits of a store."""
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["del", "resize", "value", "del_attr", "attr"]))
        name = draw(st.sampled_from(ATTRS if "attr" in kind else DATASETS))
        value = draw(VALUES if "attr" in kind else NUMBERS)
        edits.append((kind, name, draw(st.integers(0, 60)), value))
    return edits


def _apply(path, edits) -> None:
    with h5py.File(path, "r+") as f:
        for kind, name, row, value in edits:
            if kind == "del_attr":
                f.attrs.pop(name, None)
            elif kind == "attr":
                f.attrs[name] = "" if value is None else value
            elif name not in f:
                continue
            elif kind == "del":
                del f[name]
            elif kind == "resize" and f[name].chunks is not None:
                f[name].resize(min(row, f[name].shape[0]), axis=0)
            elif kind == "value" and f[name].shape[0]:
                target = f[name]
                row = min(row, target.shape[0] - 1)
                if target.dtype.kind in "OSU":  # strings: a number written as text
                    target[row] = str(value)
                elif target.dtype.kind == "f":
                    target[row] = value
                else:  # integers: clipped to what the column's type holds
                    info = np.iinfo(target.dtype) if target.dtype.kind in "iu" else None
                    whole = int(value) if np.isfinite(value) else 0
                    target[row] = np.clip(whole, info.min, info.max) if info else bool(whole)


def _read_everything(path) -> None:
    try:
        store = Store(path)
        for series in store:
            series.to_table()
        store.frame_table()
    except ConventionError as err:
        one_line(err)


@fuzz(150)
@given(edits=store_damage())
def test_damaged_store_structure(tiny_store, tmp_path_factory, edits):
    path = tmp_path_factory.mktemp("store") / "s.h5"
    shutil.copy(tiny_store, path)
    _apply(path, edits)
    _read_everything(path)


@fuzz(150)
@given(data=st.data())
def test_damaged_store_bytes(tiny_store, tmp_path_factory, data):
    raw = tiny_store.read_bytes()
    path = tmp_path_factory.mktemp("store") / "s.h5"
    path.write_bytes(corrupt(raw, data.draw(corruptions(len(raw)))))
    _read_everything(path)


def _model(folder) -> None:
    bands = ("sdss::g", "sdss::r")
    settings_ = ModelSettings(
        "convention",
        "tiny",
        {"stamp_size": 8},
        ("AGN", "SNIa"),
        bands,
        InputSpec(("stamps",), 8, 99),
        {"stamps": {"normalisation": Normalisation.identity(bands).to_dict()}},
    )
    save_model(folder, settings_.build(), settings_)


def _paths(d, prefix=()):
    """Every key path of a JSON document."""
    for key, value in d.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from _paths(value, (*prefix, key))


def _load_and_predict(folder) -> None:
    try:
        probabilities_of(Classifier.load(folder), make_series(label=None))
    except ConventionError as err:
        one_line(err)


@fuzz(150)
@given(data=st.data())
def test_edited_checkpoint_settings(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("model")
    _model(folder)
    path = folder / "settings.json"
    saved = json.loads(path.read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        keys = sorted(_paths(saved))
        chosen = data.draw(st.sampled_from(keys))
        parent = saved
        for key in chosen[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            parent.pop(chosen[-1])
        else:
            parent[chosen[-1]] = data.draw(VALUES)
    path.write_text(json.dumps(saved))
    _load_and_predict(folder)


@fuzz(100)
@given(data=st.data())
def test_corrupted_checkpoint_weights(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("model")
    _model(folder)
    raw = (folder / "model.pt").read_bytes()
    (folder / "model.pt").write_bytes(corrupt(raw, data.draw(corruptions(len(raw)))))
    _load_and_predict(folder)


OPTION_VALUES = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e9", "0.0", "", "x", "../x", "/tmp", "cuda"]),
    st.text(max_size=6),
)


@fuzz(75)
@given(option=st.sampled_from(["--batch-size", "--device"]), value=OPTION_VALUES)
def test_option_values_of_predict(trained_run, tiny_store, tmp_path_factory, option, value):
    out = tmp_path_factory.mktemp("p") / "p.csv"
    args = ["predict", "--checkpoint", trained_run, "--data", tiny_store, "--out", out]
    _no_traceback([*args, option, value])


@fuzz(100)
@given(option=st.sampled_from(["--name", "--clip-fluxcal", "--photometry"]), value=OPTION_VALUES)
def test_option_values_of_export(tiny_store, tmp_path_factory, option, value):
    out = tmp_path_factory.mktemp("e") / "snana"
    _no_traceback(["export", "snana", tiny_store, "--out", out, option, value])


def _no_traceback(args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code in (0, 2), (args, result.output, result.exception)
    if result.exit_code == 2:
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines and (lines[-1].startswith("error: ") or "Usage:" in result.output), lines
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
