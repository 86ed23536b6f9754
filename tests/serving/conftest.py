"""The export tests' untrained ``text_module`` backs the served model."""

from export.conftest import text_module  # noqa: F401
