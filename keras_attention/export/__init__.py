"""Exports: a string-in/string-out SavedModel with tokenization and decoding
inside, TFLite models (``tflite/``) with greedy or beam search: string ->
string (TF Text custom ops, SentencePiece unigram tokenizers) or ids -> ids
(builtin ops), and CTranslate2 model folders (``ctranslate2.py``)."""

from keras_attention.export.saved_model import (
    SavedModelTranslator,
    export_saved_model,
    next_version,
    resolve_version,
    version_directory,
)
from keras_attention.export.signatures import TextToTextModule
from keras_attention.export.tflite import (
    TFLiteDecoder,
    TFLiteText,
    export_tflite,
    export_tflite_folder,
    export_tflite_text,
)

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
