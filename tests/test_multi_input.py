"""The scene input and the multi-input ConvEntion (the flagship)."""

import numpy as np
import pytest
import torch

from convention.data.reference import MEDIAN_OF_FRAMES, TEMPLATE, Reference
from convention.data.series import references_of
from convention.errors import ConventionError
from convention.inputs import InputEncoder
from convention.inputs.encoder import draw_augmentation
from convention.models import create_model
from tests.test_models import UGRIZ, encoded_batch
from tests.test_series import make_series


def test_a_band_without_a_template_falls_back_to_the_median_of_its_frames():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(7, 4, 4)).astype(np.float32)
    frames[5] = np.nan
    band = np.array(["sdss::u", "sdss::g", "sdss::u", "sdss::g", "sdss::u", "sdss::i", "sdss::i"])
    series = make_series(m=7, size=4, band=band, object_id="r", frames=frames)
    u, g, i = (int(series.band[k]) for k in (0, 1, 5))
    template = Reference(np.full((4, 4), 7.0), TEMPLATE, n_frames=20)
    series.references = {g: template}
    reference = references_of(series)
    assert sorted(reference) == sorted({u, g, i})
    assert reference[g] is template
    assert reference[u].kind == reference[i].kind == MEDIAN_OF_FRAMES
    assert np.allclose(reference[u].stamp, np.median(frames[[0, 2, 4]], axis=0))
    assert np.allclose(reference[i].stamp, frames[6])  # the NaN frame is left out


def _scene_encoder(series):
    model = create_model("convention-multi", 4, 5, "tiny")
    encoder = InputEncoder(model.input_spec, UGRIZ)
    encoder.fit(series)
    return model, encoder


def test_a_band_without_valid_pixels_is_masked_and_the_model_still_predicts():
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(10, 32, 32)).astype(np.float32)
    band = np.array(UGRIZ * 2)
    frames[band == "sdss::i"] = np.nan  # no usable reference in i
    series = make_series(m=10, size=32, band=band, object_id="noi", frames=frames)
    model, encoder = _scene_encoder([series])
    example = encoder.encode(series)
    assert example.inputs["scene_mask"].tolist() == [True, True, True, False, True]
    assert (example.inputs["scene"][3] == 0).all()
    assert encoder.incomplete([example]) == {
        "stamps": 0,
        "scene": 1,
        "lightcurve": 0,
        "features": 1,
    }
    with torch.no_grad():
        logits = model.eval()(**encoder.collate([example])["inputs"])
    assert torch.isfinite(logits).all()


def test_the_scene_turns_with_the_frames():
    rng = np.random.default_rng(2)
    still = rng.normal(size=(32, 32)).astype(np.float32)
    band = np.array(UGRIZ * 2)
    series = make_series(m=10, size=32, band=band, object_id="s", frames=np.stack([still] * 10))
    _, encoder = _scene_encoder([series])
    example = encoder.encode(series)
    for seed in range(6):
        draw = draw_augmentation(10, np.random.default_rng(seed), spatial=True)
        turned = encoder.augment(example, np.random.default_rng(seed))
        frame = turned.inputs["frames"][0]
        band_of_frame = turned.inputs["bands"][0] - 1
        assert draw.keep.size == len(turned.inputs["frames"])
        assert np.allclose(turned.inputs["scene"][band_of_frame], frame, atol=1e-6)


def test_a_masked_scene_band_is_ignored():
    torch.manual_seed(0)
    model = create_model("convention-multi", 4, 5, "tiny").eval()
    inputs = encoded_batch(model.input_spec)
    inputs["scene_mask"][:, 2] = False
    with torch.no_grad():
        before = model(**inputs)
        inputs["scene"][:, 2] = 50.0
        after = model(**inputs)
    assert torch.allclose(before, after, atol=1e-6)


@pytest.mark.parametrize(
    "inputs",
    [
        ("scene", "lightcurve"),
        ("stamps", "lightcurve"),
        ("stamps", "scene"),
        ("stamps", "photometry"),
        ("difference", "scene"),
    ],
)
def test_ablations_read_only_their_inputs(inputs):
    torch.manual_seed(0)
    model = create_model("convention-multi", 4, 5, "tiny", inputs=inputs)
    assert set(model.input_spec.kinds) == set(inputs)
    batch = encoded_batch(model.input_spec)
    assert "scene" not in batch or "scene" in inputs
    logits = model(**batch)
    assert logits.shape == (3, 4)


def test_modality_dropout_keeps_one_encoder_per_object():
    model = create_model("convention-multi", 4, 5, "tiny", modality_dropout=0.9).train()
    torch.manual_seed(0)
    kept = model._kept_modalities(64, torch.device("cpu"))
    present = torch.cat(list(kept.values()), dim=1)
    assert list(kept) == ["stamps", "scene", "lightcurve", "features"]
    assert present.any(dim=1).all() and not present.all()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"inputs": ("frames",)}, "inputs must be a non-empty subset"),
        ({"inputs": ()}, "inputs must be a non-empty subset"),
        ({"frames_preset": "huge"}, "frames_preset must be one of"),
        ({"fusion": "middle"}, "fusion must be one of"),
        ({"fusion": "early", "inputs": ("scene", "features")}, "early fusion joins"),
    ],
)
def test_bad_flagship_settings(overrides, message):
    with pytest.raises(ConventionError, match=message):
        create_model("convention-multi", 4, 5, "tiny", **overrides)


def test_features_input_scales_and_flags_missing_values():
    from convention.inputs.features import Features

    model = create_model(
        "convention-multi", 4, 5, "tiny", inputs=("stamps", "scene", "lightcurve", "features")
    )
    rng = np.random.default_rng(3)
    series = [
        make_series(
            m=12,
            size=32,
            band=np.array(UGRIZ[:4] * 3),  # no z frame: its features are missing
            object_id=f"f{k}",
            frames=rng.normal(size=(12, 32, 32)),
        )
        for k in range(4)
    ]
    encoder = InputEncoder(model.input_spec, UGRIZ)
    encoder.fit(series)
    kind = next(k for k in encoder.kinds if isinstance(k, Features))
    vector = encoder.encode(series[0]).inputs["features"]
    n = len(kind.names)
    assert vector.shape == (2 * n,) and np.isfinite(vector).all()
    values, missing = vector[:n], vector[n:].astype(bool)
    z_columns = [
        k
        for k, name in enumerate(kind.names)
        if name.startswith("sdss::z:") and "n_obs" not in name
    ]
    assert missing[z_columns].all() and (values[missing] == 0).all()
    with torch.no_grad():
        logits = model.eval()(**encoder.collate([encoder.encode(s) for s in series])["inputs"])
    assert logits.shape == (4, 4) and torch.isfinite(logits).all()


def test_features_fitted_for_other_bands_are_refused():
    from convention.inputs.features import Features

    model = create_model("convention-multi", 4, 5, "tiny", inputs=("features",))
    state = Features(model.input_spec, UGRIZ).state
    with pytest.raises(ConventionError, match="fitted for other bands"):
        InputEncoder(model.input_spec, UGRIZ[:3], states={"features": state})


def test_selection_light_curve_is_the_series_light_curve():
    from convention.inputs.base import FrameSelector
    from convention.lightcurves import FORCED_PSF, lightcurve_of

    rng = np.random.default_rng(4)
    frames = rng.normal(size=(10, 16, 16)).astype(np.float32)
    frames[2, :4] = np.nan
    series = make_series(m=10, size=16, band=np.array(UGRIZ * 2), object_id="p", frames=frames)
    selection = FrameSelector(UGRIZ, 99).select(series)
    expected = lightcurve_of(series, FORCED_PSF)
    for column in ("flux", "flux_err"):
        measured = selection.lightcurve(FORCED_PSF)[column]
        assert np.allclose(measured, expected[column], equal_nan=True)
    assert selection.lightcurve(FORCED_PSF) is selection.lightcurve(FORCED_PSF)  # measured once


def test_early_fusion_lets_the_frames_attend_to_the_other_inputs():
    """With late fusion the frames' features ignore the light curve; with early fusion its
    token enters the frames' attention, so they change with it (and not with the padding
    of the frame sequence)."""
    torch.manual_seed(0)
    inputs = encoded_batch(create_model("convention-multi", 4, 5, "tiny").input_spec)
    moved = {**inputs, "lc": inputs["lc"] + 3.0}
    for fusion, changes in (("late", False), ("early", True)):
        model = create_model("convention-multi", 4, 5, "tiny", fusion=fusion).eval()
        width = model.frames.num_features
        with torch.no_grad():
            before = model.forward_features(**inputs)[:, :width]
            after = model.forward_features(**moved)[:, :width]
        assert (not torch.allclose(before, after, atol=1e-5)) == changes
    padded = {
        **inputs,
        **{k: torch.nn.functional.pad(inputs[k], (0, 0, 0, 0, 0, 3)) for k in ("frames",)},
        **{k: torch.nn.functional.pad(inputs[k], (0, 3)) for k in ("bands", "times", "mask")},
    }
    with torch.no_grad():
        assert torch.allclose(model(**inputs), model(**padded), atol=1e-5)
