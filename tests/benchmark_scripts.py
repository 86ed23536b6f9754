"""Import a script of ``benchmarks/`` (not a package) as a module for its tests."""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


def load_benchmark(name):
    """``benchmarks/<name>.py`` as a fresh module named ``<name>_benchmark``
    (``benchmarks/`` goes last on ``sys.path``, for its ``_common``)."""
    if BENCHMARKS not in sys.path:
        sys.path.append(BENCHMARKS)
    path = os.path.join(BENCHMARKS, name + ".py")
    spec = importlib.util.spec_from_file_location(name + "_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
