"""Tokenizers that run inside TensorFlow graphs (and so in exports).

Ids 0-3 are reserved: ``[PAD]`` = 0, ``[START]`` = 1, ``[END]`` = 2,
``[UNK]`` = 3. Tokenizers are ``tf.Module``s, so an exported SavedModel
carries their lookup tables and needs no Python step.

Every tokenizer implements the ``Tokenizer`` interface; this module holds the
word and character ones, ``keras_attention.data.subword`` the learned subword
ones (WordPiece, SentencePiece).
"""

import collections
import itertools
import os
import re

import tensorflow as tf

from keras_attention.atomic import write_atomically
from keras_attention.constants import (  # noqa: F401  (the reserved ids, also read from here)
    END,
    END_ID,
    PAD,
    PAD_ID,
    RESERVED_TOKENS,
    START,
    START_ID,
    UNK,
    UNK_ID,
)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {escaped[1]: raw for raw, escaped in _ESCAPES.items()}


def _escape(token):
    return "".join(_ESCAPES.get(c, c) for c in token)


def _unescape(line):
    return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m.group(1), m.group(0)), line)


def check_vocabulary(vocabulary, owner):
    """``vocabulary`` as a tuple, or a ``ValueError`` when it does not start
    with ``RESERVED_TOKENS`` or repeats a token. ``owner`` is the tokenizer
    class, named in the message."""
    vocabulary = tuple(vocabulary)
    if vocabulary[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
        raise ValueError(
            f"vocabulary must start with the reserved tokens {list(RESERVED_TOKENS)}, "
            f"got {list(vocabulary[:4])}; build it with {owner.__name__}.build(texts)."
        )
    duplicates = [t for t, n in collections.Counter(vocabulary).items() if n > 1]
    if duplicates:
        raise ValueError(f"vocabulary has duplicate tokens: {duplicates[:5]}.")
    return vocabulary


def write_vocabulary(path, vocabulary):
    """One token per line (UTF-8); backslash, newline and carriage return
    inside tokens are escaped as ``\\``, ``\n``, ``\r``."""
    write_atomically(path, "".join(_escape(t) + "\n" for t in vocabulary).encode("utf-8"))


def missing_file_error(path, owner, what="vocabulary file"):
    return FileNotFoundError(
        f"{what} '{path}' not found; build one with {owner.__name__}.build(texts) "
        "and write it with .save(path)."
    )


def empty_corpus_error():
    """What ``build`` raises when no text holds anything to learn from."""
    return ValueError(
        "cannot build a vocabulary from an empty corpus: the texts hold no "
        "non-whitespace character; pass the training texts."
    )


def read_vocabulary(path, owner):
    """The tokens written by ``write_vocabulary``."""
    if not os.path.exists(path):
        raise missing_file_error(path, owner)
    with open(path, encoding="utf-8", newline="") as f:
        return [_unescape(line) for line in f.read().split("\n")[:-1]]


def text_batches(texts, batch_size=4096):
    """1-D ``tf.string`` batches of ``texts``, read as they are needed.

    ``texts`` is an iterable of strings (a list, a generator over a file) or a
    ``tf.data.Dataset`` of scalar (or already batched 1-D) strings; neither is
    held in memory whole.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be an iterable of strings, got one string; wrap it in a list.")
    if isinstance(texts, tf.data.Dataset):
        spec = texts.element_spec
        if not (isinstance(spec, tf.TensorSpec) and spec.dtype == tf.string
                and spec.shape.rank in (0, 1)):
            raise TypeError(
                f"texts must be a dataset of strings (scalars or 1-D batches), got {spec}."
            )
        yield from texts.batch(batch_size) if spec.shape.rank == 0 else texts
        return
    iterator = iter(texts)
    while chunk := list(itertools.islice(iterator, batch_size)):
        try:
            batch = tf.constant(chunk, tf.string)
        except (TypeError, ValueError):
            kinds = sorted({type(t).__name__ for t in chunk})
            raise TypeError(f"texts must be strings, got {', '.join(kinds)}.") from None
        yield batch


class Tokenizer(tf.Module):
    """The interface every tokenizer implements.

    - ``tokenize(texts)``: a 1-D batch of strings -> ids as an int32
      ``RaggedTensor`` ``(batch, None)``, without START/END.
    - ``detokenize(ids)``: ``(batch, length)`` ids -> a 1-D batch of strings;
      stops at ``[END]``, drops the reserved ids and ids outside the vocabulary.
    - ``vocabulary_size``: ids are in ``[0, vocabulary_size)``.
    - ``save(path)``, ``load(path, ...)``, ``build(texts, ...)``.

    Both directions are TensorFlow ops, so they run in ``tf.data``, inside
    ``tf.function`` and in exported SavedModels.
    """

    @property
    def vocabulary_size(self):
        raise NotImplementedError

    def tokenize(self, texts):
        raise NotImplementedError

    def detokenize(self, ids):
        raise NotImplementedError

    def save(self, path):
        raise NotImplementedError

    @classmethod
    def load(cls, path, **options):
        raise NotImplementedError

    @classmethod
    def build(cls, texts, **options):
        raise NotImplementedError

    def _detokenizable(self, ids):
        """The ids of each row that ``detokenize`` turns into text: those
        before the first ``[END]``, not reserved, inside the vocabulary.
        ``ids`` may also be ragged."""
        if isinstance(ids, tf.RaggedTensor):
            ids = tf.cast(ids.to_tensor(PAD_ID), tf.int32)
        ids = tf.convert_to_tensor(ids, dtype=tf.int32)
        before_end = tf.math.cumsum(tf.cast(ids == END_ID, tf.int32), axis=-1) == 0
        keep = before_end & (ids >= len(RESERVED_TOKENS)) & (ids < self.vocabulary_size)
        return tf.ragged.boolean_mask(ids, keep)


class VocabularyTokenizer(Tokenizer):
    """Splits text into tokens (subclasses say how) and maps them to ids.

    Args:
        vocabulary: list of tokens; must start with ``RESERVED_TOKENS``.
        lowercase: lowercase text before splitting.
    """

    separator = None  # joins tokens back into text

    def __init__(self, vocabulary, lowercase=True, name=None):
        super().__init__(name=name)
        self.vocabulary = check_vocabulary(vocabulary, type(self))
        self.lowercase = bool(lowercase)
        self._tokens = tf.constant(self.vocabulary)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                self._tokens, tf.range(len(self.vocabulary), dtype=tf.int32)
            ),
            default_value=UNK_ID,
        )

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def split(self, texts):
        """A ``RaggedTensor`` of string tokens for a 1-D batch of texts."""
        raise NotImplementedError

    def _normalize(self, texts):
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return texts

    def tokenize(self, texts):
        """Ids as a ``RaggedTensor`` ``(batch, None)`` of int32 (no START/END)."""
        tokens = self.split(self._normalize(texts))
        return tf.ragged.map_flat_values(self._table.lookup, tokens)

    def detokenize(self, ids):
        """Text for a ``(batch, length)`` id tensor: stops at ``[END]``, drops
        reserved ids and ids outside the vocabulary."""
        tokens = tf.gather(self._tokens, self._detokenizable(ids))
        return tf.strings.reduce_join(tokens, axis=-1, separator=self.separator)

    @classmethod
    def build(cls, texts, max_size=None, min_count=1, lowercase=True):
        """Count tokens in ``texts`` and keep the most frequent ones.

        ``texts``: an iterable of strings or a ``tf.data.Dataset`` of strings,
        read in batches. Ties are broken alphabetically so the vocabulary is
        reproducible.
        """
        splitter = cls(list(RESERVED_TOKENS), lowercase=lowercase)
        counts = collections.Counter()
        for batch in text_batches(texts):
            tokens = splitter.split(splitter._normalize(batch))
            counts.update(t.decode("utf-8") for t in tokens.flat_values.numpy())
        if not counts:
            raise empty_corpus_error()
        kept = sorted(
            (t for t, n in counts.items() if n >= min_count and t not in RESERVED_TOKENS),
            key=lambda t: (-counts[t], t),
        )
        if max_size is not None:
            kept = kept[: max(0, max_size - len(RESERVED_TOKENS))]
        return cls(list(RESERVED_TOKENS) + kept, lowercase=lowercase)

    def save(self, path):
        """Write the vocabulary, one token per line (UTF-8); backslash, newline
        and carriage return inside tokens are escaped as ``\\``, ``\n``, ``\r``."""
        write_vocabulary(path, self.vocabulary)

    @classmethod
    def load(cls, path, lowercase=True):
        return cls(read_vocabulary(path, cls), lowercase=lowercase)


class WordTokenizer(VocabularyTokenizer):
    """Whitespace-separated words; every punctuation mark or symbol and every
    digit is a token of its own ("23 mar, 1994" -> 2 3 mar , 1 9 9 4). Letters
    of any script stay in their word; any Unicode space separates words.
    Detokenization joins tokens with single spaces."""

    separator = " "

    def split(self, texts):
        texts = tf.strings.regex_replace(texts, r"[\s\p{Z}]+", " ")
        texts = tf.strings.regex_replace(texts, r"([^\p{L}\p{M}\p{N} ]|\p{Nd})", r" \1 ")
        return tf.strings.split(texts)


class CharacterTokenizer(VocabularyTokenizer):
    """One token per Unicode character (whitespace included); detokenization
    concatenates them."""

    separator = ""

    def split(self, texts):
        return tf.strings.unicode_split(texts, "UTF-8")
