"""The HTTP side: TF Serving's REST routes over ``http.server``, one
thread per connection."""

import http.server
import json
import re
import threading
import time

from keras_attention.serving.errors import RequestError

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

    def wait_idle(self, timeout):
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


class HTTPServer(http.server.ThreadingHTTPServer):
    # Daemon threads, so an idle keep-alive connection never blocks the exit;
    # requests already being handled are drained in Server.stop.
    daemon_threads = True
    allow_reuse_address = False  # a port in use is an error, not silently shared
    request_queue_size = 128  # connections waiting for accept(); 5 (the default) drops bursts
