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
  (TF Serving itself serves Prometheus text here; JSON needs no parser);
- ``GET /monitoring/prometheus/metrics``: Prometheus text (TF Serving's
  path; see ``prometheus.py``);
- ``GET /v1/health``: 200 ``ok`` or 503 ``degraded`` from the recent error
  rate and p99 (see ``health.py``).

Errors are ``{"error": "..."}`` with 400 (bad JSON or input, unknown
signature), 404 (unknown model, version or path), 405 (wrong method), 411
(no Content-Length) or 413 (body, instance count or string over the limits).
Each request is logged as one JSON line (method, path, status, latency_ms,
instances, error) without input or output text; ``ServerConfig(log_text=True)``
adds them, masked (see ``redact.py``).

With ``ServerConfig.grpc_port`` set, TF Serving's gRPC ``PredictionService``
(Predict, GetModelMetadata) is served too, on ``grpc_address``; see
``grpc_service.py``.

A model folder is checked for a new version every ``poll_seconds``; it is
loaded (warmup records run) while the old one serves, then switched to, the
old one drained and released (``versions.py``; one JSON line per event).

Access (``ServerConfig.access``): with a token file every path but
``/v1/health`` needs ``Authorization: Bearer <token>`` (else 401); TLS
certificate and key serve HTTPS; a non-loopback host without a token is
refused unless ``allow_unauthenticated``. A connection silent for
``read_timeout`` seconds is closed, a body slower than that is a 408.
"""

import errno
import json
import sys
import threading

from keras_attention.serving.config import ServerConfig
from keras_attention.serving.http import Handler, HTTPServer, InFlight
from keras_attention.serving.metrics import RequestMetrics
from keras_attention.serving.model import ServedModel
from keras_attention.serving.versions import ModelVersions

DRAIN_SECONDS = 10.0  # Server.stop waits this long at most for requests being handled


class Server:
    """Serves one exported model over the TF Serving REST API.

    The socket is bound on construction (``url`` is then known, also for
    ``port=0``); ``start()`` serves from a background thread, ``serve_forever()``
    from the calling one; ``stop()`` closes the socket.

    Args:
        path: a model folder (``saved_models/<name>``: its highest numbered
            version is served, a new one picked up every
            ``config.poll_seconds``) or one version folder.
        config: a ``ServerConfig``.
        name: the model name in the URLs; default the model folder's name.
        log_stream: where the JSON request lines go; default ``sys.stderr``.
    """

    def __init__(self, path, config=None, name=None, log_stream=None):
        self.config = config or ServerConfig()
        self.access = self.config.access.load()  # token and TLS files, before the slow load
        self.metrics = RequestMetrics(self.config.health)
        self._log_stream = log_stream
        self._log_lock = threading.Lock()
        self.models = ModelVersions(path, name=name, open_model=self._open_model,
                                    poll_seconds=self.config.poll_seconds, log=self._log)
        self.metrics.set_queue_depth_function(lambda: self.models.current.queue_depth())
        self._thread = None
        try:
            self._httpd = HTTPServer((self.config.host, self.config.port), Handler)
        except OSError as error:
            self.models.close()
            if error.errno == errno.EADDRINUSE:
                raise OSError(f"port {self.config.port} on {self.config.host} is already in "
                              "use; pick another with --port (0 picks a free one).") from None
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port} "
                          f"({error.strerror}); check --host and --port.") from None
        self._httpd.socket = self.access.wrap(self._httpd.socket)
        self._httpd.access = self.access
        self._httpd.models = self.models
        self._httpd.config = self.config
        self._httpd.metrics = self.metrics
        self._httpd.log = self._log
        self._httpd.in_flight = InFlight()
        self.metrics.prometheus.set_in_flight_function(self._httpd.in_flight.count)
        self._grpc = None
        if self.config.grpc_port is not None:
            from keras_attention.serving.grpc_service import GrpcServer, grpc_access

            try:
                authorize, credentials = grpc_access(self.config.access, self.access)
                self._grpc = GrpcServer(self.models, self.config, self.metrics, self._log,
                                        authorize=authorize, credentials=credentials)
            except BaseException:
                self._httpd.server_close()
                self.models.close()
                raise

    def _open_model(self, path, name):
        """One version as served: the request limits, batching, batch metrics."""
        return ServedModel(path, name=name, max_string_length=self.config.max_string_length,
                           batching=self.config.batching, on_batch=self.metrics.record_batch)

    @property
    def model(self):
        """The ``ServedModel`` of the version serving new requests."""
        return self.models.current

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self.access.tls else 'http'}://{host}:{port}"

    @property
    def grpc_address(self):
        """``host:port`` of the gRPC server (``None`` without ``grpc_port``)."""
        return None if self._grpc is None else self._grpc.address

    def start(self):
        """Serve from a daemon thread; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("the server is already running; call stop() first.")
        if self._grpc is not None:
            self._grpc.start()
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="keras-attention-serve")
        self._thread.start()
        return self

    def serve_forever(self):
        """Serve from the calling thread until ``KeyboardInterrupt`` or ``stop()``."""
        if self._grpc is not None:
            self._grpc.start()
        self._httpd.serve_forever()

    def stop(self, drain_seconds=DRAIN_SECONDS):
        """Stop accepting requests, let the ones being handled finish (up to
        ``drain_seconds``) and close the socket."""
        if self._grpc is not None:
            self._grpc.stop(drain_seconds)  # refuses new calls now, drains with HTTP
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.in_flight.wait_idle(drain_seconds)
        self._httpd.server_close()
        self.models.close(drain_seconds)
        if self._grpc is not None:
            self._grpc.wait(drain_seconds + 1.0)

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
