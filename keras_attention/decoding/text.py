"""Text in, text out: ``generate`` over Python strings with the model's tokenizers.

``TextGenerator`` tokenizes, decodes batch by batch in one ``tf.function``
and gives the outputs in input order. So that each batch holds similar
lengths, inputs are sorted by length within windows of ``SORT_WINDOW``
batches of input order: ``stream`` yields each window's outputs as soon as
all those before them are decoded (a caller writing them keeps what is done
if the job is killed), and beyond a window's worth of inputs batches are
nearly as even as a sort of all inputs (Multi30k test: the same batches;
6,000 shuffled Tatoeba sentences: 12% more padded positions). Batches are
padded to fixed shapes (source length rounded up to a multiple of
``length_bucket``, rows up to ``batch_size``, or to a power of two for fewer
inputs) so the function is traced once per bucket, not per batch.
"""

import dataclasses
import logging
import random

import numpy as np
import tensorflow as tf

from keras_attention import validation
from keras_attention.constants import PAD_ID
from keras_attention.data.buckets import padded_ids, round_up
from keras_attention.decoding.ensemble import check_members, ensemble_steps
from keras_attention.decoding.generate import (
    DecodingConfig,
    check_constraint_strategy,
    generate,
    output_length,
)
from keras_attention.models.saving import TrainedModel, check_vocabularies


class _BucketTracingFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning about
    ``TextGenerator`` batches: tracing once per (rows, length bucket) shape
    is the design, not the mistake the warning suspects."""

    def filter(self, record):
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message
                    and "TextGenerator._generate_batch" in message)


tf.get_logger().addFilter(_BucketTracingFilter())

# Inputs are sorted by length within windows of this many batches (see above).
SORT_WINDOW = 16


def check_source_lengths(lengths, limit, truncate, fix):
    """How many inputs of ``lengths`` (source tokens of each) are longer than
    the model's ``limit`` (and so cut to it); unless ``truncate``, a one-line
    ``ValueError`` naming the first, with ``fix``: how to truncate."""
    too_long = [number for number, length in enumerate(lengths, start=1) if length > limit]
    if too_long and not truncate:
        first = too_long[0]
        raise ValueError(
            f"line {first} has {lengths[first - 1]} tokens, more than the model's limit of "
            f"{limit} ({len(too_long)} input(s) too long); split it or truncate it ({fix})."
        )
    return len(too_long)


def source_ids(tokenizer, texts):
    """The ids of each text (a list of int lists); a one-line error naming
    the first input that is not a string or is empty."""
    texts = list(texts)
    for number, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise TypeError(f"line {number} is a {type(text).__name__}, not a string.")
        if not text.strip():
            raise ValueError(f"line {number} is empty; remove empty lines, one input per line.")
    ids = []
    for start in range(0, len(texts), 1024):
        ragged = tokenizer.tokenize(tf.constant(texts[start : start + 1024]))
        ids.extend(row.tolist() for row in ragged.numpy())
    return ids


def target_ids(tokenizer, texts, what):
    """The ids of each text (a list of int lists), ``[]`` for an empty one
    (no prefix, an empty output); ``what`` names them in errors."""
    for number, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise TypeError(f"{what} {number} is a {type(text).__name__}, not a string.")
    given = [k for k, text in enumerate(texts) if text.strip()]
    ids = [[] for _ in texts]
    if given:
        for k, row in zip(given, source_ids(tokenizer, [texts[k] for k in given])):
            ids[k] = row
    return ids


def _filled(values, rows):
    """``values`` made ``rows`` long: the missing rows repeat the last one
    (so a padded batch's extra rows end when it does)."""
    return [values[min(i, len(values) - 1)] for i in range(rows)]


def padded_phrases(rows):
    """int32 ``(len(rows), C, L)`` of ``rows`` (per input, a list of id
    lists), PAD-filled; ``C`` (at least 1) is a power of two and ``L`` a
    multiple of 4, so few shapes are traced."""
    count = 1 << max(0, max(len(phrases) for phrases in rows) - 1).bit_length()
    width = round_up(max([1] + [len(p) for phrases in rows for p in phrases]), 4)
    batch = np.zeros((len(rows), count, width), dtype=np.int32)
    for row, phrases in enumerate(rows):
        for k, phrase in enumerate(phrases):
            batch[row, k, : len(phrase)] = phrase
    return batch


def detokenize(tokenizer, rows):
    """Texts of id lists ``rows`` (each may end with END, then PAD)."""
    if not rows:
        return []
    batch = padded_ids(rows, max(1, max(len(row) for row in rows)))
    return [text.decode("utf-8") for text in tokenizer.detokenize(tf.constant(batch)).numpy()]


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """One output: its text and score (sum of token log-probabilities; beam
    search: with the length penalty applied)."""

    text: str
    score: float


class TextGenerator:
    """Decode Python strings with a model and its tokenizers.

    Args:
        trained_or_model: a ``models.TrainedModel`` (its tokenizers are used)
            or a ``Transformer`` with ``source_tokenizer`` and
            ``target_tokenizer``.
        source_tokenizer, target_tokenizer: only with a bare model.
        config: a ``DecodingConfig``; sampling without a seed draws one seed
            per ``TextGenerator``.
        truncate: cut inputs longer than the model's ``max_sequence_length``
            tokens to that limit instead of raising an error.
        length_bucket: batch source lengths are rounded up to a multiple of
            this (fewer traced shapes).
        jit_compile: compile each batch shape's decoding with XLA: seconds of
            compilation per shape, then decoding 1.3-5x faster on CPU
            (``benchmarks/decode_speed.py``); outputs can differ where two
            tokens nearly tie, as XLA rounds differently.
        ensemble: more ``TrainedModel``s decoding with this one as an
            ensemble (``ensemble.py``: their log-probabilities averaged at
            every step); they need its vocabularies and length limit.
            Alignments come from the first model.
    """

    def __init__(self, trained_or_model, source_tokenizer=None, target_tokenizer=None,
                 config=DecodingConfig(), truncate=False, length_bucket=16, jit_compile=False,
                 ensemble=()):
        if isinstance(trained_or_model, TrainedModel):
            if source_tokenizer is not None or target_tokenizer is not None:
                raise ValueError(
                    "a TrainedModel brings its own tokenizers; pass tokenizers only "
                    "with a bare Transformer."
                )
            model = trained_or_model.model
            source_tokenizer = trained_or_model.source_tokenizer
            target_tokenizer = trained_or_model.target_tokenizer
        else:
            model = trained_or_model
            if source_tokenizer is None or target_tokenizer is None:
                raise ValueError(
                    "a bare model needs source_tokenizer and target_tokenizer; pass "
                    "both or a models.TrainedModel."
                )
        if not isinstance(config, DecodingConfig):
            raise TypeError(f"config must be a DecodingConfig, got {type(config).__name__}.")
        validation.check_positive_int("length_bucket", length_bucket)
        check_vocabularies(model, source_tokenizer, target_tokenizer)
        output_length(model, config)  # a max_length above the model's limit fails here
        if config.strategy == "sample" and config.seed is None:
            # The seed is fixed when the batch function is traced; draw it here
            # so that every TextGenerator samples differently.
            config = config.replace(seed=random.randrange(2**31 - 1))
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.config = config
        self.truncate = bool(truncate)
        self.length_bucket = length_bucket
        self.max_source_length = model.config.max_sequence_length
        self.jit_compile = bool(jit_compile)
        self.ensemble = tuple(ensemble)
        self._steps = None
        for member in self.ensemble:
            if not isinstance(member, TrainedModel):
                raise TypeError("ensemble members must be models.TrainedModel (a model and "
                                f"its tokenizers), got {type(member).__name__}.")
        if self.ensemble:
            first = TrainedModel(model, source_tokenizer, target_tokenizer)
            names = ["the first model"] + [f"model {n}" for n in range(2, len(ensemble) + 2)]
            check_members(first, self.ensemble, names)
            self._steps = ensemble_steps([model] + [member.model for member in self.ensemble])
        self._generate_ids = tf.function(self._generate_batch, jit_compile=self.jit_compile)
        self._attention_scores = None  # traced on the first alignments() call

    def _generate_batch(self, source_ids, prefix_ids=None, constraint_ids=None):
        """Ids ``(batch, n_best, length)`` and scores ``(batch, n_best)``
        (each output starting with its prefix and containing its
        constraints, when given)."""
        generation = generate(self.model, source_ids, self.config, steps=self._steps,
                              prefix_ids=prefix_ids, constraint_ids=constraint_ids)
        return generation.ids, generation.scores

    def tokenize_prefixes(self, prefixes):
        """Target ids of each prefix (``""``: none), checked against the
        output length."""
        ids = target_ids(self.target_tokenizer, prefixes, "prefix")
        room = output_length(self.model, self.config) - 1
        for number, row in enumerate(ids, start=1):
            if len(row) > room:
                raise ValueError(
                    f"prefix {number} has {len(row)} tokens, but outputs hold at most {room} "
                    "before END; shorten it or raise --max-length."
                )
        return ids

    def tokenize_constraints(self, constraints):
        """Target ids of each input's phrases (a list of lists of strings;
        ``[]``: none), checked: no empty phrase, and all of an input's
        phrases fit in the output length together."""
        room = output_length(self.model, self.config) - 1
        ids = []
        for number, phrases in enumerate(constraints, start=1):
            if isinstance(phrases, str) or not all(isinstance(p, str) for p in phrases):
                raise TypeError(f"constraints {number} must be a list of strings, got "
                                f"{phrases!r}.")
            if any(not phrase.strip() for phrase in phrases):
                raise ValueError(f"constraint line {number} has an empty phrase; separate "
                                 "phrases with '|||' and leave none empty.")
            rows = target_ids(self.target_tokenizer, list(phrases), "constraint")
            if sum(len(row) for row in rows) > room:
                raise ValueError(
                    f"constraint line {number} has {sum(len(row) for row in rows)} tokens, but "
                    f"outputs hold at most {room} before END; drop some or raise --max-length."
                )
            ids.append(rows)
        return ids

    def tokenize(self, texts):
        """Source ids of each text as a list of int lists, checked against the
        model's length limit (cut to it with ``truncate=True``)."""
        ids = self._source_ids(texts)
        limit = self.max_source_length
        check_source_lengths([len(row) for row in ids], limit, self.truncate,
                             "--truncate, TextGenerator(truncate=True)")
        return [row[:limit] for row in ids]

    def source_lengths(self, texts):
        """Source tokens of each text, before any cut (``truncate`` cuts those
        above ``max_source_length``)."""
        return [len(row) for row in self._source_ids(texts)]

    def _source_ids(self, texts):
        return source_ids(self.source_tokenizer, texts)

    def _padded_batch(self, rows, batch_size):
        """``(batch_size, bucketed length)`` int32 ids; missing rows repeat
        the last one, so they end when it does."""
        longest = max(1, max(len(row) for row in rows))
        length = min(round_up(longest, self.length_bucket), self.max_source_length)
        return padded_ids(_filled(rows, batch_size), length)

    def stream(self, texts, batch_size=32, on_batch=None, prefixes=None, constraints=None):
        """The n-best hypotheses of each text, best first, in input order, as
        they are decoded: after each batch, a list of the outputs that follow
        on from those yielded before (none while an earlier input waits for
        its batch; see ``SORT_WINDOW``). Every input is tokenized and checked
        before the first batch is decoded.

        Args:
            texts: strings, one input each.
            batch_size: inputs decoded together.
            on_batch: called with the number of inputs done after each batch
                (e.g. a progress bar's ``update``).
            prefixes: optional strings, one per text (``""``: none): each
                output starts with its prefix (target-prefix decoding).
            constraints: optional lists of phrases, one per text (``[]``:
                none): each output contains every phrase of its list
                (beam search; ``constraints.py``).

        Yields:
            non-empty lists (of one list of ``Hypothesis`` per text).
        """
        validation.check_positive_int("batch_size", batch_size)
        ids = self.tokenize(texts)
        extras = {}
        for name, given, what, tokenize in (
                ("prefix", prefixes, "prefixes", self.tokenize_prefixes),
                ("constraints", constraints, "constraint lists", self.tokenize_constraints)):
            if given is None:
                continue
            if len(given) != len(texts):
                raise ValueError(f"{len(given)} {what} for {len(texts)} inputs; give one per "
                                 "input (an empty one for none).")
            extras[name] = tokenize(given)
        if "constraints" in extras:
            check_constraint_strategy(self.config)  # before the first batch
        # Fewer inputs than batch_size: pad to a power of two, not to a full batch.
        rows = min(batch_size, 1 << max(0, len(ids) - 1).bit_length())
        window = batch_size * SORT_WINDOW
        for window_start in range(0, len(ids), window):
            indices = range(window_start, min(window_start + window, len(ids)))
            order = sorted(indices, key=lambda i: len(ids[i]))
            done, next_index = {}, window_start
            for start in range(0, len(order), batch_size):
                chosen = order[start : start + batch_size]
                chosen_extras = {name: [rows_ids[i] for i in chosen]
                                 for name, rows_ids in extras.items()}
                done.update(zip(chosen, self._decode_batch([ids[i] for i in chosen], rows,
                                                           **chosen_extras)))
                if on_batch is not None:
                    on_batch(len(chosen))
                ready = []
                while next_index in done:
                    ready.append(done.pop(next_index))
                    next_index += 1
                if ready:
                    yield ready

    def _decode_batch(self, rows_ids, rows, prefix=None, constraints=None):
        """The n-best ``Hypothesis`` lists of the source ids in ``rows_ids``
        (each output starting with its ``prefix`` row and containing its
        ``constraints`` phrases, if given), decoded as one batch padded to
        ``rows`` rows."""
        extras = {}
        if prefix is not None:
            width = round_up(max(1, max(len(row) for row in prefix)), 8)
            extras["prefix_ids"] = tf.constant(padded_ids(_filled(prefix, rows), width))
        if constraints is not None:
            extras["constraint_ids"] = tf.constant(padded_phrases(_filled(constraints, rows)))
        output_ids, scores = self._generate_ids(tf.constant(self._padded_batch(rows_ids, rows)),
                                                **extras)
        output_ids = np.asarray(output_ids)[: len(rows_ids)]
        scores = np.asarray(scores)[: len(rows_ids)]
        n_best = output_ids.shape[1]
        flat = output_ids.reshape(len(rows_ids) * n_best, -1)
        texts = self.target_tokenizer.detokenize(tf.constant(flat)).numpy()
        return [[Hypothesis(texts[row * n_best + k].decode("utf-8"), float(scores[row, k]))
                 for k in range(n_best)] for row in range(len(rows_ids))]

    def generate(self, texts, batch_size=32, on_batch=None, prefixes=None, constraints=None):
        """The n-best hypotheses of each text, best first, in input order
        (all of ``stream``'s outputs in one list).

        Returns:
            a list (one per text) of lists of ``Hypothesis``.
        """
        return [hypotheses
                for ready in self.stream(texts, batch_size, on_batch, prefixes, constraints)
                for hypotheses in ready]

    def alignments(self, texts, outputs, layer=-1, batch_size=32):
        """``[(i, j), ...]`` per text: each token ``j`` of its output (as the
        target tokenizer cuts ``outputs[k]``) aligned to source token ``i``
        (``alignment.alignments``: decoder ``layer``'s cross-attention,
        averaged over heads). An empty output has none."""
        from keras_attention.decoding.alignment import alignments, check_layer

        check_layer(self.model, layer)
        if len(outputs) != len(texts):
            raise ValueError(f"{len(outputs)} outputs for {len(texts)} texts.")
        sources = self.tokenize(texts)
        targets = target_ids(self.target_tokenizer, outputs, "output")
        if self._attention_scores is None:
            self._attention_scores = tf.function(self.model.attention_scores,
                                                 reduce_retracing=True)
        pairs = []
        for start in range(0, len(texts), batch_size):
            chunk = slice(start, start + batch_size)
            pairs += alignments(self.model, sources[chunk], targets[chunk], layer,
                                attention_fn=self._attention_scores)
        return pairs

    def best(self, texts, batch_size=32, prefixes=None, constraints=None):
        """The best output text of each input, in input order (each starting
        with its prefix and containing its constraints, if given)."""
        return [hypotheses[0].text for hypotheses in
                self.generate(texts, batch_size, prefixes=prefixes, constraints=constraints)]
