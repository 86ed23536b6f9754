"""``ServedModel``: an exported SavedModel's signatures called with JSON values
(TF Serving's row and columnar formats), and its status and metadata JSON."""

import dataclasses
import json
import os
import re

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from keras_attention.constants import METADATA_FILE
from keras_attention.export.saved_model import resolve_version
from keras_attention.export.signatures import DEFAULT_SIGNATURE
from keras_attention.export.warmup import WARMUP_FILE, read_warmup_requests
from keras_attention.serving import b64
from keras_attention.serving.batching import Batcher
from keras_attention.serving.errors import RequestError


def _dtype_name(dtype):
    """TF's ``DataType`` enum name, as TF Serving writes it (``DT_FLOAT``, not ``DT_FLOAT32``)."""
    return types_pb2.DataType.Name(dtype.as_datatype_enum)


def _shape_json(shape):
    if shape.rank is None:
        return {"dim": [], "unknown_rank": True}
    dims = [{"size": str(-1 if d is None else d), "name": ""} for d in shape.as_list()]
    return {"dim": dims, "unknown_rank": False}


def _tensor_info(spec):
    return {"dtype": _dtype_name(spec.dtype), "tensor_shape": _shape_json(spec.shape),
            "name": spec.name or ""}


def _nested_shape(value, where):
    """The shape of nested JSON lists; ragged nesting is a 400."""
    if not isinstance(value, list):
        return ()
    if not value:
        return (0,)
    shapes = {_nested_shape(item, where) for item in value}
    if len(shapes) != 1:
        raise RequestError(400, f"{where} is ragged (nested lists of different lengths); "
                                "pad every row to the same length.")
    return (len(value),) + shapes.pop()


def _leaves(value):
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


class ServedModel:
    """An exported SavedModel's signatures, called with JSON values.

    Args:
        path: a model folder (its highest numbered version is loaded) or a
            version folder holding ``saved_model.pb``.
        name: the name in the URLs; default the model folder's name.
        max_string_length: most characters in one input string.
        batching: a ``RequestBatching`` to merge concurrent calls of a
            signature into one (``batcher``), or ``None`` to call each alone.
        on_batch: ``on_batch(signature_name, size)`` after each signature
            call (a merged batch with ``batching``, see ``Batcher``; else
            each request).

    Attributes:
        warmup_requests: how many of the version's warmup records
            (``assets.extra/tf_serving_warmup_requests``) were run at load,
            as TF Serving does before a version is AVAILABLE; a failing one
            fails the load.
    """

    def __init__(self, path, name=None, max_string_length=4096, batching=None, on_batch=None):
        import tensorflow_text  # noqa: F401  (registers TF Text ops used by exports)

        self.path = resolve_version(path)
        folder = os.path.basename(os.path.normpath(self.path))
        self.version = folder if folder.isdigit() else "1"
        if name is None:
            model_folder = self.path if not folder.isdigit() else os.path.dirname(self.path)
            name = os.path.basename(os.path.normpath(os.path.abspath(model_folder)))
        if not name or "/" in name or ":" in name:
            raise ValueError(f"model name must be non-empty without '/' or ':', got {name!r}; "
                             "pass another with --name.")
        self.name = name
        self.max_string_length = max_string_length
        self._loaded = tf.saved_model.load(self.path)
        self.signatures = dict(self._loaded.signatures)
        if not self.signatures:
            raise ValueError(f"SavedModel '{self.path}' has no signatures; export it with "
                             "keras_attention.export.export_saved_model.")
        self.warmup_requests = self._warm_up()
        self._on_batch = on_batch
        self.batcher = None
        if batching is not None:
            export_limit = _export_max_batch_size(self.path)
            if export_limit and export_limit < batching.max_batch_size:
                batching = dataclasses.replace(batching, max_batch_size=export_limit)
            self.batcher = Batcher(self._run, batching, on_batch=on_batch,
                                   direct=[key for key in self.signatures
                                           if not self._batchable(key)])

    def close(self, timeout=None):
        """Run the requests queued for batching, then stop its threads."""
        if self.batcher is not None:
            self.batcher.stop(timeout)

    def queue_depth(self):
        """Requests waiting to be merged into a batch (0 without batching)."""
        return 0 if self.batcher is None else self.batcher.queue_depth()

    def _warm_up(self):
        requests = read_warmup_requests(self.path)
        for number, (signature_name, inputs) in enumerate(requests, 1):
            where = f"warmup request {number} of '{os.path.join(self.path, WARMUP_FILE)}'"
            if signature_name not in self.signatures:
                raise ValueError(f"{where} names signature '{signature_name}', which the model "
                                 "lacks; export again or delete the file.")
            try:
                self.signatures[signature_name](**{k: tf.constant(v) for k, v in inputs.items()})
            except (tf.errors.OpError, ValueError, TypeError) as error:
                raise ValueError(f"{where} failed: {_model_error(error)}; export again or "
                                 "delete the file.") from None
        return len(requests)

    def input_specs(self, signature_name):
        return self._signature(signature_name).structured_input_signature[1]

    def output_specs(self, signature_name):
        return self._signature(signature_name).structured_outputs

    def status(self):
        """TF Serving's model status JSON."""
        return {"model_version_status": [{
            "version": self.version,
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }]}

    def metadata(self):
        """TF Serving's model metadata JSON: every signature's inputs and outputs."""
        signature_def = {}
        for key in sorted(self.signatures):
            signature_def[key] = {
                "inputs": {k: _tensor_info(s) for k, s in sorted(self.input_specs(key).items())},
                "outputs": {k: _tensor_info(s) for k, s in sorted(self.output_specs(key).items())},
                "method_name": "tensorflow/serving/predict",
            }
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": self.version},
            "metadata": {"signature_def": {"signature_def": signature_def}},
        }

    def predict(self, request):
        """Answer a parsed ``:predict`` body; returns ``(response, instance_count)``."""
        if not isinstance(request, dict):
            raise RequestError(400, 'request body must be a JSON object like {"instances": [...]}.')
        signature_name = request.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(signature_name, str):
            raise RequestError(400, "signature_name must be a string.")
        specs = self.input_specs(signature_name)
        unknown = sorted(set(request) - {"signature_name", "instances", "inputs"})
        if unknown:
            raise RequestError(400, f"unknown request key(s) {unknown}; send 'instances' "
                                    "(row format) or 'inputs' (columnar format).")
        if ("instances" in request) == ("inputs" in request):
            raise RequestError(400, "send exactly one of 'instances' (row format) or 'inputs' "
                                    "(columnar format).")
        if "instances" in request:
            columns = self._rows_to_columns(request["instances"], specs)
        else:
            columns = self._columnar_inputs(request["inputs"], specs)
        tensors = {key: self._to_tensor(value, specs[key]) for key, value in columns.items()}
        outputs, count = self.predict_tensors(signature_name, tensors)
        if "instances" in request:
            return {"predictions": self._columns_to_rows(outputs)}, count
        values = {key: _to_json(tensor, key) for key, tensor in outputs.items()}
        if len(values) == 1:
            return {"outputs": next(iter(values.values()))}, count
        return {"outputs": values}, count

    def predict_tensors(self, signature_name, tensors, max_batch=None):
        """Call a signature with ``{input name: tf.Tensor}`` after checking the
        tensors against its inputs (names, dtypes, shapes, string lengths, one
        batch size, at most ``max_batch`` examples when given); returns
        ``(outputs, batch_size)``. REST and gRPC both call the model here."""
        specs = self.input_specs(signature_name)
        if set(tensors) != set(specs):
            raise RequestError(400, f"inputs have keys {sorted(tensors)}; the signature's "
                                    f"inputs are {sorted(specs)}.")
        for name in sorted(tensors):
            tensor, spec, where = tensors[name], specs[name], f"input '{name}'"
            if tensor.dtype != spec.dtype:
                raise RequestError(400, f"{where} has dtype {_dtype_name(tensor.dtype)}; the "
                                        f"signature expects {_dtype_name(spec.dtype)}.")
            if not spec.shape.is_compatible_with(tensor.shape):
                raise RequestError(400, f"{where} has shape {tensor.shape.as_list()}; the "
                                        f"signature expects {_shape_text(spec.shape)} of "
                                        f"{spec.dtype.name}.")
            if spec.dtype == tf.string:
                self._check_string_lengths(tensor, where)
        count = self._batch_size(tensors)
        if max_batch is not None and count > max_batch:
            raise RequestError(413, f"{count} examples is over the limit of {max_batch} per "
                                    "request (--max-batch); split the request.")
        return self._call(signature_name, tensors), count

    def _check_string_lengths(self, tensor, where):
        limit = self.max_string_length
        for data in tensor.numpy().reshape(-1):
            if len(data) <= limit:  # bytes bound the characters from above
                continue
            length = len(data.decode("utf-8", errors="replace"))
            if length > limit:
                raise RequestError(413, f"{where} has a string of {length} characters; the "
                                        f"limit is {limit} (--max-string-length).")

    def _signature(self, signature_name):
        if signature_name not in self.signatures:
            available = ", ".join(sorted(self.signatures))
            raise RequestError(400, f"signature '{signature_name}' not found; "
                                    f"available: {available}.")
        return self.signatures[signature_name]

    @staticmethod
    def _rows_to_columns(instances, specs):
        if not isinstance(instances, list) or not instances:
            raise RequestError(400, "'instances' must be a non-empty list, one entry per example.")
        names = sorted(specs)
        columns = {name: [] for name in names}
        for i, instance in enumerate(instances):
            if isinstance(instance, dict) and not b64.is_b64(instance):
                if set(instance) != set(names):
                    raise RequestError(400, f"instance {i} has keys {sorted(instance)}; the "
                                            f"signature's inputs are {names}.")
                for name in names:
                    columns[name].append(instance[name])
            elif len(names) == 1:
                columns[names[0]].append(instance)
            else:
                raise RequestError(400, f"instance {i} must be an object with keys {names} "
                                        "(the signature has several inputs).")
        return columns

    @staticmethod
    def _columnar_inputs(inputs, specs):
        names = sorted(specs)
        if isinstance(inputs, dict) and not b64.is_b64(inputs):
            if set(inputs) != set(names):
                raise RequestError(400, f"'inputs' has keys {sorted(inputs)}; the signature's "
                                        f"inputs are {names}.")
            return inputs
        if len(names) != 1:
            raise RequestError(400, f"'inputs' must be an object with keys {names} "
                                    "(the signature has several inputs).")
        return {names[0]: inputs}

    def _to_tensor(self, value, spec):
        where = f"input '{spec.name}'"
        shape = _nested_shape(value, where)
        if spec.shape.rank is not None and not spec.shape.is_compatible_with(shape):
            raise RequestError(400, f"{where} has shape {list(shape)}; the signature expects "
                                    f"{_shape_text(spec.shape)} of {spec.dtype.name}.")
        leaves = list(_leaves(value))
        if spec.dtype == tf.string:
            for leaf in leaves:
                if not isinstance(leaf, str) and not b64.is_b64(leaf):
                    raise RequestError(400, f"{where} must hold strings, got "
                                            f"{type(leaf).__name__} {leaf!r:.40}.",
                                       log_message=f"{where} must hold strings, got "
                                                   f"{type(leaf).__name__}.")
            flat = np.array([b64.decode(leaf, where) if b64.is_b64(leaf) else leaf.encode("utf-8")
                             for leaf in leaves], dtype=object)
        else:
            allowed = (bool,) if spec.dtype == tf.bool else (int, float)
            for leaf in leaves:
                wrong_kind = isinstance(leaf, bool) != (spec.dtype == tf.bool)
                if wrong_kind or not isinstance(leaf, allowed):
                    raise RequestError(400, f"{where} must hold {spec.dtype.name} values, got "
                                            f"{type(leaf).__name__} {leaf!r:.40}.",
                                       log_message=f"{where} must hold {spec.dtype.name} "
                                                   f"values, got {type(leaf).__name__}.")
            try:
                flat = np.array(leaves, dtype=spec.dtype.as_numpy_dtype)
            except (OverflowError, ValueError) as error:
                raise RequestError(400, f"{where} does not fit {spec.dtype.name}: {error}.",
                                   log_message=f"{where} does not fit {spec.dtype.name}.")
        return tf.constant(flat.reshape(shape), dtype=spec.dtype)

    @staticmethod
    def _batch_size(tensors):
        sizes = {int(t.shape[0]) if t.shape.rank else 1 for t in tensors.values()}
        if len(sizes) != 1:
            raise RequestError(400, f"inputs have different batch sizes {sorted(sizes)}; give "
                                    "every input one entry per example.")
        return sizes.pop()

    def _batchable(self, signature_name):
        """Every input and output has an unknown (batch) first dimension."""
        specs = list(self.input_specs(signature_name).values())
        specs += list(self.output_specs(signature_name).values())
        return all(s.shape.rank and s.shape[0] is None for s in specs)

    def _run(self, signature_name, tensors):
        return self._signature(signature_name)(**tensors)

    def _call(self, signature_name, tensors):
        try:
            if self.batcher is not None:
                return self.batcher.call(signature_name, tensors)
            outputs = self._run(signature_name, tensors)
            if self._on_batch is not None:  # each request is its own batch
                self._on_batch(signature_name, _rows(tensors))
            return outputs
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise RequestError(400, f"the model rejected the input: {_model_error(error)}",
                               log_message="the model rejected the input: "
                                           f"{_model_error_for_log(error)}")

    @staticmethod
    def _columns_to_rows(outputs):
        sizes = {int(t.shape[0]) if t.shape.rank else None for t in outputs.values()}
        if len(sizes) != 1 or None in sizes:
            raise RequestError(400, "the signature's outputs do not share a batch dimension; "
                                    "use the columnar format ('inputs') instead of 'instances'.")
        values = {key: _to_json(tensor, key) for key, tensor in outputs.items()}
        if len(values) == 1:
            return next(iter(values.values()))
        count = sizes.pop()
        return [{key: column[i] for key, column in values.items()} for i in range(count)]


def _rows(tensors):
    first = next(iter(tensors.values()), None)
    return int(first.shape[0]) if first is not None and first.shape.rank else 1


def _export_max_batch_size(path):
    """The export's ``max_batch_size`` from its ``keras_attention.json``, or ``None``."""
    try:
        with open(os.path.join(path, METADATA_FILE), encoding="utf-8") as f:
            limit = json.load(f).get("max_batch_size")
    except (OSError, ValueError, AttributeError):
        return None
    return limit if isinstance(limit, int) and limit > 0 else None


def _model_error(error):
    """The informative line of a TensorFlow error (no graph/stack boilerplate)."""
    skip = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    lines = [line.strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith(skip)]
    line = (lines or [type(error).__name__])[0].split(" [[{{node", 1)[0]
    assertion = re.match(r"assertion failed: \[([^\]]*)\]", line)
    return assertion[1] if assertion else line


def _model_error_for_log(error):
    """``_model_error`` without input text: an assertion's message (the
    exporter wrote it), else only the error's type."""
    line = _model_error(error)
    return line if f"assertion failed: [{line}]" in str(error) else type(error).__name__


def _shape_text(shape):
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


def _to_json(tensor, alias=None):
    """A tensor as JSON-ready nested lists; strings decoded as UTF-8, or as
    ``{"b64": ...}`` when the output alias ends in ``_bytes`` (as TF Serving)."""
    array = tensor.numpy()
    if tensor.dtype == tf.string:
        if b64.is_bytes_alias(alias):
            decode = np.vectorize(b64.encode, otypes=[object])
        else:
            decode = np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[object])
        return decode(array).tolist() if array.size else array.tolist()
    return array.tolist()
