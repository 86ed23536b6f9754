"""Subword tokenizers learned from a corpus: WordPiece and SentencePiece.

Both keep the ``Tokenizer`` interface of ``keras_attention.data.tokenizers``
(reserved ids ``[PAD]`` = 0, ``[START]`` = 1, ``[END]`` = 2, ``[UNK]`` = 3;
``tokenize`` gives no START/END) and tokenize and detokenize with TensorFlow
and TF Text ops only, so they run in ``tf.data``, in ``tf.function`` and in
exported SavedModels with no Python step.

Text is prepared the same way by both: an optional Unicode normalization
(``normalization``: ``None``, ``"NFC"``, ``"NFKC"``, ``"NFD"`` or ``"NFKD"``)
then optional lowercasing (``lowercase``). Detokenization gives back that
prepared text exactly, spacing included; what cannot come back:

- characters never seen when the vocabulary was built: they map to ``[UNK]``,
  which detokenization drops (for WordPiece the whole unit, word or mark, they
  are in, with the space before it; for SentencePiece the character alone);
- NUL characters (WordPiece drops them) and U+2581 ``▁`` (SentencePiece's
  space marker: it comes back as a space);
- WordPiece words longer than ``MAX_BYTES_PER_WORD`` bytes (``[UNK]``).

``load`` does not know how the file was built: pass it the ``lowercase`` and
``normalization`` that ``build`` used.

TFLite: these tokenizers' own ops do not run in TFLite (the WordPiece
pre-split and both detokenizers use core TF string ops that convert only as
Select TF ops; ``NormalizeUTF8`` and the SentencePiece ops are TF Text kernels
that the stock Flex delegate lacks). A SentencePiece *unigram* model without
lowercasing or normalization does: ``keras_attention.export.tflite.text``
rebuilds it as TF Text's ``FastSentencepieceTokenizer`` (a TFLite custom op)
for the string -> string TFLite export; other tokenizers export ids -> ids.
"""

import collections
import io
import logging
import math
import re

import sentencepiece
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops import sentencepiece_tokenizer as _tf_text_sentencepiece
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib

from keras_attention import validation
from keras_attention.atomic import write_atomically
from keras_attention.constants import (
    END,
    NORMALIZATION_FORMS,
    PAD,
    RESERVED_TOKENS,
    START,
    SUBWORD_MODEL_TYPES as MODEL_TYPES,
    UNK,
)
from keras_attention.data.tokenizers import (
    Tokenizer,
    check_vocabulary,
    empty_corpus_error,
    missing_file_error,
    read_vocabulary,
    text_batches,
    write_vocabulary,
)

logger = logging.getLogger(__name__)

# The ops behind tensorflow_text.SentencepieceTokenizer (see
# SentencePieceTokenizer._model for why they are called directly).
_SENTENCEPIECE_OPS = _tf_text_sentencepiece.gen_sentencepiece_tokenizer

SUFFIX_INDICATOR = "##"
MAX_BYTES_PER_WORD = 100
# The fewest learned ids a vocabulary may have beyond the reserved ones.
MIN_LEARNED_TOKENS = 16
MIN_VOCABULARY_SIZE = len(RESERVED_TOKENS) + MIN_LEARNED_TOKENS
# SentencePiece's trainer skips longer texts (its max_sentence_length, passed
# explicitly so that this count and the trainer's agree).
MAX_SENTENCE_BYTES = 4192

# Pre-splitting for WordPiece. A unit is a run of letters, marks and digits,
# or one other character; a unit preceded by one space ("separated") carries
# that space as its first character, so the units of " " + text concatenate
# back to it. A space not followed by a non-space (a second space, the end)
# is a unit of its own.
_WORD = r"[\p{L}\p{M}\p{N}]"
_UNIT = rf" ?[^\p{{L}}\p{{M}}\p{{N}} ]| ?{_WORD}+| "
# A space followed by a non-space is the separator of the unit after it.
_SEPARATOR = r" ([^ ])"
_SPLIT = "\x00"  # marks unit boundaries between regex_replace and split
# What a learned token may hold: a separated unit is a word or one character
# other than a space; an attached one ("##" + unit) a word or any character.
_SEPARATED_UNIT = rf"(?s){_WORD}+|[^\p{{L}}\p{{M}}\p{{N}} ]"
_ATTACHED_UNIT = rf"(?s){_WORD}+|."
_LEARNER_MIN_COUNT = 2  # a learned piece occurs at least this often
_MAX_PIECE_CHARACTERS = 50  # longer learner words are not learned from
_SLACK = 0.05  # a vocabulary this much under vocabulary_size is close enough


def _check_vocabulary_size(vocabulary_size):
    if not validation.is_int(vocabulary_size):
        raise TypeError(f"vocabulary_size must be an integer, got {vocabulary_size!r}.")
    if vocabulary_size < MIN_VOCABULARY_SIZE:
        raise ValueError(
            f"vocabulary_size={vocabulary_size} is too small: it must be at least "
            f"{MIN_VOCABULARY_SIZE} ({len(RESERVED_TOKENS)} reserved ids + "
            f"{MIN_LEARNED_TOKENS} learned ones); a few thousand suits translation."
        )


def _check_normalization(normalization):
    if normalization is not None and normalization not in NORMALIZATION_FORMS:
        raise ValueError(
            f"normalization must be None or one of {list(NORMALIZATION_FORMS)}, "
            f"got {normalization!r}."
        )


def _with_leading_space(texts):
    """``" " + text`` for every non-empty text: the first word of a text then
    looks like every other word (SentencePiece's "dummy prefix")."""
    return tf.where(texts == "", texts, tf.strings.join([" ", texts]))


def _without_leading_space(texts):
    """Drop one leading space, the one ``_with_leading_space`` added."""
    starts_with_space = tf.strings.substr(texts, 0, 1) == " "
    rest = _drop_first_byte(texts)
    return tf.where(starts_with_space, rest, texts)


def _drop_first_byte(texts):
    """Each text without its first byte (an empty text stays empty)."""
    lengths = tf.strings.length(texts)
    return tf.strings.substr(texts, tf.minimum(lengths, 1), lengths)


class _SubwordTokenizer(Tokenizer):
    """Normalization and lowercasing shared by the subword tokenizers."""

    def __init__(self, lowercase=False, normalization=None, name=None):
        super().__init__(name=name)
        _check_normalization(normalization)
        self.lowercase = bool(lowercase)
        self.normalization = normalization

    @staticmethod
    def _prepare_texts(texts, lowercase, normalization):
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if normalization is not None:
            texts = tf_text.normalize_utf8(texts, normalization)
        if lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return texts

    def prepare(self, texts):
        """``texts`` normalized and lowercased as configured: what
        ``detokenize(tokenize(texts))`` gives back."""
        return self._prepare_texts(texts, self.lowercase, self.normalization)

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)


def _split_units(texts):
    """Units of prepared texts as a ``RaggedTensor`` of WordPiece words: a
    separated unit without its space, an attached one with ``"##"`` in front
    (WordPiece then starts it with a suffix piece)."""
    marked = tf.strings.regex_replace(_with_leading_space(texts), _UNIT, _SPLIT + r"\0")
    units = tf.strings.split(marked, _SPLIT)[:, 1:]
    # NUL characters of the text itself leave empty units behind.
    units = tf.ragged.boolean_mask(units, units != "")

    def to_words(units):
        separated = (tf.strings.substr(units, 0, 1) == " ") & (tf.strings.length(units) > 1)
        attached = tf.strings.join([SUFFIX_INDICATOR, units])
        return tf.where(separated, _drop_first_byte(units), attached)

    return tf.ragged.map_flat_values(to_words, units)


def _learner_words(texts):
    """The words WordPiece learns from: each separated unit with the attached
    units after it ("T-shirt," is one word), so that what follows without a
    space is learned as suffix pieces, as ``_split_units`` tokenizes it."""
    marked = tf.strings.regex_replace(_with_leading_space(texts), _SEPARATOR, _SPLIT + r"\1")
    words = tf.strings.split(marked, _SPLIT).flat_values
    return tf.boolean_mask(words, words != "")


def _token_text(token):
    """What a vocabulary token adds to detokenized text: a suffix piece its
    characters, any other token a space and its characters."""
    if token.startswith(SUFFIX_INDICATOR) and len(token) > len(SUFFIX_INDICATOR):
        return token[len(SUFFIX_INDICATOR):]
    return " " + token


def _usable_pieces(learned, alphabet):
    """The learned multi-character tokens that tokenization can produce, in
    the learner's order. The learner sees "T-shirt," as one word, so it also
    proposes pieces across unit boundaries ("##t,") that units never hold."""
    candidates = [t for t in learned if t not in RESERVED_TOKENS and t not in alphabet]
    if not candidates:
        return []
    suffix = [t.startswith(SUFFIX_INDICATOR) for t in candidates]
    bodies = [t[len(SUFFIX_INDICATOR):] if s else t for t, s in zip(candidates, suffix)]
    attached = tf.strings.regex_full_match(bodies, _ATTACHED_UNIT).numpy()
    separated = tf.strings.regex_full_match(bodies, _SEPARATED_UNIT).numpy()
    return [t for t, s, a, b in zip(candidates, suffix, attached, separated) if (a if s else b)]


def _learn_pieces(word_counts, budget, alphabet):
    """At most ``budget`` learned pieces (fewer only when the corpus has no
    more pieces seen ``_LEARNER_MIN_COUNT`` times) from ``(word, count)`` pairs.

    TF Text's WordPiece learner keeps the pieces seen at least ``threshold``
    times; its own ``learn`` bisects the threshold over ``[10, max count]``
    (about ten learner passes). Bisecting the logarithm of the threshold
    from ``_LEARNER_MIN_COUNT`` needs fewer passes; the size is checked
    after dropping unusable pieces, so the budget is filled with usable ones.
    """
    lib = wordpiece_tokenizer_learner_lib
    words = lib.get_input_words(word_counts, list(RESERVED_TOKENS), _MAX_PIECE_CHARACTERS)
    if budget <= 0 or not words:
        return []
    characters = lib.get_allowed_chars(words, max_unique_chars=len(alphabet))
    words = lib.filter_input_words(words, characters, max_input_tokens=-1)
    params = lib.Params(
        upper_thresh=None, lower_thresh=None, num_iterations=4, max_input_tokens=-1,
        max_token_length=_MAX_PIECE_CHARACTERS, max_unique_chars=len(alphabet),
        vocab_size=None, slack_ratio=None, include_joiner_token=True,
        joiner=SUFFIX_INDICATOR, reserved_tokens=list(RESERVED_TOKENS),
    )
    low, high = _LEARNER_MIN_COUNT, max(_LEARNER_MIN_COUNT, words[0][1])
    fitting, too_many = [], None  # the largest list within budget, the smallest over it
    while low <= high:
        threshold = min(high, max(low, round(math.sqrt(low * high))))
        pieces = _usable_pieces(lib.learn_with_thresh(words, threshold, params), alphabet)
        if len(pieces) > budget:
            too_many = pieces if too_many is None or len(pieces) < len(too_many) else too_many
            low = threshold + 1
        else:
            fitting = max(fitting, pieces, key=len)
            if len(pieces) >= (1 - _SLACK) * budget:
                return pieces
            high = threshold - 1
    # No threshold lands within the slack: the most frequent pieces of the
    # next larger list (the learner orders them by count) fill the budget.
    return too_many[:budget] if too_many is not None else fitting


class WordPieceTokenizer(_SubwordTokenizer):
    """WordPiece subwords (``tensorflow_text.FastWordpieceTokenizer``) whose
    detokenization restores the original spacing.

    Text is pre-split into units: runs of letters, marks and digits, and
    single other characters (punctuation, symbols, whitespace). A unit after
    one space is "separated" and is tokenized as a word; a unit that follows
    the previous one directly ("," in "Hello,", "shirt" in "T-shirt", a second
    space) is "attached" and is tokenized as a continuation, with suffix
    pieces only (``"##,"``). Detokenization is then the usual WordPiece rule
    with nothing lost: a suffix piece glues to what comes before, any other
    piece gets one space in front. "Hello, world!" -> ``Hello ##, world ##!``.

    Args:
        vocabulary: tokens, starting with ``RESERVED_TOKENS``; suffix pieces
            start with ``"##"``.
        lowercase: lowercase text before tokenizing.
        normalization: Unicode normalization form applied before lowercasing
            (``None``, ``"NFC"``, ``"NFKC"``, ``"NFD"``, ``"NFKD"``).
    """

    def __init__(self, vocabulary, lowercase=False, normalization=None, name=None):
        super().__init__(lowercase=lowercase, normalization=normalization, name=name)
        self.vocabulary = check_vocabulary(vocabulary, type(self))
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=list(self.vocabulary),
            suffix_indicator=SUFFIX_INDICATOR,
            max_bytes_per_word=MAX_BYTES_PER_WORD,
            token_out_type=tf.int32,
            unknown_token=UNK,
            no_pretokenization=True,
        )
        self._texts = tf.constant([_token_text(t) for t in self.vocabulary])

    def tokenize(self, texts):
        """Ids as a ``RaggedTensor`` ``(batch, None)`` of int32 (no START/END)."""
        words = _split_units(self.prepare(texts))
        return self._wordpiece.tokenize(words).merge_dims(1, 2)

    def detokenize(self, ids):
        """Text for a ``(batch, length)`` id tensor: stops at ``[END]``, drops
        reserved ids and ids outside the vocabulary."""
        pieces = tf.gather(self._texts, self._detokenizable(ids))
        return _without_leading_space(tf.strings.reduce_join(pieces, axis=-1))

    @classmethod
    def build(cls, texts, vocabulary_size=8000, lowercase=False, normalization=None):
        """Learn a vocabulary of about ``vocabulary_size`` tokens (reserved
        ones included; fewer when the corpus has too few frequent pieces).

        ``texts``: an iterable of strings or a ``tf.data.Dataset`` of strings,
        read in batches (a shared source/target vocabulary: pass both sides).
        The same texts give the same vocabulary, whatever their order. Every
        character of the corpus gets a token and a suffix token, so the
        vocabulary must have room for them.
        """
        _check_vocabulary_size(vocabulary_size)
        _check_normalization(normalization)
        counts = collections.Counter()
        for batch in text_batches(texts):
            words = _learner_words(cls._prepare_texts(batch, lowercase, normalization))
            counts.update(w.decode("utf-8") for w in words.numpy())
        characters = {c for word in counts for c in word}
        if all(c.isspace() for c in characters):
            raise empty_corpus_error()
        characters.add(" ")  # an attached space ("## "), so spacing always survives
        # Every character can start a unit (a space never does) and follow one.
        alphabet = sorted(characters - {" "}) + sorted(SUFFIX_INDICATOR + c for c in characters)
        needed = len(RESERVED_TOKENS) + len(alphabet)
        if needed > vocabulary_size:
            raise ValueError(
                f"vocabulary_size={vocabulary_size} is too small for this corpus: its "
                f"{len(characters)} distinct characters need {needed} tokens (with the "
                f"reserved ones and suffix forms); use vocabulary_size >= {needed} (--size "
                f"{needed}), or lowercase=True / normalization='NFKC' (--lowercase, "
                "--normalization NFKC) for fewer characters."
            )
        word_counts = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        pieces = _learn_pieces(word_counts, vocabulary_size - needed, alphabet)
        vocabulary = list(RESERVED_TOKENS) + alphabet + pieces
        logger.info(
            "WordPiece vocabulary: %d tokens (asked for %d) from %d distinct words, "
            "%d characters.", len(vocabulary), vocabulary_size, len(counts), len(characters)
        )
        return cls(vocabulary, lowercase=lowercase, normalization=normalization)

    def save(self, path):
        """Write the vocabulary, one token per line (UTF-8); backslash, newline
        and carriage return inside tokens are escaped as ``\\``, ``\n``, ``\r``."""
        write_vocabulary(path, self.vocabulary)

    @classmethod
    def load(cls, path, lowercase=False, normalization=None):
        """A tokenizer from a vocabulary written by ``save``; pass the
        ``lowercase`` and ``normalization`` it was built with."""
        vocabulary = read_vocabulary(path, cls)
        try:
            return cls(vocabulary, lowercase=lowercase, normalization=normalization)
        except ValueError as error:
            raise ValueError(f"'{path}': {error}") from None


class SentencePieceTokenizer(_SubwordTokenizer):
    """SentencePiece subwords (unigram or BPE) with the reserved ids 0-3.

    Tokenizes and detokenizes with the ops of
    ``tensorflow_text.SentencepieceTokenizer``.
    The model is trained with the pieces ``[PAD]``, ``[START]``, ``[END]`` as
    control symbols at ids 0, 1, 2 (never produced from text, so "[END]" in
    a text is not the END id) and ``[UNK]`` as the unknown piece at id 3; its
    own normalization is off (``identity``, whitespace kept as it is) and this
    class adds the leading space of the first word itself, so
    detokenization gives back the prepared text exactly.

    Args:
        model_proto: the serialized SentencePiece ``ModelProto`` (the bytes of
            a ``.model`` file).
        lowercase, normalization: as for ``WordPieceTokenizer``; applied by
            TensorFlow before the SentencePiece op.
    """

    def __init__(self, model_proto, lowercase=False, normalization=None, name=None):
        super().__init__(lowercase=lowercase, normalization=normalization, name=name)
        model_proto = bytes(model_proto)
        try:
            processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
        except RuntimeError as error:
            raise ValueError(
                "not a SentencePiece model (the bytes do not parse as a ModelProto); "
                "build one with SentencePieceTokenizer.build(texts)."
            ) from error
        self.vocabulary = tuple(
            processor.id_to_piece(i) for i in range(processor.get_piece_size()))
        if self.vocabulary[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
            raise ValueError(
                "SentencePiece model does not have the reserved tokens "
                f"{list(RESERVED_TOKENS)} at ids 0-3, got {list(self.vocabulary[:4])}; "
                "build one with SentencePieceTokenizer.build(texts)."
            )
        self.model_proto = model_proto

    def _model(self):
        """A handle to the parsed model, made where it is used.

        ``tensorflow_text.SentencepieceTokenizer`` makes it once, eagerly, and
        the resource belongs to the eager kernel cache: ``tf.random.set_seed``
        (and ``keras.utils.set_random_seed``) clear that cache and the
        tokenizer fails with "Resource ... _0_SentencepieceOp ... does not
        exist". Made at each use instead, eager calls reuse the cached kernel
        (the model is parsed again only after the cache is cleared) and traced
        functions, SavedModels included, own theirs.
        """
        return _SENTENCEPIECE_OPS.sentencepiece_op(model=self.model_proto)

    def tokenize(self, texts):
        """Ids as a ``RaggedTensor`` ``(batch, None)`` of int32 (no START/END)."""
        texts = _with_leading_space(self.prepare(texts))
        ids, row_splits = _SENTENCEPIECE_OPS.sentencepiece_tokenize_op(
            self._model(), texts, nbest_size=0, alpha=1.0, add_bos=False, add_eos=False,
            reverse=False, out_type=tf.int32)
        return tf.RaggedTensor.from_row_splits(ids, row_splits, validate=False)

    def detokenize(self, ids):
        """Text for a ``(batch, length)`` id tensor: stops at ``[END]``, drops
        reserved ids and ids outside the vocabulary."""
        ids = self._detokenizable(ids)
        texts = _SENTENCEPIECE_OPS.sentencepiece_detokenize_op(
            self._model(), ids.flat_values, ids.row_splits, add_bos=False, add_eos=False,
            reverse=False)
        return _without_leading_space(texts)

    @classmethod
    def build(cls, texts, vocabulary_size=8000, model_type="unigram", lowercase=False,
              normalization=None, character_coverage=1.0):
        """Train a model of about ``vocabulary_size`` pieces (reserved ones
        included; fewer when the corpus is too small for more).

        ``texts``: an iterable of strings or a ``tf.data.Dataset`` of strings,
        streamed to the trainer (a shared source/target vocabulary: pass both
        sides). ``model_type``: ``"unigram"`` or ``"bpe"``.
        ``character_coverage``: the share of the corpus's characters that get
        a piece of their own; the rarest others become ``[UNK]`` (1.0 for
        alphabetic languages, 0.9995 is usual for Chinese or Japanese).
        Training is deterministic for the same texts and options. Texts
        longer than ``MAX_SENTENCE_BYTES`` (UTF-8, once prepared) are left
        out, as SentencePiece does (logged); when no text is left, a
        ``ValueError``.
        """
        _check_vocabulary_size(vocabulary_size)
        validation.check_choice("model_type", model_type, MODEL_TYPES)
        if not 0 < character_coverage <= 1:
            raise ValueError(
                f"character_coverage must be in (0, 1], got {character_coverage!r}.")
        _check_normalization(normalization)
        counts = collections.Counter()  # texts with text; those too long to learn from

        def sentences():
            for batch in text_batches(texts):
                prepared = _with_leading_space(cls._prepare_texts(batch, lowercase, normalization))
                for encoded in prepared.numpy():
                    text = encoded.decode("utf-8")
                    if not text.strip():  # Unicode white space too, as WordPiece's check
                        continue
                    counts["texts"] += 1
                    if len(encoded) > MAX_SENTENCE_BYTES:
                        counts["too_long"] += 1
                        continue
                    yield text

        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=sentences(),
                model_writer=model,
                model_type=model_type,
                vocab_size=vocabulary_size,
                hard_vocab_limit=False,
                max_sentence_length=MAX_SENTENCE_BYTES,
                character_coverage=character_coverage,
                pad_id=0, pad_piece=PAD,
                bos_id=1, bos_piece=START,
                eos_id=2, eos_piece=END,
                unk_id=3, unk_piece=UNK,
                normalization_rule_name="identity",
                add_dummy_prefix=False,
                remove_extra_whitespaces=False,
                # The unigram result depends on the thread count: fix it.
                num_threads=16,
                minloglevel=2,
            )
        except RuntimeError as error:
            if not counts["texts"]:
                raise empty_corpus_error() from None
            if counts["too_long"] == counts["texts"]:
                raise ValueError(
                    f"cannot build a SentencePiece vocabulary: all {counts['texts']} texts are "
                    f"longer than {MAX_SENTENCE_BYTES} bytes, the most SentencePiece learns "
                    "from; split them into shorter texts (e.g. sentences), or build a "
                    "WordPiece vocabulary (--type wordpiece)."
                ) from None
            sizes = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", str(error))
            if sizes:
                needed = sizes.group(2)
                raise ValueError(
                    f"vocabulary_size={vocabulary_size} is too small for this corpus: its "
                    f"characters and the reserved tokens need {needed} pieces; use "
                    f"vocabulary_size >= {needed} (--size {needed}), or a lower "
                    "character_coverage."
                ) from None
            raise
        if counts["too_long"]:
            logger.warning(
                "SentencePiece learned from %d of %d texts: %d are longer than %d bytes; "
                "split long texts into sentences to learn from them too.",
                counts["texts"] - counts["too_long"], counts["texts"], counts["too_long"],
                MAX_SENTENCE_BYTES,
            )
        tokenizer = cls(model.getvalue(), lowercase=lowercase, normalization=normalization)
        logger.info(
            "SentencePiece %s model: %d pieces (asked for %d).",
            model_type, tokenizer.vocabulary_size, vocabulary_size,
        )
        return tokenizer

    def save(self, path):
        """Write the serialized model (a ``.model`` file SentencePiece reads)."""
        write_atomically(path, self.model_proto)

    @classmethod
    def load(cls, path, lowercase=False, normalization=None):
        """A tokenizer from a model written by ``save``; pass the ``lowercase``
        and ``normalization`` it was built with."""
        try:
            with open(path, "rb") as f:
                model_proto = f.read()
        except FileNotFoundError:
            raise missing_file_error(path, cls, what="SentencePiece model") from None
        try:
            return cls(model_proto, lowercase=lowercase, normalization=normalization)
        except ValueError as error:
            raise ValueError(f"'{path}': {error}") from None
