"""Argument checks with one-line ``ValueError``s, shared by the whole package.

Pure Python (no TensorFlow, no Keras): configs, layers, exports and the CLI
check their arguments the same way.

Every check takes the argument's ``name`` first, then its ``value``, and
returns the value (numbers as ``float``). A refused value raises
``ValueError("{name} must be {what}, got {value!r}.")``: each check has a
default ``what``, which a caller may word for its context (``"a positive
integer (TF Serving's version folder)"``), and a ``fix``, when given,
follows after a semicolon. ``optional=True`` lets ``None`` through.
"""

import numbers


def is_int(value):
    """``value`` is an integer: an ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    """``value`` is a real number (``int``, ``float``, NumPy scalars), not a ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _require(accepted, name, value, what, fix):
    if not accepted:
        raise ValueError(f"{name} must be {what}, got {value!r}{f'; {fix}' if fix else ''}.")
    return value


def _describe_range(low, high):
    if low is None and high is None:
        return "an integer"
    if high is None:
        return "a positive integer" if low == 1 else f"an integer >= {low}"
    if low is None:
        return f"an integer < {high}"
    return f"an integer in [{low}, {high})"


def check_int(name, value, low=None, high=None, *, optional=False, what=None, fix=None):
    """``value``, an integer in ``[low, high)`` (``None``: that end open)."""
    if optional and value is None:
        return None
    accepted = is_int(value) and (low is None or value >= low) and (high is None or value < high)
    return _require(accepted, name, value, what or _describe_range(low, high), fix)


def check_positive_int(name, value, *, optional=False, what="a positive integer", fix=None):
    """``value``, an integer >= 1."""
    return check_int(name, value, 1, optional=optional, what=what, fix=fix)


def check_non_negative_int(name, value, *, optional=False, what="an integer >= 0", fix=None):
    """``value``, an integer >= 0."""
    return check_int(name, value, 0, optional=optional, what=what, fix=fix)


def check_positive_number(name, value, *, optional=False, what="a positive number", fix=None):
    """``value`` as a ``float``, a number > 0."""
    if optional and value is None:
        return None
    return float(_require(is_number(value) and value > 0, name, value, what, fix))


def check_non_negative_number(name, value, *, what="a number >= 0", fix=None):
    """``value`` as a ``float``, a number >= 0."""
    return float(_require(is_number(value) and value >= 0, name, value, what, fix))


def check_rate(name, value, *, what="a number in [0, 1)", fix=None):
    """``value`` as a ``float``, a number in ``[0, 1)`` (dropout, label smoothing)."""
    return float(_require(is_number(value) and 0 <= value < 1, name, value, what, fix))


def check_choice(name, value, choices):
    """``value``, one of the strings ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value
