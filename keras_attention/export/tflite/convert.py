"""Converting a ``tf.Module``'s search to TFLite: builtin ops only, with the
weights' precision chosen by ``quantize``.

``quantize``: ``none`` (float32), ``float16`` (weights stored as float16,
about half the size), ``dynamic`` (the converter's dynamic-range
quantization: int8 weights, float activations) or ``int8`` (``dynamic``
with every int8 weight stored once: ``tables.share_quantized_tables``;
0.26x of float32 for the tied ``small`` preset against 0.34x).
Full-integer quantization (int8 activations from a representative dataset)
is not offered: TensorFlow 2.21's calibrator crashes (segmentation fault)
on the decoding ``WHILE`` loop. Quantized files may pick a different token
where two are nearly tied.
"""

import tensorflow as tf

from keras_attention.constants import TFLITE_QUANTIZATIONS as QUANTIZATIONS
from keras_attention.export.tflite.tables import share_quantized_tables


def check_quantize(quantize):
    """A one-line ``ValueError`` unless ``quantize`` is one of ``QUANTIZATIONS``."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}.")


def to_tflite(concrete_function, module, quantize="none", custom_ops=False):
    """The ``.tflite`` bytes of ``concrete_function`` (of ``module``): builtin
    ops only, plus custom ops (TF Text's) with ``custom_ops``; the
    optimizations ``quantize`` asks for."""
    check_quantize(quantize)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete_function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = custom_ops
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    flatbuffer = converter.convert()
    return share_quantized_tables(flatbuffer) if quantize == "int8" else flatbuffer


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
