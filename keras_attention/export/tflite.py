"""TFLite export: a greedy ids -> ids decoder with TFLite builtin ops only.

``export_tflite`` converts the model's encoder and cached greedy search (the
``token_search`` loop of ``decoding/greedy.py`` over ``model.decode_step``)
into one ``.tflite`` flatbuffer:

- input ``source_ids``: int32 ``(1, max_source_length)``, PAD = 0 after the
  tokens (padding does not change the output);
- output ``ids``: int32 ``(1, max_output_length)`` generated ids (no START,
  END included, PAD after), those of ``generate(model, source_ids,
  DecodingConfig(max_length=max_output_length))``.

Decoding is a ``tf.while_loop`` (TFLite ``WHILE``) whose condition stops at
END, so short outputs take few steps. Only ``TFLITE_BUILTINS`` are allowed
(no Flex delegate needed); the one change from ``generate`` is the argmax,
which Keras computes with a bitwise op TFLite lacks. Tokenization stays with
the caller (the model folder's tokenizers).

``quantize``: ``none`` (float32), ``float16`` (weights stored as float16,
about half the size) or ``dynamic`` (int8 weights, dynamic-range
quantization, about a quarter); quantized files may pick a different token
where two are nearly tied.
"""

import json
import os

import numpy as np
import tensorflow as tf

from keras_attention.atomic import atomic_directory, write_atomically
from keras_attention.data.tokenizer_files import save_tokenizer
from keras_attention.data.tokenizers import END_ID, PAD_ID, START_ID
from keras_attention.decoding.cache import cached_steps
from keras_attention.decoding.generate import (
    DecodingConfig,
    end_empty_sources,
    generate,
    sentence_limits,
)
from keras_attention.decoding.greedy import token_search
from keras_attention.decoding.processors import decoding_processors
from keras_attention.models.saving import TrainedModel

QUANTIZATIONS = ("none", "float16", "dynamic")
SOURCE_IDS_NAME = "source_ids"
IDS_NAME = "ids"
SIGNATURE_KEY = "serving_default"
MODEL_FILE = "model.tflite"
METADATA_FILE = "keras_attention.json"


def tflite_argmax_pick(scores, tokens, index):
    """Greedy choice with TFLite's ``ARG_MAX`` (``keras.ops.argmax`` adds a
    bitwise op for signed zeros that TFLite has no kernel for)."""
    return tf.math.argmax(scores, axis=-1, output_type=tf.int32)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


class GreedyIdsModule(tf.Module):
    """The graph ``export_tflite`` converts: padded source ids -> greedy ids.

    Args:
        model: a ``keras_attention.models.Transformer``.
        max_source_length: source positions (at most the model's
            ``max_sequence_length``).
        max_output_length: generated tokens, END included (at most the
            model's ``max_sequence_length - 1``).
    """

    def __init__(self, model, max_source_length, max_output_length):
        super().__init__(name="greedy_ids")
        limit = model.config.max_sequence_length
        _positive_int(max_source_length, "max_source_length")
        _positive_int(max_output_length, "max_output_length")
        if max_source_length > limit:
            raise ValueError(
                f"max_source_length={max_source_length} exceeds the model's "
                f"max_sequence_length {limit}; use at most {limit}."
            )
        if max_output_length > limit - 1:
            raise ValueError(
                f"max_output_length={max_output_length} exceeds what the model can decode "
                f"({limit - 1} = max_sequence_length - 1); use at most {limit - 1}."
            )
        self.model = model
        self.tf_vars = [v.value for v in model.weights]
        self.max_source_length = max_source_length
        self.max_output_length = max_output_length
        self.config = DecodingConfig(max_length=max_output_length)
        self.ids = tf.function(
            self._ids,
            input_signature=[tf.TensorSpec([1, max_source_length], tf.int32,
                                           name=SOURCE_IDS_NAME)],
        )

    def _ids(self, source_ids):
        length = self.max_output_length
        steps = cached_steps(self.model)
        state = steps.start(source_ids, length + 1)
        limits = sentence_limits(source_ids, self.config, length)
        tokens, scores = token_search(
            steps.next, tflite_argmax_pick, tf.fill([1], START_ID), state, length + 1,
            END_ID, PAD_ID, decoding_processors(self.config, limits, END_ID),
        )
        # generate's rule: an all-padding source gives [END] then PAD.
        ids, _ = end_empty_sources(source_ids, tokens[:, None, 1:], scores[:, None])
        return {IDS_NAME: ids[:, 0]}


def convert(module, quantize="none"):
    """The ``.tflite`` bytes of a ``GreedyIdsModule`` (builtin ops only)."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}.")
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.ids.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def float32_copy(model):
    """``model`` itself when it computes in float32, else a float32 copy with
    the same weights: TFLite has no builtin bfloat16 kernels, and a model
    trained under ``mixed_bfloat16``/``mixed_float16`` keeps float32 weights,
    so nothing is lost. (``quantize`` then decides the file's precision.)"""
    if model.compute_dtype == "float32":
        return model
    copy = type(model)(model.config, dtype="float32", name=model.name)
    copy.set_weights(model.get_weights())
    return copy


def export_tflite(trained_or_model, path, max_source_length, max_output_length,
                  quantize="none"):
    """Write the greedy ids -> ids decoder of a model to ``path`` (``.tflite``).

    Args:
        trained_or_model: a ``models.TrainedModel`` or a ``Transformer``.
        path: the file to write, through a temporary file renamed into place.
        max_source_length: the input's fixed length (pad with 0).
        max_output_length: most generated tokens, END included.
        quantize: one of ``QUANTIZATIONS``.

    Returns:
        ``path``.
    """
    model = trained_or_model.model if isinstance(trained_or_model, TrainedModel) \
        else trained_or_model
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}.")
    module = GreedyIdsModule(float32_copy(model), max_source_length, max_output_length)
    write_atomically(path, convert(module, quantize))
    return path


def _interpreter(path):
    """A LiteRT interpreter (``ai_edge_litert``), else TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


class TFLiteGreedy:
    """Runs an ``export_tflite`` file on source ids.

    ``TFLiteGreedy(path)(source_ids)``: ``source_ids`` int ``(batch, length)``
    with ``length <= max_source_length`` and PAD = 0 -> int32 ``(batch,
    max_output_length)`` generated ids, one interpreter call per row.
    """

    def __init__(self, path):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"TFLite model '{path}' not found; write one with "
                "'keras-attention export --format tflite'."
            )
        self.interpreter = _interpreter(path)
        self._run = self.interpreter.get_signature_runner(SIGNATURE_KEY)
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


def export_tflite_folder(trained, directory, max_output_length, quantize="none"):
    """Write ``directory/`` (atomically) with ``model.tflite`` (the source
    length is the model's ``max_sequence_length``), the source and target
    tokenizers (``source.json``, ``target.json`` and their vocabularies, for
    the client's tokenization) and ``keras_attention.json`` (lengths,
    quantization, input/output names). Returns ``directory``."""
    max_source_length = trained.model.config.max_sequence_length
    with atomic_directory(directory) as tmp:
        export_tflite(trained, os.path.join(tmp, MODEL_FILE), max_source_length,
                      max_output_length, quantize=quantize)
        save_tokenizer(trained.source_tokenizer, tmp, "source")
        save_tokenizer(trained.target_tokenizer, tmp, "target")
        info = {
            "format": "tflite",
            "task": trained.task,
            "decoding": "greedy",
            "quantize": quantize,
            "max_source_length": max_source_length,
            "max_output_length": max_output_length,
            "inputs": {SOURCE_IDS_NAME: f"int32 (1, {max_source_length}), PAD = 0"},
            "outputs": {IDS_NAME: f"int32 (1, {max_output_length}), END then PAD"},
            "versions": {"tensorflow": tf.__version__},
        }
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(info, f, indent=2)
    return directory


def compare_with_model(trained, path, texts):
    """Decode ``texts`` with the ``.tflite`` file at ``path`` and in memory
    (``generate``, greedy); returns ``(tflite_texts, model_texts)``. Inputs
    longer than the file's source length are cut to it."""
    runner = TFLiteGreedy(path)
    ids = trained.source_tokenizer.tokenize(tf.constant(list(texts)))
    ids = ids[:, : runner.max_source_length].to_tensor(0, shape=[None, runner.max_source_length])
    ids = ids.numpy()
    config = DecodingConfig(max_length=runner.max_output_length)
    expected = generate(trained.model, ids, config).ids.numpy()[:, 0]
    # All-padding rows give [END] in the export.
    expected[~ids.any(axis=1)] = np.eye(1, runner.max_output_length, dtype=np.int32) * END_ID

    def decode(rows):
        return [t.decode("utf-8") for t in trained.target_tokenizer.detokenize(rows).numpy()]

    return decode(runner(ids)), decode(expected)
