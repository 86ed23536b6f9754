import subprocess
import sys

import numpy as np
import pytest

from keras_attention import validation


def test_is_int_and_is_number_refuse_bools():
    assert validation.is_int(3) and not validation.is_int(True) and not validation.is_int(3.0)
    assert validation.is_number(2) and validation.is_number(0.5)
    assert validation.is_number(np.float32(0.5))
    assert not validation.is_number(False) and not validation.is_number("1")


@pytest.mark.parametrize("check, args, message", [
    (validation.check_positive_int, ("n", 0), "n must be a positive integer, got 0."),
    (validation.check_positive_int, ("n", True), "n must be a positive integer, got True."),
    (validation.check_positive_int, ("n", 2.0), "n must be a positive integer, got 2.0."),
    (validation.check_non_negative_int, ("n", -1), "n must be an integer >= 0, got -1."),
    (validation.check_int, ("p", 100, 0, 100), "p must be an integer in [0, 100), got 100."),
    (validation.check_int, ("seed", "7"), "seed must be an integer, got '7'."),
    (validation.check_positive_number, ("lr", 0), "lr must be a positive number, got 0."),
    (validation.check_positive_number, ("lr", float("nan")),
     "lr must be a positive number, got nan."),
    (validation.check_non_negative_number, ("a", -0.5), "a must be a number >= 0, got -0.5."),
    (validation.check_rate, ("dropout", 1.0), "dropout must be a number in [0, 1), got 1.0."),
    (validation.check_rate, ("dropout", None), "dropout must be a number in [0, 1), got None."),
    (validation.check_choice, ("kind", "x", ("a", "b")), "kind must be one of a, b; got 'x'."),
])
def test_refused_values_raise_one_line_naming_the_argument(check, args, message):
    with pytest.raises(ValueError) as error:
        check(*args)
    assert str(error.value) == message


def test_checks_return_the_value_and_numbers_as_floats():
    assert validation.check_positive_int("n", 3) == 3
    assert validation.check_int("p", 0, 0, 100) == 0
    assert validation.check_choice("kind", "a", ("a", "b")) == "a"
    rate = validation.check_rate("dropout", 0)
    assert rate == 0.0 and isinstance(rate, float)
    assert isinstance(validation.check_positive_number("lr", np.float32(1e-3)), float)


def test_optional_lets_none_through_and_what_and_fix_word_the_message():
    assert validation.check_positive_int("limit", None, optional=True) is None
    assert validation.check_positive_number("clip", None, optional=True) is None
    with pytest.raises(ValueError) as error:
        validation.check_positive_int("limit", 0, optional=True, what="a positive integer or None",
                                      fix="use None to read everything")
    assert str(error.value) == ("limit must be a positive integer or None, got 0; "
                                "use None to read everything.")


def test_validation_and_constants_import_without_tensorflow():
    code = ("import sys, keras_attention.constants, keras_attention.validation\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n")
    subprocess.run([sys.executable, "-c", code], check=True)
