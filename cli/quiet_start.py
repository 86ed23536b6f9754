"""Keep TensorFlow's C++ start-up lines off stderr.

TensorFlow 2.21 logs through absl before ``absl::InitializeLog()`` runs, and
those messages ignore ``TF_CPP_MIN_LOG_LEVEL``: every command would start
with ``WARNING: All log messages before absl::InitializeLog() is called are
written to STDERR`` and ``I0000 ... port.cc:153] oneDNN custom operations
are on ...`` lines, twice. While ``tensorflow`` is first imported, file
descriptor 2 goes to a temporary file; then every line except those
informational ones is written back, so warnings and errors still show.
``--debug`` keeps everything.
"""

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

# absl's preamble and its INFO lines ("I<MMDD> <time> <thread> <file>:<line>] ...").
NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] .*"
)


@contextlib.contextmanager
def informational_lines_dropped(fd=2):
    """Send ``fd`` to a temporary file inside the block; afterwards write
    back to ``fd`` the lines that ``NOISE`` does not match in full."""
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True)
                    if not NOISE.fullmatch(line.rstrip(b"\r\n"))]
            if kept:
                os.write(fd, b"".join(kept))


class _Quiet(importlib.abc.Loader):
    """Runs the wrapped loader's ``exec_module`` with informational lines dropped."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self._loader  # what the module sees is the real loader
        with informational_lines_dropped():
            self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of the first ``import tensorflow``, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Quiet(spec.loader)
        return spec


def quiet_tensorflow_start(argv=None):
    """Drop TensorFlow's start-up INFO lines when it is first imported
    (unless ``--debug`` is among ``argv``, default ``sys.argv``); TensorFlow
    is not imported here."""
    argv = sys.argv[1:] if argv is None else argv
    if "tensorflow" in sys.modules or "--debug" in argv:
        return
    if not any(isinstance(f, _FirstTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _FirstTensorFlowImport())
