"""``RequestMetrics``: thread-safe request counters and latencies (JSON at
``/monitoring/metrics``), the Prometheus metrics and the health window."""

import bisect
import collections
import threading
import time

import numpy as np

from keras_attention.serving.health import HealthConfig, HealthWindow
from keras_attention.serving.prometheus import MONITORING_ROUTES, PrometheusMetrics

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
PERCENTILE_WINDOW = 10000  # p50/p99 cover the latest requests


class RequestMetrics:
    """Thread-safe request counters and a latency histogram (milliseconds).

    Every request goes to the Prometheus metrics (``prometheus``); the JSON
    counters and the health window leave out monitoring routes (metrics,
    health), so scrapes and probes do not dilute them.

    Args:
        health: a ``HealthConfig`` (``/v1/health`` thresholds and window).
        clock: the health window's clock (``time.monotonic``).
    """

    def __init__(self, health=None, clock=time.monotonic):
        self.prometheus = PrometheusMetrics()
        self._health = HealthWindow(health or HealthConfig(), clock)
        self._lock = threading.Lock()
        self._by_status = collections.Counter()
        self._buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self._recent = collections.deque(maxlen=PERCENTILE_WINDOW)
        self._instances = 0
        self._latency_sum = 0.0

    def record(self, status, latency_ms, instances, route="unknown", signature=""):
        """One answered request; ``route`` is one of ``prometheus.ROUTES`` and
        ``signature`` a signature of the model or ``""`` (bounded labels)."""
        self.prometheus.record_request(route, signature, status, latency_ms / 1000.0)
        if route in MONITORING_ROUTES:
            return
        self._health.record(status, latency_ms)
        with self._lock:
            self._by_status[str(status)] += 1
            self._buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
            self._recent.append(latency_ms)
            self._instances += instances
            self._latency_sum += latency_ms

    def record_batch(self, signature_name, size):
        """One executed model call of ``size`` examples (a batcher's ``on_batch``)."""
        self.prometheus.record_batch(signature_name, size)

    def set_queue_depth_function(self, function):
        """``function()`` -> requests waiting for a batch (a batcher's ``queue_depth``)."""
        self.prometheus.set_queue_depth_function(function)

    def health(self):
        """``(http_status, body)`` of ``GET /v1/health``."""
        return self._health.report()

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
