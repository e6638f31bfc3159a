"""Input kinds declare what they read besides the frames (``Needs``): the encoder says what a
data set lacks before reading it, the readers and the alert stream supply what is needed,
and one rule decides each object's light curve (``convention.lightcurves``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import convention
from convention.alert_stream import AlertClassifier
from convention.classifier import Classifier, ModelSettings
from convention.data.collection import MemoryCollection
from convention.data.lightcurve import make_lightcurve
from convention.errors import ConventionError
from convention.inputs import InputEncoder, InputKind, InputSpec, Needs, register_input_kind
from convention.inputs.base import Selection
from convention.io import scan
from convention.io.ingest import ingest
from convention.lightcurves import PhotometryRule, lightcurve_of
from tests.test_series import make_series

GR = ["sdss::g", "sdss::r"]


@register_input_kind("probe-template")
class TemplateProbe(InputKind):
    """Reads each frame's template image: its mean, one number per object."""

    needs = Needs(channels=("template",))
    fixed = ("template_mean",)

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        template = selection.series.channels["template"][selection.index]
        mean = np.nanmean(template, dtype=np.float64)
        return {"template_mean": np.array([mean], dtype=np.float32)}

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        return {"template_mean": torch.zeros(1, 1)}


@register_input_kind("probe-wavelet")
class WaveletProbe(TemplateProbe):
    """Reads images no alert carries."""

    needs = Needs(channels=("wavelet",))


@register_input_kind("probe-reference")
class ReferenceProbe(TemplateProbe):
    """Reads each band's reference stamp itself (as the scene does)."""

    needs = Needs(references=True)

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        means = [np.nanmean(r.stamp) for r in selection.references.values()]
        return {"template_mean": np.array([np.mean(means)], dtype=np.float32)}


@register_input_kind("probe-supplied")
class SuppliedProbe(InputKind):
    """Reads the source's own light curve and the redshift."""

    needs = Needs(photometry=(PhotometryRule("supplied"),), metadata=("redshift",))
    fixed = ("points",)

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        rule = self.needs.photometry[0]
        return {"points": np.array([len(selection.lightcurve(rule))], dtype=np.float32)}

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        return {"points": torch.zeros(1, 1)}


def _collection(*series) -> MemoryCollection:
    channels = sorted(series[0].channels)
    return MemoryCollection(
        series, path="d.h5", survey="sdss2", bands=GR, class_names=(), pixel_scale=0.396,
        channels=channels,
    )  # fmt: skip


def _complete(**changes):
    series = make_series(label=None)
    own = make_lightcurve([53600.5, 53601.5], ["sdss::g", "sdss::r"], [1.0, 2.0], [0.5, 0.5])
    fields = {
        "channels": {"template": np.full(series.frames.shape, 3.0)},
        "lightcurve": own,
        "redshift": 0.1,
        **changes,
    }
    return make_series(label=None, **fields)


def test_the_encoder_says_what_a_collection_lacks_before_reading_it():
    spec = InputSpec(("stamps", "probe-template", "probe-supplied"), 8, 99)
    encoder = InputEncoder(spec, GR)
    assert encoder.needs == Needs(
        pixels=True,
        channels=("template",),
        photometry=(PhotometryRule("supplied"),),
        metadata=("redshift",),
    )
    bare = make_series(label=None)
    assert encoder.lacks(_collection(bare)) == [
        "no 'template' images (channels held: [])",
        "no object has a light curve of its own",
        "no object has a 'redshift'",
    ]
    with pytest.raises(ConventionError, match=r"^d\.h5: no 'template' images .*; no object has"):
        encoder.check_collection(_collection(bare))
    with pytest.raises(ConventionError, match="object obj1: no 'template' images"):
        encoder.encode(bare)
    complete = _complete()
    assert encoder.lacks(_collection(complete)) == []
    inputs = encoder.encode(complete).inputs
    assert inputs["template_mean"].tolist() == [3.0] and inputs["points"].tolist() == [2.0]
    larger = _complete(frames=np.zeros((6, 16, 16)), channels={})
    assert encoder.lacks(_collection(larger))[0] == (
        "stamps are 16x16, the model reads 8x8 (set stamp_size)"
    )


def test_one_rule_decides_the_light_curve():
    own = _complete()
    forced = lightcurve_of(own)  # forced PSF photometry, one row per frame
    assert len(forced) == len(own) and np.array_equal(forced["mjd"], own.mjd)
    assert lightcurve_of(own, PhotometryRule("supplied")) is own.lightcurve
    assert lightcurve_of(own, PhotometryRule("supplied-else-forced")) is own.lightcurve
    bare = make_series(label=None)
    assert len(lightcurve_of(bare, PhotometryRule("supplied-else-forced"))) == len(bare)
    both = lightcurve_of(own, PhotometryRule("both"))
    assert len(both) == len(own) + 2 and np.all(np.diff(both["mjd"]) >= 0)
    assert sorted(set(both["origin"])) == ["forced", "supplied"]
    with pytest.raises(ConventionError, match="object obj1: object has no light curve of its own"):
        lightcurve_of(bare, PhotometryRule("supplied"))
    with pytest.raises(ConventionError, match="photometry source must be one of"):
        PhotometryRule("guessed")


def test_readers_read_the_channels_a_model_needs(ztf_alerts, tmp_path):
    folder = ztf_alerts / "valid"
    assert convention.read(folder).channels == []  # the science cutout alone by default
    alerts = convention.read(folder, require_channels=("template",))
    assert alerts.channels == ["template"]
    first = alerts[0]
    assert first.channels["template"].shape == first.frames.shape
    ingest(scan("alerts", [folder], channels=("template", "difference")), tmp_path / "z.h5")
    store = convention.read(tmp_path / "z.h5", require_channels=("difference",))
    assert store.channels == ["difference"]  # only what is asked is read
    with pytest.raises(ConventionError, match="no 'wavelet' images"):
        convention.read(tmp_path / "z.h5", channels=("wavelet",))


def _probe_classifier(kinds: tuple[str, ...]) -> Classifier:
    """A classifier whose inputs are ``kinds`` and whose engine gives uniform probabilities
    (the alert stream's reading, not a model, is under test)."""
    classes = ("AGN", "SNIa")
    settings = ModelSettings(
        "convention", "tiny", {}, classes, ("ztf::g", "ztf::r", "ztf::i"),
        InputSpec(kinds, 63, 99), {kind: {} for kind in kinds},
    )  # fmt: skip

    def uniform(inputs: dict[str, torch.Tensor]) -> np.ndarray:
        batch = len(next(iter(inputs.values())))
        return np.full((1, batch, len(classes)), 1 / len(classes))

    return Classifier(settings, uniform)


def test_the_alert_stream_reads_the_cutouts_the_model_needs(ztf_alerts):
    alerts = AlertClassifier(_probe_classifier(("probe-template",)), "probe")
    assert alerts.cutouts == ("science", "template")
    packets = [(p.name, p.read_bytes()) for p in sorted((ztf_alerts / "valid").glob("*.avro"))]
    result = alerts.classify(packets)
    assert len(result.predictions) == len(packets) and result.rejected.empty
    with pytest.raises(ConventionError, match=r"reads \['wavelet'\] images, an alert carries"):
        AlertClassifier(_probe_classifier(("probe-wavelet",)), "probe")


def test_each_row_says_what_served_as_its_bands_reference(ztf_alerts, tmp_path):
    import fastavro

    source = ztf_alerts / "valid" / "396522680015040001.avro"
    with source.open("rb") as f:
        reader = fastavro.reader(f)
        schema, (record,) = reader.writer_schema, list(reader)
    record.update(objectId="ZTF00bare", candid=record["candid"] + 1, cutoutTemplate=None)
    bare = tmp_path / "bare.avro"
    with bare.open("wb") as f:
        fastavro.writer(f, fastavro.parse_schema(schema), [record])
    packets = [("with.avro", source.read_bytes()), ("bare.avro", bare.read_bytes())]
    reading = AlertClassifier(_probe_classifier(("probe-reference",)), "probe").classify(packets)
    assert reading.rejected.empty  # a packet without its template is classified
    rows = reading.predictions.set_index("file")["reference"]
    assert rows.to_dict() == {"with.avro": "template", "bare.avro": "median-of-frames"}
    frames_only = AlertClassifier(_probe_classifier(("probe-template",)), "probe")
    assert set(frames_only.classify(packets).predictions["reference"]) == {"none"}


def test_a_packet_without_a_cutout_is_classified_from_the_objects_earlier_ones(
    ztf_alerts, tmp_path
):
    import fastavro

    source = ztf_alerts / "valid" / "396522680015040001.avro"
    with source.open("rb") as f:
        reader = fastavro.reader(f)
        schema, (record,) = reader.writer_schema, list(reader)
    later = dict(record, candid=record["candid"] + 1, cutoutScience=None)
    later["candidate"] = dict(record["candidate"], jd=record["candidate"]["jd"] + 1.0)
    bare = tmp_path / "bare.avro"
    with bare.open("wb") as f:
        fastavro.writer(f, fastavro.parse_schema(schema), [later])
    packets = [("with.avro", source.read_bytes()), ("bare.avro", bare.read_bytes())]
    stream = AlertClassifier(_probe_classifier(("probe-template",)), "probe")
    alone = stream.classify(packets)
    assert alone.predictions["file"].tolist() == ["with.avro"]
    (cause,) = alone.rejected["cause"]
    assert cause == f"bare.avro: object {record['objectId']}: alert has no science cutout"
    alerts, rejected = stream.read(packets)
    assert not rejected and [a.missing for a in alerts] == [(), ("science",)]
    with_past = stream.classify_sequences([alerts[:1], alerts]).predictions.set_index("file")
    # Its earlier alert's frame, its own photometry; the row says what it lacked.
    assert with_past["missing_cutouts"].to_dict() == {"with.avro": "", "bare.avro": "science"}
    assert with_past["n_epochs"].to_dict() == {"with.avro": 1, "bare.avro": 1}
    assert with_past.loc["bare.avro", "mjd"] == with_past.loc["with.avro", "mjd"] + 1.0
