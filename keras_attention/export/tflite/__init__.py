"""TFLite exports: the model's encoder and its greedy or beam search
(``generate``, the one search of every path) in one ``.tflite`` flatbuffer.

Two graphs, by what the app hands over:

- ``ids.py``: ids -> ids (``export_tflite``), TFLite builtin ops only; the
  app tokenizes with the folder's tokenizers;
- ``text.py``: string -> string (``export_tflite_text``), tokenization and
  detokenization inside as TF Text custom ops (SentencePiece unigram
  tokenizers only).

Both are converted by ``convert.py`` (builtin ops, the ``QUANTIZATIONS``),
whose ``int8`` stores a tied table once (``tables.py``); ``runtime.py`` runs
the files (LiteRT or ``tf.lite``); ``folder.py`` writes an export folder
(the file, the tokenizers, ``keras_attention.json``) and compares a file
with the in-memory model.
"""

from keras_attention.export.tflite.convert import QUANTIZATIONS
from keras_attention.export.tflite.folder import (
    MODEL_FILE,
    TFLITE_IO,
    compare_with_model,
    export_tflite_folder,
)
from keras_attention.export.tflite.ids import SearchIdsModule, check_tflite_decoding, export_tflite
from keras_attention.export.tflite.runtime import (
    TFLiteDecoder,
    TFLiteText,
    interpreter_classes,
    load_interpreter,
)
from keras_attention.export.tflite.text import (
    TextSearchModule,
    export_tflite_text,
    fast_sentencepiece,
    text_model_problem,
)

__all__ = [
    "MODEL_FILE",
    "QUANTIZATIONS",
    "SearchIdsModule",
    "TFLITE_IO",
    "TFLiteDecoder",
    "TFLiteText",
    "TextSearchModule",
    "check_tflite_decoding",
    "compare_with_model",
    "export_tflite",
    "export_tflite_folder",
    "export_tflite_text",
    "fast_sentencepiece",
    "interpreter_classes",
    "load_interpreter",
    "text_model_problem",
]
