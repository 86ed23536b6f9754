"""Vocabulary tokenizers that run inside TensorFlow graphs (and so in exports).

Ids 0-3 are reserved: ``[PAD]`` = 0, ``[START]`` = 1, ``[END]`` = 2,
``[UNK]`` = 3. Tokenizers are ``tf.Module``s, so an exported SavedModel
carries their lookup tables and needs no Python step.
"""

import collections
import os
import re

import tensorflow as tf

PAD, START, END, UNK = "[PAD]", "[START]", "[END]", "[UNK]"
RESERVED_TOKENS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = range(4)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {escaped[1]: raw for raw, escaped in _ESCAPES.items()}


def _escape(token):
    return "".join(_ESCAPES.get(c, c) for c in token)


def _unescape(line):
    return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m.group(1), m.group(0)), line)


class VocabularyTokenizer(tf.Module):
    """Splits text into tokens (subclasses say how) and maps them to ids.

    Args:
        vocabulary: list of tokens; must start with ``RESERVED_TOKENS``.
        lowercase: lowercase text before splitting.
    """

    separator = None  # joins tokens back into text

    def __init__(self, vocabulary, lowercase=True, name=None):
        super().__init__(name=name)
        vocabulary = list(vocabulary)
        if tuple(vocabulary[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
            raise ValueError(
                f"vocabulary must start with the reserved tokens {list(RESERVED_TOKENS)}, "
                f"got {vocabulary[:4]}; build it with {type(self).__name__}.build(texts)."
            )
        duplicates = [t for t, n in collections.Counter(vocabulary).items() if n > 1]
        if duplicates:
            raise ValueError(f"vocabulary has duplicate tokens: {duplicates[:5]}.")
        self.vocabulary = tuple(vocabulary)
        self.lowercase = bool(lowercase)
        self._tokens = tf.constant(vocabulary)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                self._tokens, tf.range(len(vocabulary), dtype=tf.int32)
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
        ids = tf.convert_to_tensor(ids, dtype=tf.int32)
        before_end = tf.math.cumsum(tf.cast(ids == END_ID, tf.int32), axis=-1) == 0
        keep = before_end & (ids >= len(RESERVED_TOKENS)) & (ids < self.vocabulary_size)
        tokens = tf.ragged.boolean_mask(
            tf.gather(self._tokens, tf.clip_by_value(ids, 0, self.vocabulary_size - 1)), keep
        )
        return tf.strings.reduce_join(tokens, axis=-1, separator=self.separator)

    @classmethod
    def build(cls, texts, max_size=None, min_count=1, lowercase=True):
        """Count tokens in ``texts`` and keep the most frequent ones.

        Ties are broken alphabetically so the vocabulary is reproducible.
        """
        splitter = cls(list(RESERVED_TOKENS), lowercase=lowercase)
        counts = collections.Counter()
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string))
        for batch in dataset.batch(4096):
            tokens = splitter.split(splitter._normalize(batch))
            counts.update(t.decode("utf-8") for t in tokens.flat_values.numpy())
        if not counts:
            raise ValueError("cannot build a vocabulary from an empty corpus.")
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
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.writelines(_escape(token) + "\n" for token in self.vocabulary)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, lowercase=True):
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"vocabulary file '{path}' not found; build one with {cls.__name__}.build(texts)."
            )
        with open(path, encoding="utf-8", newline="") as f:
            vocabulary = [_unescape(line) for line in f.read().split("\n")[:-1]]
        return cls(vocabulary, lowercase=lowercase)


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
