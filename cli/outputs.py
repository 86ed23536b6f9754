"""Where translate, summarize and evaluate write their outputs: stdout, or a
file written batch by batch through ``FILE.partial`` beside it, renamed to
``FILE`` when every input is done. An interrupted job (Ctrl-C, an error, a
kill) keeps the outputs it finished, in input order, in ``FILE.partial``.

Paths are checked before any work (``check_output_path``), so a bad one
fails before the model loads, not after the decoding."""

import contextlib
import os

import click

PARTIAL_SUFFIX = ".partial"


def partial_path(path):
    return path + PARTIAL_SUFFIX


def check_output_path(path, option):
    """A one-line error unless outputs can be written to ``path`` (``-``:
    stdout): its folder must exist and be writable, and no
    ``path.partial`` of an interrupted job may be there (it is never
    replaced)."""
    if path == "-":
        return
    if os.path.isdir(path):
        raise IsADirectoryError(f"{option} '{path}' is a folder; give a file path.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{option} '{path}': folder '{folder}' does not exist; "
                                "create it first or choose another path.")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{option} '{path}': folder '{folder}' is not writable; "
                              "choose another path.")
    partial = partial_path(path)
    if os.path.lexists(partial):
        raise FileExistsError(f"{option} '{path}': '{partial}' exists (the outputs an "
                              "interrupted job kept); move or delete it first.")


class _Lines:
    """Writes each call's outputs at once and flushes, counting them."""

    def __init__(self, stream):
        self._stream = stream
        self.count = 0

    def __call__(self, outputs):
        """Write ``outputs``: one string per input (its lines, each ending
        in a newline)."""
        self._stream.write("".join(outputs))
        self._stream.flush()
        self.count += len(outputs)


@contextlib.contextmanager
def output_lines(path, total):
    """Yield ``write(outputs)`` (see ``_Lines``) to stdout (``-``) or to
    ``path``: written to ``path.partial``, renamed to ``path`` when the block
    ends without an error. On an error or Ctrl-C, ``path.partial`` keeps the
    outputs written and stderr says how many of ``total``; it is removed
    when it holds none. Check ``path`` with ``check_output_path`` first."""
    if path == "-":
        yield _Lines(click.get_text_stream("stdout", encoding="utf-8"))
        return
    partial = partial_path(path)
    with open(partial, "x", encoding="utf-8") as stream:
        write = _Lines(stream)
        try:
            yield write
        except BaseException:
            stream.close()
            if write.count:
                click.echo(f"interrupted: {write.count} of {total} outputs kept in "
                           f"{partial}", err=True)
            else:
                os.remove(partial)
            raise
    os.replace(partial, path)
