"""Text files as numbered lines: the one line reader of the corpus readers
and the decoding commands (TensorFlow-free, so the CLI can read its inputs
without importing TensorFlow).

A line ends at ``"\\n"`` only (a ``"\\r"`` before it is dropped too), as
``wc -l`` counts lines: characters that ``str.splitlines()`` also breaks on
(U+2028, U+2029, U+0085, ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``) stay
inside their line. Bytes are decoded as strict UTF-8 and a leading BOM is
dropped. Every problem is a one-line ``ValueError`` naming ``file:line``
and the fix.
"""

import gzip
import zlib


def read_lines(path):
    """``(line_number, text)`` for each line of the plain-text or (by name)
    ``.gz`` file ``path``; a missing file raises the usual
    ``FileNotFoundError`` (callers say which file was expected)."""
    path = str(path)
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as file:
        yield from decode_lines(file, path)


def decode_lines(file, name, kind="file"):
    """``(line_number, text)`` for each line of ``file``, a binary file
    object (a ``gzip.GzipFile`` is read as its decompressed data; stdin is
    ``sys.stdin.buffer``); ``name`` is how messages call it, ``kind`` what
    it is (``"file"``, ``"input"`` for stdin)."""
    compressed = isinstance(file, gzip.GzipFile)
    number, offset = 0, 0
    try:
        for number, raw in enumerate(file, 1):
            text = _decode(raw, name, number, offset, compressed, kind)
            offset += len(raw)
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, _without_line_end(text)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(
            f"{name}:{number + 1}: not valid gzip data ({error}); a '.gz' file must be "
            "gzip-compressed and complete: recompress it, or drop the '.gz' suffix "
            "from a plain-text file."
        ) from None


def _decode(raw, name, number, offset, compressed, kind):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        where = f"decompressed {kind}" if compressed else kind
        raise ValueError(
            f"{name}:{number}: invalid UTF-8 byte 0x{raw[error.start]:02x} at offset "
            f"{error.start} of the line (offset {offset + error.start} in the {where}); "
            f"re-encode the {kind} as UTF-8, e.g. with 'iconv -f latin1 -t utf-8'."
        ) from None


def _without_line_end(text):
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text
