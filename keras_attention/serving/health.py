"""``GET /v1/health``: ``ok`` (200) or ``degraded`` (503) from the error rate
and p99 latency of the recent requests.

The window is the requests answered in the last ``window_seconds`` (at most
the latest ``MAX_WINDOW_REQUESTS``), so a burst of errors stops counting once
it is that old, also when no traffic follows. Monitoring requests
(``/monitoring/...``, ``/v1/health``) are not in it. The error rate is the
share of 5xx answers: 4xx answers are the client's mistakes (bad input,
unknown model, over a limit) and count as requests but not as errors, so a
misbehaving client cannot mark the server unhealthy. p99 covers every
request in the window. Without thresholds, or with no requests in the
window, health is ``ok``.
"""

import collections
import dataclasses
import threading
import time

import numpy as np

from keras_attention import validation

MAX_WINDOW_REQUESTS = 10000  # bounds memory under heavy traffic


@dataclasses.dataclass(frozen=True)
class HealthConfig:
    """When ``/v1/health`` reports ``degraded``.

    Args:
        max_error_rate: degraded when the share of 5xx answers in the window
            is above this (``0`` degrades on any 5xx); ``None``: no limit.
        max_p99_ms: degraded when the window's p99 latency (ms) is above
            this; ``None``: no limit.
        window_seconds: how far back the window reaches.
    """

    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    window_seconds: float = 60.0

    def __post_init__(self):
        if self.max_error_rate is not None:
            validation.check_rate("max_error_rate", self.max_error_rate)
        validation.check_positive_number("max_p99_ms", self.max_p99_ms, optional=True)
        validation.check_positive_number("window_seconds", self.window_seconds)


class HealthWindow:
    """Thread-safe record of the recent requests' statuses and latencies.

    Args:
        config: a ``HealthConfig``.
        clock: seconds, monotonic (``time.monotonic``; tests pass their own).
    """

    def __init__(self, config, clock=time.monotonic):
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._recent = collections.deque(maxlen=MAX_WINDOW_REQUESTS)  # (time, 5xx, latency_ms)

    def record(self, status, latency_ms):
        with self._lock:
            self._recent.append((self._clock(), status >= 500, latency_ms))

    def report(self):
        """``(http_status, body)``: 200 ``{"status": "ok", ...}`` or 503
        ``{"status": "degraded", "reasons": [...], ...}``."""
        config = self.config
        with self._lock:
            oldest = self._clock() - config.window_seconds
            while self._recent and self._recent[0][0] < oldest:
                self._recent.popleft()
            errors = sum(1 for _, failed, _ in self._recent if failed)
            latencies = np.array([latency for _, _, latency in self._recent], dtype=np.float64)
        requests = len(latencies)
        error_rate = errors / requests if requests else 0.0
        p99 = float(np.percentile(latencies, 99)) if requests else None
        reasons = []
        if config.max_error_rate is not None and error_rate > config.max_error_rate:
            reasons.append(f"error rate {error_rate:.3g} ({errors} of {requests} requests "
                           f"answered 5xx in the last {config.window_seconds:g} s) is above "
                           f"--health-max-error-rate {config.max_error_rate:g}")
        if config.max_p99_ms is not None and p99 is not None and p99 > config.max_p99_ms:
            reasons.append(f"p99 latency {p99:.3f} ms over the last {config.window_seconds:g} s "
                           f"is above --health-max-p99-ms {config.max_p99_ms:g}")
        body = {"status": "degraded" if reasons else "ok"}
        if reasons:
            body["reasons"] = reasons
        body.update({
            "window_seconds": config.window_seconds, "requests": requests,
            "server_errors": errors, "error_rate": round(error_rate, 6),
            "p99_ms": None if p99 is None else round(p99, 3),
            "max_error_rate": config.max_error_rate, "max_p99_ms": config.max_p99_ms,
        })
        return (503 if reasons else 200), body
