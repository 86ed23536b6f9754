"""Sequence generation for encoder-decoder models: one entry point over the
strategies (greedy, beam search, sampling) and the decoding controls.

``generate(model, source_ids, config)`` encodes once, builds the key/value
cache and runs the chosen strategy over ``model.decode_step``; every
strategy gets the same logit processors (``processors.py``) for the length
limits, ``no_repeat_ngram_size`` and ``repetition_penalty``.
``TextGenerator`` (``text.py``) does the same for Python strings with the
model's tokenizers.
"""

import dataclasses
import functools
import random

from keras import ops

from keras_attention import validation
from keras_attention.constants import END_ID, PAD_ID, START_ID, STRATEGIES
from keras_attention.decoding.beam import STOPPINGS, beam_search
from keras_attention.decoding.cache import cached_steps, tile_rows, window_lengths
from keras_attention.decoding.constraints import constrained_beam_search
from keras_attention.decoding.greedy import argmax_pick, token_search
from keras_attention.decoding.processors import decoding_processors, sampling_warpers
from keras_attention.decoding.sampling import sample_search


def _check(condition, message):
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
    """How to decode.

    Args:
        strategy: ``greedy``, ``beam`` or ``sample``.
        beam_size: beams per sentence (``beam``).
        length_penalty: GNMT alpha >= 0, score = log P / ((5 + length) / 6) ** alpha
            (``beam``; length counts the generated tokens, END included).
        beam_stopping: when beam search stops (``beam``): ``"early"`` once no
            alive beam, scored at its current length, beats the
            ``n_best``-th finished hypothesis (Hugging Face's default rule;
            can rarely miss a better one), ``"exact"`` once none could at any
            length (never misses one; about twice the steps).
        n_best: hypotheses returned per sentence (``beam``: <= beam_size;
            ``sample``: independent samples; ``greedy``: 1).
        temperature, top_k, top_p: sampling controls (``top_k=0`` and
            ``top_p=1.0`` switch them off).
        max_length: most generated tokens (END included); ``None`` = the
            model's ``max_sequence_length - 1``.
        max_length_ratio, max_length_offset: per-sentence limit
            ``ceil(ratio * source_tokens) + offset`` (``None`` = off); the
            smaller of both limits applies. A sentence that reaches its limit
            ends with a forced END.
        min_length: END is forbidden until this many tokens (END not
            counted) have been generated.
        no_repeat_ngram_size: forbid repeating any n-gram of this size (0 = off).
        repetition_penalty: CTRL-style penalty (> 1 discourages) on the
            logits of tokens already generated; 1.0 = off.
        seed: sampling seed (``None`` = a new random seed per call).
    """

    strategy: str = "greedy"
    beam_size: int = 4
    length_penalty: float = 0.6
    beam_stopping: str = "early"
    n_best: int = 1
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_length: int | None = None
    max_length_ratio: float | None = None
    max_length_offset: int = 10
    min_length: int = 0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        validation.check_choice("strategy", self.strategy, STRATEGIES)
        validation.check_positive_int("beam_size", self.beam_size, what="an integer >= 1",
                                      fix="use beam_size=1 for a single beam")
        validation.check_non_negative_number("length_penalty", self.length_penalty,
                                             what=">= 0 (GNMT alpha, 0 = off)")
        _check(self.beam_stopping in STOPPINGS,
               f"beam_stopping must be one of {STOPPINGS}, got {self.beam_stopping!r}.")
        validation.check_positive_int("n_best", self.n_best, what="an integer >= 1")
        _check(self.strategy != "beam" or self.n_best <= self.beam_size,
               f"n_best={self.n_best} exceeds beam_size={self.beam_size}; "
               "raise beam_size or lower n_best.")
        _check(self.strategy != "greedy" or self.n_best == 1,
               f"greedy search returns one hypothesis, got n_best={self.n_best}; "
               "use strategy 'beam' or 'sample' for n-best lists.")
        validation.check_positive_number("temperature", self.temperature, what="> 0",
                                         fix="use strategy 'greedy' for the most likely token")
        validation.check_non_negative_int("top_k", self.top_k, what="an integer >= 0 (0 = off)")
        _check(validation.is_number(self.top_p) and 0 < self.top_p <= 1,
               f"top_p must be in (0, 1] (1 = off), got {self.top_p!r}.")
        validation.check_positive_int("max_length", self.max_length, optional=True,
                                      what="an integer >= 1 or None")
        validation.check_positive_number("max_length_ratio", self.max_length_ratio,
                                         optional=True, what="> 0 or None")
        validation.check_non_negative_int("max_length_offset", self.max_length_offset)
        validation.check_non_negative_int("min_length", self.min_length)
        _check(self.max_length is None or self.min_length < self.max_length,
               f"min_length={self.min_length} leaves no room for END within "
               f"max_length={self.max_length}; make min_length < max_length.")
        validation.check_non_negative_int("no_repeat_ngram_size", self.no_repeat_ngram_size,
                                          what="an integer >= 0 (0 = off)")
        validation.check_positive_number("repetition_penalty", self.repetition_penalty,
                                         what="> 0 (1 = off)")
        validation.check_int("seed", self.seed, optional=True, what="an integer or None")

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def changes(self):
        """The fields that differ from the defaults, as a dict (what a recipe
        chose; a trained model folder stores them as its decoding)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}


@dataclasses.dataclass(frozen=True)
class Generation:
    """Output of ``generate``.

    ``ids``: ``(batch, n_best, length)`` int32 generated tokens (START not
    included), END included, PAD after; ``scores``: ``(batch, n_best)``
    float32, best first (sum of token log-probabilities; beam search: with
    the length penalty applied).
    """

    ids: object
    scores: object


def output_length(model, config):
    """Generated tokens allowed by ``config`` and the model (START excluded)."""
    return max_output_length(model.config.max_sequence_length, config)


def max_output_length(max_sequence_length, config):
    """Generated tokens allowed by ``config`` for a model of
    ``max_sequence_length`` positions (START excluded); a ``ValueError``
    when ``config.max_length`` asks for more."""
    limit = max_sequence_length - 1
    if config.max_length is not None and config.max_length > limit:
        raise ValueError(
            f"max_length={config.max_length} exceeds what the model can decode "
            f"({limit} = max_sequence_length - 1); lower --max-length."
        )
    return config.max_length or limit


def sentence_limits(source_ids, config, length):
    """Per-sentence generated-token limits ``(batch,)``: ``length``, or
    ``min(length, ceil(ratio * source_tokens) + offset)`` with a ratio."""
    batch = ops.shape(source_ids)[0]
    if config.max_length_ratio is None:
        return ops.full((batch,), length, dtype="int32")
    source_tokens = ops.count_nonzero(ops.not_equal(source_ids, PAD_ID), axis=1)
    # The small epsilon keeps float32 rounding (1.1 * 10 = 11.0000002) from
    # adding a token.
    scaled = ops.ceil(config.max_length_ratio * ops.cast(source_tokens, "float32") - 1e-4)
    limits = ops.cast(scaled, "int32") + config.max_length_offset
    return ops.clip(limits, 1, length)


def _tiled(rows, count):
    """The per-sentence ``(limits, prefix or None)`` repeated for ``count``
    beams or samples."""
    return tuple(None if part is None else tile_rows(part, count) for part in rows)


def _greedy(steps, start, state, total, rows, config, pick):
    tokens, scores = token_search(
        steps.next, pick, start, state, total, END_ID, PAD_ID,
        decoding_processors(config, rows[0], END_ID, prefix=rows[1]), steps.resize,
    )
    return ops.expand_dims(tokens, 1), ops.expand_dims(scores, 1)


def _beam(steps, start, state, total, rows, config, constraints=None):
    limits, prefix = _tiled(rows, config.beam_size)
    options = dict(
        beam_size=config.beam_size,
        length_penalty=config.length_penalty,
        n_best=config.n_best,
        processors=decoding_processors(config, limits, END_ID, prefix=prefix),
        reorder_fn=steps.reorder,
        resize_fn=steps.resize,
        stopping=config.beam_stopping,
    )
    if constraints is None:
        return beam_search(steps.next, start, state, total, END_ID, PAD_ID, **options)
    return constrained_beam_search(steps.next, start, state, total, END_ID, constraints,
                                   limits, PAD_ID, **options)


def _sample(steps, start, state, total, rows, config):
    limits, prefix = _tiled(rows, config.n_best)
    seed = random.randrange(2**31 - 1) if config.seed is None else config.seed
    return sample_search(
        steps.next, start, state, total, END_ID, PAD_ID,
        num_samples=config.n_best,
        seed=seed,
        processors=decoding_processors(config, limits, END_ID, prefix=prefix),
        warpers=sampling_warpers(config),
        resize_fn=steps.resize,
    )


def generate(model, source_ids, config=DecodingConfig(), steps=None, greedy_pick=argmax_pick,
             prefix_ids=None, constraint_ids=None):
    """Decode ``source_ids`` ``(batch, source_length)`` (PAD = 0) with ``model``.

    Args:
        model: a ``Transformer`` (``encode``, ``init_cache``, ``decode_step``,
            ``decode``).
        source_ids: int ids, PAD = 0; padding does not change a sentence's output.
        config: a ``DecodingConfig``.
        steps: how to run the decoder, ``cached_steps(model)`` (default) or
            ``uncached_steps(model)`` (``cache.py``).
        greedy_pick: greedy search's choice, ``greedy_pick(scores (rows,
            vocabulary), tokens, index) -> (rows,)`` int32 ids; the default is
            ``keras.ops.argmax`` (the TFLite export passes an ``ARG_MAX`` that
            TFLite's builtin ops can run).
        prefix_ids: optional int ``(batch, prefix_length)`` target ids each
            output starts with (PAD = 0 after a row's prefix; an all-PAD row
            decodes freely), e.g. the words a translator typed; the search
            continues from there, and the scores include the prefix's
            log-probabilities. A prefix is kept whole, also past a row's
            length limit (END follows it then).
        constraint_ids: optional int ``(batch, constraints, phrase_length)``
            phrases of target ids (PAD = 0 after each; all-PAD: none) that
            each output must contain, e.g. glossary terms (beam search only:
            dynamic beam allocation, ``constraints.py``). An output lacks one
            only if no hypothesis met them all within the row's length limit.

    Returns:
        a ``Generation``.
    """
    steps = cached_steps(model) if steps is None else steps
    source_ids = ops.cast(source_ids, "int32")
    length = output_length(model, config)
    limits = sentence_limits(source_ids, config, length)
    # Room for the first window only: the search grows the state as needed.
    state = steps.start(source_ids, window_lengths(length + 1)[0])
    start = ops.full((ops.shape(source_ids)[0],), START_ID, dtype="int32")
    runners = {"greedy": functools.partial(_greedy, pick=greedy_pick), "beam": _beam,
               "sample": _sample}
    if prefix_ids is not None:
        prefix_ids = ops.cast(prefix_ids, "int32")
        _check_prefix(prefix_ids, source_ids, length)
    if constraint_ids is not None:
        constraint_ids = ops.cast(constraint_ids, "int32")
        _check_constraints(constraint_ids, source_ids, config)
        runners["beam"] = functools.partial(_beam, constraints=constraint_ids)
    rows = (limits, prefix_ids)
    tokens, scores = runners[config.strategy](steps, start, state, length + 1, rows, config)
    return Generation(*end_empty_sources(source_ids, tokens[:, :, 1:], scores))


def _check_prefix(prefix_ids, source_ids, length):
    """One-line errors for a prefix that cannot be one (rank, batch, length)."""
    shape = tuple(prefix_ids.shape)
    if len(shape) != 2:
        raise ValueError(f"prefix_ids must be (batch, prefix_length), got shape {shape}.")
    batch = source_ids.shape[0]
    if None not in (shape[0], batch) and shape[0] != batch:
        raise ValueError(f"prefix_ids has {shape[0]} rows for {batch} sources; give one "
                         "prefix per source (an all-PAD row for none).")
    if shape[1] is not None and shape[1] > length - 1:
        raise ValueError(f"a prefix of {shape[1]} tokens leaves no room in {length} output "
                         "tokens; shorten it or raise max_length.")


def check_constraint_strategy(config):
    """A one-line ``ValueError`` unless ``config`` searches with beam search,
    the only strategy constraints run with."""
    if config.strategy != "beam":
        raise ValueError(f"constraints need beam search, not {config.strategy}; use "
                         "strategy='beam' (--strategy beam).")


def _check_constraints(constraint_ids, source_ids, config):
    """One-line errors for constraints that cannot be searched for."""
    check_constraint_strategy(config)
    shape = tuple(constraint_ids.shape)
    if len(shape) != 3 or None in shape[1:]:
        raise ValueError("constraint_ids must be (batch, constraints, phrase_length) with "
                         f"static constraints and phrase_length, got shape {shape}.")
    batch = source_ids.shape[0]
    if None not in (shape[0], batch) and shape[0] != batch:
        raise ValueError(f"constraint_ids has {shape[0]} rows for {batch} sources; give "
                         "the constraints of every source (all-PAD for none).")


def end_empty_sources(source_ids, ids, scores):
    """``ids`` ``(batch, n, length)`` and ``scores`` ``(batch, n)`` with every
    all-padding source set to ``[END]`` then PAD, score 0: such a source has
    no defined encoding (its output would depend on how much padding the
    batch adds)."""
    empty = ops.all(ops.equal(source_ids, PAD_ID), axis=1)
    length = ops.shape(ids)[2]
    nothing = ops.concatenate(
        [ops.full((1,), END_ID, dtype="int32"), ops.full((length - 1,), PAD_ID, dtype="int32")],
        axis=0,
    )
    ids = ops.where(empty[:, None, None], nothing, ids)
    scores = ops.where(empty[:, None], ops.zeros_like(scores), scores)
    return ids, scores
