"""Class taxonomies and the mappings from survey type codes to them.

A taxonomy is an ordered list of class names: the order is the order of the model's
outputs, saved with every store and checkpoint, never taken from dict iteration elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convention.errors import ConventionError


@dataclass(frozen=True)
class Taxonomy:
    """An ordered set of class names."""

    name: str
    classes: tuple[str, ...]

    def index(self, label: str) -> int:
        """Position of a class name.

        Raises:
            ConventionError: the label is not in this taxonomy.
        """
        try:
            return self.classes.index(label)
        except ValueError:
            raise ConventionError(
                f"unknown class {label!r} for taxonomy {self.name!r} "
                f"(classes: {', '.join(self.classes)})"
            ) from None

    def __len__(self) -> int:
        return len(self.classes)


FOUR_CLASS = Taxonomy("4-class", ("AGN", "SNIa", "Variable", "SNOther"))
THREE_CLASS = Taxonomy("3-class", ("AGN", "SN", "Variable"))
# CRTS-TAO (Gomez et al. 2020): AGN, blazars, cataclysmic variables, supernovae, the rest.
CRTS = Taxonomy("crts", ("AGN", "BZ", "CV", "SN", "OTHER"))
_TAXONOMIES = {t.name: t for t in (FOUR_CLASS, THREE_CLASS, CRTS)}

# Spellings met in catalogues, lower case without spaces, '-' or '_' -> class name.
_LABEL_ALIASES = {
    "ia": "SNIa",
    "snia": "SNIa",
    "typeia": "SNIa",
    "snii": "SNOther",
    "snibc": "SNOther",
    "cc": "SNOther",
    "ccsn": "SNOther",
    "qso": "AGN",
    "var": "Variable",
    "variablestar": "Variable",
    "star": "Variable",
}

# 4-class -> 3-class: the paper's three-class task merges the supernova types.
TO_THREE_CLASS = {"AGN": "AGN", "SNIa": "SN", "SNOther": "SN", "Variable": "Variable"}

# SDSS-II SNTYPE codes (Sako et al. 2018) -> 4-class, as in ../shared/data/README.md.
# 0 is "unknown" and deliberately absent: such candidates carry no label.
SDSS2_SNTYPE = {
    110: "AGN",
    5: "Variable",
    120: "SNIa",
    119: "SNIa",
    118: "SNIa",
    106: "SNIa",
    103: "SNIa",
    111: "SNOther",
    112: "SNOther",
    113: "SNOther",
    114: "SNOther",
    115: "SNOther",
    104: "SNOther",
    105: "SNOther",
    101: "SNOther",
    102: "SNOther",
}
SDSS2_UNLABELLED = 0

# PLAsTiCC target codes (Kessler et al. 2019) -> 4-class; the excluded targets map to None.
PLASTICC_TARGET: dict[int, str | None] = {
    90: "SNIa",
    67: "SNIa",
    52: "SNIa",
    42: "SNOther",
    62: "SNOther",
    95: "SNOther",
    88: "AGN",
    92: "Variable",
    16: "Variable",
    53: "Variable",
    65: None,
    15: None,
    64: None,
    6: None,
}


def get_taxonomy(name: str | int | Taxonomy) -> Taxonomy:
    """A taxonomy by name (``4-class``, ``3-class``) or class count (4, 3).

    Raises:
        ConventionError: no such taxonomy.
    """
    if isinstance(name, Taxonomy):
        return name
    key = f"{name}-class" if str(name).isdigit() else str(name)
    if key not in _TAXONOMIES:
        raise ConventionError(f"unknown taxonomy {name!r}; known: {', '.join(_TAXONOMIES)}")
    return _TAXONOMIES[key]


def resolve_label(text: str, taxonomy: str | Taxonomy = FOUR_CLASS) -> str | None:
    """The class name a catalogue's label stands for; None for an empty label.

    Matching ignores case, spaces, '-' and '_' (``SN Ia``, ``snia``, ``Type-Ia`` -> SNIa).

    Raises:
        ConventionError: a label that names no class of the taxonomy.
    """
    taxonomy = get_taxonomy(taxonomy)
    key = "".join(ch for ch in str(text).lower() if ch not in " -_")
    if not key:
        return None
    for name in taxonomy.classes:
        if key == name.lower():
            return name
    alias = _LABEL_ALIASES.get(key)
    if alias is not None and alias in taxonomy.classes:
        return alias
    raise ConventionError(
        f"unknown label {text!r} for taxonomy {taxonomy.name!r} "
        f"(classes: {', '.join(taxonomy.classes)})"
    )


def class_from_sdss2_sntype(code: int) -> str | None:
    """The 4-class label of an SDSS-II SNTYPE; None for 0 (unknown) and unmapped codes."""
    return SDSS2_SNTYPE.get(int(code))


def class_from_plasticc_target(code: int) -> str | None:
    """The 4-class label of a PLAsTiCC target; None for the excluded and unknown targets."""
    return PLASTICC_TARGET.get(int(code))


def as_class_of(label: str, classes: Sequence[str]) -> str:
    """``label`` as a class of ``classes``: a 4-class label mapped onto the 3-class
    taxonomy when ``classes`` are its classes, unchanged otherwise (the one place the
    mapping is decided)."""
    if list(classes) == list(THREE_CLASS.classes):
        return TO_THREE_CLASS.get(label, label)
    return label


def class_targets(labels: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    """Class index per object (-1 for unlabelled or another class), each label taken as a
    class of ``classes`` (``as_class_of``)."""
    out = []
    for label in labels:
        mapped = None if label is None else as_class_of(label, classes)
        out.append(list(classes).index(mapped) if mapped in classes else -1)
    return np.array(out, dtype=np.int64)
