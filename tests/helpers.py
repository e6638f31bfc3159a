"""What several test files use: a classifier's probabilities as plain arrays."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from convention.classifier import BatchPrediction, Classifier
from convention.data.series import StampSeries


def probabilities(classifier: Classifier, objects, **options) -> np.ndarray:
    """(n, C) the probabilities ``classifier.classify(objects, **options)`` gives."""
    return BatchPrediction.join(classifier.classify(objects, **options), classifier.classes).proba


def probabilities_of(classifier: Classifier, series: StampSeries | Iterable) -> np.ndarray:
    """(C,) the probabilities of one object."""
    return probabilities(classifier, [series])[0]


def run(*args):
    """The command line in this process: ``run("predict", "--data", path, ...)``."""
    from typer.testing import CliRunner

    from convention.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, message: str) -> None:
    """The command failed on a user error: exit 2, one line ``error: ...`` holding
    ``message``, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def flagship_reads(kind: str, bands: list[str], stamp_size: int, series: list) -> bool:
    """Whether a tiny flagship reading the scene and ``kind`` (fitted on ``series``) changes
    its logits for ``series[0]`` when the first value of ``kind``'s input moves."""
    import torch

    from convention.inputs import InputEncoder
    from convention.models import create_model

    torch.manual_seed(0)
    model = create_model(
        "convention-multi", 4, len(bands), "tiny", stamp_size=stamp_size, inputs=("scene", kind)
    ).eval()
    encoder = InputEncoder(model.input_spec, bands)
    encoder.fit(series)
    inputs = encoder.collate([encoder.encode(series[0])])["inputs"]
    with torch.no_grad():
        before = model(**inputs)
        inputs[kind][0, 0] += 2.0
        after = model(**inputs)
    return not torch.allclose(before, after)
