"""Exports: a string-in/string-out SavedModel with tokenization and decoding
inside, and an ids-in/ids-out TFLite model with greedy search."""

from keras_attention.export.saved_model import (
    SavedModelTranslator,
    export_saved_model,
    next_version,
    resolve_version,
)
from keras_attention.export.signatures import TextToTextModule
from keras_attention.export.tflite import TFLiteGreedy, export_tflite, export_tflite_folder

__all__ = [
    "SavedModelTranslator",
    "TFLiteGreedy",
    "TextToTextModule",
    "export_saved_model",
    "export_tflite",
    "export_tflite_folder",
    "next_version",
    "resolve_version",
]
