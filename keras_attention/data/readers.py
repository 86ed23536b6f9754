"""Corpus files -> streamed ``(source, target)`` text pairs and ``tf.data``.

Each reader returns a :class:`PairSource`, which never holds the corpus in
memory: every pass reads the file again, line by line (plain text, or gzip
when the name ends in ``.gz``), as strict UTF-8.

    source = tsv_pairs("spa.txt.gz")
    stats = source.scan()      # one pass in Python: clean errors, statistics
    dataset = source.dataset() # scalar tf.string (source, target) pairs

Errors are one-line ``ValueError`` / ``FileNotFoundError`` messages that name
the file, the line and the fix (``spa.txt.gz:12: 1 column(s) ...``). A missing
file is reported when the reader is created; everything else when the line is
read. Inside ``dataset()`` TensorFlow wraps a Python error in
``tf.errors.InvalidArgumentError`` (the message still contains the line, after
a traceback), so either call ``scan()`` first (a command can print its
statistics too), or iterate under ``with source.clean_errors():``, which re-raises
the original error.

A corpus shipped as one file (Tatoeba) is split into train / validation /
test with ``split_pairs``: a fixed hash of the normalized source text picks
the split, so a source sentence never appears in two splits.

Pairs whose source or target is empty after stripping whitespace are dropped,
never silently: each full pass logs one warning with the count on the
``keras_attention.data`` logger, and ``scan()`` reports it.
"""

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import unicodedata
import zlib

import tensorflow as tf

from keras_attention import validation
from keras_attention.constants import HOLDOUT_SPLITS
from keras_attention.lines import read_lines

logger = logging.getLogger("keras_attention.data")

# Pairs per Python -> TensorFlow hand-over in ``dataset()``: from_generator costs
# ~0.2 ms per call, so single pairs would make reading the bottleneck.
_CHUNK_SIZE = 1024


@dataclasses.dataclass(frozen=True)
class CorpusStats:
    """What one full pass over a corpus found.

    Attributes:
        records: records read (lines, JSON lines, examples; a skipped header
            is not one).
        pairs: pairs kept.
        dropped_empty: records dropped because the source or target was empty.
        max_source_chars, max_target_chars: longest kept texts, in characters.
        mean_source_chars, mean_target_chars: mean kept lengths, in characters.
    """

    records: int
    pairs: int
    dropped_empty: int
    max_source_chars: int
    max_target_chars: int
    mean_source_chars: float
    mean_target_chars: float


@dataclasses.dataclass
class _Tally:
    records: int = 0
    pairs: int = 0
    dropped_empty: int = 0
    source_chars: int = 0
    target_chars: int = 0
    max_source_chars: int = 0
    max_target_chars: int = 0

    def add(self, source, target):
        self.pairs += 1
        self.source_chars += len(source)
        self.target_chars += len(target)
        self.max_source_chars = max(self.max_source_chars, len(source))
        self.max_target_chars = max(self.max_target_chars, len(target))

    def stats(self):
        return CorpusStats(
            records=self.records,
            pairs=self.pairs,
            dropped_empty=self.dropped_empty,
            max_source_chars=self.max_source_chars,
            max_target_chars=self.max_target_chars,
            mean_source_chars=self.source_chars / self.pairs,
            mean_target_chars=self.target_chars / self.pairs,
        )


class PairSource:
    """A re-readable stream of ``(source, target)`` text pairs.

    The readers below build these; any zero-argument callable that returns a
    fresh iterator of ``(str, str)`` pairs works too.

    Iterating yields the pairs as Python strings, stripped of surrounding
    whitespace, with empty ones dropped (see the module docstring).

    Args:
        name: how messages name the corpus (usually its path).
        records: callable returning a new iterator of raw ``(source, target)``
            strings for each pass.
        limit: read at most this many records per pass (e.g. a quick look at a
            large corpus); ``None`` reads everything.
    """

    def __init__(self, name, records, limit=None):
        validation.check_positive_int("limit", limit, optional=True,
                                      what="a positive integer or None")
        self.name = name
        self.limit = limit
        self._records = records
        self._error = None

    def __repr__(self):
        return f"PairSource({self.name!r}, limit={self.limit})"

    def __iter__(self):
        return self._stream(_Tally())

    def _stream(self, tally):
        records = self._records()
        try:
            for source, target in itertools.islice(records, self.limit):
                tally.records += 1
                source, target = source.strip(), target.strip()
                if not source or not target:
                    tally.dropped_empty += 1
                    continue
                tally.add(source, target)
                yield source, target
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()
        if tally.records == 0:
            raise ValueError(f"{self.name}: the corpus is empty; check that the path is right.")
        if tally.pairs == 0:
            raise ValueError(
                f"{self.name}: no pairs left: all {tally.records} records have an empty source "
                "or target; check the column or field arguments."
            )
        if tally.dropped_empty:
            logger.warning(
                "%s: dropped %d of %d pairs with an empty source or target.",
                self.name,
                tally.dropped_empty,
                tally.records,
            )

    def scan(self):
        """Read the corpus once, in Python, and return its :class:`CorpusStats`.

        Raises the reader's one-line errors as they are (no TensorFlow
        wrapping), so call it before training to fail early and cleanly.
        """
        tally = _Tally()
        for _ in self._stream(tally):
            pass
        return tally.stats()

    def dataset(self):
        """A ``tf.data.Dataset`` of scalar ``tf.string`` ``(source, target)``
        pairs, read afresh on every iteration (so ``repeat()`` re-reads the
        file); batch and tokenize it with ``keras_attention.data.batching``.

        Errors surface wrapped in ``tf.errors.InvalidArgumentError``; see
        :meth:`clean_errors`.
        """

        def chunks():
            pairs = self._stream(_Tally())
            try:
                while chunk := list(itertools.islice(pairs, _CHUNK_SIZE)):
                    sources, targets = zip(*chunk)
                    yield list(sources), list(targets)
            except Exception as error:  # kept for clean_errors()
                self._error = error
                raise

        spec = tf.TensorSpec([None], tf.string)
        return tf.data.Dataset.from_generator(chunks, output_signature=(spec, spec)).unbatch()

    @contextlib.contextmanager
    def clean_errors(self):
        """Re-raise this source's own reading error, which TensorFlow wraps in a
        ``tf.errors.OpError`` inside ``dataset()``, as the original exception:

            with source.clean_errors():
                model.fit(source.dataset().apply(...))

        Other TensorFlow errors pass through unchanged.
        """
        self._error = None
        try:
            yield self
        except tf.errors.OpError:
            error, self._error = self._error, None
            if error is None:
                raise
            raise error from None


def memory_pairs(pairs, name="<memory>"):
    """A ``PairSource`` over an in-memory list of ``(source, target)`` strings
    (generated data, tests); the list is not copied."""
    return PairSource(name, lambda: iter(pairs))


def aligned_pairs(source_path, target_path, limit=None):
    """Pairs from two line-aligned files, one sentence per line (Multi30k's
    ``train.en.gz`` + ``train.de.gz``). Files of unequal length are an error
    naming the one that ends first.

    Args:
        source_path, target_path: plain-text or ``.gz`` files, UTF-8.
        limit: read at most this many lines.
    """
    source_path, target_path = _check_file(source_path), _check_file(target_path)

    def records():
        with contextlib.closing(_lines(source_path)) as sources, contextlib.closing(
            _lines(target_path)
        ) as targets:
            count = 0
            for count, source in sources:
                target = next(targets, None)
                if target is None:
                    raise _unaligned(target_path, count - 1, source_path)
                yield source, target[1]
            if next(targets, None) is not None:
                raise _unaligned(source_path, count, target_path)

    return PairSource(f"{source_path} + {target_path}", records, limit=limit)


def _unaligned(short_path, line_count, long_path):
    return ValueError(
        f"{short_path} ends at line {line_count} but {long_path} has more lines; "
        "the files must be aligned line by line."
    )


def tsv_pairs(path, source_column=0, target_column=1, skip_header=False, limit=None):
    """Pairs from tab-separated lines (Tatoeba's ``spa.txt.gz``:
    ``english<TAB>spanish``). Columns are split on every tab, without quoting;
    extra columns are ignored. A blank line counts as an empty pair.

    Args:
        path: plain-text or ``.gz`` file, UTF-8.
        source_column, target_column: 0-based column indices.
        skip_header: skip the first line (it still counts in line numbers).
        limit: read at most this many lines after the header.
    """
    for argument, value in (("source_column", source_column), ("target_column", target_column)):
        validation.check_non_negative_int(argument, value, what="a non-negative integer")
    path = _check_file(path)
    needed = max(source_column, target_column) + 1

    def records():
        with contextlib.closing(_lines(path)) as lines:
            for number, text in lines:
                if number == 1 and skip_header:
                    continue
                if not text.strip():
                    yield "", ""
                    continue
                columns = text.split("\t")
                if len(columns) < needed:
                    raise ValueError(
                        f"{path}:{number}: {len(columns)} tab-separated column(s), but "
                        f"source_column={source_column} and target_column={target_column} "
                        f"need {needed}; fix the line or the column arguments."
                    )
                yield columns[source_column], columns[target_column]

    return PairSource(path, records, limit=limit)


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def jsonl_pairs(path, source_field, target_field, limit=None):
    """Pairs from JSON Lines, one object per line (SAMSum
    ``{"id", "dialogue", "summary"}``, AESLC ``{"id", "email", "subject"}``).
    Other fields are ignored; a ``null`` value or a blank line counts as an
    empty pair.

    Args:
        path: plain-text or ``.gz`` file, UTF-8.
        source_field, target_field: keys of the string fields to pair.
        limit: read at most this many lines.
    """
    for argument, value in (("source_field", source_field), ("target_field", target_field)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{argument} must be a non-empty string, got {value!r}.")
    path = _check_file(path)

    def field(record, number, argument, key):
        if key not in record:
            present = ", ".join(repr(k) for k in record) or "none"
            raise ValueError(
                f"{path}:{number}: no field {key!r} ({argument}); fields present: {present}."
            )
        value = record[key]
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError(
                f"{path}:{number}: field {key!r} is {_JSON_TYPES[type(value)]}, "
                "not a string; pick a text field."
            )
        return value

    def records():
        with contextlib.closing(_lines(path)) as lines:
            for number, text in lines:
                if not text.strip():
                    yield "", ""
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{path}:{number}: invalid JSON ({error}); "
                        "each line must be one JSON object."
                    ) from None
                if not isinstance(record, dict):
                    raise ValueError(
                        f"{path}:{number}: expected a JSON object, got "
                        f"{_JSON_TYPES[type(record)]}; "
                        "each line must be one JSON object."
                    )
                yield (
                    field(record, number, "source_field", source_field),
                    field(record, number, "target_field", target_field),
                )

    return PairSource(path, records, limit=limit)


# ---------------------------------------------------------------------------
# Hash holdout: train / validation / test splits of a single-file corpus.
# ---------------------------------------------------------------------------



def holdout_key(source):
    """The text a pair is split by: its source, NFKC-normalized, case-folded,
    whitespace collapsed (so ``"Go."`` and ``" go. "`` share a split)."""
    return " ".join(unicodedata.normalize("NFKC", source).casefold().split())


def holdout_bucket(source):
    """The pair's bucket, 0-99: ``crc32(holdout_key(source)) % 100`` (UTF-8)."""
    return zlib.crc32(holdout_key(source).encode("utf-8")) % 100


def holdout_split(source, test_percent=2, validation_percent=2):
    """``"test"`` for buckets ``< test_percent``, ``"validation"`` for the next
    ``validation_percent`` buckets, else ``"train"`` (see ``holdout_bucket``)."""
    bucket = holdout_bucket(source)
    if bucket < test_percent:
        return "test"
    if bucket < test_percent + validation_percent:
        return "validation"
    return "train"


def check_holdout(split, test_percent, validation_percent):
    """Raise a one-line ``ValueError`` unless ``split_pairs`` can take these."""
    validation.check_choice("split", split, HOLDOUT_SPLITS)
    for argument, value in (("test_percent", test_percent),
                            ("validation_percent", validation_percent)):
        validation.check_int(argument, value, 0, 100)
    if test_percent + validation_percent >= 100:
        raise ValueError(
            f"test_percent + validation_percent must be below 100 to leave training pairs, "
            f"got {test_percent} + {validation_percent}."
        )
    if {"test": test_percent, "validation": validation_percent}.get(split) == 0:
        raise ValueError(
            f"split: {split} is empty with {split}_percent 0; raise {split}_percent or "
            "pick another split."
        )


def split_pairs(pairs, split, test_percent=2, validation_percent=2, limit=None):
    """The pairs of ``pairs`` (a ``PairSource``) in one ``split`` of a fixed,
    deterministic hash holdout (``holdout_split``): a pair goes to ``test``
    when ``crc32(normalized source) % 100 < test_percent``, to ``validation``
    when it is in the next ``validation_percent`` buckets, else to ``train``.

    Hashing the *source* text means one source sentence never lands in two
    splits, even where a corpus repeats it with other targets (Tatoeba pairs
    one English sentence with several Spanish translations); the split does
    not depend on file order, the other pairs, or a random seed.

    Args:
        pairs: the whole corpus, read without a ``limit``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        test_percent, validation_percent: buckets (percent of distinct
            sources) held out; their sum must be below 100.
        limit: read at most this many records of the split per pass.
    """
    check_holdout(split, test_percent, validation_percent)

    def records():
        inner = pairs._records()
        try:
            for source, target in inner:
                if holdout_split(source, test_percent, validation_percent) == split:
                    yield source, target
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()

    name = f"{pairs.name} [{split}: holdout test {test_percent}%, validation {validation_percent}%]"
    return PairSource(name, records, limit=limit)


def tfds_pairs(name, split, source_key, target_key, data_dir=None, limit=None):
    """Pairs from an already prepared TensorFlow Datasets dataset
    (``tfds_pairs("wmt14_translate/de-en", "train", "en", "de")``). Never
    downloads; needs the optional ``tensorflow-datasets`` package.

    Args:
        name: TFDS name, with config if any.
        split: TFDS split, slicing allowed (``"train[:10%]"``).
        source_key, target_key: text feature names.
        data_dir: where the prepared data lives (TFDS default if ``None``).
        limit: read at most this many examples.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ImportError(
            "tfds_pairs needs tensorflow-datasets, which is not installed; install it with "
            "'pip install tensorflow-datasets', or read the corpus files with "
            "aligned_pairs, tsv_pairs or jsonl_pairs."
        ) from None
    where = f"'{data_dir}'" if data_dir else "the default TFDS data_dir"
    try:
        examples, info = tfds.load(
            name, split=split, data_dir=data_dir, download=False, with_info=True
        )
    except AssertionError:  # TFDS asserts when the prepared files are missing
        raise FileNotFoundError(
            f"TFDS dataset '{name}' is not prepared in {where}; this reader never downloads: "
            f"prepare it once with 'tfds build {name}', or pass data_dir."
        ) from None
    features = list(info.features.keys())
    for argument, key in (("source_key", source_key), ("target_key", target_key)):
        if key not in features:
            raise ValueError(
                f"TFDS dataset '{name}' has no feature {key!r} ({argument}); "
                f"features: {', '.join(map(repr, features))}."
            )
    label = f"tfds:{name}[{split}]"

    def text(value, index, key):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{label} example {index}: feature {key!r} is not valid UTF-8 ({error})."
            ) from None

    def records():
        for index, example in enumerate(tfds.as_numpy(examples)):
            yield text(example[source_key], index, source_key), text(
                example[target_key], index, target_key
            )

    return PairSource(label, records, limit=limit)


def _check_file(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise _not_found(path)
    return path


def _not_found(path):
    return FileNotFoundError(
        f"corpus file '{path}' not found; check the path (plain text, or gzip named *.gz)."
    )


def _lines(path):
    """``(line_number, text)`` for each line of a plain or ``.gz`` file
    (``keras_attention.lines.read_lines``: split on ``\\n`` only, strict
    UTF-8)."""
    try:
        yield from read_lines(path)
    except FileNotFoundError:
        raise _not_found(path) from None
