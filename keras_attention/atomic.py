"""Atomic writes: a crash never leaves a half-written file or folder where a
reader (a server, a resumed run) would pick it up."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(directory):
    """Yield a temporary folder beside ``directory``; when the block ends
    without an error it replaces ``directory`` (an existing one is moved
    aside first, then removed). On an error the temporary folder is deleted
    and ``directory`` is left as it was."""
    directory = os.path.abspath(directory)
    parent, name = os.path.split(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{name}.tmp-")
    try:
        yield tmp
        if os.path.exists(directory):
            old = tempfile.mkdtemp(dir=parent, prefix=f".{name}.old-")
            os.replace(directory, os.path.join(old, name))
            os.replace(tmp, directory)
            shutil.rmtree(old)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_atomically(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file, so a crash
    never leaves a half-written file."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
