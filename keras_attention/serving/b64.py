"""TF Serving's ``{"b64": ...}`` JSON values: bytes in string inputs, and
string outputs whose alias ends in ``_bytes``.

As in TF Serving's REST API, a JSON object with the single key ``"b64"``
stands for the bytes its standard base64 (RFC 4648) text decodes to, wherever
a string input value may be (row or columnar format, nested lists too); an
output alias ending in ``_bytes`` comes back as ``{"b64": ...}`` objects, any
other string output as UTF-8 text.
"""

import base64
import binascii

from keras_attention.serving.errors import RequestError

BYTES_SUFFIX = "_bytes"


def is_b64(value):
    """Whether a JSON value is a ``{"b64": ...}`` object."""
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decode(value, where):
    """The bytes of a ``{"b64": ...}`` object; invalid base64 is a 400."""
    text = value["b64"]
    if not isinstance(text, str):
        raise RequestError(400, f'{where} has a {{"b64": ...}} value that is '
                                f"{type(text).__name__}, not a string; send the base64 text.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise RequestError(400, f"{where} has invalid base64 {text!r:.40} ({error}); encode the "
                                "bytes with standard base64 (RFC 4648, '+/' and '=' padding)."
                           ) from None


def encode(data):
    """``{"b64": ...}`` of some bytes."""
    return {"b64": base64.b64encode(data).decode("ascii")}


def is_bytes_alias(alias):
    """Whether TF Serving returns the output ``alias`` as base64."""
    return isinstance(alias, str) and alias.endswith(BYTES_SUFFIX)
