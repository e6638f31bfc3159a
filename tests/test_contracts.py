"""The declared contracts: input specs, checkpoints of both versions, the run folder, the
collection protocol that lets every command read any format, and settings checked up
front."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import convention
from convention.classifier import Classifier, ModelSettings, save_model
from convention.cli import app
from convention.data import write_store
from convention.data.collection import MemoryCollection, SeriesCollection
from convention.errors import ConventionError
from convention.inputs import InputSpec, Normalisation
from convention.training import RunFolder, TrainSettings, train
from tests.helpers import probabilities, probabilities_of
from tests.test_series import make_series

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _v1_settings(bands=("sdss::g", "sdss::r")) -> dict:
    """settings.json as checkpoint version 1 wrote it (before declared inputs)."""
    norm = Normalisation(tuple(bands), (0.5, -0.2), (2.0, 3.0)).to_dict()
    return {
        "checkpoint_version": 1,
        "model": "convention",
        "preset": "tiny",
        "overrides": {"stamp_size": 8},
        "classes": ["AGN", "SNIa"],
        "bands": list(bands),
        "normalisation": norm,
        "stamp_size": 8,
        "max_frames": 99,
        "other_bands": "error",
        "store_schema_version": 2,
        "package_version": "0.1.0",
        "torch_version": torch.__version__,
    }


def test_the_registry_refuses_a_model_that_breaks_its_contract(monkeypatch):
    from convention.models import create_model, registry
    from convention.models.convention import PRESETS, ConvEntion
    from convention.models.registry import register_model

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry.list_models()))  # restored after

    @register_model("test-misdeclared", presets={"tiny": PRESETS["tiny"]}, inputs=("scene",))
    def misdeclared(n_classes, n_bands, config):
        return ConvEntion(n_classes, n_bands, config)  # reads stamps, registered as scene

    class Bare(torch.nn.Module):
        input_spec = InputSpec(("stamps",))
        config = None

    @register_model("test-bare", presets={"tiny": PRESETS["tiny"]}, inputs=("stamps",))
    def bare(n_classes, n_bands, config):
        return Bare()

    with pytest.raises(ConventionError, match=r"reads \['stamps'\], registered as reading"):
        create_model("test-misdeclared", 4, 5, "tiny")
    with pytest.raises(TypeError, match="lacks the Network surface"):
        create_model("test-bare", 4, 5, "tiny")


def test_version_1_checkpoint_loads_and_predicts_as_version_2(tmp_path):
    old = tmp_path / "v1"
    old.mkdir()
    (old / "settings.json").write_text(json.dumps(_v1_settings()))
    settings = ModelSettings.from_dict(_v1_settings())
    assert settings.inputs == InputSpec(("stamps",), 8, 99)
    torch.manual_seed(0)
    model = settings.build()
    torch.save(model.state_dict(), old / "model.pt")
    save_model(tmp_path / "v2", model, settings)
    saved = json.loads((tmp_path / "v2" / "settings.json").read_text())
    assert saved["checkpoint_version"] == 2 and "stamp_size" not in saved
    series = make_series(label=None)
    old_proba = probabilities_of(Classifier.load(old), series)
    assert np.array_equal(old_proba, probabilities_of(Classifier.load(tmp_path / "v2"), series))
    norm = Classifier.load(old).encoder.kinds[0].normalisation
    assert norm.median == (0.5, -0.2) and norm.scale == (2.0, 3.0)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"checkpoint_version": 7}, "checkpoint version 7 is not one of"),
        ({"checkpoint_version": 2, "inputs": {"kinds": ["spectrum"]}}, "unreadable settings"),
    ],
)
def test_unreadable_checkpoint_versions_are_one_line(tmp_path, change, message):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({**_v1_settings(), **change}))
    with pytest.raises(ConventionError, match=message) as info:
        Classifier.load(folder)
    assert "\n" not in info.value.message and "settings.json" in info.value.message


def test_unknown_input_kind_in_a_checkpoint_is_named(tmp_path):
    settings = ModelSettings.from_dict(_v1_settings())
    save_model(tmp_path / "m", settings.build(), settings)
    path = tmp_path / "m" / "settings.json"
    saved = json.loads(path.read_text())
    saved["inputs"]["kinds"] = ["stamps", "spectrum"]
    saved["encoders"]["spectrum"] = {}
    path.write_text(json.dumps(saved))
    with pytest.raises(ConventionError, match="unknown input kind 'spectrum'"):
        Classifier.load(tmp_path / "m")


def test_run_folder_reads_splits_and_scores_a_fold(trained_run, train_store):
    folder = RunFolder(trained_run)
    store = convention.read(train_store)
    assert folder.n_folds == 2 and folder.holds_splits_of(store)
    scores = folder.score(store, 1)
    assert scores.object_ids == folder.splits[1]["test"]
    direct = probabilities(folder.classifier(1), [store[int(r)] for r in scores.rows])
    assert np.array_equal(scores.proba, direct)
    assert folder.training(0)["epochs"] >= 1 and len(folder.metrics_files()) == 2


def test_run_folder_errors(tmp_path, trained_run, tiny_store):
    with pytest.raises(ConventionError, match="not a training run"):
        RunFolder(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ConventionError, match="unreadable run config"):
        RunFolder(tmp_path)
    with pytest.raises(ConventionError, match="test objects of fold 0 are not in the data"):
        RunFolder(trained_run).rows(convention.read(tiny_store), 0)


def test_every_reader_gives_a_collection(tiny_store, tmp_path):
    store = convention.read(tiny_store)
    assert isinstance(store, SeriesCollection)
    assert run("export", "fits", tiny_store, "--out", tmp_path / "stamps").exit_code == 0
    folder = convention.read(tmp_path / "stamps")
    assert isinstance(folder, MemoryCollection) and isinstance(folder, SeriesCollection)
    assert folder.object_ids == store.object_ids and folder.labels == store.labels
    assert folder.bands == store.bands and folder.stamp_shape == store.stamp_shape
    assert np.array_equal(folder.lengths, store.lengths)
    assert np.array_equal(folder.frame_table()["mjd"], store.frame_table()["mjd"])
    assert np.array_equal(folder.get(store.object_ids[3]).frames, store[3].frames, equal_nan=True)


def test_train_evaluate_predict_on_a_fits_stamp_folder(train_store, tmp_path):
    # Each object's first four nights: a folder of one FITS file per frame is slow to read,
    # and the contract does not depend on how many frames it holds.
    store = convention.read(train_store)
    short = write_store(
        tmp_path / "short.h5",
        (series.first_nights(4) for series in store),
        survey=store.survey,
        bands=store.bands,
        class_names=store.class_names,
        stamp_shape=store.stamp_shape,
        pixel_scale=store.pixel_scale,
    )
    stamps = tmp_path / "stamps"
    assert run("export", "fits", short, "--out", stamps).exit_code == 0
    args = ["--preset", "tiny", "--stamp-size", 16, "--epochs", 1, "--batch-size", 8]
    result = run("train", "--data", stamps, "--out", tmp_path / "run", *args)
    assert result.exit_code == 0, result.output
    assert RunFolder(tmp_path / "run").holds_splits_of(convention.read(stamps))
    result = run("evaluate", "--run", tmp_path / "run", "--data", stamps)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "held-out test folds"
    out = tmp_path / "p.csv"
    result = run("predict", "--checkpoint", tmp_path / "run", "--data", stamps, "--out", out)
    assert result.exit_code == 0, result.output


def test_describe_plot_predict_on_a_folder_of_alerts(ztf_alerts, tmp_path):
    valid = ztf_alerts / "valid"
    result = run("describe", valid)
    assert result.exit_code == 0 and "15 objects, survey ztf" in result.output, result.output
    # One object's sgscore1 and distpsnr1 are ZTF's null (-999), three distnr's.
    text = " ".join(result.output.split())
    assert "star_score 14, median 0.50; star_distance 14" in text, text
    assert "reference_distance 12" in text, text
    object_id = convention.read(valid).object_ids[0]
    result = run("plot", valid, "--object", object_id, "--out", tmp_path / "a.png")
    assert result.exit_code == 0 and (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    bands = ("ztf::g", "ztf::r", "ztf::i")
    settings = ModelSettings(
        "convention",
        "tiny",
        {"stamp_size": 63},
        ("AGN", "SNIa", "Variable", "SNOther"),
        bands,
        InputSpec(("stamps",), 63, 99),
        {"stamps": {"normalisation": Normalisation.identity(bands).to_dict()}},
    )
    save_model(tmp_path / "ztf-model", settings.build(), settings)
    out = tmp_path / "alerts.csv"
    result = run("predict", "--checkpoint", tmp_path / "ztf-model", "--data", valid, "--out", out)
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 16


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "epochs must be at least 1, got 0"),
        ({"batch_size": -3}, "batch_size must be at least 1"),
        ({"folds": 0}, "folds must be at least 1"),
        ({"lr": -1.0}, "lr must be positive"),
        ({"max_minutes": 0.0}, "max_minutes must be positive"),
        ({"seed": -1}, "seed must be 0 or more"),
        ({"loss": "hinge"}, "unknown loss 'hinge'"),
        ({"overrides": {"max_frames": 0}}, "max_frames must be at least 1"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(
    train_store, tmp_path, change, message
):
    settings = TrainSettings(data=str(train_store), out=str(tmp_path / "run"), progress=False)
    for key, value in change.items():
        setattr(settings, key, value)
    with pytest.raises(ConventionError, match=message):
        train(settings)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_on_other_data_scores_the_ensemble_on_every_labelled_object(
    trained_run, tiny_store, tmp_path
):
    result = run("evaluate", "--run", trained_run, "--data", tiny_store, "--out", tmp_path / "ev")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "all labelled objects" and metrics["n_folds"] == 1
    labelled = sum(label is not None for label in convention.read(tiny_store).labels)
    assert metrics["n_objects"] == labelled
    assert set(metrics["macro_f1"]) == {"mean", "std"}
