"""Dynamic batching of concurrent signature calls, as TF Serving's batching
parameters do: ``RequestBatching`` (how large a merged batch may be, how long
it waits) and ``Batcher`` (queues calls from many request threads, runs each
merged batch once, splits the outputs back per request).

Requests are merged only when they call the same signature with inputs of the
same dtypes and non-batch dimensions, and, for string inputs, of the same
length bucket (``length_boundaries``), so a long input never makes short ones
wait for its decoding. A batch runs once it holds ``max_batch_size`` rows or
``batch_timeout_ms`` after its first request arrived, whichever is first; a
request of more than ``max_batch_size`` rows runs alone. When a merged call
fails, its requests run again one by one, so each gets its own answer or
error. A signature whose outputs do not all have the batch size as first
dimension is called directly from then on.
"""

import bisect
import collections
import dataclasses
import threading
import time

from keras_attention import validation
from keras_attention.export.batching import BATCH_TIMEOUT_MICROS
from keras_attention.serving.errors import RequestError


@dataclasses.dataclass(frozen=True)
class RequestBatching:
    """How the server merges concurrent requests into one signature call.

    Args:
        max_batch_size: most rows (instances) in one merged call; capped at
            the export's own ``max_batch_size`` when it records one.
        batch_timeout_ms: longest a batch waits for more requests after its
            first one arrived (``0`` runs whatever is queued at once). Under
            load it costs nothing (requests queue while a batch runs); at low
            load a little above zero smooths batch sizes, as TF Serving's
            batching guide advises.
        num_batch_threads: batches run at the same time (each on its own
            thread). One makes the largest batches; more let a short-input
            batch run beside a long one instead of after it (groups are
            served oldest first either way, so none waits unboundedly).
        max_queued: most requests waiting; above it a request is refused
            with 503 (the server is overloaded).
        length_boundaries: string inputs are grouped by their longest string
            in bytes: up to the first boundary, up to the second, ..., above
            the last; only requests of one group are merged.
    """

    max_batch_size: int = 32
    batch_timeout_ms: float = BATCH_TIMEOUT_MICROS / 1000.0  # as batching_parameters.txt
    num_batch_threads: int = 1
    max_queued: int = 1024
    length_boundaries: tuple = (64, 256, 1024)

    def __post_init__(self):
        validation.check_positive_int("max_batch_size", self.max_batch_size)
        validation.check_non_negative_number("batch_timeout_ms", self.batch_timeout_ms)
        validation.check_positive_int("num_batch_threads", self.num_batch_threads)
        validation.check_positive_int("max_queued", self.max_queued)
        boundaries = self.length_boundaries
        if (not isinstance(boundaries, tuple) or not all(validation.is_int(b) and b > 0
                                                         for b in boundaries)
                or list(boundaries) != sorted(set(boundaries))):
            raise ValueError(f"length_boundaries must be a tuple of increasing positive "
                             f"integers, got {boundaries!r}.")


class _Request:
    """One call waiting for its batch: inputs in, outputs or error out."""

    __slots__ = ("signature_name", "tensors", "rows", "arrived", "done", "outputs", "error")

    def __init__(self, signature_name, tensors, rows):
        self.signature_name = signature_name
        self.tensors = tensors
        self.rows = rows
        self.arrived = time.monotonic()
        self.done = threading.Event()
        self.outputs = None
        self.error = None

    def finish(self, outputs=None, error=None):
        self.outputs, self.error = outputs, error
        self.done.set()


class Batcher:
    """Merges concurrent calls of one signature into one call.

    ``call(signature_name, tensors)`` blocks until the request's own outputs
    (or its own exception) come back. Batch threads start on the first
    batched call; ``stop()`` runs what is queued, then ends them; calls after
    ``stop()`` run directly in the caller's thread.

    Args:
        run: ``run(signature_name, tensors) -> {name: tensor}``, the plain call.
        config: a ``RequestBatching``.
        on_batch: optional ``on_batch(signature_name, size)``, called after
            each signature call that returned, with its rows (merged batches,
            requests run alone and direct calls alike); also the attribute
            ``on_batch``, which may be set later. What it raises is ignored
            (an observer never fails a request).
        direct: signature names never batched (called directly).
    """

    def __init__(self, run, config, on_batch=None, direct=()):
        if not isinstance(config, RequestBatching):
            raise TypeError(f"config must be a RequestBatching, got {type(config).__name__}.")
        self.config = config
        self._run = run
        self.on_batch = on_batch
        self._direct = set(direct)
        self._timeout = config.batch_timeout_ms / 1000.0
        self._queues = {}  # batch key -> deque of _Request, oldest first (insertion order)
        self._rows = collections.Counter()  # batch key -> rows queued
        self._queued = 0
        self._lock = threading.Condition()
        self._threads = []
        self._stopping = False

    def queue_depth(self):
        """Requests waiting for their batch to start."""
        with self._lock:
            return self._queued

    def call(self, signature_name, tensors):
        """The signature's outputs for ``tensors`` alone, maybe computed in a merged batch."""
        key, rows = self._batch_key(signature_name, tensors)
        if key is None or rows > self.config.max_batch_size:
            return self._execute(signature_name, tensors, rows)
        request = _Request(signature_name, tensors, rows)
        with self._lock:
            if self._stopping:
                key = None
            elif self._queued >= self.config.max_queued:
                raise RequestError(503, "the server is overloaded (its batching queue is "
                                        "full); retry later.")
            else:
                self._enqueue(key, request)
        if key is None:
            return self._execute(signature_name, tensors, rows)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.outputs

    def stop(self, timeout=None):
        """Run the queued requests, then end the batch threads (waits up to
        ``timeout`` seconds for them; ``None``: until they end)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            threads, self._threads = self._threads, []
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _batch_key(self, signature_name, tensors):
        """``(key, rows)``; key ``None`` when the request cannot be merged."""
        sizes = {int(t.shape[0]) if t.shape.rank else None for t in tensors.values()}
        rows = sizes.pop() if len(sizes) == 1 else None
        if signature_name in self._direct or not rows:
            return None, rows or 0
        parts = [signature_name]
        longest = 0
        for name in sorted(tensors):
            tensor = tensors[name]
            parts.append((name, tensor.dtype.name, tuple(tensor.shape[1:])))
            if tensor.dtype.name == "string":
                longest = max([longest] + [len(b) for b in tensor.numpy().reshape(-1)])
        parts.append(bisect.bisect_left(self.config.length_boundaries, longest))
        return tuple(parts), rows

    def _enqueue(self, key, request):
        self._queues.setdefault(key, collections.deque()).append(request)
        self._rows[key] += request.rows
        self._queued += 1
        if len(self._threads) < self.config.num_batch_threads:
            thread = threading.Thread(target=self._loop, daemon=True,
                                      name=f"keras-attention-batch-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()
        self._lock.notify_all()

    def _loop(self):
        while True:
            with self._lock:
                batch = self._next_batch()
            if batch is None:
                return
            self._run_batch(batch)

    def _next_batch(self):
        """The next batch to run (under the lock), or ``None`` once stopping
        with nothing queued: the oldest request's group, when it is full or
        its timeout passed."""
        while True:
            if not self._queues:
                if self._stopping:
                    return None
                self._lock.wait()
                continue
            key = min(self._queues, key=lambda k: self._queues[k][0].arrived)
            deadline = self._queues[key][0].arrived + self._timeout
            left = deadline - time.monotonic()
            if self._rows[key] < self.config.max_batch_size and left > 0 and not self._stopping:
                self._lock.wait(left)
                continue  # another thread may have taken it, or it filled up
            return self._take(key)

    def _take(self, key):
        queue = self._queues[key]
        batch, rows = [], 0
        while queue and rows + queue[0].rows <= self.config.max_batch_size:
            request = queue.popleft()
            batch.append(request)
            rows += request.rows
        self._rows[key] -= rows
        self._queued -= len(batch)
        if not queue:
            del self._queues[key]
            del self._rows[key]
        return batch

    def _execute(self, signature_name, tensors, rows):
        outputs = self._run(signature_name, tensors)
        self._report(signature_name, rows)
        return outputs

    def _report(self, signature_name, rows):
        if self.on_batch is None:
            return
        try:
            self.on_batch(signature_name, rows)
        except Exception:  # noqa: BLE001, S110  (an observer never fails a request)
            pass

    def _run_batch(self, batch):
        try:
            if len(batch) == 1:
                self._run_alone(batch[0])
            else:
                self._run_merged(batch)
        except BaseException as error:  # noqa: BLE001  (never leave a request waiting)
            for request in batch:
                if not request.done.is_set():
                    request.finish(error=error)
            if not isinstance(error, Exception):
                raise

    def _run_alone(self, request):
        try:
            outputs = self._execute(request.signature_name, request.tensors, request.rows)
        except Exception as error:  # noqa: BLE001  (the request's own error, raised in its thread)
            request.finish(error=error)
        else:
            request.finish(outputs)

    def _run_merged(self, batch):
        import tensorflow as tf

        signature_name = batch[0].signature_name
        sizes = [request.rows for request in batch]
        total = sum(sizes)
        merged = {name: tf.concat([request.tensors[name] for request in batch], 0)
                  for name in batch[0].tensors}
        try:
            outputs = self._run(signature_name, merged)
        except Exception:  # noqa: BLE001  (rerun one by one: each request gets its own error)
            outputs = None
        else:
            self._report(signature_name, total)
        if outputs is not None and not all(t.shape.rank and t.shape[0] == total
                                           for t in outputs.values()):
            with self._lock:
                self._direct.add(signature_name)  # outputs not batch-major: never merge it
            outputs = None
        if outputs is None:
            for request in batch:
                self._run_alone(request)
            return
        pieces = {name: tf.split(tensor, sizes) for name, tensor in outputs.items()}
        for i, request in enumerate(batch):
            request.finish({name: parts[i] for name, parts in pieces.items()})
