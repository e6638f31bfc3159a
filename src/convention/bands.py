"""Band registry: every passband the package knows, with a stable integer id.

Id 0 is reserved for padding (the band embedding's padding index): no real band maps to it.
Names are ``survey::letter`` (``sdss::g``); lookups accept any case and the spellings surveys
use (``sdssg``, ``sdss-g``, ``sdss2010-g``), or a bare letter together with a survey name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convention.errors import ConventionError

PADDING_ID = 0


@dataclass(frozen=True)
class Band:
    """One passband.

    Attributes:
        name: canonical name, ``survey::letter``.
        survey: survey family (``sdss``, ``lsst``, ``ztf``).
        letter: filter letter (``g``).
        wavelength_eff: effective wavelength in Angstrom (AB-weighted mean of the response).
        id: integer id used in stores and by the band embedding (>= 1).
        filter_curve: the filter curve as ``package:name``, where a package ships one
            (``speclite:sdss2010-g``, ``pyphot:ZTF_g``; ``convention.sim.filters`` loads it).
    """

    name: str
    survey: str
    letter: str
    wavelength_eff: float
    id: int
    filter_curve: str | None = None


# Effective wavelengths: speclite's effective_wavelength of the named curves (SDSS 2010,
# LSST 2016); ZTF approximate, from the SVO filter service (Palomar/ZTF.g, .r, .i; pyphot's
# curves give 4723, 6340, 7886 Vega-weighted). CRTS observes unfiltered and calibrates to
# Johnson V (Drake et al. 2009): V's wavelength.
_BANDS = [
    Band("sdss::u", "sdss", "u", 3614.4, 1, "speclite:sdss2010-u"),
    Band("sdss::g", "sdss", "g", 4749.2, 2, "speclite:sdss2010-g"),
    Band("sdss::r", "sdss", "r", 6205.8, 3, "speclite:sdss2010-r"),
    Band("sdss::i", "sdss", "i", 7525.6, 4, "speclite:sdss2010-i"),
    Band("sdss::z", "sdss", "z", 8947.4, 5, "speclite:sdss2010-z"),
    Band("lsst::u", "lsst", "u", 3681.4, 6, "speclite:lsst2016-u"),
    Band("lsst::g", "lsst", "g", 4864.1, 7, "speclite:lsst2016-g"),
    Band("lsst::r", "lsst", "r", 6249.8, 8, "speclite:lsst2016-r"),
    Band("lsst::i", "lsst", "i", 7564.7, 9, "speclite:lsst2016-i"),
    Band("lsst::z", "lsst", "z", 8701.6, 10, "speclite:lsst2016-z"),
    Band("lsst::y", "lsst", "y", 9722.0, 11, "speclite:lsst2016-y"),
    Band("ztf::g", "ztf", "g", 4746.5, 12, "pyphot:ZTF_g"),
    Band("ztf::r", "ztf", "r", 6366.4, 13, "pyphot:ZTF_r"),
    Band("ztf::i", "ztf", "i", 7867.4, 14, "pyphot:ZTF_i"),
    Band("crts::V", "crts", "V", 5500.0, 15),
]

_BY_NAME = {b.name.lower(): b for b in _BANDS}
_BY_ID = {b.id: b for b in _BANDS}
_SURVEY_ALIASES = {
    "sdss2": "sdss",
    "sdss2010": "sdss",
    "lsst2016": "lsst",
    "plasticc": "lsst",
    "rubin": "lsst",
}
_SPELLING = re.compile(r"^(?P<survey>[a-z0-9]+?)(?:::|-|_|:)?(?P<letter>[ugrizyv])$")


def _canonical_survey(survey: str) -> str:
    survey = survey.lower()
    return _SURVEY_ALIASES.get(survey, survey)


def get_band(name: str | int | Band, survey: str | None = None) -> Band:
    """Return the Band for a name, an id or a Band.

    Args:
        name: ``sdss::g``, ``sdssg``, ``SDSS-g``, ``sdss2010-g``, an integer id, or a bare
            letter (``g``) when ``survey`` is given.
        survey: survey used to resolve a bare letter.

    Raises:
        ConventionError: the name is not a known band.
    """
    if isinstance(name, Band):
        return name
    if isinstance(name, int | bool) or (hasattr(name, "dtype") and not isinstance(name, str)):
        band_id = int(name)
        if band_id not in _BY_ID:
            raise ConventionError(f"unknown band id {band_id}")
        return _BY_ID[band_id]
    text = str(name).strip().lower()
    if text in _BY_NAME:
        return _BY_NAME[text]
    if len(text) == 1 and survey is not None:
        text = f"{_canonical_survey(survey)}::{text}"
        if text in _BY_NAME:
            return _BY_NAME[text]
    match = _SPELLING.match(text)
    if match:
        key = f"{_canonical_survey(match['survey'])}::{match['letter']}"
        if key in _BY_NAME:
            return _BY_NAME[key]
    hint = f" for survey {survey!r}" if survey else ""
    raise ConventionError(f"unknown band {name!r}{hint}; known: {', '.join(list_bands())}")


def list_bands(survey: str | None = None) -> list[str]:
    """Canonical band names, in id order, optionally of one survey."""
    wanted = _canonical_survey(survey) if survey else None
    return [b.name for b in _BANDS if wanted is None or b.survey == wanted]


def survey_bands(survey: str) -> list[Band]:
    """The bands of one survey, blue to red.

    Raises:
        ConventionError: the survey has no bands here.
    """
    bands = [_BY_NAME[n.lower()] for n in list_bands(survey)]
    if not bands:
        raise ConventionError(f"unknown survey {survey!r} for bands")
    return bands


def per_distinct(values: np.ndarray, value: Callable[[Any], Any], dtype: Any) -> np.ndarray:
    """(N,) ``value`` of each of the (N,) ``values`` (band names or ids of a light curve's
    points), asked once per distinct value: the band registry is looked up per band, not
    per point."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([value(v) for v in distinct.tolist()], dtype=dtype)[inverse.reshape(-1)]
