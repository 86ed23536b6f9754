"""``Server``: a local HTTP server speaking the TF Serving REST API for an exported model.

Standard library only (``http.server.ThreadingHTTPServer``): one thread per
connection, each calling the loaded SavedModel signature (TensorFlow runs
concurrent calls safely); with ``ServerConfig.batching`` (the default),
concurrent requests of a signature are merged into one call
(``keras_attention.serving.batching``). Endpoints, as in TF Serving:

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

import errno
import json
import sys
import threading

from keras_attention.serving.config import ServerConfig
from keras_attention.serving.http import Handler, HTTPServer, InFlight
from keras_attention.serving.metrics import RequestMetrics
from keras_attention.serving.model import ServedModel

DRAIN_SECONDS = 10.0  # Server.stop waits this long at most for requests being handled


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
        self.model = ServedModel(path, name=name, max_string_length=self.config.max_string_length,
                                 batching=self.config.batching)
        self.metrics = RequestMetrics()
        self._log_stream = log_stream
        self._log_lock = threading.Lock()
        self._thread = None
        try:
            self._httpd = HTTPServer((self.config.host, self.config.port), Handler)
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
        self._httpd.in_flight = InFlight()

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
        self.model.close(drain_seconds)
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
