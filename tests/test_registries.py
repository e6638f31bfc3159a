import pytest

from convention.bands import PADDING_ID, get_band, list_bands, survey_bands
from convention.classes import (
    FOUR_CLASS,
    PLASTICC_TARGET,
    SDSS2_SNTYPE,
    THREE_CLASS,
    TO_THREE_CLASS,
    class_from_plasticc_target,
    class_from_sdss2_sntype,
    get_taxonomy,
)
from convention.errors import ConventionError


@pytest.mark.parametrize("spelling", ["sdss::g", "SDSS::G", "sdssg", "sdss-g", "sdss2010-g", 2])
def test_band_spellings(spelling):
    assert get_band(spelling).name == "sdss::g"


def test_bare_letter_needs_survey():
    assert get_band("r", survey="sdss2").name == "sdss::r"
    assert get_band("y", survey="plasticc").name == "lsst::y"
    with pytest.raises(ConventionError, match="unknown band"):
        get_band("r")


def test_no_band_uses_padding_id():
    ids = [get_band(n).id for n in list_bands()]
    assert PADDING_ID not in ids
    assert len(set(ids)) == len(ids)


def test_unknown_band_and_survey():
    with pytest.raises(ConventionError, match="unknown band 'sdss::q'"):
        get_band("sdss::q")
    with pytest.raises(ConventionError, match="unknown survey"):
        survey_bands("hubble")
    assert [b.letter for b in survey_bands("sdss")] == list("ugriz")


def test_sdss2_mapping_matches_paper_counts():
    # ../shared/data/README.md: Ia 540 spectroscopic + 1448 photometric, etc.
    assert SDSS2_SNTYPE[110] == "AGN" and SDSS2_SNTYPE[5] == "Variable"
    assert class_from_sdss2_sntype(0) is None
    assert class_from_sdss2_sntype(999) is None
    assert {v for v in SDSS2_SNTYPE.values()} == set(FOUR_CLASS.classes)


def test_plasticc_mapping():
    assert class_from_plasticc_target(90) == "SNIa"
    assert class_from_plasticc_target(88) == "AGN"
    assert class_from_plasticc_target(64) is None
    assert class_from_plasticc_target(12345) is None
    assert {v for v in PLASTICC_TARGET.values() if v} == set(FOUR_CLASS.classes)


def test_taxonomies():
    assert get_taxonomy(4) is FOUR_CLASS
    assert get_taxonomy("3-class") is THREE_CLASS
    assert {TO_THREE_CLASS[c] for c in FOUR_CLASS.classes} == set(THREE_CLASS.classes)
    assert FOUR_CLASS.index("SNIa") == 1
    with pytest.raises(ConventionError, match="unknown class"):
        FOUR_CLASS.index("Nova")
    with pytest.raises(ConventionError, match="unknown taxonomy"):
        get_taxonomy(7)
