"""exact_match over decoded strings."""

import pytest

from keras_attention.evaluation import exact_match


@pytest.mark.parametrize(
    "hypotheses, references, expected",
    [
        (["1994-03-23"], ["1994-03-23"], 1.0),
        (["1994-03-23"], ["1994-03-24"], 0.0),
        (["a", "b", "c", "d"], ["a", "x", "c", "y"], 0.5),
        (["2001-01-01", "1999-12-31", "x"], ["2001-01-01", "1999-12-31", "y"], 2 / 3),
        # Surrounding whitespace is ignored on both sides ...
        ([" 1994-03-23\n", "a"], ["1994-03-23", "  a  "], 1.0),
        # ... but inner whitespace and case are not.
        (["1994 -03-23", "Mar"], ["1994-03-23", "mar"], 0.0),
        (["", " "], ["", ""], 1.0),
    ],
)
def test_exact_match_golden(hypotheses, references, expected):
    assert exact_match(hypotheses, references) == pytest.approx(expected)


def test_exact_match_accepts_tuples_and_returns_float():
    result = exact_match(("a", "b"), ("a", "c"))
    assert isinstance(result, float) and result == 0.5


@pytest.mark.parametrize("hypotheses, references", [(["a"], ["a", "b"]), (["a", "b"], ["a"]),
                                                    ([], ["a"])])
def test_exact_match_mismatched_lengths_raise(hypotheses, references):
    with pytest.raises(ValueError, match="aligned"):
        exact_match(hypotheses, references)


def test_exact_match_empty_raises():
    with pytest.raises(ValueError, match="no references"):
        exact_match([], [])
