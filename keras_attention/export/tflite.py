"""TFLite export: a greedy or beam search ids -> ids decoder with TFLite
builtin ops only.

``export_tflite`` converts the model's encoder and cached greedy search (the
``token_search`` loop of ``decoding/greedy.py`` over ``model.decode_step``)
or beam search (``decoding/beam.py``, with its length penalty) into one
``.tflite`` flatbuffer:

- input ``source_ids``: int32 ``(1, max_source_length)``, PAD = 0 after the
  tokens (padding does not change the output);
- output ``ids``: int32 ``(1, max_output_length)`` generated ids (no START,
  END included, PAD after), those of ``generate(model, source_ids,
  DecodingConfig(max_length=max_output_length))`` (with ``beam_size`` > 1:
  ``strategy="beam"``, ``beam_size``, ``length_penalty``).

Decoding is a ``tf.while_loop`` (TFLite ``WHILE``) whose condition stops at
END (beam search: once no beam can win), so short outputs take few steps.
Only ``TFLITE_BUILTINS`` are allowed (no Flex delegate needed); the one
change from ``generate`` is the greedy argmax, which Keras computes with a
bitwise op TFLite lacks. Tokenization stays with the caller (the model
folder's tokenizers).

``quantize``: ``none`` (float32), ``float16`` (weights stored as float16,
about half the size), ``dynamic`` (the converter's dynamic-range
quantization: int8 weights, float activations) or ``int8`` (``dynamic``
with every int8 weight stored once: the converter keeps a tied
embedding/output table twice, a per-tensor copy for ``GATHER`` and a
per-channel one for the output layer, and ``share_quantized_tables`` points
the gathers at the per-channel one; 0.26x of float32 for the tied ``small``
preset against 0.34x). Full-integer quantization (int8 activations from a
representative dataset) is not offered: TensorFlow 2.21's calibrator
crashes (segmentation fault) on the decoding ``WHILE`` loop. Quantized
files may pick a different token where two are nearly tied.

Runtimes: LiteRT (``ai_edge_litert``) and ``tf.lite.Interpreter``. The
latter, like older runtimes on phones, slices at most 5-D tensors; the
model's key/value cache is 4-D tensors (one keys and one values tensor per
layer), so both run the file. The string -> string model (tokenizers
inside) is in ``tflite_text``.
"""

import dataclasses
import importlib
import json
import os

import flatbuffers
import numpy as np
import tensorflow as tf

from keras_attention.atomic import atomic_directory, refuse_existing, write_atomically
from keras_attention.data.tokenizer_files import save_tokenizer
from keras_attention.data.tokenizers import END_ID, PAD_ID, START_ID
from keras_attention.decoding.beam import beam_search
from keras_attention.decoding.cache import cached_steps, tile_rows
from keras_attention.decoding.generate import (
    DecodingConfig,
    end_empty_sources,
    generate,
    sentence_limits,
)
from keras_attention.decoding.greedy import token_search
from keras_attention.decoding.processors import decoding_processors
from keras_attention.export.signatures import check_exportable
from keras_attention.models.saving import TrainedModel

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
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


def search_options(config):
    """The ``beam_size``/``length_penalty`` arguments of the TFLite exports
    for a ``DecodingConfig`` (greedy search: ``beam_size=1``); sampling is
    refused as in the SavedModel export."""
    check_exportable(config)
    return {"beam_size": config.beam_size if config.strategy == "beam" else 1,
            "length_penalty": config.length_penalty}


def search_config(max_output_length, beam_size=1, length_penalty=0.6):
    """The ``DecodingConfig`` a TFLite export runs: greedy search for
    ``beam_size=1``, else beam search."""
    if beam_size == 1:
        return DecodingConfig(max_length=max_output_length)
    return DecodingConfig(strategy="beam", beam_size=beam_size, length_penalty=length_penalty,
                          max_length=max_output_length)


class SearchIdsModule(tf.Module):
    """The graph ``export_tflite`` converts: padded source ids -> the ids of
    greedy search (``beam_size=1``) or beam search.

    Args:
        model: a ``keras_attention.models.Transformer``.
        max_source_length: source positions (at most the model's
            ``max_sequence_length``).
        max_output_length: generated tokens, END included (at most the
            model's ``max_sequence_length - 1``).
        beam_size: 1 for greedy search, else beam search with this many beams.
        length_penalty: beam search's GNMT alpha.
    """

    def __init__(self, model, max_source_length, max_output_length, beam_size=1,
                 length_penalty=0.6):
        super().__init__(name="search_ids")
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
        _positive_int(beam_size, "beam_size")
        self.config = search_config(max_output_length, beam_size, length_penalty)
        self.ids = tf.function(
            self.search,
            input_signature=[tf.TensorSpec([1, max_source_length], tf.int32,
                                           name=SOURCE_IDS_NAME)],
        )

    def search(self, source_ids):
        """``{"ids": (1, max_output_length) int32}`` for padded source ids."""
        length, config = self.max_output_length, self.config
        steps = cached_steps(self.model)
        state = steps.start(source_ids, length + 1)
        limits = sentence_limits(source_ids, config, length)
        start = tf.fill([1], START_ID)
        if config.strategy == "greedy":
            tokens, scores = token_search(
                steps.next, tflite_argmax_pick, start, state, length + 1, END_ID, PAD_ID,
                decoding_processors(config, limits, END_ID),
            )
            tokens, scores = tokens[:, None], scores[:, None]
        else:
            tokens, scores = beam_search(
                steps.next, start, state, length + 1, END_ID, PAD_ID,
                beam_size=config.beam_size, length_penalty=config.length_penalty,
                processors=decoding_processors(config, tile_rows(limits, config.beam_size),
                                               END_ID),
                reorder_fn=steps.reorder, stopping=config.beam_stopping,
            )
        # generate's rule: an all-padding source gives [END] then PAD.
        ids, _ = end_empty_sources(source_ids, tokens[:, :, 1:], scores)
        return {IDS_NAME: ids[:, 0]}


def _check_quantize(quantize):
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}.")


def converter_for(concrete_function, module, quantize="none"):
    """A ``TFLiteConverter`` for ``concrete_function`` (of ``module``) with
    builtin ops only and the optimizations ``quantize`` asks for."""
    _check_quantize(quantize)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete_function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter


def finish(flatbuffer, quantize):
    """The converter's output, with ``share_quantized_tables`` for ``int8``."""
    return share_quantized_tables(flatbuffer) if quantize == "int8" else flatbuffer


def convert(module, quantize="none"):
    """The ``.tflite`` bytes of a ``SearchIdsModule`` (builtin ops only)."""
    converter = converter_for(module.ids.get_concrete_function(), module, quantize)
    return finish(converter.convert(), quantize)


def _schema():
    return importlib.import_module("tensorflow.lite.python.schema_py_generated")


def _dequantized(tensor, data):
    """The float values of a constant int8 ``tensor`` (per-tensor or per-channel)."""
    q = tensor.quantization
    values = np.frombuffer(bytes(data), np.int8).reshape(tensor.shape).astype(np.float32)
    scale = np.asarray(q.scale, np.float32)
    zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float32)
    if scale.size > 1:
        shape = [1] * values.ndim
        shape[q.quantizedDimension] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape) if zero.size > 1 else zero
    return (values - zero) * scale


def share_quantized_tables(flatbuffer):
    """``flatbuffer`` with each per-tensor int8 constant that feeds a
    ``DEQUANTIZE`` replaced by a per-channel int8 constant of the same float
    tensor, when the file has one (a tied embedding table: the gathers then
    read the output layer's int8 copy). "The same float tensor": same shape,
    and the two dequantize to values within half a step of each other's
    quantization. Unused buffers are emptied. Returns the new bytes."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    dequantize = {i for i, code in enumerate(model.operatorCodes)
                  if max(code.builtinCode, code.deprecatedBuiltinCode)
                  == schema.BuiltinOperator.DEQUANTIZE}

    def constant_int8(tensor):
        data = model.buffers[tensor.buffer].data
        return (tensor.type == schema.TensorType.INT8 and data is not None and len(data) > 0
                and tensor.quantization is not None and tensor.quantization.scale is not None)

    per_channel = [t for g in model.subgraphs for t in g.tensors
                   if constant_int8(t) and len(t.quantization.scale) > 1]
    for graph in model.subgraphs:
        for op in graph.operators:
            if op.opcodeIndex not in dequantize:
                continue
            tensor = graph.tensors[op.inputs[0]]
            if not constant_int8(tensor) or len(tensor.quantization.scale) != 1:
                continue
            values = _dequantized(tensor, model.buffers[tensor.buffer].data)
            for other in per_channel:
                if list(other.shape) != list(tensor.shape):
                    continue
                other_values = _dequantized(other, model.buffers[other.buffer].data)
                step = tensor.quantization.scale[0] + np.max(other.quantization.scale)
                if np.max(np.abs(values - other_values)) <= 0.5 * step * 1.001:
                    tensor.buffer, tensor.quantization = other.buffer, other.quantization
                    break
    used = {t.buffer for g in model.subgraphs for t in g.tensors}
    for index, buffer in enumerate(model.buffers):
        if index not in used:
            buffer.data = None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


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
                  quantize="none", beam_size=1, length_penalty=0.6):
    """Write the ids -> ids decoder of a model to ``path`` (``.tflite``).

    Args:
        trained_or_model: a ``models.TrainedModel`` or a ``Transformer``.
        path: the file to write, through a temporary file renamed into place.
        max_source_length: the input's fixed length (pad with 0).
        max_output_length: most generated tokens, END included.
        quantize: one of ``QUANTIZATIONS``.
        beam_size: 1 for greedy search, else beam search with this many beams.
        length_penalty: beam search's GNMT alpha.

    Returns:
        ``path``.
    """
    model = trained_or_model.model if isinstance(trained_or_model, TrainedModel) \
        else trained_or_model
    _check_quantize(quantize)
    module = SearchIdsModule(float32_copy(model), max_source_length, max_output_length,
                             beam_size=beam_size, length_penalty=length_penalty)
    write_atomically(path, convert(module, quantize))
    return path


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
    """Runs an ``export_tflite`` file on source ids (``interpreter_class``:
    as for ``load_interpreter``).

    ``TFLiteDecoder(path)(source_ids)``: ``source_ids`` int ``(batch, length)``
    with ``length <= max_source_length`` and PAD = 0 -> int32 ``(batch,
    max_output_length)`` generated ids, one interpreter call per row.
    """

    def __init__(self, path, interpreter_class=None):
        self.interpreter = load_interpreter(path, interpreter_class)
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


TFLITE_IO = ("text", "ids")


def export_tflite_folder(trained, directory, max_output_length, quantize="none", io="ids",
                         beam_size=1, length_penalty=0.6, overwrite=False):
    """Write ``directory/`` (atomically) with ``model.tflite``, the source
    and target tokenizers (``source.json``, ``target.json`` and their
    vocabularies or models) and ``keras_attention.json`` (lengths,
    quantization, decoding, input/output names). Returns ``directory``.
    An existing ``directory`` is a ``FileExistsError`` (before converting)
    unless ``overwrite=True``: then it is replaced.

    ``io``: ``"ids"`` (``export_tflite``, source length the model's
    ``max_sequence_length``; the app tokenizes with the saved tokenizers)
    or ``"text"`` (``tflite_text.export_tflite_text``: strings in and out).
    ``beam_size``: 1 for greedy search, else beam search
    (``length_penalty``: its GNMT alpha).
    """
    from keras_attention.export.tflite_text import INPUTS_NAME, OUTPUTS_NAME, export_tflite_text

    if io not in TFLITE_IO:
        raise ValueError(f"io must be one of {TFLITE_IO}, got {io!r}.")
    if not overwrite:
        refuse_existing(directory, "TFLite export", "--version")
    max_source_length = trained.model.config.max_sequence_length
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        path = os.path.join(tmp, MODEL_FILE)
        ids_output = f"int32 (1, {max_output_length}), END then PAD"
        search = {"beam_size": beam_size, "length_penalty": length_penalty}
        if io == "text":
            export_tflite_text(trained, path, max_output_length, quantize=quantize, **search)
            inputs = {INPUTS_NAME: "string (1,), UTF-8; tokens past max_source_length are cut"}
            outputs = {OUTPUTS_NAME: "string (1,)", IDS_NAME: ids_output}
        else:
            export_tflite(trained, path, max_source_length, max_output_length, quantize=quantize,
                          **search)
            inputs = {SOURCE_IDS_NAME: f"int32 (1, {max_source_length}), PAD = 0"}
            outputs = {IDS_NAME: ids_output}
        save_tokenizer(trained.source_tokenizer, tmp, "source")
        save_tokenizer(trained.target_tokenizer, tmp, "target")
        versions = {"tensorflow": tf.__version__}
        if io == "text":
            import tensorflow_text

            versions["tensorflow_text"] = tensorflow_text.__version__
        info = {
            "format": "tflite",
            "io": io,
            "custom_ops": "tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS"
            if io == "text" else None,
            "task": trained.task,
            "decoding": {name: value for name, value in dataclasses.asdict(
                search_config(max_output_length, **search)).items()
                if name in ("strategy", "beam_size", "length_penalty", "max_length")},
            "quantize": quantize,
            "max_source_length": max_source_length,
            "max_output_length": max_output_length,
            "inputs": inputs,
            "outputs": outputs,
            "versions": versions,
        }
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(info, f, indent=2)
    return directory


def model_texts(trained, texts, max_source_length, max_output_length, beam_size=1,
                length_penalty=0.6):
    """In-memory outputs (``generate``; greedy, or beam search for
    ``beam_size`` > 1) of ``texts``, each cut to ``max_source_length`` tokens
    as the exports do."""
    ids = trained.source_tokenizer.tokenize(tf.constant(list(texts)))
    ids = ids[:, :max_source_length].to_tensor(0, shape=[None, max_source_length]).numpy()
    config = search_config(max_output_length, beam_size, length_penalty)
    expected = generate(trained.model, ids, config)
    expected = expected.ids.numpy()[:, 0]
    # All-padding rows give [END] in the exports.
    expected[~ids.any(axis=1)] = np.eye(1, max_output_length, dtype=np.int32) * END_ID
    return ids, [t.decode("utf-8") for t in trained.target_tokenizer.detokenize(expected).numpy()]


def compare_with_model(trained, path, texts, beam_size=1, length_penalty=0.6):
    """Decode ``texts`` with the ids -> ids ``.tflite`` file at ``path`` and
    in memory (``generate`` with the file's search: greedy, or beam search
    for ``beam_size`` > 1); returns ``(tflite_texts, model_texts)``. Inputs
    longer than the file's source length are cut."""
    runner = TFLiteDecoder(path)
    ids, expected = model_texts(trained, texts, runner.max_source_length,
                                runner.max_output_length, beam_size, length_penalty)
    outputs = trained.target_tokenizer.detokenize(runner(ids)).numpy()
    return [t.decode("utf-8") for t in outputs], expected
