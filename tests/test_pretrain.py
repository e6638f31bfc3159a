"""Self-supervised pre-training: the contrastive loss, a backbone written and refused as
a classifier, fine-tuning from it (its weights and normalisation kept), label fractions
for learning curves, and the SDSS-II candidates of unknown type simulated unlabelled."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from convention.classifier import load_backbone
from convention.classifier.folder import PRETRAINING_FILE
from convention.cli import app
from convention.data.splits import label_subset
from convention.errors import ConventionError
from convention.sim.catalog import PAPER_CLASS_COUNTS, read_sdss2_catalog
from convention.sim.simulate import SimulationSettings, simulate_series
from convention.training import TrainSettings, train
from convention.training.pretrain import PretrainSettings, nt_xent, pretrain


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def backbone(train_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "backbone"
    result = run(
        "pretrain", "--data", train_store, "--out", out, "--preset", "tiny",
        "--stamp-size", 16, "--epochs", 2, "--batch-size", 16,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_nt_xent_rewards_views_that_agree():
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    agreeing = nt_xent(torch.cat([z, z]), 0.2)
    unrelated = nt_xent(torch.cat([z, torch.roll(z, 1, 0)]), 0.2)
    assert agreeing < unrelated
    assert nt_xent(torch.cat([z, z]), 0.05) < agreeing  # sharper: the twin stands out more


def test_a_backbone_is_written_and_is_not_a_classifier(backbone, train_store, tmp_path):
    summary = json.loads((backbone / PRETRAINING_FILE).read_text())
    assert summary["objects"] == 48 and len(summary["loss_per_epoch"]) == 2
    assert all(np.isfinite(summary["loss_per_epoch"]))
    assert not backbone.with_name(backbone.name + ".partial").exists()
    result = run(
        "predict", "--checkpoint", backbone, "--data", train_store, "--out", tmp_path / "p.csv"
    )
    assert result.exit_code == 2 and "a pre-trained backbone, not a classifier" in result.output
    again = run("pretrain", "--data", train_store, "--out", backbone, "--preset", "tiny")
    assert again.exit_code == 2 and "a backbone is never overwritten" in again.output


def test_fine_tuning_starts_from_the_backbone(backbone, train_store, tmp_path):
    from convention.models import create_model
    from convention.training.fit import _start_from_backbone, classifier_keys

    bb_settings, bb_model = load_backbone(backbone)
    settings = TrainSettings(
        data=str(train_store),
        out=str(tmp_path / "run"),
        model="convention-multi",
        preset="tiny",
        overrides={"stamp_size": 16},
        init=str(backbone),
    )
    model = create_model("convention-multi", 3, 5, "tiny", stamp_size=16)
    states = _start_from_backbone(model, settings, list(bb_settings.bands))
    assert states == bb_settings.encoders
    theirs = bb_model.state_dict()
    head = classifier_keys(model)
    assert head and head == {f"head.{k}" for k in model.get_classifier().state_dict()}
    for key, value in model.state_dict().items():
        if key not in head:
            assert torch.equal(value, theirs[key]), key
    run_dir = train(
        TrainSettings(
            data=str(train_store),
            out=str(tmp_path / "fine"),
            model="convention-multi",
            preset="tiny",
            overrides={"stamp_size": 16},
            epochs=1,
            batch_size=8,
            progress=False,
            init=str(backbone),
            label_fraction=0.5,
        )
    )
    saved = json.loads((run_dir / "fold_0" / "settings.json").read_text())
    assert saved["encoders"] == json.loads(json.dumps(bb_settings.encoders))
    other = TrainSettings(data=str(train_store), out="o", preset="tiny", init=str(backbone))
    with pytest.raises(ConventionError, match="the backbone is convention-multi"):
        _start_from_backbone(
            create_model("convention", 4, 5, "tiny"), other, list(bb_settings.bands)
        )


def test_label_subsets_are_stratified_and_nested():
    targets = np.repeat(np.arange(4), [50, 20, 100, 30])
    train = np.arange(len(targets))
    ten, thirty = label_subset(train, targets, 0.1, 0), label_subset(train, targets, 0.3, 0)
    assert np.bincount(targets[ten]).tolist() == [5, 2, 10, 3]
    assert set(ten) <= set(thirty)
    assert np.array_equal(label_subset(train, targets, 1.0, 0), train)
    with pytest.raises(ConventionError, match="label_fraction"):
        TrainSettings(data="d", out="o", label_fraction=0.0).validate()


def test_bad_pretraining_settings_are_one_line(train_store, tmp_path):
    for args, message in (
        (("--model", "rnn"), "unknown model 'rnn'"),
        (("--batch-size", 1), "batch_size must be at least 2"),
        (("--temperature", 0), "temperature must be positive"),
    ):
        result = run("pretrain", "--data", train_store, "--out", tmp_path / "b", *args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "b").exists()
    with pytest.raises(ConventionError, match="fewer than one batch"):
        pretrain(PretrainSettings(data=(str(train_store),), out=str(tmp_path / "c"), batch_size=64))


def test_unknown_type_candidates_are_simulated_unlabelled(sdss2_catalog):
    specs = read_sdss2_catalog(sdss2_catalog, unlabelled=True)
    assert len(specs) == 2009 and not any(s.labelled for s in specs)
    assert all(np.isnan(s.redshift) for s in specs)
    drawn = np.array([list(PAPER_CLASS_COUNTS).index(s.label) for s in specs])
    fractions = np.array(list(PAPER_CLASS_COUNTS.values())) / sum(PAPER_CLASS_COUNTS.values())
    assert np.abs(np.bincount(drawn, minlength=4) / len(specs) - fractions).max() < 0.05
    assert [s.label for s in read_sdss2_catalog(sdss2_catalog, unlabelled=True)[:20]] == [
        s.label for s in specs[:20]
    ]
    settings = SimulationSettings(catalog=str(sdss2_catalog), unlabelled=True, stamp_size=16)
    assert "--unlabelled" in settings.command()
    series = list(simulate_series(settings, 1, specs[:2]))
    assert [s.label for s in series] == [None, None] and all(len(s) > 0 for s in series)
    with pytest.raises(ConventionError, match="give --catalog"):
        SimulationSettings(n_objects=5, unlabelled=True)
