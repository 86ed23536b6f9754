"""Import a script of ``benchmarks/`` (not a package) as a module for its tests."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_benchmark(name):
    """``benchmarks/<name>.py`` as a fresh module named ``<name>_benchmark``."""
    path = os.path.join(ROOT, "benchmarks", name + ".py")
    spec = importlib.util.spec_from_file_location(name + "_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
