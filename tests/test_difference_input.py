"""The ``difference`` input kind: each frame less its band's reference, or the source's own
difference stamps."""

import numpy as np

from convention.data.reference import TEMPLATE, Reference
from convention.inputs import InputEncoder, InputSpec
from convention.photometry import DIFFERENCE_CHANNEL
from convention.psf import moffat_psf, moffat_sampled
from tests.test_models import UGRIZ
from tests.test_series import make_series

SIZE = 16
FWHM_PIX = 1.4 / 0.396


def _host_and_transient():
    """Ten g/r frames (seeing 1.4") of a host galaxy off centre, with a point source at
    the centre from the sixth frame on, and the host alone as each band's template."""
    host = 40.0 * moffat_sampled((SIZE, SIZE), 3 * FWHM_PIX, offset=(2.0, -1.0))
    source = 3.0 * moffat_psf((SIZE, SIZE), FWHM_PIX)
    frames = np.stack([host + (source if k >= 5 else 0.0) for k in range(10)])
    series = make_series(m=10, size=SIZE, frames=frames)
    template = Reference(host, TEMPLATE, n_frames=20, psf_fwhm=1.4)
    series.references = {int(band): template for band in set(series.band)}
    return series, source


def _encoded(series):
    encoder = InputEncoder(InputSpec(("difference",), SIZE, 20), UGRIZ)
    encoder.fit([series])
    return encoder.encode(series).inputs, encoder.kinds[0].normalisation


def test_differences_hold_the_transient_and_not_the_host():
    series, source = _host_and_transient()
    inputs, norm = _encoded(series)
    diff = inputs["diff"]
    assert diff.shape == (10, SIZE, SIZE)
    assert np.abs(diff[:5]).max() < 1e-5  # before the transient: nothing left of the host
    scale = dict(zip(norm.bands, norm.scale, strict=True))
    for k in range(5, 10):
        band_scale = scale[series.band_names[k]]
        assert np.allclose(diff[k], np.arcsinh(source / band_scale), atol=1e-5)
    assert inputs["diff_bands"].tolist() == [2, 3] * 5  # g and r of the model's ugriz
    assert np.allclose(inputs["diff_times"], np.arange(10))


def test_the_sources_own_differences_are_read_as_they_are():
    series, _ = _host_and_transient()
    own = np.random.default_rng(0).normal(size=(10, SIZE, SIZE)).astype(np.float32)
    own[3, :2] = np.nan
    series.channels = {DIFFERENCE_CHANNEL: own}
    inputs, norm = _encoded(series)
    scale = np.array([dict(zip(norm.bands, norm.scale, strict=True))[b] for b in series.band_names])
    expected = np.nan_to_num(np.arcsinh(own / scale[:, None, None]), nan=0.0)
    assert np.allclose(inputs["diff"], expected, atol=1e-6)
    assert norm.median == (0.0,) * 5


def test_the_alert_stream_reads_the_survey_s_difference_cutouts(tmp_path, ztf_alerts):
    """A model reading differences is served ZTF's own difference cutouts, not differences
    made again from the science and template cutouts."""
    from dataclasses import replace

    from convention.alert_stream import AlertClassifier
    from convention.classifier import ModelSettings, save_model
    from convention.inputs import Normalisation
    from convention.io.formats.alerts import alert_series

    bands = ("ztf::g", "ztf::r", "ztf::i")
    settings = ModelSettings(
        "convention-multi",
        "tiny",
        {"stamp_size": 63, "inputs": ["difference"]},
        ("AGN", "SNIa", "Variable", "SNOther"),
        bands,
        InputSpec(("difference",), 63, 99),
        {"difference": {"normalisation": Normalisation.identity(bands).to_dict()}},
        temperature=1.0,
    )
    save_model(tmp_path / "m", settings.build(), settings)
    classifier = AlertClassifier.load(tmp_path / "m")
    assert classifier.cutouts == ("science", "difference")
    path = sorted((ztf_alerts / "valid").glob("*.avro"))[0]
    (alert,), rejected = classifier.read([(path.name, path.read_bytes())])
    assert not rejected and not alert.missing
    series = alert_series([alert], classifier.cutouts)
    own = classifier.classifier.encoder.encode(series).inputs["diff"]
    assert np.allclose(own, np.nan_to_num(np.arcsinh(alert.images["difference"])[None]))
    made = classifier.classifier.encoder.encode(replace(series, channels={})).inputs["diff"]
    assert not np.allclose(made, own, atol=0.5)
    result = classifier.classify_sequences([[alert]])
    assert len(result.predictions) == 1 and result.predictions["missing_cutouts"][0] == ""


def test_a_model_s_own_channels_are_asked_of_alert_files_and_left_elsewhere(ztf_alerts, tiny_store):
    """``predict`` and ``evaluate`` of a difference model on alert files read ZTF's own
    difference cutouts; a source that gives none opens as before, for the kind to make."""
    from convention.io import read
    from convention.io.formats.alerts import read_alert_file

    path = sorted((ztf_alerts / "valid").glob("*.avro"))[0]
    (offered,) = read(path, offer_channels=(DIFFERENCE_CHANNEL,))
    (plain,) = read(path)
    assert DIFFERENCE_CHANNEL not in plain.channels
    (packet,) = read_alert_file(path, ("science", DIFFERENCE_CHANNEL)).alerts
    assert np.array_equal(offered.channels[DIFFERENCE_CHANNEL][0], packet.images["difference"])
    stored = read(tiny_store, offer_channels=(DIFFERENCE_CHANNEL,))
    assert DIFFERENCE_CHANNEL not in stored[0].channels
