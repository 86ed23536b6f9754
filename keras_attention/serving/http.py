"""The HTTP side: TF Serving's REST routes over ``http.server``, one
thread per connection."""

import http.server
import json
import re
import sys
import threading
import time
from typing import NamedTuple

from keras_attention.export.signatures import DEFAULT_SIGNATURE
from keras_attention.serving import redact
from keras_attention.serving.auth import handshake, unauthorized
from keras_attention.serving.errors import RequestError

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # TF Serving's
HEALTH_PATH = "/v1/health"
_MONITORING_ROUTES = {"/monitoring/metrics": "metrics", PROMETHEUS_PATH: "prometheus",
                      HEALTH_PATH: "health"}
_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?$"
)


class Handler(http.server.BaseHTTPRequestHandler):
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

    def do_HEAD(self):  # GET's status and headers, no body
        self._handle("HEAD")

    def do_OPTIONS(self):  # 405 with Allow, like any method a path does not take
        self._handle("OPTIONS")

    def __getattr__(self, name):
        # Any other method (TRACE, FOO): a JSON answer, not http.server's HTML 501.
        if name.startswith("do_"):
            return lambda: self._handle(name[3:])
        raise AttributeError(name)

    def setup(self):
        self.timeout = self.server.config.read_timeout  # idle keep-alive, stalled headers
        super().setup()
        handshake(self.connection)  # TLS: in this connection's thread, under the timeout

    def send_error(self, code, message=None, explain=None):
        # http.server's own refusals (bad request line, long headers) as JSON too.
        self.close_connection = True
        message = message or self.responses.get(code, ("error",))[0]
        self._send(code, {"error": f"{message} ({explain})" if explain else message})

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass  # one JSON line per request instead, in _handle

    def _handle(self, method):
        with self.server.in_flight:
            self._handle_request(method)

    def _handle_request(self, method):
        started = time.perf_counter()
        status, body, instances, error = 500, None, 0, None
        self._body_read = False
        self._request = None  # the parsed JSON body, once read
        path = self.path.split("?", 1)[0]
        try:
            status, body, instances = self._route(method, path)
        except RequestError as failure:
            status, error, log_error = failure.status, failure.message, failure.log_message
        except Exception as failure:  # noqa: BLE001  (a server answers, it does not die)
            status = 500
            detail = (str(failure).splitlines() or [""])[0]
            error = f"internal error: {type(failure).__name__}: {detail}"
            log_error = f"internal error: {type(failure).__name__}"  # the detail may quote input
        if error is not None:
            body = {"error": error}
        if not self._body_read and self.headers.get("Content-Length", "0").strip() != "0":
            self.close_connection = True  # an unread body must not be parsed as a request
        # Counted before the answer is sent, so a client that reads the
        # metrics after its answer sees its own request in them.
        latency_ms = (time.perf_counter() - started) * 1000.0
        route = _route_label(path)
        signature = self._signature_label() if route == "predict" else ""
        self.server.metrics.record(status, latency_ms, instances, route=route,
                                   signature=signature)
        try:
            self._send(status, body)
        except OSError:  # the client went away; nothing left to answer
            self.close_connection = True
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "method": method,
                  "path": path, "status": status, "latency_ms": round(latency_ms, 3),
                  "instances": instances}
        log_text = self.server.config.log_text
        if error is not None:
            record["error"] = log_error  # without the input text the client's message may quote
            if log_text and error != log_error:
                record["error_detail"] = redact.mask_text(error)
        if log_text and route == "predict":
            record.update(redact.text_fields(self._request, body))
        self.server.log(record)

    def _signature_label(self):
        """The request's signature when the model has it, else ``""`` (bounded labels)."""
        if not isinstance(self._request, dict):
            return ""
        name = self._request.get("signature_name", DEFAULT_SIGNATURE)
        return name if isinstance(name, str) and name in self.server.model.signatures else ""

    def _route(self, method, path):
        header = self.headers.get("Authorization")
        if not self.server.access.authorized(path, header):
            message, self._challenge = unauthorized(header)
            raise RequestError(401, message)
        if path == "/monitoring/metrics":
            self._allow(method, "GET")
            return 200, self.server.metrics.snapshot(), 0
        if path == PROMETHEUS_PATH:
            self._allow(method, "GET")
            prometheus = self.server.metrics.prometheus
            return 200, _Raw(prometheus.content_type, prometheus.text()), 0
        if path == HEALTH_PATH:
            self._allow(method, "GET")
            status, body = self.server.metrics.health()
            return status, body, 0
        match = _MODEL_PATH.match(path)
        if match is None:
            raise RequestError(404, f"no endpoint at '{path}'; use /v1/models/<name>[/metadata|"
                                    ":predict] or /monitoring/metrics.")
        models = self.server.models
        if match["name"] != models.name:
            raise RequestError(404, f"model '{match['name']}' not found; this server serves "
                                    f"'{models.name}'.")
        if match["verb"] is not None:
            if match["verb"] != "predict":
                raise RequestError(404, f"':{match['verb']}' is not served; use ':predict'.")
            self._allow(method, "POST")
            with models.acquire(match["version"]) as model:  # a version switch lets it finish
                response, instances = model.predict(self._read_json())
            return 200, response, instances
        self._allow(method, "GET")
        if not match["metadata"]:
            return 200, models.status(match["version"]), 0
        with models.acquire(match["version"]) as model:
            return 200, model.metadata(), 0

    def _allow(self, method, allowed):
        if method != allowed and not (method == "HEAD" and allowed == "GET"):
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
        raw = self._read_body(length)
        self._body_read = True
        try:
            request = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(400, f"request body is not valid JSON ({error}); send "
                                    '{"instances": [...]} or {"inputs": ...}.') from None
        self._request = request
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

    def _read_body(self, length):
        """``length`` bytes of body, all within ``read_timeout`` (else 408)."""
        timeout = self.server.config.read_timeout
        deadline = time.monotonic() + timeout
        chunks, received = [], 0
        try:
            while received < length:
                self.connection.settimeout(max(deadline - time.monotonic(), 1e-3))
                chunk = self.rfile.read1(min(length - received, 1 << 16))
                if not chunk:
                    self.close_connection = True
                    raise RequestError(400, f"the request body ended after {received} of "
                                            f"{length} bytes (Content-Length); send it whole.")
                chunks.append(chunk)
                received += len(chunk)
        except TimeoutError:
            self.close_connection = True
            raise RequestError(408, f"the request body did not arrive within {timeout:g} s "
                                    f"(--read-timeout): {received} of {length} bytes; send it "
                                    "at once or raise --read-timeout.") from None
        finally:
            self.connection.settimeout(timeout)
        return b"".join(chunks)

    def _send(self, status, body):
        if isinstance(body, _Raw):
            content_type, payload = body
        else:
            content_type = "application/json"
            payload = json.dumps(body, ensure_ascii=False, indent=None).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if status == 405:
            self.send_header("Allow", getattr(self, "_allowed", "GET"))
        if status == 401:
            self.send_header("WWW-Authenticate", getattr(self, "_challenge", "Bearer"))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(payload)


class _Raw(NamedTuple):
    """A body sent as it is, not as JSON."""

    content_type: str
    payload: bytes


def _route_label(path):
    """The route of ``path`` as a metrics label: one of ``prometheus.ROUTES``."""
    if path in _MONITORING_ROUTES:
        return _MONITORING_ROUTES[path]
    match = _MODEL_PATH.match(path)
    if match is None or match["verb"] not in (None, "predict"):
        return "unknown"
    return "predict" if match["verb"] else "metadata" if match["metadata"] else "status"


def _columnar_count(inputs):
    first = next(iter(inputs.values()), None) if isinstance(inputs, dict) else inputs
    return len(first) if isinstance(first, list) else 1


class InFlight:
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

    def count(self):
        with self._idle:
            return self._count

    def wait_idle(self, timeout):
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


class HTTPServer(http.server.ThreadingHTTPServer):
    # Daemon threads, so an idle keep-alive connection never blocks the exit;
    # requests already being handled are drained in Server.stop.
    daemon_threads = True
    allow_reuse_address = False  # a port in use is an error, not silently shared
    request_queue_size = 128  # connections waiting for accept(); 5 (the default) drops bursts

    @property
    def model(self):
        """The ``ServedModel`` new requests get (``models`` holds the versions)."""
        return self.models.current

    def handle_error(self, request, client_address):
        # A connection that failed outside a request (TLS handshake, reset, timeout):
        # one JSON line instead of a traceback on stderr.
        failure = sys.exc_info()[1]
        detail = (str(failure).splitlines() or [""])[0]
        self.log({"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                  "client": client_address[0],
                  "error": f"connection dropped: {type(failure).__name__}: {detail}"})
