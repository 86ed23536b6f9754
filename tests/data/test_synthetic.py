"""The generated date task: reproducibility, valid targets, golden spellings."""

import datetime
import random

import pytest

from keras_attention.data import synthetic
from keras_attention.data.synthetic import cardinal, date_pairs, ordinal, year_words

# An independent reading of the spelled-out forms, so the test checks that each
# source really describes its target (not only that both are well formed).
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_NUMBER_WORDS.update(
    {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
     "eighty": 80, "ninety": 90}
)
_ORDINAL_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17,
    "eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}
_MONTHS = ("january february march april may june july august september october "
           "november december").split()
_ABBREVIATIONS = [m[:3] for m in _MONTHS]


def _number(words):
    return sum(_NUMBER_WORDS[w] for w in words)


def _ordinal(words):
    return sum(_NUMBER_WORDS[w] for w in words[:-1]) + _ORDINAL_WORDS[words[-1]]


def _year(words):
    if words[:2] == ["two", "thousand"]:
        rest = [w for w in words[2:] if w != "and"]
        return 2000 + _number(rest)
    century = _NUMBER_WORDS[words[0]] * 100
    rest = words[1:]
    if rest == ["hundred"]:
        return century
    if rest[0] == "oh":
        assert len(rest) == 2
        return century + _NUMBER_WORDS[rest[1]]
    return century + _number(rest)


def _parse(source):
    words = source.split()
    if words[0] == "the":  # the <ordinal> of <month> <year>
        of = words.index("of")
        return _year(words[of + 2:]), _MONTHS.index(words[of + 1]) + 1, _ordinal(words[1:of])
    if words[0] in _MONTHS:  # <month> <ordinal> <year>
        ordinal_end = next(i for i, w in enumerate(words) if w in _ORDINAL_WORDS) + 1
        return (_year(words[ordinal_end:]), _MONTHS.index(words[0]) + 1,
                _ordinal(words[1:ordinal_end]))
    if words[0].isdigit():  # <day> <abbr> <year>
        assert len(words) == 3 and words[2].isdigit()
        return int(words[2]), _ABBREVIATIONS.index(words[1]) + 1, int(words[0])
    month = next(i for i, w in enumerate(words) if w in _MONTHS)  # <cardinal> <month> <year>
    return _year(words[month + 1:]), _MONTHS.index(words[month]) + 1, _number(words[:month])


def test_date_pairs_reproducible_for_a_seed():
    assert date_pairs(50, seed=4) == date_pairs(50, seed=4)
    # A shorter run is a prefix of a longer one with the same seed.
    assert date_pairs(20, seed=4) == date_pairs(50, seed=4)[:20]


def test_date_pairs_differ_across_seeds():
    assert date_pairs(50, seed=0) != date_pairs(50, seed=1)
    assert date_pairs(50) == date_pairs(50, seed=0)


def test_date_pairs_count_and_types():
    pairs = date_pairs(7, seed=2)
    assert len(pairs) == 7
    assert all(isinstance(s, str) and isinstance(t, str) for s, t in pairs)
    assert date_pairs(0) == []


def test_targets_are_valid_iso_dates_in_range():
    pairs = date_pairs(2000, seed=11)
    for _, target in pairs:
        date = datetime.date.fromisoformat(target)
        assert date.isoformat() == target  # zero padded, exactly the ISO form
        assert synthetic.FIRST_YEAR <= date.year <= synthetic.LAST_YEAR
        assert 1900 <= date.year <= 2099
    years = {datetime.date.fromisoformat(t).year for _, t in pairs}
    # Both centuries are covered.
    assert min(years) < 2000 <= max(years)


def test_sources_spell_out_their_targets():
    pairs = date_pairs(2000, seed=5)
    for source, target in pairs:
        assert source == source.strip().lower() and "  " not in source
        year, month, day = _parse(source)
        assert datetime.date(year, month, day).isoformat() == target, source


def test_all_surface_forms_occur():
    sources = [s for s, _ in date_pairs(400, seed=9)]
    assert any(s.startswith("the ") and " of " in s for s in sources)
    assert any(s.split()[0] in _MONTHS for s in sources)
    assert any(s.split()[0].isdigit() for s in sources)
    assert any(s.split()[0] in _NUMBER_WORDS for s in sources)


@pytest.mark.parametrize(
    "n, words",
    [(0, "zero"), (7, "seven"), (10, "ten"), (13, "thirteen"), (19, "nineteen"),
     (20, "twenty"), (23, "twenty three"), (40, "forty"), (58, "fifty eight"),
     (99, "ninety nine")],
)
def test_cardinal_golden(n, words):
    assert cardinal(n) == words


@pytest.mark.parametrize(
    "n, words",
    [(1, "first"), (2, "second"), (3, "third"), (9, "ninth"), (10, "tenth"),
     (11, "eleventh"), (12, "twelfth"), (19, "nineteenth"), (20, "twentieth"),
     (21, "twenty first"), (22, "twenty second"), (23, "twenty third"),
     (30, "thirtieth"), (31, "thirty first")],
)
def test_ordinal_golden(n, words):
    assert ordinal(n) == words


@pytest.mark.parametrize(
    "year, words",
    [(1905, "nineteen oh five"), (1900, "nineteen hundred"),
     (1994, "nineteen ninety four"), (1910, "nineteen ten"), (1919, "nineteen nineteen"),
     (2000, "two thousand")],
)
def test_year_words_golden_without_choices(year, words):
    # These years have a single spoken form, whatever the random choices.
    for seed in range(10):
        assert year_words(year, random.Random(seed)) == words


def test_year_words_twenty_first_century_variants():
    seen_2005 = {year_words(2005, random.Random(s)) for s in range(50)}
    assert seen_2005 == {"two thousand and five", "two thousand five"}
    seen_2023 = {year_words(2023, random.Random(s)) for s in range(50)}
    assert seen_2023 == {"two thousand twenty three", "twenty twenty three"}
    assert year_words(2099, random.Random(0)) in {
        "two thousand ninety nine", "twenty ninety nine"}


def test_negative_count_raises():
    with pytest.raises(ValueError, match="count"):
        date_pairs(-1)
