"""The ``photometry`` input: the source's own light curve, non-detections included."""

import numpy as np
import pytest
import torch

from convention.data.lightcurve import make_lightcurve
from convention.inputs import InputEncoder, InputSpec
from convention.models import create_model
from tests.test_series import make_series

GR = ["ztf::g", "ztf::r"]


def alert_like(m=4):
    """Frames at MJD 60000..60000+m-1 (g, r alternating) and a packet-like light curve:
    three limits before the first frame, a detection at every frame, an i-band point and
    one detection after the last frame."""
    frames = np.random.default_rng(0).normal(size=(m, 8, 8))
    band = np.array(GR * m)[:m]
    mjd = 60000.0 + np.arange(m)
    lc = make_lightcurve(
        [59990.0, 59994.0, 59998.0, *mjd, 59999.0, 60000.0 + m],
        ["ztf::g", "ztf::r", "ztf::g", *band, "ztf::i", "ztf::g"],
        [0.0, 0.0, 0.0, *np.arange(1.0, m + 1) * 10, 5.0, 99.0],
        [2.0, 2.0, 2.0, *np.ones(m), 1.0, 1.0],
        [False, False, False, *[True] * m, True, True],
    )
    return make_series(
        m=m, size=8, frames=frames, band=band, mjd=mjd, survey="ztf", pixel_scale=1.0, lightcurve=lc
    )


def encoder_of(series, max_frames=99):
    encoder = InputEncoder(InputSpec(("photometry",), 8, max_frames), GR)
    encoder.fit(series)
    return encoder


def test_the_points_are_the_sources_up_to_the_last_frame_with_limits_flagged():
    series = alert_like()
    encoder = encoder_of([series])
    arrays = encoder.encode(series).inputs
    # The three limits, then the four detections; the i point and the later one left out.
    assert arrays["phot_times"].tolist() == [0, 4, 8, 10, 11, 12, 13]
    assert arrays["phot_bands"].tolist() == [1, 2, 1, 1, 2, 1, 2]
    assert arrays["phot"][:, 2].tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert np.all(arrays["phot"][:3, 0] == 0)  # a limit's flux is zero
    # Scaled by the band's median error over the training points (g: 2, 2, 1, 1, 1 -> 1).
    assert arrays["phot"][3, 0] == pytest.approx(np.arcsinh(10.0))
    assert arrays["phot"][0, 1] == pytest.approx(np.log(2.0))
    # Cut at its second frame, the object reads what its packets carried by then.
    cut = encoder.encode(series.until(60001.0)).inputs
    assert cut["phot_times"].tolist() == [0, 4, 8, 10, 11]


def test_the_most_recent_points_are_kept():
    series = alert_like()
    arrays = encoder_of([series], max_frames=3).encode(series).inputs
    assert arrays["phot_times"].tolist() == [0, 1, 2]
    assert arrays["phot"][:, 2].tolist() == [1, 1, 1]


def test_without_a_light_curve_of_its_own_the_frames_are_measured():
    series = alert_like()
    series.lightcurve = None
    arrays = encoder_of([series]).encode(series).inputs
    assert arrays["phot_times"].tolist() == [0, 1, 2, 3]
    assert arrays["phot_bands"].tolist() == [1, 2, 1, 2]


def test_the_flagship_reads_the_photometry_when_asked():
    torch.manual_seed(0)
    default = create_model("convention-multi", 4, 2, "tiny", stamp_size=8)
    assert "photometry" not in default.input_spec.kinds
    model = create_model(
        "convention-multi", 4, 2, "tiny", stamp_size=8, inputs=("scene", "photometry")
    ).eval()
    series = alert_like()
    encoder = InputEncoder(model.input_spec, GR)
    encoder.fit([series])
    inputs = encoder.collate([encoder.encode(series)])["inputs"]
    with torch.no_grad():
        before = model(**inputs)
        inputs["phot"][0, -1, 0] += 3.0
        after = model(**inputs)
    assert torch.isfinite(before).all() and not torch.allclose(before, after)
