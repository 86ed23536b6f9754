"""Exports: a string-in/string-out SavedModel with tokenization and decoding
inside, and TFLite models with greedy search: string -> string (TF Text
custom ops, SentencePiece unigram tokenizers) or ids -> ids (builtin ops)."""

from keras_attention.export.saved_model import (
    SavedModelTranslator,
    export_saved_model,
    next_version,
    resolve_version,
    version_directory,
)
from keras_attention.export.signatures import TextToTextModule
from keras_attention.export.tflite import TFLiteDecoder, export_tflite, export_tflite_folder
from keras_attention.export.tflite_text import TFLiteText, export_tflite_text

__all__ = [
    "SavedModelTranslator",
    "TFLiteDecoder",
    "TFLiteText",
    "TextToTextModule",
    "export_saved_model",
    "export_tflite",
    "export_tflite_folder",
    "export_tflite_text",
    "next_version",
    "resolve_version",
    "version_directory",
]
