"""The trained date model of ``tests/decoding/conftest.py`` (trained once per session)."""

from decoding.conftest import trained_date_model  # noqa: F401
