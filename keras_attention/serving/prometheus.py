"""``PrometheusMetrics``: one server's metrics in the Prometheus text format
(``GET /monitoring/prometheus/metrics``, TF Serving's path).

Each instance has its own ``CollectorRegistry`` (never the process-wide
one), so several servers in one process keep separate counts. Labels are
bounded: ``route`` is one of ``ROUTES`` (never the raw path), ``signature``
one of the model's signature names or ``""``, ``code`` the HTTP status.

- ``keras_attention_serving_requests_total{route, signature, code}``;
- ``keras_attention_serving_request_latency_seconds{route, signature}``
  (histogram, from the request read to the answer sent);
- ``keras_attention_serving_batch_size{signature}`` (histogram, examples
  per executed model call);
- ``keras_attention_serving_queue_depth`` (requests waiting for a batch;
  0 until a batcher registers its ``queue_depth``);
- ``keras_attention_serving_requests_in_flight`` (being handled, this
  scrape included).
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest

ROUTES = ("status", "metadata", "predict", "metrics", "prometheus", "health", "unknown")
MONITORING_ROUTES = frozenset({"metrics", "prometheus", "health"})
LATENCY_BUCKETS_SECONDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
                           10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
PREFIX = "keras_attention_serving_"


class PrometheusMetrics:
    """Request counter, latency and batch-size histograms and queue-depth
    and in-flight gauges in a registry of their own (thread-safe)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self._requests = Counter(
            PREFIX + "requests", "Requests answered, by route, signature and HTTP status code.",
            ("route", "signature", "code"), registry=self.registry)
        self._latency = Histogram(
            PREFIX + "request_latency_seconds",
            "Seconds from reading a request to sending its answer.",
            ("route", "signature"), buckets=LATENCY_BUCKETS_SECONDS, registry=self.registry)
        self._batch_size = Histogram(
            PREFIX + "batch_size", "Examples per executed model call, by signature.",
            ("signature",), buckets=BATCH_SIZE_BUCKETS, registry=self.registry)
        self._queue_depth = Gauge(
            PREFIX + "queue_depth", "Requests waiting for a batch.", registry=self.registry)
        self._in_flight = Gauge(
            PREFIX + "requests_in_flight", "Requests being handled (this scrape included).",
            registry=self.registry)

    def record_request(self, route, signature, code, latency_seconds):
        if route not in ROUTES:
            raise ValueError(f"route must be one of {', '.join(ROUTES)}; got {route!r}.")
        self._requests.labels(route, signature, str(code)).inc()
        self._latency.labels(route, signature).observe(latency_seconds)

    def record_batch(self, signature, size):
        self._batch_size.labels(signature).observe(size)

    def set_queue_depth_function(self, function):
        """``function()`` -> requests waiting, read at each scrape."""
        self._queue_depth.set_function(function)

    def set_in_flight_function(self, function):
        """``function()`` -> requests being handled, read at each scrape."""
        self._in_flight.set_function(function)

    def text(self):
        """The exposition text (bytes) of this registry."""
        return generate_latest(self.registry)
