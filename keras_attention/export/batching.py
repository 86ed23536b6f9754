"""``batching_parameters.txt``: TF Serving's batching settings for an export.

``export_saved_model`` writes the file into the model folder (beside the
numbered versions, which TF Serving's version scan ignores) as the text
proto that ``tensorflow_model_server --enable_batching
--batching_parameters_file=<model folder>/batching_parameters.txt`` reads
(``tensorflow.serving.BatchingParameters``)::

    max_batch_size { value: 64 }
    batch_timeout_micros { value: 1000 }
    max_enqueued_batches { value: 8 }
    num_batch_threads { value: 2 }

The values follow TF Serving's batching guide for CPU serving, sized to the
export: ``max_batch_size`` is the module's (a larger batch fails in the
graph), one batch thread per CPU core of the exporting machine (edit the
file for another), a 1 ms timeout (as ``keras-attention serve``'s default,
which the load benchmark measured; the guide's 1-10 ms range: a short wait
against decoding that takes tens of milliseconds), at most 4 batches queued
per thread (beyond that TF Serving answers UNAVAILABLE at once rather than
letting latency grow) and, for ``--xla`` exports, ``allowed_batch_sizes``
equal to the graph's batch buckets (powers of two up to ``max_batch_size``),
so TF Serving pads to shapes already compiled. Each export rewrites the
file when it writes the highest version (the one TF Serving serves).
"""

import dataclasses
import os

from keras_attention import validation
from keras_attention.atomic import write_atomically

BATCHING_FILE = "batching_parameters.txt"
BATCH_TIMEOUT_MICROS = 1000  # serving.batching.RequestBatching's default too
ENQUEUED_BATCHES_PER_THREAD = 4


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's ``BatchingParameters`` (the fields an export sets).

    Args:
        max_batch_size: most examples in one batch.
        batch_timeout_micros: how long a partial batch waits for more.
        max_enqueued_batches: batches queued before requests are refused.
        num_batch_threads: threads running batches.
        allowed_batch_sizes: increasing sizes batches are padded to, the
            last one ``max_batch_size``; empty: no padding.
    """

    max_batch_size: int
    batch_timeout_micros: int = BATCH_TIMEOUT_MICROS
    max_enqueued_batches: int = 8
    num_batch_threads: int = 2
    allowed_batch_sizes: tuple = ()

    def __post_init__(self):
        for field in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            validation.check_positive_int(field, getattr(self, field))
        validation.check_non_negative_int("batch_timeout_micros", self.batch_timeout_micros)
        sizes = tuple(self.allowed_batch_sizes)
        if sizes and (any(not validation.is_int(s) or s < 1 for s in sizes)
                      or list(sizes) != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError(f"allowed_batch_sizes must be increasing positive integers ending "
                             f"with max_batch_size {self.max_batch_size}, got {sizes!r}.")
        object.__setattr__(self, "allowed_batch_sizes", sizes)

    @classmethod
    def for_module(cls, module, num_batch_threads=None):
        """The parameters that suit a ``TextToTextModule`` (see the module doc)."""
        threads = num_batch_threads or _cpu_count()
        sizes = ()
        if module.jit_compile:
            size, powers = 1, []
            while size < module.max_batch_size:
                powers.append(size)
                size *= 2
            sizes = (*powers, module.max_batch_size)
        return cls(max_batch_size=module.max_batch_size, num_batch_threads=threads,
                   max_enqueued_batches=ENQUEUED_BATCHES_PER_THREAD * threads,
                   allowed_batch_sizes=sizes)

    def to_text(self):
        """The text proto ``--batching_parameters_file`` reads."""
        lines = [f"{field} {{ value: {getattr(self, field)} }}" for field in (
            "max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
            "num_batch_threads")]
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        return "\n".join(lines) + "\n"


def write_batching_parameters(directory, parameters):
    """Write ``parameters`` to ``directory/batching_parameters.txt``
    (atomically); returns its path."""
    path = os.path.join(directory, BATCHING_FILE)
    write_atomically(path, parameters.to_text().encode("utf-8"))
    return path
