"""Exports: a string-in/string-out SavedModel with tokenization and decoding inside."""

from keras_attention.export.saved_model import (
    SavedModelTranslator,
    export_saved_model,
    next_version,
    resolve_version,
)
from keras_attention.export.signatures import TextToTextModule

__all__ = ["SavedModelTranslator", "TextToTextModule", "export_saved_model", "next_version",
           "resolve_version"]
