"""AU catalogue contents and the AU-string parser (including hypothesis round trips)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microau_gui.core.au import CATALOGUE, DEFAULT_VOCAB, au_info, au_number
from microau_gui.core.aus import INTENSITIES, AUCode, Side, format_au_codes, parse_au_string

REQUIRED = [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26, 38, 43]


def test_catalogue_holds_every_micro_expression_au_with_all_fields():
    for number in REQUIRED:
        info = CATALOGUE[number]
        assert info.code == f"AU{number}"
        assert info.name and info.muscle and info.area
        assert all(0 <= c <= 255 for c in info.colour)
        assert len(info.positive_prompts) >= 2 and len(info.negative_prompts) >= 2
        assert all(info.name.lower() in p for p in info.positive_prompts[:1])
        assert set(info.positive_prompts).isdisjoint(info.negative_prompts)


def test_default_vocabulary_is_the_cross_dataset_protocol():
    assert DEFAULT_VOCAB == ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10",
                             "AU12", "AU14", "AU15", "AU17")
    colours = {au_info(c).colour for c in DEFAULT_VOCAB}
    assert len(colours) == len(DEFAULT_VOCAB), "default AUs need distinguishable colours"


def test_au_number_accepts_codes_and_rejects_unknown():
    assert au_number("AU12") == au_number("12") == au_number(12) == 12
    with pytest.raises(KeyError, match="AU99"):
        au_number("AU99")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4+7+L10", [AUCode(4), AUCode(7), AUCode(10, Side.LEFT)]),
        ("R12", [AUCode(12, Side.RIGHT)]),
        ("AU4 + R12C", [AUCode(4), AUCode(12, Side.RIGHT, "C")]),
        ("7B", [AUCode(7, intensity="B")]),
        ("A12B", [AUCode(12, intensity="B", asymmetric=True)]),
        ("ref(43)", [AUCode(43, uncertain=True)]),
        ("(R6 or R12)", [AUCode(6, Side.RIGHT, uncertain=True), AUCode(12, Side.RIGHT, uncertain=True)]),
        ("1,2", [AUCode(1), AUCode(2)]),
        ("1，2", [AUCode(1), AUCode(2)]),
        (12, [AUCode(12)]),
        (12.0, [AUCode(12)]),
        ("l10", [AUCode(10, Side.LEFT)]),
    ],
)
def test_parser_handles_dataset_spellings(text, expected):
    parsed = parse_au_string(text)
    assert list(parsed.codes) == expected
    assert parsed.ok


def test_parser_reports_what_it_cannot_parse():
    unknown = parse_au_string("?")
    assert unknown.codes == () and not unknown.ok
    assert "unknown" in unknown.unparsed[0][1]
    mixed = parse_au_string("4+banana+99")
    assert mixed.codes == (AUCode(4),)
    tokens = [t for t, _ in mixed.unparsed]
    assert tokens == ["banana", "99"]
    assert "catalogue" in mixed.unparsed[1][1]


def test_asymmetric_cannot_be_one_sided():
    with pytest.raises(ValueError):
        AUCode(12, Side.LEFT, asymmetric=True)


au_codes = st.builds(
    lambda number, side, intensity, asym, uncertain: AUCode(
        number, Side.BOTH if asym else side, intensity, asym, uncertain),
    st.sampled_from(sorted(CATALOGUE)),
    st.sampled_from(list(Side)),
    st.none() | st.sampled_from(INTENSITIES),
    st.booleans(),
    st.booleans(),
)


@given(st.lists(au_codes, max_size=6, unique=True))
def test_format_then_parse_round_trips(codes):
    text = format_au_codes(codes)
    parsed = parse_au_string(text)
    assert parsed.ok
    assert list(parsed.codes) == codes


@given(st.lists(au_codes, min_size=1, max_size=6, unique=True), st.sampled_from(["+", " + ", ",", "，"]))
def test_parse_accepts_any_separator_and_formats_canonically(codes, sep):
    text = sep.join(format_au_codes([c]) for c in codes)
    assert format_au_codes(parse_au_string(text).codes) == format_au_codes(codes)


def test_catalogue_holds_every_facs_code_and_the_model_vocabulary_stays_apart():
    from microau_gui.core.au import MODEL_AUS
    from microau_gui.core.errors import UserError
    from microau_gui.model.config import normalise_vocab

    for number in (21, 31, 61, 8, 19, 29, 30, 32, 33, 34, 35, 36, 37, 40, 50, 51, 56, 59, 60,
                   62, 64, 68, 69, 70, 74, 80, 85, 91, 97, 98):
        assert number in CATALOGUE, number
        assert CATALOGUE[number].area is None and number not in MODEL_AUS
    # FACS 2002 numbers every AU from 1 to 46 except 3 (never assigned).
    assert {number for number in range(1, 47) if number not in CATALOGUE} == {3}
    assert set(REQUIRED) <= MODEL_AUS and {au_number(c) for c in DEFAULT_VOCAB} <= MODEL_AUS
    parsed = parse_au_string("L20+21+31+61+M59")
    assert parsed.ok and [c.number for c in parsed.codes] == [20, 21, 31, 61, 59]
    assert not parse_au_string("M12").ok  # the M prefix belongs to head and eye codes
    lips = parse_au_string("T28+B24C")
    assert lips.ok and [(c.number, c.lip, c.intensity) for c in lips.codes] == [
        (28, "T", None), (24, "B", "C")]
    assert format_au_codes(lips.codes) == "T28+B24C"
    assert not parse_au_string("B12").ok  # top / bottom belong to lip AUs
    assert normalise_vocab(["AU12", "AU4"]) == ("AU12", "AU4")
    with pytest.raises(UserError, match="annotation only"):
        normalise_vocab(["AU12", "AU21"])
