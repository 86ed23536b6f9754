"""What ``--log-text`` adds to a request's log line: the inputs and outputs
with e-mail addresses and digit runs masked.

``mask_text`` replaces, in this order:

- each e-mail address (``local@domain.tld``: letters of any script, digits
  and ``._%+-`` before the ``@``; a domain with at least one dot) with
  ``<email>``;
- each run of 2 or more digits (any script's decimal digits: ``12``,
  ``١٢``, ``１２``; also inside words, ``abc123`` -> ``abc<digits>``) with
  ``<digits>``. A lone digit stays (``1 dec`` keeps its ``1``), so digits
  split by spaces or dashes one by one (``5-5-5``) are not masked.

``mask_json`` masks every string in a JSON value (keys too); numbers and
booleans are logged as sent.
"""

import re

EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
DIGIT_RUN = re.compile(r"\d{2,}")


def mask_text(text):
    """``text`` with e-mail addresses as ``<email>`` and runs of 2+ digits as ``<digits>``."""
    return DIGIT_RUN.sub("<digits>", EMAIL.sub("<email>", text))


def mask_json(value):
    """``value`` (parsed JSON) with ``mask_text`` applied to every string, keys included."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [mask_json(item) for item in value]
    if isinstance(value, dict):
        return {mask_json(key): mask_json(item) for key, item in value.items()}
    return value


def text_fields(request, response):
    """``{"inputs": ..., "outputs": ...}`` of a predict call, masked: the
    request's ``instances`` or ``inputs`` and the response's ``predictions``
    or ``outputs`` (each only when present)."""
    fields = {}
    for source, keys, field in ((request, ("instances", "inputs"), "inputs"),
                                (response, ("predictions", "outputs"), "outputs")):
        if isinstance(source, dict):
            for key in keys:
                if key in source:
                    fields[field] = mask_json(source[key])
    return fields
