"""Atomic writes: a crash never leaves a half-written file or folder where a
reader (a server, a resumed run) would pick it up; nothing is replaced
unless the caller asks for it."""

import contextlib
import os
import shutil
import tempfile


def refuse_existing(path, what, alternative):
    """A one-line ``FileExistsError`` naming ``path`` when it exists: what a
    writer that was not asked to overwrite (``overwrite=False``, the CLI's
    ``--overwrite``) raises before any work. ``what`` names the thing
    (``"model folder"``), ``alternative`` the other way out (``"--output"``)."""
    if os.path.lexists(path):
        raise FileExistsError(
            f"{what} '{path}' already exists; pass --overwrite (overwrite=True) to replace "
            f"it, or choose another {alternative}."
        )


@contextlib.contextmanager
def atomic_directory(directory, overwrite=True):
    """Yield a temporary folder beside ``directory``; when the block ends
    without an error it becomes ``directory``. On an error the temporary
    folder is deleted and ``directory`` is left as it was.

    ``overwrite=True``: an existing ``directory`` is replaced (moved aside
    first, then removed). ``overwrite=False``: it never is; if one appeared
    while the block ran (another writer), a ``FileExistsError`` and the
    temporary folder is deleted. Check first with ``refuse_existing`` for
    the error before the work."""
    directory = os.path.abspath(directory)
    parent, name = os.path.split(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{name}.tmp-")
    try:
        yield tmp
        if overwrite and os.path.exists(directory):
            old = tempfile.mkdtemp(dir=parent, prefix=f".{name}.old-")
            os.replace(directory, os.path.join(old, name))
            os.replace(tmp, directory)
            shutil.rmtree(old)
        else:
            _rename_to_new(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_to_new(tmp, directory):
    # rename() fails on an existing file or non-empty folder (an empty one
    # holds nothing to lose), so no writer's folder is ever replaced here.
    try:
        os.rename(tmp, directory)
    except OSError:
        if not os.path.lexists(directory):
            raise
        raise FileExistsError(
            f"'{directory}' was created by another writer meanwhile and was left as it "
            "is; nothing was written there, write again or choose another path."
        ) from None


def write_atomically(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file, so a crash
    never leaves a half-written file."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
