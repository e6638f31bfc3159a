import csv
import json

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger

import convention
from convention.classes import class_targets
from convention.classifier import Classifier, ModelSettings, save_model
from convention.data.splits import make_splits
from convention.data.store import write_store
from convention.errors import ConventionError
from convention.inputs import Example, InputEncoder, InputSpec, Normalisation
from convention.models import create_model
from convention.training.datamodule import StampDataModule
from convention.training.module import ClassifierModule
from tests.helpers import probabilities_of
from tests.test_series import make_series


def test_splits_are_stratified_seeded_and_disjoint():
    targets = np.repeat([0, 1, 2, 3], [20, 30, 40, 10])
    targets[:3] = -1  # unlabelled objects never enter a split
    a = make_splits(targets, folds=5, seed=1)
    b = make_splits(targets, folds=5, seed=1)
    assert all(np.array_equal(x[p], y[p]) for x, y in zip(a, b, strict=True) for p in x)
    tests = np.concatenate([s["test"] for s in a])
    assert sorted(tests) == sorted(np.flatnonzero(targets >= 0))
    labelled = set(np.flatnonzero(targets >= 0).tolist())
    fixed = make_splits(targets, folds=1, seed=0)[0]
    for s in [*a, fixed]:
        train, val, test = (set(s[p].tolist()) for p in ("train", "val", "test"))
        assert not train & val and not train & test and not val & test
        assert train | val | test == labelled
        assert np.bincount(targets[s["test"]]).min() >= 2
    assert len(fixed["test"]) == pytest.approx(0.2 * 97, abs=1)
    assert len(fixed["val"]) == pytest.approx(0.1 * 97, abs=1)


def test_three_class_targets():
    t = class_targets(["SNIa", "SNOther", "AGN", None, "Variable"], ["AGN", "SN", "Variable"])
    assert t.tolist() == [1, 1, 0, -1, 2]
    # Only the 3-class taxonomy maps 4-class labels: a class list that holds "SN" does not.
    assert class_targets(["SNIa", "SN"], ["SN", "Other"]).tolist() == [-1, 0]


def encoder_for(series, max_frames=99, kinds=("stamps",)):
    spec = InputSpec(kinds, series.frames.shape[1], max_frames)
    encoder = InputEncoder(spec, ["sdss::g", "sdss::r"])
    encoder.fit([series])
    return encoder


def test_encoder_handles_nan_and_caps_length():
    series = make_series(m=10)
    series.frames[2] = np.nan  # a frame without valid pixels is dropped
    series.frames[3, 0, 0] = np.nan  # a missing pixel becomes 0
    enc = encoder_for(series, max_frames=6).encode(series, label=1)
    assert enc.label == 1
    enc = enc.inputs
    assert len(enc["frames"]) == 6 and np.isfinite(enc["frames"]).all()
    assert set(enc["bands"].tolist()) <= {1, 2}  # 0 is padding
    assert enc["times"][0] == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ("nan", "obj1: no frame with valid pixels"),
        ("size", "stamps are 16x16, the model reads 8x8"),
        ("band", r"bands \['sdss::u'\] are not the model's bands"),
    ],
)
def test_encoder_rejects(change, message):
    good = make_series()
    encoder = encoder_for(good)
    bad = {
        "nan": make_series(frames=np.full((6, 8, 8), np.nan)),
        "size": make_series(size=16),
        "band": make_series(band=np.array(["sdss::u"] * 6)),
    }[change]
    with pytest.raises(ConventionError, match=message):
        encoder.encode(bad)


def test_augment_and_collate():
    series = make_series(m=12)
    encoder = encoder_for(series)
    enc = encoder.encode(series, 0)
    rng = np.random.default_rng(0)
    items = [encoder.augment(enc, rng) for _ in range(20)]
    assert all(1 <= len(it.inputs["frames"]) <= 12 and it.inputs["times"][0] == 0 for it in items)
    batch = encoder.collate(items[:4])
    inputs = batch["inputs"]
    lengths = inputs["mask"].sum(1).tolist()
    assert lengths == [len(it.inputs["frames"]) for it in items[:4]]
    assert inputs["frames"].shape[1] == max(lengths)
    assert (inputs["bands"][~inputs["mask"]] == 0).all()
    assert batch["label"].tolist() == [0] * 4


def test_composite_encoder_augments_every_input_alike():
    series = make_series(m=12)
    encoder = encoder_for(series, kinds=("stamps", "lightcurve"))
    enc = encoder.encode(series, 0)
    assert enc.inputs["lc"].shape == (12, 2)
    rng = np.random.default_rng(1)
    for _ in range(10):
        item = encoder.augment(enc, rng).inputs
        assert len(item["frames"]) == len(item["lc"])
        assert np.array_equal(item["bands"], item["lc_bands"])
        assert np.array_equal(item["times"], item["lc_times"])
    batch = encoder.collate([enc, encoder.augment(enc, rng)])["inputs"]
    assert set(batch) == {
        "frames",
        "bands",
        "times",
        "mask",
        "lc",
        "lc_bands",
        "lc_times",
        "lc_mask",
    }
    assert torch.equal(batch["mask"], batch["lc_mask"])


def test_unknown_input_kind_is_one_line():
    with pytest.raises(ConventionError, match="unknown input kind 'spectrum'; known: "):
        InputEncoder(InputSpec(("spectrum",)), ["sdss::g"])


def _settings(bands=("sdss::g", "sdss::r")):
    norm = Normalisation.identity(bands).to_dict()
    return ModelSettings(
        "convention",
        "tiny",
        {"stamp_size": 8},
        ("AGN", "SNIa"),
        tuple(bands),
        InputSpec(("stamps",), 8, 99),
        {"stamps": {"normalisation": norm}},
    )


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    settings = _settings()
    torch.manual_seed(0)
    model = settings.build().eval()
    save_model(tmp_path / "m", model, settings)
    loaded = Classifier.load(tmp_path / "m")
    series = make_series(label=None)
    encoded = loaded.encoder.collate([loaded.encoder.encode(series)])["inputs"]
    with torch.no_grad():
        direct = torch.softmax(model(**encoded), 1)[0].numpy()
    assert np.array_equal(probabilities_of(loaded, series), direct)
    again = Classifier.load(tmp_path / "m" / "settings.json")
    assert np.array_equal(probabilities_of(again, series), direct)


def test_mismatched_bands_fail_clearly(tmp_path):
    settings = _settings()
    save_model(tmp_path / "m", settings.build(), settings)
    classifier = Classifier.load(tmp_path / "m")
    with pytest.raises(ConventionError, match=r"data has bands \['lsst::g'\] the model was not"):
        classifier.check_bands(["sdss::g", "lsst::g"], "x.h5")
    with pytest.raises(ConventionError, match=r"without the model's \['SNIa'\]"):
        classifier.check_classes(["AGN", "Nova"], "x.h5")
    classifier.check_classes(["AGN", "SNIa", "Variable"])


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(ConventionError, match="no such checkpoint"):
        Classifier.load(tmp_path / "absent")
    settings = _settings()
    save_model(tmp_path / "m", settings.build(), settings)
    (tmp_path / "m" / "model.pt").write_bytes(b"garbage")
    with pytest.raises(ConventionError, match="SHA-256 differs"):
        Classifier.load(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "settings.json").read_text())
    (tmp_path / "m" / "settings.json").write_text(json.dumps({**saved, "weights_sha256": None}))
    with pytest.raises(ConventionError, match="corrupt weights"):  # an older file's
        Classifier.load(tmp_path / "m")
    (tmp_path / "m" / "settings.json").write_text("{")
    with pytest.raises(ConventionError, match="unreadable settings"):
        Classifier.load(tmp_path / "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConventionError, match=r"no settings\.json"):
        Classifier.load(tmp_path / "empty")


def test_trained_run_layout_and_reproducible_splits(trained_run, train_store):
    config = json.loads((trained_run / "config.json").read_text())
    assert config["classes"] == ["AGN", "SNIa", "Variable", "SNOther"]
    assert len(config["splits"]) == 2
    for k in range(2):
        folder = trained_run / f"fold_{k}"
        assert (folder / "model.pt").is_file() and (folder / "metrics.csv").is_file()
        saved = json.loads((folder / "settings.json").read_text())
        assert saved["classes"] == config["classes"] and saved["bands"] == config["bands"]
        summary = json.loads((folder / "training.json").read_text())
        assert summary["incomplete_inputs"] == {"train": {"stamps": 0}, "val": {"stamps": 0}}
    store = convention.read(train_store)
    classifier = Classifier.load(trained_run)  # the ensemble of both folds
    folds = [Classifier.load(trained_run / f"fold_{k}") for k in (0, 1)]
    # Each fold's model on the ensemble's encoding (its first fold's normalisation).
    inputs = classifier.encoder.collate([classifier.encoder.encode(store[0])])["inputs"]
    each = [fold.engine(inputs)[0, 0] for fold in folds]
    assert np.allclose(probabilities_of(classifier, store[0]), np.mean(each, axis=0), atol=1e-6)


def test_store_without_a_class_is_refused(tmp_path, train_store):
    from convention.training import TrainSettings, train

    store = convention.read(train_store)
    kept = [s for s in store if s.label != "AGN"]
    path = write_store(
        tmp_path / "noagn.h5",
        kept,
        survey="sdss2",
        bands=store.bands,
        class_names=store.class_names,
        stamp_shape=(16, 16),
        pixel_scale=0.396,
    )
    settings = TrainSettings(
        data=str(path),
        out=str(tmp_path / "run"),
        preset="tiny",
        epochs=1,
        overrides={"stamp_size": 16},
        progress=False,
    )
    with pytest.raises(ConventionError, match="too few objects of class AGN"):
        train(settings)
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_stamp_size_mismatch_is_refused(tmp_path, train_store):
    from convention.training import TrainSettings, train

    settings = TrainSettings(
        data=str(train_store), out=str(tmp_path / "run"), preset="tiny", epochs=1, progress=False
    )
    with pytest.raises(ConventionError, match=r"stamps are 16x16, the model reads 32x32"):
        train(settings)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["lc-transformer", "cnn-gru", "scone"])
def test_baselines_train_and_predict(train_store, tmp_path, name):
    from convention.training import TrainSettings, train

    run = train(
        TrainSettings(
            data=str(train_store),
            out=str(tmp_path / "run"),
            model=name,
            preset="tiny",
            epochs=1,
            batch_size=8,
            progress=False,
            overrides={"stamp_size": 16},
        )
    )
    classifier = Classifier.load(run)
    series = convention.read(train_store)[0]
    assert classifier.classes == ["AGN", "SNIa", "Variable", "SNOther"]
    assert probabilities_of(classifier, series).shape == (4,)
    if name == "lc-transformer":
        assert classifier.settings.inputs.kinds == ("lightcurve",)
        assert classifier.encoder.encode(series).inputs["lc"].shape == (len(series), 2)


def test_single_band_model_drops_the_other_bands(train_store, tmp_path):
    from convention.training import TrainSettings, train

    run = train(
        TrainSettings(
            data=str(train_store),
            out=str(tmp_path / "run"),
            preset="tiny",
            epochs=1,
            batch_size=8,
            progress=False,
            overrides={"stamp_size": 16},
            bands=("g",),
        )
    )
    classifier = Classifier.load(run)
    assert classifier.settings.bands == ("sdss::g",)
    store = convention.read(train_store)
    classifier.check_bands(store.bands)  # ugriz data: the other bands are left out
    series = store[0]
    encoded = classifier.encoder.encode(series).inputs
    assert len(encoded["frames"]) == (series.band == 2).sum()
    g_only = series.select_band("g")
    dropped = probabilities_of(classifier, series)
    assert np.array_equal(dropped, probabilities_of(classifier, g_only))
    with pytest.raises(ConventionError, match="none of the model's bands"):
        classifier.check_bands(["sdss::r"])
    with pytest.raises(ConventionError, match=r"bands \['lsst::y'\] are not in the store"):
        train(
            TrainSettings(
                data=str(train_store), out=str(tmp_path / "r2"), preset="tiny", bands=("lsst::y",)
            )
        )


def _tiny_model_and_data(train_store):
    """A tiny ConvEntion and the train store's first split, batches of 8."""
    store = convention.read(train_store)
    targets = class_targets(store.labels, ["AGN", "SNIa", "Variable", "SNOther"])
    split = make_splits(targets, 1, 0)[0]
    model = create_model("convention", 4, 5, "tiny", stamp_size=16, max_frames=40)
    encoder = InputEncoder(model.input_spec, store.bands)
    data = StampDataModule(store, ["AGN", "SNIa", "Variable", "SNOther"], split, encoder, 8)
    return model, data


def test_onecycle_schedule_warms_up_then_anneals(train_store, tmp_path):
    model, data = _tiny_model_and_data(train_store)
    module = ClassifierModule(model, 4, lr=1e-3, lr_schedule="onecycle")
    monitor = LearningRateMonitor(logging_interval="step")
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[monitor],
        logger=CSVLogger(tmp_path, name=""),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    trainer.fit(module, datamodule=data)
    lrs = [float(row["lr-AdamW"]) for row in _csv_rows(tmp_path) if row.get("lr-AdamW")]
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1
    assert max(lrs) == pytest.approx(1e-3, rel=0.05)
    assert lrs[0] < 1e-4 and lrs[-1] < 1e-4


def test_plateau_schedule_lowers_the_rate_when_validation_stalls(train_store, tmp_path):
    model, data = _tiny_model_and_data(train_store)
    # A rate too small to move the weights: the first epoch's validation score stays the best.
    module = ClassifierModule(model, 4, lr=1e-12, lr_schedule="plateau")
    trainer = L.Trainer(
        max_epochs=8,
        callbacks=[LearningRateMonitor(logging_interval="epoch")],
        logger=CSVLogger(tmp_path, name=""),
        enable_progress_bar=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    trainer.fit(module, datamodule=data)
    lrs = [float(row["lr-AdamW"]) for row in _csv_rows(tmp_path) if row.get("lr-AdamW")]
    # Lowered after the third and the sixth epoch without a better one.
    assert lrs == pytest.approx([1e-12] * 4 + [3e-13] * 3 + [9e-14])


def _csv_rows(folder):
    (path,) = folder.rglob("metrics.csv")
    with path.open() as f:
        return list(csv.DictReader(f))


def test_unknown_lr_schedule_is_refused(tmp_path, train_store):
    from convention.training import TrainSettings, train

    settings = TrainSettings(
        data=str(train_store), out=str(tmp_path / "run"), lr_schedule="warm", progress=False
    )
    with pytest.raises(ConventionError, match="unknown learning-rate schedule 'warm'"):
        train(settings)
    assert list(tmp_path.iterdir()) == []


def test_unknown_precision_is_one_line(tmp_path, train_store):
    from typer.testing import CliRunner

    from convention.cli import app

    args = ["train", "--data", str(train_store), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "--precision", "16"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: unknown precision '16'; known: 32, bf16-mixed"
    assert list(tmp_path.iterdir()) == []


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(train_store, tmp_path):
    import signal
    import subprocess
    import sys

    common = dict(
        data=str(train_store),
        preset="tiny",
        epochs=5,
        batch_size=8,
        patience=5,
        progress=False,
        overrides={"stamp_size": 16},
    )
    # Every run in a fresh process: the suite's own process may hold another torch
    # thread count (earlier tests set it), and with it other float sums.
    run_one = (
        "from convention.training import TrainSettings, train\n"
        "{}train(TrainSettings(out={!r}, **{!r}))"
    )
    reference = tmp_path / "ref"
    subprocess.run([sys.executable, "-c", run_one.format("", str(reference), common)], check=True)
    # The same run in a process that SIGKILLs itself in the middle of its third epoch.
    dying = """import os, signal
from convention.training.module import ClassifierModule

step = ClassifierModule.training_step

def dying_step(self, batch, batch_idx):
    if self.current_epoch == 2 and batch_idx == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self, batch, batch_idx)

ClassifierModule.training_step = dying_step
"""
    code = run_one.format(dying, str(tmp_path / "run"), common)
    process = subprocess.run([sys.executable, "-c", code], check=False, timeout=300)
    assert process.returncode == -signal.SIGKILL
    last = tmp_path / "run.partial" / "fold_0" / "lightning" / "last.ckpt"
    assert last.exists() and not (tmp_path / "run").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "convention", "train", "--resume", str(tmp_path / "run")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(reference / "fold_0" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "run" / "fold_0" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _csv_rows(reference) == _csv_rows(tmp_path / "run")
    assert not (tmp_path / "run.partial").exists()


def test_resume_without_a_stopped_run_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from convention.cli import app

    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no stopped run to resume" in result.output
    result = CliRunner().invoke(app, ["train", "--data", "x.h5"])
    assert result.exit_code == 2 and "give --data and --out" in result.output


def test_encoding_workers_give_the_same_examples(train_store, monkeypatch):
    from convention.training import datamodule

    monkeypatch.setattr(datamodule, "ENCODE_CHUNK", 8)  # 48 objects: six tasks
    store = convention.read(train_store)
    targets = class_targets(store.labels, ["AGN", "SNIa", "Variable", "SNOther"])
    model = create_model("convention-multi", 4, 5, "tiny", stamp_size=16, max_frames=40)
    encoder = InputEncoder(model.input_spec, store.bands)
    encoder.fit(store)
    rows = np.arange(len(store))[::-1]
    alone = list(datamodule.encode_rows(store, rows, targets, encoder, workers=1))
    shared = list(datamodule.encode_rows(store, rows, targets, encoder, workers=2))
    assert [e.label for e in alone] == [e.label for e in shared] == list(targets[rows])
    for a, b in zip(alone, shared, strict=True):
        assert a.inputs.keys() == b.inputs.keys()
        for key in a.inputs:
            assert np.array_equal(a.inputs[key], b.inputs[key]), key


def test_example_cache_gives_back_the_examples_in_and_out_of_workers(tmp_path):
    from torch.utils.data import DataLoader

    from convention.training.example_cache import ExampleCache

    rng = np.random.default_rng(0)
    examples = [
        Example({"frames": rng.normal(size=(k + 1, 4, 4)).astype(np.float32)}, label=k % 3)
        for k in range(7)
    ]
    cache = ExampleCache(iter(examples), tmp_path)
    assert list(tmp_path.iterdir()) == []  # an unnamed file: nothing to leave behind
    assert len(cache) == 7 and cache.labels.tolist() == [e.label for e in examples]
    assert cache.nbytes > sum(e.inputs["frames"].nbytes for e in examples)
    for a, b in zip(cache, examples, strict=True):
        assert a.label == b.label and np.array_equal(a.inputs["frames"], b.inputs["frames"])
    assert np.array_equal(cache[-1].inputs["frames"], examples[-1].inputs["frames"])
    with pytest.raises(IndexError):
        cache[7]
    loaded = list(DataLoader(cache, batch_size=None, num_workers=2, collate_fn=lambda e: e))
    assert [e.label for e in loaded] == [e.label for e in examples]
    cache.close()


def test_encoding_workers_end_on_sigterm_under_a_handler_that_bypasses_it():
    # Lightning's handler only logs: inherited by a worker, the pool's terminate() on
    # leaving could wait for ever on it (a demo hung so).
    import multiprocessing as mp
    import signal

    from convention.training import datamodule

    bypass = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        with mp.get_context("fork").Pool(1, datamodule._start_worker, ({},)) as pool:
            assert pool.apply(signal.getsignal, (signal.SIGTERM,)) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, bypass)
