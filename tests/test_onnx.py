"""ONNX export: onnxruntime's probabilities equal PyTorch's, and bad model files are one line."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

import convention
from convention.classifier import Classifier, ModelSettings, load_models, save_model
from convention.classifier.onnx import DIGEST_KEY, LAYOUT_KEY, SETTINGS_KEY, export_onnx
from convention.cli import app
from convention.errors import ConventionError
from convention.inputs import InputEncoder
from convention.models import create_model, list_models
from tests.helpers import probabilities, probabilities_of

runner = CliRunner()
TOLERANCE = 1e-4


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, message):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def _probabilities(classifier: Classifier, data, rows) -> np.ndarray:
    return probabilities(classifier, data, rows=rows, batch_size=4)


def _untrained(name: str, data, folder):
    """An untrained tiny model with its encoder fitted on ``data``, saved in ``folder``."""
    torch.manual_seed(0)
    model = create_model(name, 4, len(data.bands), "tiny", stamp_size=16).eval()
    encoder = InputEncoder(model.input_spec, data.bands)
    encoder.fit([data[i] for i in range(len(data))], seed=0)
    settings = ModelSettings(
        model=name,
        preset="tiny",
        overrides={"stamp_size": 16},
        classes=("AGN", "SNIa", "Variable", "SNOther"),
        bands=tuple(data.bands),
        inputs=model.input_spec,
        encoders=encoder.states,
    )
    save_model(folder, model, settings)
    return folder


@pytest.fixture(scope="module")
def flagship_folder(tmp_path_factory, train_store):
    """An untrained tiny flagship with its encoder fitted on the training store."""
    folder = tmp_path_factory.mktemp("flagship") / "model"
    return _untrained("convention-multi", convention.read(train_store), folder)


@pytest.mark.parametrize("name", sorted(set(list_models()) - {"convention-multi"}))
def test_every_model_exports(name, train_store, tmp_path):
    data = convention.read(train_store)
    folder = _untrained(name, data, tmp_path / "model")
    settings, models = load_models(folder)
    export_onnx(settings, models, tmp_path / "m.onnx")  # checked on other shapes on export
    rows = [2, 11, 25, 40]
    exported, original = Classifier.load(tmp_path / "m.onnx"), Classifier.load(folder)
    difference = _probabilities(exported, data, rows) - _probabilities(original, data, rows)
    assert np.abs(difference).max() < TOLERANCE


@pytest.mark.parametrize("which", ["convention-run", "flagship"])
def test_onnx_probabilities_equal_pytorch(
    which, trained_run, flagship_folder, train_store, tmp_path
):
    source = trained_run if which == "convention-run" else flagship_folder
    settings, models = load_models(source)
    export_onnx(settings, models, tmp_path / "m.onnx")
    data = convention.read(train_store)
    exported, original = Classifier.load(tmp_path / "m.onnx"), Classifier.load(source)
    assert exported.classes == original.classes
    # Batches of one and of several objects of different lengths, padded.
    for rows in ([0], [3, 9, 17, 30, 41]):
        proba = _probabilities(exported, data, rows)
        assert np.abs(proba - _probabilities(original, data, rows)).max() < TOLERANCE
    short = data[5][:4]  # four frames: one chunk and a padded one
    gap = probabilities_of(exported, short) - probabilities_of(original, short)
    assert np.abs(gap).max() < TOLERANCE


def test_export_and_predict_from_the_command_line(trained_run, train_store, tmp_path):
    model = tmp_path / "model.onnx"
    result = run("export", "onnx", trained_run, "--out", model)
    assert result.exit_code == 0, result.output
    assert "2 fold model(s)" in result.output
    metadata = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert '"classes": ["AGN", "SNIa", "Variable", "SNOther"]' in metadata[SETTINGS_KEY]
    for engine, checkpoint, out in (
        ("onnxruntime", model, tmp_path / "onnx.csv"),
        ("torch", trained_run, tmp_path / "torch.csv"),
    ):
        result = run(
            "predict", "--checkpoint", checkpoint, "--data", train_store, "--out", out,
            "--engine", engine, "--batch-size", 16,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    # The probabilities, then (after the predicted class) their spread over the two folds.
    columns = (1, 2, 3, 4, 6, 7, 8, 9)
    onnx_rows = np.loadtxt(tmp_path / "onnx.csv", delimiter=",", skiprows=1, usecols=columns)
    torch_rows = np.loadtxt(tmp_path / "torch.csv", delimiter=",", skiprows=1, usecols=columns)
    assert onnx_rows.shape == (48, 8) and (onnx_rows[:, 4:] > 0).any()
    assert np.abs(onnx_rows - torch_rows).max() < TOLERANCE


def _edited(path, out, edit) -> None:
    proto = onnx.load(str(path))
    edit(proto)
    onnx.save_model(proto, str(out))


def _set_metadata(proto, key, value) -> None:
    for entry in proto.metadata_props:
        if entry.key == key:
            entry.value = value


def test_bad_onnx_files_are_one_line(trained_run, train_store, tmp_path):
    model = tmp_path / "model.onnx"
    settings, models = load_models(trained_run / "fold_0")
    export_onnx(settings, models, model)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    bare = tmp_path / "bare.onnx"
    _edited(model, bare, lambda p: p.ClearField("metadata_props"))
    layout = tmp_path / "layout.onnx"
    _edited(model, layout, lambda p: _set_metadata(p, LAYOUT_KEY, "0"))
    text = {p.key: p.value for p in onnx.load(str(model)).metadata_props}[SETTINGS_KEY]

    def settings_edit(name: str, edited: str, signed: bool):
        """The settings edited; ``signed``: their digest made again, as a careful editor
        would (then the checks of the settings themselves answer)."""
        path = tmp_path / name

        def edit(proto):
            _set_metadata(proto, SETTINGS_KEY, edited)
            if signed:
                graph = proto.graph.SerializeToString()
                _set_metadata(
                    proto, DIGEST_KEY, hashlib.sha256(graph + edited.encode()).hexdigest()
                )

        _edited(model, path, edit)
        return path

    reordered = text.replace('"AGN", "SNIa"', '"SNIa", "AGN"')
    five = text.replace('"SNOther"]', '"SNOther", "Nova"]')
    twice = text.replace('"SNOther"]', '"SNIa"]')
    version = text.replace('"checkpoint_version": 2', '"checkpoint_version": 9')
    cold = text.replace('"temperature": ', '"temperature": 1e-308, "was": ')
    out = tmp_path / "p.csv"
    for path, message in (
        (garbage, "not a readable ONNX model"),
        (bare, "not a file written by convention export onnx"),
        (layout, "export layout 0 is not 3"),
        (settings_edit("reordered.onnx", reordered, False), "not those it was exported with"),
        (settings_edit("five.onnx", five, False), "not those it was exported with"),
        (settings_edit("five-signed.onnx", five, True), "the graph gives 4 probabilities"),
        (settings_edit("twice-signed.onnx", twice, True), "classes name one twice"),
        (settings_edit("version-signed.onnx", version, True), "checkpoint version 9"),
        (settings_edit("cold-signed.onnx", cold, True), "temperature must be 0.001..1000"),
    ):
        one_error_line(
            run("predict", "--checkpoint", path, "--data", train_store, "--out", out), message
        )
        with pytest.raises(ConventionError, match=str(path.name)):
            Classifier.load(path)
    assert not out.exists()
    one_error_line(
        run("predict", "--checkpoint", trained_run, "--data", train_store, "--out", out,
            "--engine", "onnxruntime"),
        "--engine onnxruntime reads an .onnx file",
    )  # fmt: skip
    one_error_line(
        run("predict", "--checkpoint", model, "--data", train_store, "--out", out,
            "--engine", "torch"),
        "an ONNX file runs with --engine onnxruntime",
    )  # fmt: skip
    for option, value, message in (
        ("--precision", "16", "--precision must be one of ['32', 'bf16']"),
        ("--workers", "-1", "--workers must be 0 or more"),
        ("--engine", "tensorrt", "--engine must be one of"),
    ):
        one_error_line(
            run("predict", "--checkpoint", trained_run, "--data", train_store, "--out", out,
                option, value),
            message,
        )  # fmt: skip
    assert not out.exists()
    one_error_line(
        run("export", "onnx", trained_run, "--out", tmp_path / "model.pt"),
        "must end in .onnx",
    )
    one_error_line(
        run("export", "onnx", tmp_path / "absent", "--out", tmp_path / "x.onnx"),
        "no such checkpoint",
    )
    assert not (tmp_path / "x.onnx").exists()


class _BatchOfTwoOnly(torch.nn.Module):
    """Traces to the batch-of-two branch only (a Python branch on the batch size)."""

    def forward(self, frames, bands, times, mask):
        if frames.shape[0] == 2:
            return frames.flatten(1)[:, :4]
        return frames.flatten(1)[:, 4:8]


def test_an_export_wrong_at_other_shapes_is_refused(trained_run, tmp_path):
    settings, _ = load_models(trained_run / "fold_0")
    with pytest.raises(ConventionError, match=r"differs from PyTorch by .* on 1 objects"):
        export_onnx(settings, [_BatchOfTwoOnly()], tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
