"""Early classification and the ensemble's spread: cutoffs on a series, training on cut
sequences, ``predict --until/--days/--nights`` (objects without a frame by then named and
skipped), and the sd_<class> columns of an ensemble."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import convention
from convention.classes import class_targets, get_taxonomy
from convention.classifier import Classifier
from convention.cli import app
from convention.data.cutoff import Cutoff, cut_to_nights, truncation_draws
from convention.data.splits import make_splits
from convention.errors import ConventionError
from convention.inputs import InputEncoder, InputSpec
from convention.training import TrainSettings
from convention.training.datamodule import StampDataModule
from convention.training.settings import DEFAULTS
from tests.helpers import probabilities_of


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def series(train_store):
    return convention.read(train_store)[0]


def test_until_keeps_what_was_observed_by_then(series):
    cut = series.until(series.mjd[3])
    assert len(cut) == 4 and np.array_equal(cut.frames, series.frames[:4])
    assert len(series.until(series.mjd[-1] + 100)) == len(series)
    with pytest.raises(ConventionError, match=r"no frame by MJD 100\.00000 \(its first at MJD"):
        series.until(100.0)


def test_first_nights_and_days(series):
    nights = np.unique(series.nights())
    two = series.first_nights(2)
    assert set(two.nights()) == set(nights[:2])
    assert len(series.first_nights(10_000)) == len(series)
    days = Cutoff(days=5).apply(series)
    assert days.mjd[-1] <= series.mjd[0] + 5 and len(days) == np.sum(
        series.mjd <= series.mjd[0] + 5
    )
    with pytest.raises(ConventionError, match="at least 1"):
        series.first_nights(0)


def test_a_cutoff_is_one_of_three():
    assert Cutoff.from_options(None, None, None) is None
    assert str(Cutoff.from_options(None, None, 3)) == "its first 3 night(s)"
    with pytest.raises(ConventionError, match="one of --until, --days and --nights"):
        Cutoff(until=1.0, days=2.0)
    with pytest.raises(ConventionError, match="--nights must be at least 1"):
        Cutoff(nights=0)


def test_truncation_draws_are_seeded_and_cut_training_objects(train_store):
    data = convention.read(train_store)
    draws = truncation_draws(len(data), 0.5, seed=0)
    assert np.array_equal(draws, truncation_draws(len(data), 0.5, seed=0), equal_nan=True)
    assert 0 < np.isnan(draws).sum() < len(data)
    assert np.isnan(truncation_draws(len(data), 0.0, seed=0)).all()
    s = data[0]
    assert len(cut_to_nights(s, np.nan)) == len(s)
    assert set(cut_to_nights(s, 0.0).nights()) == {s.nights()[0]}
    assert len(cut_to_nights(s, 0.999)) == len(s)
    with pytest.raises(ConventionError, match="truncate_fraction must be between 0 and 1"):
        TrainSettings(data="d", out="o", truncate_fraction=1.5).validate()
    assert DEFAULTS.truncate_fraction == 0.0


def test_training_cuts_its_training_objects_and_only_those(train_store):
    data = convention.read(train_store)
    classes = get_taxonomy(4).classes
    split = make_splits(class_targets(data.labels, classes), 1, seed=0)[0]
    encoder = InputEncoder(InputSpec(("stamps",), 16, 999), data.bands)
    module = StampDataModule(data, classes, split, encoder, seed=0, truncate_fraction=1.0)
    draws = truncation_draws(len(data), 1.0, 0)  # the module's: one per object, from the seed
    try:
        for part in ("train", "val"):
            got = [len(example.inputs["frames"]) for example in module.encoded(part)]
            expected = []
            for row in split[part]:
                nights = data[row].nights()
                if part == "train":  # the first k nights, k = 1 + floor(draw x nights)
                    k = 1 + int(draws[row] * len(np.unique(nights)))
                    expected.append(int((nights <= np.unique(nights)[k - 1]).sum()))
                else:
                    expected.append(len(nights))
            assert got == expected
            if part == "train":
                assert sum(got) < sum(data.lengths[split["train"]])
    finally:
        module.close()


def test_predict_until_skips_and_names_objects_without_a_frame(trained_run, train_store, tmp_path):
    data = convention.read(train_store)
    firsts = np.array([data[i].mjd[0] for i in range(len(data))])
    until = float(np.median(firsts))
    late = [data.object_ids[i] for i in np.flatnonzero(firsts > until)]
    out = tmp_path / "early.csv"
    result = run(
        "predict", "--checkpoint", trained_run, "--data", train_store, "--out", out,
        "--until", until, "--batch-size", 5,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and late[0] in result.output
    table = pd.read_csv(out)
    assert len(table) == len(data) - len(late)
    assert not set(late) & set(table.object_id.astype(str))
    # The cut objects' probabilities are those of the series cut by hand.
    classifier = Classifier.load(trained_run)
    first = str(table.object_id[0])
    by_hand = probabilities_of(classifier, data[data.object_ids.index(first)].until(until))
    assert abs(by_hand[0] - table[f"p_{classifier.classes[0]}"][0]) < 1e-5


def test_predict_before_every_frame_is_one_line_and_writes_nothing(
    trained_run, train_store, tmp_path
):
    out = tmp_path / "none.csv"
    result = run(
        "predict", "--checkpoint", trained_run, "--data", train_store, "--out", out,
        "--until", 40000,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no object has a frame by MJD 40000.00000" in result.output
    assert "Traceback" not in result.output and not out.exists()
    both = run(
        "predict", "--checkpoint", trained_run, "--data", train_store, "--out", out,
        "--until", 50000, "--nights", 2,
    )  # fmt: skip
    assert both.exit_code == 2 and "give one of --until, --days and --nights" in both.output


def test_predict_writes_the_spread_of_an_ensemble(trained_run, train_store, tmp_path):
    out = tmp_path / "p.csv"
    result = run("predict", "--checkpoint", trained_run, "--data", train_store, "--out", out,
                 "--nights", 3)  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    classes = Classifier.load(trained_run).classes
    members = [Classifier.load(trained_run / f"fold_{k}") for k in range(2)]
    data = convention.read(train_store)
    s = data[0].first_nights(3)
    per_fold = np.array([probabilities_of(m, s) for m in members])
    for k, c in enumerate(classes):  # alone or in a padded batch: float32 rounding
        assert abs(table[f"sd_{c}"][0] - per_fold[:, k].std()) < 2e-4
        assert abs(table[f"p_{c}"][0] - per_fold[:, k].mean()) < 2e-4


def test_dropout_samples_spread_a_single_model(trained_run, train_store, tmp_path):
    fold = trained_run / "fold_0"
    plain = tmp_path / "plain.csv"
    assert (
        run("predict", "--checkpoint", fold, "--data", train_store, "--out", plain).exit_code == 0
    )
    assert not any(c.startswith("sd_") for c in pd.read_csv(plain).columns)
    outs = []
    for name in ("a.csv", "b.csv"):
        out = tmp_path / name
        result = run("predict", "--checkpoint", fold, "--data", train_store, "--out", out,
                     "--dropout-samples", 8)  # fmt: skip
        assert result.exit_code == 0, result.output
        outs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outs[0], outs[1])  # seeded: the same run to run
    sd = outs[0][[c for c in outs[0].columns if c.startswith("sd_")]].to_numpy()
    assert sd.shape[1] == 4 and (sd > 0).any()
    bad = run("predict", "--checkpoint", fold, "--data", train_store, "--out", plain,
              "--dropout-samples", -1)  # fmt: skip
    assert bad.exit_code == 2 and "--dropout-samples must be 0 or more" in bad.output


def test_probabilities_over_time_and_their_plot(trained_run, train_store, tmp_path):
    data = convention.read(train_store)
    s = data[3]
    classifier = Classifier.load(trained_run)
    history = classifier.over_time(s)
    mjd, proba = history.mjd, history.proba
    assert len(mjd) == len(np.unique(s.nights())) and proba.shape == (len(mjd), 4)
    assert np.all(np.diff(mjd) > 0) and history.classes == tuple(classifier.classes)
    second = probabilities_of(classifier, s.first_nights(2))
    assert np.abs(proba[1] - second).max() < 1e-5  # after the second night: two nights
    last = probabilities_of(classifier, s)
    assert np.abs(proba[-1] - last).max() < 1e-5  # after the last night: the whole object
    out = tmp_path / "p.png"
    result = run("plot", train_store, "--object", s.object_id, "--out", out,
                 "--checkpoint", trained_run)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = run("plot", train_store, "--object", s.object_id, "--out", out,
                  "--checkpoint", tmp_path / "nothing")  # fmt: skip
    assert missing.exit_code == 2 and "no such checkpoint" in missing.output
