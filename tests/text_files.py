"""Text files the readers must get right: lines holding characters that
``str.splitlines()`` breaks at, and files no reader can read, with the
one-line error that names each (``keras_attention.lines``)."""

import gzip
import zlib

# Line breaks for str.splitlines(), but not for wc -l or the corpus readers.
INNER_BREAKS = ["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85"]

_GZIP_FIX = ("a '.gz' file must be gzip-compressed and complete: recompress it, or drop "
             "the '.gz' suffix from a plain-text file.")


def write_bad_files(directory):
    """``{kind: (path, its one-line error)}`` in ``directory`` (a
    ``pathlib.Path``): a Latin-1 file, a plain-text file named ``.gz`` and a
    truncated ``.gz`` (named by the line where its decompressible data ends)."""
    latin1, plain, cut = directory / "latin1.txt", directory / "plain.txt.gz", directory / "cut.gz"
    latin1.write_bytes("may first\ncaf\xe9\n".encode("latin-1"))
    plain.write_text("may first\n")
    data = gzip.compress("".join(f"{n * 7919 % 10007} may first\n" for n in range(3000))
                         .encode("utf-8"))
    cut.write_bytes(data[: len(data) // 2])
    line = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2]).count(b"\n") + 1
    return {
        "latin1": (str(latin1), f"{latin1}:2: invalid UTF-8 byte 0xe9 at offset 3 of the line "
                                "(offset 13 in the file); re-encode the file as UTF-8, e.g. "
                                "with 'iconv -f latin1 -t utf-8'."),
        "plain": (str(plain), f"{plain}:1: not valid gzip data (Not a gzipped file (b'ma')); "
                              + _GZIP_FIX),
        "truncated": (str(cut), f"{cut}:{line}: not valid gzip data (Compressed file ended "
                                "before the end-of-stream marker was reached); " + _GZIP_FIX),
    }
