"""What the benchmark scripts share: the repository on ``sys.path`` (they
run from a checkout as ``python benchmarks/NAME.py``), TensorFlow's C++
logs off, progress on stderr and the machine the figures come from.

A script imports it first (``benchmarks/`` is ``sys.path[0]`` when a script
runs), before ``keras_attention``::

    from _common import machine, progress
"""

import os
import platform
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def progress(message):
    """A line on stderr, at once (stdout carries the JSON figures)."""
    print(message, file=sys.stderr, flush=True)


def cpu_name():
    """The CPU model (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_cores():
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine(*modules):
    """``{"machine", "cpus"}`` of this machine, then ``{name: version}`` of
    each module (``machine(tf, keras)``)."""
    return {"machine": cpu_name(), "cpus": cpu_cores(),
            **{module.__name__: module.__version__ for module in modules}}


def matmul_flop_per_s(dtype="float32", size=2048, repeats=10):
    """FLOP/s of ``repeats`` ``size`` x ``size`` TensorFlow matmuls on
    distinct inputs (identical ones would be merged into one by the graph
    optimizer), best of 3 calls: the machine's peak, as a reference."""
    import tensorflow as tf

    left = [tf.cast(tf.random.normal((size, size)), dtype) for _ in range(repeats)]
    right = tf.cast(tf.random.normal((size, size)), dtype)

    @tf.function
    def run():
        return tf.add_n([tf.linalg.matmul(a, right) for a in left])

    run().numpy()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        run().numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 * repeats / best
