"""Storing each int8 table of a ``.tflite`` file once.

The converter's dynamic-range quantization keeps a tied embedding/output
table twice: a per-tensor int8 copy for ``GATHER`` and a per-channel one for
the output layer. ``share_quantized_tables`` points the gathers at the
per-channel copy (the ``int8`` quantization of ``convert.py``).
"""

import importlib

import flatbuffers
import numpy as np


def schema():
    """TensorFlow's generated Python classes of the TFLite flatbuffer schema."""
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
    fields = schema()
    model = fields.ModelT.InitFromObj(fields.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    dequantize = {i for i, code in enumerate(model.operatorCodes)
                  if max(code.builtinCode, code.deprecatedBuiltinCode)
                  == fields.BuiltinOperator.DEQUANTIZE}

    def constant_int8(tensor):
        data = model.buffers[tensor.buffer].data
        return (tensor.type == fields.TensorType.INT8 and data is not None and len(data) > 0
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
