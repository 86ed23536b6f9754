"""A local HTTP server speaking the TF Serving REST API for an exported model.

Standard library only (``http.server.ThreadingHTTPServer``): one thread per
connection, each calling the loaded SavedModel signature (TensorFlow runs
concurrent calls safely). Endpoints, as in TF Serving:

- ``GET /v1/models/<name>[/versions/<v>]``: model status;
- ``GET /v1/models/<name>[/versions/<v>]/metadata``: signatures with their
  input/output dtypes and shapes;
- ``POST /v1/models/<name>[/versions/<v>]:predict``: row format
  ``{"instances": [...]}`` -> ``{"predictions": [...]}`` or columnar format
  ``{"inputs": ...}`` -> ``{"outputs": ...}``, with an optional
  ``"signature_name"`` (default ``serving_default``);
- ``GET /monitoring/metrics``: request counters and latencies as JSON
  (TF Serving itself serves Prometheus text here; JSON needs no parser).

Errors are ``{"error": "..."}`` with 400 (bad JSON or input, unknown
signature), 404 (unknown model, version or path), 405 (wrong method), 411
(no Content-Length) or 413 (body, instance count or string over the limits).
Each request is logged as one JSON line (method, path, status, latency_ms,
instances).
"""

import bisect
import collections
import dataclasses
import errno
import http.server
import json
import os
import re
import sys
import threading
import time

import numpy as np
import tensorflow as tf

from keras_attention import validation
from keras_attention.export.saved_model import resolve_version
from keras_attention.export.signatures import DEFAULT_SIGNATURE

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
PERCENTILE_WINDOW = 10000  # p50/p99 cover the latest requests
DRAIN_SECONDS = 10.0  # Server.stop waits this long at most for requests being handled

_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?$"
)


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and how large a request may be.

    Args:
        host: interface to bind; ``127.0.0.1`` keeps the server local.
        port: TCP port; ``0`` picks a free one (see ``Server.url``).
        max_body_bytes: largest request body accepted (413 above it).
        max_batch: most instances in one predict request (413 above it).
        max_string_length: most characters in one input string (413 above it).
    """

    host: str = "127.0.0.1"
    port: int = 8501
    max_body_bytes: int = 1 << 20
    max_batch: int = 64
    max_string_length: int = 4096

    def __post_init__(self):
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"host must be a non-empty string, got {self.host!r}.")
        validation.check_int("port", self.port, 0, 65536,
                             what="an integer in [0, 65535] (0 picks a free one)")
        for field in ("max_body_bytes", "max_batch", "max_string_length"):
            validation.check_positive_int(field, getattr(self, field))


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a one-line message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)
        self.message = message


def _dtype_name(dtype):
    return "DT_" + dtype.name.upper()


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
    """

    def __init__(self, path, name=None, max_string_length=4096):
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
        count = self._batch_size(tensors)
        outputs = self._call(signature_name, tensors)
        if "instances" in request:
            return {"predictions": self._columns_to_rows(outputs)}, count
        values = {key: _to_json(tensor) for key, tensor in outputs.items()}
        if len(values) == 1:
            return {"outputs": next(iter(values.values()))}, count
        return {"outputs": values}, count

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
            if isinstance(instance, dict):
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
        if isinstance(inputs, dict):
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
                if not isinstance(leaf, str):
                    raise RequestError(400, f"{where} must hold strings, got "
                                            f"{type(leaf).__name__} {leaf!r:.40}.")
                if len(leaf) > self.max_string_length:
                    raise RequestError(413, f"{where} has a string of {len(leaf)} characters; "
                                            f"the limit is {self.max_string_length} "
                                            "(--max-string-length).")
            flat = np.array([leaf.encode("utf-8") for leaf in leaves], dtype=object)
        else:
            allowed = (bool,) if spec.dtype == tf.bool else (int, float)
            for leaf in leaves:
                wrong_kind = isinstance(leaf, bool) != (spec.dtype == tf.bool)
                if wrong_kind or not isinstance(leaf, allowed):
                    raise RequestError(400, f"{where} must hold {spec.dtype.name} values, got "
                                            f"{type(leaf).__name__} {leaf!r:.40}.")
            try:
                flat = np.array(leaves, dtype=spec.dtype.as_numpy_dtype)
            except (OverflowError, ValueError) as error:
                raise RequestError(400, f"{where} does not fit {spec.dtype.name}: {error}.")
        return tf.constant(flat.reshape(shape), dtype=spec.dtype)

    @staticmethod
    def _batch_size(tensors):
        sizes = {int(t.shape[0]) if t.shape.rank else 1 for t in tensors.values()}
        if len(sizes) != 1:
            raise RequestError(400, f"inputs have different batch sizes {sorted(sizes)}; give "
                                    "every input one entry per example.")
        return sizes.pop()

    def _call(self, signature_name, tensors):
        try:
            return self._signature(signature_name)(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise RequestError(400, f"the model rejected the input: {_model_error(error)}")

    @staticmethod
    def _columns_to_rows(outputs):
        sizes = {int(t.shape[0]) if t.shape.rank else None for t in outputs.values()}
        if len(sizes) != 1 or None in sizes:
            raise RequestError(400, "the signature's outputs do not share a batch dimension; "
                                    "use the columnar format ('inputs') instead of 'instances'.")
        values = {key: _to_json(tensor) for key, tensor in outputs.items()}
        if len(values) == 1:
            return next(iter(values.values()))
        count = sizes.pop()
        return [{key: column[i] for key, column in values.items()} for i in range(count)]


def _model_error(error):
    """The informative line of a TensorFlow error (no graph/stack boilerplate)."""
    skip = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    lines = [line.strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith(skip)]
    line = (lines or [type(error).__name__])[0].split(" [[{{node", 1)[0]
    assertion = re.match(r"assertion failed: \[([^\]]*)\]", line)
    return assertion[1] if assertion else line


def _shape_text(shape):
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


def _to_json(tensor):
    """A tensor as JSON-ready nested lists; strings decoded as UTF-8."""
    array = tensor.numpy()
    if tensor.dtype == tf.string:
        decode = np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[object])
        return decode(array).tolist() if array.size else array.tolist()
    return array.tolist()


class RequestMetrics:
    """Thread-safe request counters and a latency histogram (milliseconds)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_status = collections.Counter()
        self._buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self._recent = collections.deque(maxlen=PERCENTILE_WINDOW)
        self._instances = 0
        self._latency_sum = 0.0

    def record(self, status, latency_ms, instances):
        with self._lock:
            self._by_status[str(status)] += 1
            self._buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
            self._recent.append(latency_ms)
            self._instances += instances
            self._latency_sum += latency_ms

    def snapshot(self):
        """Counts by status, errors (status >= 400), instances and latencies."""
        with self._lock:
            total = sum(self._by_status.values())
            recent = np.array(self._recent, dtype=np.float64)
            cumulative = np.cumsum(self._buckets).tolist()
            labels = [str(b) for b in LATENCY_BUCKETS_MS] + ["+Inf"]
            return {
                "requests_total": total,
                "requests_by_status": dict(sorted(self._by_status.items())),
                "errors_total": sum(n for s, n in self._by_status.items() if int(s) >= 400),
                "instances_total": self._instances,
                "latency_ms": {
                    "histogram_le": dict(zip(labels, cumulative)),
                    "sum": round(self._latency_sum, 3),
                    "p50": round(float(np.percentile(recent, 50)), 3) if total else None,
                    "p99": round(float(np.percentile(recent, 99)), 3) if total else None,
                    "window": len(recent),
                },
            }


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes one request; the server object carries the model and settings."""

    protocol_version = "HTTP/1.1"
    server_version = "keras-attention-serve"

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PATCH(self):
        self._handle("PATCH")

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass  # one JSON line per request instead, in _handle

    def _handle(self, method):
        with self.server.in_flight:
            self._handle_request(method)

    def _handle_request(self, method):
        started = time.perf_counter()
        status, body, instances, error = 500, None, 0, None
        self._body_read = False
        path = self.path.split("?", 1)[0]
        try:
            status, body, instances = self._route(method, path)
        except RequestError as failure:
            status, error = failure.status, failure.message
        except Exception as failure:  # noqa: BLE001  (a server answers, it does not die)
            status = 500
            detail = (str(failure).splitlines() or [""])[0]
            error = f"internal error: {type(failure).__name__}: {detail}"
        if error is not None:
            body = {"error": error}
        if not self._body_read and self.headers.get("Content-Length", "0").strip() != "0":
            self.close_connection = True  # an unread body must not be parsed as a request
        try:
            self._send(status, body)
        except OSError:  # the client went away; nothing left to answer
            self.close_connection = True
        latency_ms = (time.perf_counter() - started) * 1000.0
        if path != "/monitoring/metrics":
            self.server.metrics.record(status, latency_ms, instances)
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "method": method,
                  "path": path, "status": status, "latency_ms": round(latency_ms, 3),
                  "instances": instances}
        if error is not None:
            record["error"] = error
        self.server.log(record)

    def _route(self, method, path):
        if path == "/monitoring/metrics":
            self._allow(method, "GET")
            return 200, self.server.metrics.snapshot(), 0
        match = _MODEL_PATH.match(path)
        if match is None:
            raise RequestError(404, f"no endpoint at '{path}'; use /v1/models/<name>[/metadata|"
                                    ":predict] or /monitoring/metrics.")
        model = self.server.model
        if match["name"] != model.name:
            raise RequestError(404, f"model '{match['name']}' not found; this server serves "
                                    f"'{model.name}'.")
        if match["version"] is not None and match["version"] != model.version:
            raise RequestError(404, f"model '{model.name}' version {match['version']!r} not "
                                    f"found; this server serves version {model.version}.")
        if match["verb"] is not None:
            if match["verb"] != "predict":
                raise RequestError(404, f"':{match['verb']}' is not served; use ':predict'.")
            self._allow(method, "POST")
            response, instances = model.predict(self._read_json())
            return 200, response, instances
        self._allow(method, "GET")
        return 200, model.metadata() if match["metadata"] else model.status(), 0

    def _allow(self, method, allowed):
        if method != allowed:
            self._allowed = allowed
            raise RequestError(405, f"{method} is not allowed here; use {allowed}.")

    def _read_json(self):
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise RequestError(411, "the request has no Content-Length header; send the JSON "
                                    "body with its length (chunked bodies are not supported).")
        try:
            length = int(length)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise RequestError(400, f"invalid Content-Length {length!r}.") from None
        limit = self.server.config.max_body_bytes
        if length > limit:
            raise RequestError(413, f"request body of {length} bytes is over the limit of "
                                    f"{limit} (--max-body-bytes); send fewer instances.")
        raw = self.rfile.read(length)
        self._body_read = True
        try:
            request = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(400, f"request body is not valid JSON ({error}); send "
                                    '{"instances": [...]} or {"inputs": ...}.') from None
        if isinstance(request, dict) and isinstance(request.get("instances"), list):
            count = len(request["instances"])
            if count > self.server.config.max_batch:
                raise RequestError(413, f"{count} instances is over the limit of "
                                        f"{self.server.config.max_batch} per request "
                                        "(--max-batch); split the request.")
        elif isinstance(request, dict) and "inputs" in request:
            count = _columnar_count(request["inputs"])
            if count > self.server.config.max_batch:
                raise RequestError(413, f"{count} examples is over the limit of "
                                        f"{self.server.config.max_batch} per request "
                                        "(--max-batch); split the request.")
        return request

    def _send(self, status, body):
        payload = json.dumps(body, ensure_ascii=False, indent=None).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == 405:
            self.send_header("Allow", getattr(self, "_allowed", "GET"))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


def _columnar_count(inputs):
    first = next(iter(inputs.values()), None) if isinstance(inputs, dict) else inputs
    return len(first) if isinstance(first, list) else 1


class _InFlight:
    """Counts the requests being handled; ``wait_idle`` lets a stopping
    server finish them (answer sent, log line written) before it exits."""

    def __init__(self):
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self):
        with self._idle:
            self._count += 1

    def __exit__(self, *exc_info):
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout):
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


class _HTTPServer(http.server.ThreadingHTTPServer):
    # Daemon threads, so an idle keep-alive connection never blocks the exit;
    # requests already being handled are drained in Server.stop.
    daemon_threads = True
    allow_reuse_address = False  # a port in use is an error, not silently shared


class Server:
    """Serves one exported model over the TF Serving REST API.

    The socket is bound on construction (``url`` is then known, also for
    ``port=0``); ``start()`` serves from a background thread, ``serve_forever()``
    from the calling one; ``stop()`` closes the socket.

    Args:
        path: a model folder (``saved_models/<name>``: its highest numbered
            version is served) or one version folder.
        config: a ``ServerConfig``.
        name: the model name in the URLs; default the model folder's name.
        log_stream: where the JSON request lines go; default ``sys.stderr``.
    """

    def __init__(self, path, config=None, name=None, log_stream=None):
        self.config = config or ServerConfig()
        self.model = ServedModel(path, name=name, max_string_length=self.config.max_string_length)
        self.metrics = RequestMetrics()
        self._log_stream = log_stream
        self._log_lock = threading.Lock()
        self._thread = None
        try:
            self._httpd = _HTTPServer((self.config.host, self.config.port), _Handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise OSError(f"port {self.config.port} on {self.config.host} is already in "
                              "use; pick another with --port (0 picks a free one).") from None
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port} "
                          f"({error.strerror}); check --host and --port.") from None
        self._httpd.model = self.model
        self._httpd.config = self.config
        self._httpd.metrics = self.metrics
        self._httpd.log = self._log
        self._httpd.in_flight = _InFlight()

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        """Serve from a daemon thread; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("the server is already running; call stop() first.")
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="keras-attention-serve")
        self._thread.start()
        return self

    def serve_forever(self):
        """Serve from the calling thread until ``KeyboardInterrupt`` or ``stop()``."""
        self._httpd.serve_forever()

    def stop(self, drain_seconds=DRAIN_SECONDS):
        """Stop accepting requests, let the ones being handled finish (up to
        ``drain_seconds``) and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.in_flight.wait_idle(drain_seconds)
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _log(self, record):
        line = json.dumps(record, ensure_ascii=False)
        with self._log_lock:
            stream = self._log_stream or sys.stderr
            stream.write(line + "\n")
            stream.flush()
