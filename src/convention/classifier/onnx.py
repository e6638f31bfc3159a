"""ONNX export of a trained model, and the onnxruntime engine that runs it.

The exported graph maps the batch tensors the input encoder collates (``frames``,
``bands``, ..., each kind's mask; batch size and sequence lengths dynamic) to the class
probabilities, averaged over a run's fold models as the ``Classifier`` averages them
(output ``probabilities``, (B, C)), and each fold model's own (output
``fold_probabilities``, (K, B, C), whose spread the ``Classifier`` reports). The model
file's metadata holds the rest of what a prediction needs: the settings JSON of the
checkpoint (model, classes in order, bands, the input spec, each kind's fitted
normalisation) under ``convention.settings`` and the export layout version under
``convention.onnx_layout``. A broker runs it with onnxruntime alone; ``convention predict``
runs it with ``--engine onnxruntime``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from convention.classifier.engines import member_probabilities
from convention.classifier.settings import ModelSettings
from convention.errors import ConventionError
from convention.files import check_input_path, write_atomic
from convention.inputs.encoder import random_inputs

# 2: the fold models' probabilities as a second output; 3: the settings bound to the graph
ONNX_LAYOUT = 3
SETTINGS_KEY = "convention.settings"
LAYOUT_KEY = "convention.onnx_layout"
DIGEST_KEY = "convention.digest"  # SHA-256 of the graph and the settings, together
MAX_ONNX_BYTES = 2**30
OUTPUT_NAME = "probabilities"
FOLDS_OUTPUT_NAME = "fold_probabilities"
OPSET = 18
EXAMPLE_FRAMES = 7  # the traced example's length: not a multiple of any chunk size
VERIFY_SHAPES = ((1, 1), (3, 11))  # (objects, frames) the export is checked on
TOLERANCE = 1e-4  # largest probability difference from PyTorch an export may have


class EnsembleProbabilities(nn.Module):
    """The fold models' mean probabilities and their own, over positional inputs in the
    order ``names`` (ONNX graphs take positional inputs)."""

    def __init__(self, models: Sequence[nn.Module], names: Sequence[str]):
        super().__init__()
        self.models = nn.ModuleList(models)
        self.names = tuple(names)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C) mean and (K, B, C) fold probabilities from the tensors named ``names``,
        in that order."""
        members = member_probabilities(self.models, dict(zip(self.names, tensors, strict=True)))
        return members.mean(0), members


def _example(
    settings: ModelSettings, names: Sequence[str], batch: int, frames: int, seed: int
) -> tuple[torch.Tensor, ...]:
    """Random inputs in the graph's order (see ``random_inputs``)."""
    inputs = random_inputs(settings.inputs, len(settings.bands), frames, batch, seed)
    return tuple(inputs[name] for name in names)


def export_onnx(settings: ModelSettings, models: Sequence[nn.Module], out: Path) -> list[str]:
    """Write the models' mean probabilities as an ONNX file with the settings in its
    metadata, atomically. Returns the graph's input names.

    Raises:
        ConventionError: the model has an operation ONNX cannot express.
    """
    import onnx

    encoder = settings.encoder()
    names = encoder.batch_keys
    module = EnsembleProbabilities([m.eval() for m in models], names).eval()
    # A batch of 2 and more keeps the traced dimensions symbolic.
    example = _example(settings, names, 2, EXAMPLE_FRAMES, seed=0)
    # Every axis dynamic; Dim.AUTO lets the exporter relate the axes itself (named Dim
    # bounds trip its constraint solver on the chunking). One entry: the packed *tensors.
    auto = torch.export.Dim.AUTO
    sequences = encoder.sequence_keys
    shapes = (tuple({0: auto, 1: auto} if n in sequences else {0: auto} for n in names),)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                module,
                example,
                input_names=names,
                output_names=[OUTPUT_NAME, FOLDS_OUTPUT_NAME],
                dynamic_shapes=shapes,
                opset_version=OPSET,
                dynamo=True,
                verbose=False,
            )
    except Exception as err:  # the exporter raises many types for unsupported models
        cause = err
        while cause.__cause__ is not None:  # the exporter wraps the tracer's own error
            cause = cause.__cause__
        raise ConventionError(
            f"{settings.model} ({settings.preset}) does not export to ONNX: "
            f"{type(cause).__name__}: {str(cause).strip() or 'no message'}"
        ) from None
    proto = program.model_proto
    text = json.dumps(settings.to_dict())
    for key, value in (
        (SETTINGS_KEY, text),
        (LAYOUT_KEY, str(ONNX_LAYOUT)),
        (DIGEST_KEY, _digest(proto.graph.SerializeToString(), text)),
    ):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    _verify(proto.SerializeToString(), module, settings, names)
    write_atomic(out, lambda tmp: onnx.save_model(proto, str(tmp)))
    return names


def _digest(graph: bytes, settings: str) -> str:
    """What binds an export's settings to its graph: an edited settings entry (classes
    reordered, another ``max_frames``) no longer matches."""
    return hashlib.sha256(graph + settings.encode()).hexdigest()


def _verify(model: bytes, module: nn.Module, settings: ModelSettings, names: list[str]) -> None:
    """Refuse an export whose graph does not give PyTorch's probabilities (within
    ``TOLERANCE``) at other batch sizes and lengths than the traced example's.

    Raises:
        ConventionError: the graph fails or disagrees, naming the shape.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    for batch, frames in VERIFY_SHAPES:
        example = _example(settings, names, batch, frames, seed=batch)
        with torch.no_grad():
            expected = np.concatenate([t.numpy().reshape(-1) for t in module(*example)])
        try:
            feed = {name: t.numpy() for name, t in zip(names, example, strict=True)}
            got = np.concatenate(
                [t.reshape(-1) for t in session.run([OUTPUT_NAME, FOLDS_OUTPUT_NAME], feed)]
            )
        except Exception as err:  # onnxruntime's own error types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConventionError(
                f"{settings.model} ({settings.preset}) exports to an ONNX graph that fails on "
                f"{batch} objects of {frames} frames: {first}"
            ) from None
        if not np.allclose(got, expected, atol=TOLERANCE, rtol=0):
            raise ConventionError(
                f"{settings.model} ({settings.preset}) exports to an ONNX graph that differs "
                f"from PyTorch by {np.abs(got - expected).max():.1e} on {batch} objects of "
                f"{frames} frames"
            )


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter prints its steps and logs warnings about optional packages."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class OnnxEngine:
    """Class probabilities from an exported model file, with onnxruntime.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (None: onnxruntime's default, every core).

    Raises:
        ConventionError: not an ONNX file, not one ``convention export onnx`` wrote, another
            export layout or checkpoint version, or a graph that disagrees with its
            metadata (other inputs, another number of classes).
    """

    def __init__(self, path: Path, threads: int | None = None):
        import onnx
        import onnxruntime

        path = check_input_path(path, "ONNX model")
        if not path.is_file() or path.stat().st_size > MAX_ONNX_BYTES:
            raise ConventionError(
                f"not an ONNX model file of at most {MAX_ONNX_BYTES:,} bytes", path=path
            )
        data = path.read_bytes()
        try:
            proto = onnx.load_from_string(data)
        except Exception as err:  # protobuf's own types for files that are not ONNX
            raise ConventionError(
                f"not a readable ONNX model ({type(err).__name__})", path=path
            ) from None
        metadata = {entry.key: entry.value for entry in proto.metadata_props}
        if SETTINGS_KEY not in metadata:
            raise ConventionError(
                f"no {SETTINGS_KEY} metadata: not a file written by convention export onnx",
                path=path,
            )
        layout = metadata.get(LAYOUT_KEY)
        if layout != str(ONNX_LAYOUT):
            raise ConventionError(
                f"export layout {layout} is not {ONNX_LAYOUT}, the one this convention "
                "reads: export the model again",
                path=path,
            )
        if metadata.get(DIGEST_KEY) != _digest(
            proto.graph.SerializeToString(), metadata[SETTINGS_KEY]
        ):
            raise ConventionError(
                "the settings in its metadata are not those it was exported with (edited, or "
                "another graph): export the model again",
                path=path,
            )
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                data, options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own types for unreadable files
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ConventionError(f"not a readable ONNX model ({first})", path=path) from None
        try:
            self.settings = ModelSettings.from_dict(json.loads(metadata[SETTINGS_KEY]))
            encoder = self.settings.encoder()
        except ConventionError as err:
            raise ConventionError(err.cause, path=path) from None
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError) as err:
            raise ConventionError(
                f"unreadable {SETTINGS_KEY} metadata ({type(err).__name__}: {err})", path=path
            ) from None
        self.names = [i.name for i in self.session.get_inputs()]
        expected = encoder.batch_keys
        if self.names != expected:
            raise ConventionError(
                f"the graph reads {self.names}, its settings declare {expected}", path=path
            )
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs != [OUTPUT_NAME, FOLDS_OUTPUT_NAME]:
            raise ConventionError(
                f"the graph gives {outputs}, not [{OUTPUT_NAME}, {FOLDS_OUTPUT_NAME}]", path=path
            )
        width = self.session.get_outputs()[0].shape[-1]
        if width != len(self.settings.classes):
            raise ConventionError(
                f"the graph gives {width} probabilities, its settings name "
                f"{len(self.settings.classes)} classes {list(self.settings.classes)}",
                path=path,
            )

    def __call__(self, inputs: dict[str, torch.Tensor]) -> np.ndarray:
        """(K, B, C) each fold model's probabilities of a collated batch."""
        feed = {name: inputs[name].numpy() for name in self.names}
        return self.session.run([FOLDS_OUTPUT_NAME], feed)[0]
