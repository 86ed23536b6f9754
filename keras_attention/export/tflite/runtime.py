"""Running the TFLite exports: the interpreters (LiteRT's ``ai_edge_litert``
or TensorFlow's ``tf.lite``) and one runner per graph, ``TFLiteDecoder``
(ids -> ids) and ``TFLiteText`` (string -> string, TF Text ops registered).
"""

import importlib
import os

import numpy as np

from keras_attention.export.signatures import (
    DEFAULT_SIGNATURE,
    IDS_NAME,
    INPUT_NAME,
    OUTPUT_NAME,
    SOURCE_IDS_NAME,
)


def interpreter_classes():
    """The interpreter classes that can run the exports, LiteRT's first:
    ``ai_edge_litert``'s and TensorFlow's ``InterpreterWithCustomOps``
    (``tf.lite.Interpreter`` plus custom op registration)."""
    classes = []
    try:
        from ai_edge_litert.interpreter import InterpreterWithCustomOps
        classes.append(InterpreterWithCustomOps)
    except ImportError:
        pass
    classes.append(importlib.import_module(
        "tensorflow.lite.python.interpreter").InterpreterWithCustomOps)
    return classes


def load_interpreter(path, interpreter_class=None, text_ops=False):
    """An interpreter for the ``.tflite`` file ``path``: ``interpreter_class``
    or the first of ``interpreter_classes()``; ``text_ops`` registers TF
    Text's TFLite kernels (the string -> string model needs them)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"TFLite model '{path}' not found; write one with "
            "'keras-attention export --format tflite'."
        )
    interpreter_class = interpreter_class or interpreter_classes()[0]
    registerers = []
    if text_ops:
        import tensorflow_text

        registerers = tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS
    return interpreter_class(model_path=path, custom_op_registerers=registerers)


class TFLiteDecoder:
    """Runs an ``ids.export_tflite`` file on source ids (``interpreter_class``:
    as for ``load_interpreter``).

    ``TFLiteDecoder(path)(source_ids)``: ``source_ids`` int ``(batch, length)``
    with ``length <= max_source_length`` and PAD = 0 -> int32 ``(batch,
    max_output_length)`` generated ids, one interpreter call per row.
    """

    def __init__(self, path, interpreter_class=None):
        self.interpreter = load_interpreter(path, interpreter_class)
        self._run = self.interpreter.get_signature_runner(DEFAULT_SIGNATURE)
        details = self._run.get_input_details()[SOURCE_IDS_NAME]
        self.max_source_length = int(details["shape"][1])
        self.max_output_length = int(self._run.get_output_details()[IDS_NAME]["shape"][1])

    def __call__(self, source_ids):
        source_ids = np.asarray(source_ids)
        if source_ids.ndim != 2 or source_ids.shape[1] > self.max_source_length:
            raise ValueError(
                f"source_ids must have shape (batch, length <= {self.max_source_length}), "
                f"got {source_ids.shape}; truncate or export with a larger max_source_length."
            )
        if source_ids.size and source_ids.min() < 0:
            raise ValueError("source_ids must be >= 0 (PAD = 0).")
        padded = np.zeros((len(source_ids), self.max_source_length), np.int32)
        padded[:, : source_ids.shape[1]] = source_ids
        rows = [self._run(**{SOURCE_IDS_NAME: row[None]})[IDS_NAME][0] for row in padded]
        return np.stack(rows) if rows else np.zeros((0, self.max_output_length), np.int32)


class TFLiteText:
    """Runs a ``text.export_tflite_text`` file: ``TFLiteText(path)(texts)`` ->
    the list of translations, one interpreter call per text.

    The interpreter is LiteRT's (``ai_edge_litert``) when installed, else
    TensorFlow's, with the TF Text ops registered; ``interpreter_class``
    picks one (an ``InterpreterWithCustomOps`` class).
    """

    def __init__(self, path, interpreter_class=None):
        self.interpreter = load_interpreter(path, interpreter_class, text_ops=True)
        self._run = self.interpreter.get_signature_runner(DEFAULT_SIGNATURE)
        if INPUT_NAME not in self._run.get_input_details():
            raise ValueError(f"'{path}' is an ids -> ids TFLite model, not a string one; run it "
                             "with TFLiteDecoder and the folder's tokenizers.")
        self.max_output_length = int(self._run.get_output_details()[IDS_NAME]["shape"][1])

    def ids(self, text):
        """Generated ids ``(max_output_length,)`` of one text."""
        return self._run(**{INPUT_NAME: np.array([text], dtype=object)})[IDS_NAME][0]

    def __call__(self, texts):
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a list of strings, got one string; wrap it in a list.")
        return [self._run(**{INPUT_NAME: np.array([t], dtype=object)})[OUTPUT_NAME][0]
                .decode("utf-8") for t in texts]
