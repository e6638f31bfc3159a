"""The model inputs: a model declares what it reads (:class:`InputSpec`); one encoder per
input kind fits its normalisation on the training split and encodes a series; a model's
:class:`InputEncoder` joins the kinds it reads and collates batches of named tensors."""

from convention.inputs.base import (
    InputKind,
    Needs,
    get_input_kind,
    input_kinds,
    needs_of,
    register_input_kind,
)
from convention.inputs.encoder import Example, InputEncoder, example_inputs
from convention.inputs.normalisation import Normalisation
from convention.inputs.spec import InputSpec

__all__ = [
    "Example",
    "InputEncoder",
    "InputKind",
    "InputSpec",
    "Needs",
    "Normalisation",
    "example_inputs",
    "get_input_kind",
    "input_kinds",
    "needs_of",
    "register_input_kind",
]
