"""``RequestMetrics``: thread-safe request counters and latencies."""

import bisect
import collections
import threading

import numpy as np

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
PERCENTILE_WINDOW = 10000  # p50/p99 cover the latest requests


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
