"""``tf.data`` steps, written as functions for ``dataset.apply``."""

import dataclasses
import logging
import numbers
import os
import random
import zlib

import tensorflow as tf

from keras_attention import validation
from keras_attention.constants import END_ID, PAD_ID, START_ID, TOO_LONG_POLICIES
from keras_attention.data.buckets import batch_count, bucket_lengths, rows_per_batch


def teacher_forcing():
    """Turn ragged ``(source_ids, target_ids)`` batches into padded model inputs
    ``{"encoder_tokens", "decoder_tokens": [START] + target}`` and labels
    ``target + [END]``, padded with PAD = 0."""

    def make_inputs(source, target):
        batch = target.nrows()
        start = tf.fill([batch, 1], START_ID)
        end = tf.fill([batch, 1], END_ID)
        decoder = tf.concat([start, target], axis=1).to_tensor(PAD_ID)
        labels = tf.concat([target, end], axis=1).to_tensor(PAD_ID)
        inputs = {"encoder_tokens": source.to_tensor(PAD_ID), "decoder_tokens": decoder}
        return inputs, labels

    def transform(dataset):
        return dataset.map(make_inputs, num_parallel_calls=tf.data.AUTOTUNE)

    return transform


# ---------------------------------------------------------------------------
# Training pipeline, as ``make_training_dataset`` composes it:
#
#   text pairs -> tokenize_batches -> filter_by_length | truncate -> bucket_rows
#   -> cache -> shuffle -> batch_by_tokens | batch_by_size -> teacher_forcing
#   -> prefetch
#
# Order and formats are chosen for speed. In tf.data, every call of a dataset
# function (map, filter, bucket key) that computes anything on a single element
# costs microseconds, and so does every ragged element; ops on a whole batch
# cost next to nothing per row, and a key function that only returns a
# component of its element is not run at all. So texts are tokenized
# ``TOKENIZE_BATCH_SIZE`` at a time (about 10x faster than pair by pair), length
# limits are masks on those batches, each row's length bucket is computed there
# too, and rows are cached as dense tensors. From the second epoch on no
# per-row function runs: cache -> shuffle -> group by the stored bucket ->
# padded batch.
#
# Two element formats travel between the steps:
# - id batches: ``(source_ids, target_ids)`` ``RaggedTensor``s ``(batch, None)``
#   of int32 without START/END (what ``tokenize_batches`` makes and
#   ``teacher_forcing`` takes);
# - bucketed rows: ``(source_ids, target_ids, bucket_length)``, one pair of
#   dense 1-D int32 tensors and the int64 length of its bucket.
#
# A pair's padded length is ``max(len(source), len(target) + 1)``, since
# ``decoder_tokens`` ([START] + target) and labels (target + [END]) are one
# longer than the target; bucketing and ``batch_tokens`` use it.
# ---------------------------------------------------------------------------

TOKENIZE_BATCH_SIZE = 1024

_logger = logging.getLogger(__name__)


def tokenize_batches(source_tokenizer, target_tokenizer, batch_size=TOKENIZE_BATCH_SIZE):
    """Map ``(source_text, target_text)`` scalar string pairs to id batches of
    ``batch_size`` pairs (the last one smaller), in order, nothing cut.

    Any tokenizer whose ``tokenize(texts)`` returns a ``(batch, None)``
    ``RaggedTensor`` of integer ids works (``VocabularyTokenizer``, keras-hub
    tokenizers without a ``sequence_length``); ids become int32.
    """
    validation.check_positive_int("batch_size", batch_size)

    def tokenize(source, target):
        return (
            _ragged_ids(source_tokenizer, source, "source_tokenizer"),
            _ragged_ids(target_tokenizer, target, "target_tokenizer"),
        )

    def transform(dataset):
        _check_text_pairs(dataset)
        return dataset.batch(batch_size).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)

    return transform


def filter_by_length(max_source_tokens, max_target_tokens):
    """Drop the pairs of id batches with more than ``max_source_tokens`` source
    or ``max_target_tokens`` target ids (START/END not counted); batches
    shrink, none is removed.

    The step itself does not count: ``count_filtered`` on the same id batches
    says how many pairs it drops (``make_training_dataset`` logs that number).
    """
    validation.check_positive_int("max_source_tokens", max_source_tokens)
    validation.check_positive_int("max_target_tokens", max_target_tokens)

    def keep(source, target):
        within = (source.row_lengths() <= max_source_tokens) & (
            target.row_lengths() <= max_target_tokens
        )
        rows = tf.where(within)[:, 0]
        return tf.gather(source, rows), tf.gather(target, rows)

    def transform(dataset):
        return dataset.map(keep, num_parallel_calls=tf.data.AUTOTUNE)

    return transform


def truncate(max_source_tokens, max_target_tokens):
    """Cut the pairs of id batches to their first ``max_source_tokens`` source and
    ``max_target_tokens`` target ids; no pair is dropped. ``teacher_forcing``
    still ends every label row with [END], also where the target was cut.
    ``count_filtered`` counts the pairs this step shortens."""
    validation.check_positive_int("max_source_tokens", max_source_tokens)
    validation.check_positive_int("max_target_tokens", max_target_tokens)

    def cut(source, target):
        return source[:, :max_source_tokens], target[:, :max_target_tokens]

    def transform(dataset):
        return dataset.map(cut, num_parallel_calls=tf.data.AUTOTUNE)

    return transform


@dataclasses.dataclass(frozen=True)
class LengthCounts:
    """How many of ``total`` pairs exceed the length limits.

    ``over_limit`` pairs have too many source or target ids (or both):
    ``filter_by_length`` drops exactly these, ``truncate`` shortens them.
    """

    total: int
    over_limit: int
    source_over_limit: int
    target_over_limit: int

    @property
    def within_limit(self):
        return self.total - self.over_limit


def count_filtered(dataset, max_source_tokens, max_target_tokens):
    """Count the pairs of a finite dataset of id batches (``tokenize_batches``)
    over ``max_source_tokens`` / ``max_target_tokens``: a ``LengthCounts``.

    One vectorized pass; on a cached dataset it also fills the cache.
    """
    validation.check_positive_int("max_source_tokens", max_source_tokens)
    validation.check_positive_int("max_target_tokens", max_target_tokens)
    _check_finite(dataset)

    def count(source, target):
        return _over_limit_counts(source, target, max_source_tokens, max_target_tokens)

    return LengthCounts(*_sum(dataset.map(count, num_parallel_calls=tf.data.AUTOTUNE), 4))


def _over_limit_counts(source, target, max_source_tokens, max_target_tokens):
    source_over = source.row_lengths() > max_source_tokens
    target_over = target.row_lengths() > max_target_tokens
    return tf.stack(
        [
            source.nrows(),
            tf.math.count_nonzero(source_over | target_over),
            tf.math.count_nonzero(source_over),
            tf.math.count_nonzero(target_over),
        ]
    )


def _sum(dataset, size):
    """Sum a finite dataset of int64 vectors of ``size``: a list of ints."""
    totals = dataset.reduce(tf.zeros([size], tf.int64), lambda total, counts: total + counts)
    return [int(n) for n in totals.numpy()]


def automatic_bucket_boundaries(max_length, growth=1.1):
    """Bucket boundaries ``2, 3, ..., 10, 11, 12, ..., 20, 22, 24, ...`` up to
    ``max_length``: each bucket is about ``growth`` times as long as the one
    before and at least one token wider, so a row is padded by at most about
    ``1 - 1/growth`` of the longest padded length of its bucket."""
    validation.check_positive_int("max_length", max_length)
    if not growth > 1:
        raise ValueError(f"growth must be > 1, got {growth!r}.")
    boundaries = []
    boundary = 2
    while boundary <= max_length:
        boundaries.append(boundary)
        boundary = max(boundary + 1, int(boundary * growth))
    return tuple(boundaries)


def bucket_rows(bucket_boundaries, max_length):
    """Split id batches into bucketed rows ``(source_ids, target_ids,
    bucket_length)`` for ``batch_by_tokens`` / ``batch_by_size``.

    A bucket holds padded lengths in ``[previous boundary, boundary)``, the
    last one ``[bucket_boundaries[-1], max_length]``; ``()`` makes a single
    bucket (no length grouping). ``bucket_length`` is the longest padded length
    its bucket can hold: ``min(boundary - 1, max_length)``. A pair longer than
    ``max_length`` stops iteration with an error: filter or truncate first.
    Cache after this step (dense rows read back far faster than ragged ones).
    """
    validation.check_positive_int("max_length", max_length)
    boundaries = _check_boundaries(bucket_boundaries)
    limits = tf.constant(boundaries, tf.int64, shape=[len(boundaries)])
    longest = tf.constant(bucket_lengths(boundaries, max_length), tf.int64)

    def tag(source, target):
        lengths = _padded_lengths(source.row_lengths(), target.row_lengths())
        check = tf.debugging.assert_less_equal(
            lengths,
            tf.constant(max_length, tf.int64),
            message=f"a pair is longer than max_length={max_length} (max(source, target + 1) "
            "ids); apply filter_by_length or truncate before bucket_rows",
        )
        with tf.control_dependencies([check]):
            return source, target, tf.gather(longest, _bucket_index(lengths, limits))

    def dense(source, target, bucket_length):
        return tf.reshape(source, [-1]), tf.reshape(target, [-1]), bucket_length

    def transform(dataset):
        return (
            dataset.map(tag, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
            .map(dense, num_parallel_calls=tf.data.AUTOTUNE)
        )

    return transform


def batch_by_tokens(batch_tokens):
    """Group bucketed rows into id batches of ``batch_tokens // bucket_length``
    pairs of one bucket, so that once ``teacher_forcing`` pads a batch,
    ``rows * max(encoder length, decoder length) <= batch_tokens`` (decoder
    length = target + 1): neither input tensor nor the labels exceed
    ``batch_tokens`` positions. Every row lands in exactly one batch; the last,
    partial batch of each bucket comes at the end of the epoch. A batch over
    the budget (``bucket_rows`` with a ``max_length`` over ``batch_tokens``)
    stops iteration with an error. PAD (0) must never be a real id: trailing
    PAD ids are taken for padding."""
    validation.check_positive_int("batch_tokens", batch_tokens)
    return _group_buckets(lambda bucket_length: batch_tokens // bucket_length, batch_tokens)


def batch_by_size(batch_size):
    """Group bucketed rows into id batches of ``batch_size`` pairs of one bucket
    (fewer in the last batch of each bucket, at the end of the epoch).

    Like ``batch_by_tokens``, it pads the rows of a batch with PAD and turns
    them back into ragged id batches, so PAD (0) must never be a real id.
    """
    validation.check_positive_int("batch_size", batch_size)
    return _group_buckets(lambda bucket_length: tf.constant(batch_size, tf.int64), None)


def _group_buckets(pairs_per_batch, batch_tokens):
    def window_size(bucket_length):
        return tf.maximum(pairs_per_batch(bucket_length), 1)

    def bucket(source, target, bucket_length):
        return bucket_length  # returns a component: tf.data runs no function per row

    def batch(bucket_length, rows):
        return rows.padded_batch(window_size(bucket_length))  # pads with 0 = PAD_ID

    def to_id_batch(source, target, bucket_length):
        checks = []
        if batch_tokens is not None:
            positions = tf.shape(source)[0] * tf.maximum(
                tf.shape(source)[1], tf.shape(target)[1] + 1
            )
            checks.append(
                tf.debugging.assert_less_equal(
                    positions,
                    batch_tokens,
                    message=f"a batch has more than batch_tokens={batch_tokens} padded "
                    "positions; give bucket_rows a max_length <= batch_tokens",
                )
            )
        with tf.control_dependencies(checks):
            return (
                tf.RaggedTensor.from_tensor(source, padding=PAD_ID),
                tf.RaggedTensor.from_tensor(target, padding=PAD_ID),
            )

    def transform(dataset):
        return dataset.group_by_window(bucket, batch, window_size_func=window_size).map(
            to_id_batch, num_parallel_calls=tf.data.AUTOTUNE
        )

    return transform


def _padded_lengths(source_lengths, target_lengths):
    return tf.maximum(source_lengths, target_lengths + 1)


def _bucket_index(lengths, limits):
    return tf.reduce_sum(tf.cast(lengths[:, None] >= limits, tf.int64), axis=1)


@dataclasses.dataclass(frozen=True)
class BatchingConfig:
    """How ``make_training_dataset`` turns text pairs into batches.

    Set exactly one of ``batch_tokens`` (each batch: rows * max(encoder length,
    decoder length) <= batch_tokens, decoder length = target tokens + 1) or
    ``batch_size`` (pairs per batch).

    ``max_source_tokens`` / ``max_target_tokens`` limit token counts without
    START/END; ``too_long`` says what happens to a pair over a limit:
    ``"drop"`` (``filter_by_length``) or ``"truncate"`` (``truncate``). Either
    way the number of such pairs is logged.

    ``bucket_boundaries``: ``None`` picks ``automatic_bucket_boundaries`` for
    the longest allowed pair; a tuple sets them (see ``bucket_rows``);
    ``()`` turns length bucketing off.

    ``shuffle_buffer`` pairs are shuffled with ``seed`` before bucketing, in a
    new order each epoch (0 or 1: no shuffling). The same ``seed`` gives the
    same epochs as long as TensorFlow's global seed is the same, or unset
    (with ``make_training_dataset(..., epochs=...)``: whatever the global
    seed); ``seed=None`` is not reproducible.
    ``cache_file``: ``""`` caches the token ids of the kept pairs (and their
    buckets) in memory; a path caches them in files there, which later runs
    reuse as they are: delete them when the data, tokenizers, limits or bucket
    boundaries change (a stale cache with another number of batches fails the
    cardinality check at the end of the first epoch).
    """

    batch_tokens: int | None = None
    batch_size: int | None = None
    max_source_tokens: int = 128
    max_target_tokens: int = 128
    too_long: str = "drop"
    bucket_boundaries: tuple[int, ...] | None = None
    shuffle_buffer: int = 10_000
    seed: int | None = 0
    cache_file: str = ""

    def __post_init__(self):
        if (self.batch_tokens is None) == (self.batch_size is None):
            raise ValueError(
                "set exactly one of batch_tokens (padded tokens per batch) or batch_size "
                f"(pairs per batch); got batch_tokens={self.batch_tokens!r}, "
                f"batch_size={self.batch_size!r}."
            )
        for name in ("batch_tokens", "batch_size"):
            if getattr(self, name) is not None:
                validation.check_positive_int(name, getattr(self, name))
        validation.check_positive_int("max_source_tokens", self.max_source_tokens)
        validation.check_positive_int("max_target_tokens", self.max_target_tokens)
        validation.check_choice("too_long", self.too_long, TOO_LONG_POLICIES)
        if self.bucket_boundaries is not None:
            object.__setattr__(self, "bucket_boundaries", _check_boundaries(self.bucket_boundaries))
        if self.batch_tokens is not None and self.batch_tokens < self.max_length:
            raise ValueError(
                f"batch_tokens={self.batch_tokens} cannot hold one pair of the longest "
                f"allowed length {self.max_length} (max(max_source_tokens, "
                "max_target_tokens + 1)); raise batch_tokens or lower the limits."
            )
        validation.check_non_negative_int("shuffle_buffer", self.shuffle_buffer,
                                          what="an integer >= 0 (0: no shuffling)")
        validation.check_int("seed", self.seed, optional=True, what="an integer or None")
        if not isinstance(self.cache_file, str):
            raise ValueError(
                f"cache_file must be a string ('' caches in memory), got {self.cache_file!r}."
            )
        folder = os.path.dirname(os.path.abspath(self.cache_file))
        if self.cache_file and not os.path.isdir(folder):
            raise FileNotFoundError(
                f"cache_file: folder '{folder}' not found; create it, or use '' to cache in "
                "memory."
            )

    @property
    def max_length(self):
        """The longest padded length, ``max(source, target + 1)``, a kept pair can have."""
        return max(self.max_source_tokens, self.max_target_tokens + 1)

    @property
    def effective_bucket_boundaries(self):
        """``bucket_boundaries``, or the automatic choice when it is ``None``."""
        if self.bucket_boundaries is None:
            return automatic_bucket_boundaries(self.max_length)
        return self.bucket_boundaries


def make_training_dataset(pairs_dataset, source_tokenizer, target_tokenizer, config,
                          epochs=None, initial_epoch=0):
    """Ready-to-fit batches ``({"encoder_tokens", "decoder_tokens"}, labels)``
    (int32, PAD = 0) from a finite dataset of ``(source_text, target_text)``
    scalar strings, batched as ``config`` (a ``BatchingConfig``) says.

    Steps: ``tokenize_batches`` -> ``filter_by_length`` or ``truncate`` ->
    ``bucket_rows`` -> cache -> shuffle -> ``batch_by_tokens`` or
    ``batch_by_size`` -> ``teacher_forcing`` -> prefetch.

    Building the dataset tokenizes the pairs once (vectorized, no per-pair
    work) to count the pairs over the length limits, which it logs (a warning
    when there are any, as ``count_filtered`` counts them), and the batches
    per epoch. The first epoch tokenizes again and fills the cache; later
    epochs read the cache.

    ``epochs=None``: the dataset is one epoch (``dataset.cardinality()`` is
    its number of batches), shuffled anew each time it is iterated
    (``model.fit(dataset, epochs=...)``); which order an iteration gets
    depends on how often the dataset was iterated before in this process.
    ``epochs`` an integer: the dataset holds epochs ``initial_epoch`` to
    ``epochs - 1`` one after another (cardinality: that many epochs of
    batches), epoch ``e`` shuffled with ``epoch_seed(config.seed, e)``, so its
    batches depend on the seed and ``e`` alone: a run resumed at epoch ``e``
    in a new process sees the same batches as one that never stopped. Give
    ``model.fit`` the same ``epochs`` and ``initial_epoch`` and
    ``steps_per_epoch=cardinality // (epochs - initial_epoch)``.
    """
    if not isinstance(config, BatchingConfig):
        raise TypeError(
            f"config must be a BatchingConfig, got {type(config).__name__}; "
            "build one with BatchingConfig(batch_tokens=...) or BatchingConfig(batch_size=...)."
        )
    if epochs is not None:
        validation.check_positive_int("epochs", epochs)
        validation.check_int("initial_epoch", initial_epoch, 0, epochs,
                             what=f"an integer in [0, epochs={epochs})")
    _check_finite(pairs_dataset)
    id_batches = pairs_dataset.apply(tokenize_batches(source_tokenizer, target_tokenizer))
    counts, bucket_counts = _statistics(id_batches, config)
    if counts.total == 0:
        raise ValueError("pairs_dataset is empty; there is nothing to train on.")
    _log_counts(counts, config)
    if config.too_long == "drop":
        if counts.within_limit == 0:
            raise ValueError(
                f"all {counts.total} pairs are longer than max_source_tokens="
                f"{config.max_source_tokens} or max_target_tokens={config.max_target_tokens}; "
                "raise the limits or use too_long='truncate'."
            )
        limit = filter_by_length(config.max_source_tokens, config.max_target_tokens)
    else:
        limit = truncate(config.max_source_tokens, config.max_target_tokens)
    boundaries = config.effective_bucket_boundaries
    if config.batch_tokens is not None:
        batch = batch_by_tokens(config.batch_tokens)
        sizes = [rows_per_batch(config.batch_tokens, n)
                 for n in bucket_lengths(boundaries, config.max_length)]
    else:
        batch = batch_by_size(config.batch_size)
        sizes = [config.batch_size] * (len(boundaries) + 1)
    # Each bucket gives full batches and one partial one, whatever the order;
    # knowing the count lets model.fit show progress from the first epoch.
    steps = batch_count(bucket_counts, sizes)
    rows = id_batches.apply(limit).apply(bucket_rows(boundaries, config.max_length))
    rows = rows.cache(config.cache_file)

    def batches(rows):
        return rows.apply(batch).apply(teacher_forcing())

    if epochs is None:
        if config.shuffle_buffer > 1:
            rows = rows.shuffle(config.shuffle_buffer, seed=config.seed,
                                reshuffle_each_iteration=True)
        dataset = batches(rows)
    else:
        base = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
        seeds = [epoch_seed(base, epoch) for epoch in range(initial_epoch, epochs)]
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(seeds, tf.int64)).flat_map(
            lambda seed: batches(_shuffle(rows, config.shuffle_buffer, seed))
        )
        steps *= len(seeds)
    return dataset.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(
        tf.data.AUTOTUNE
    )


def epoch_seed(seed, epoch):
    """A seed in ``[0, 2**31 - 1)`` for ``epoch`` of a run seeded with
    ``seed`` (integers): a function of the two alone, different for each
    epoch."""
    return zlib.crc32(f"{seed}/{epoch}".encode("ascii")) % (2**31 - 1)


def _shuffle(rows, buffer_size, seed):
    """``rows`` shuffled in the one order a scalar int64 ``seed`` tensor
    gives (inside a ``tf.data`` function), whatever TensorFlow's global
    seed; unchanged for ``buffer_size`` 0 or 1."""
    if buffer_size <= 1:
        return rows
    # Dataset.shuffle pairs its seed with the graph-level seed and compares
    # the pair with (0, 0) in Python, which a symbolic seed cannot answer when
    # the global seed is 0 (keras.utils.set_random_seed(0)). Without a
    # graph-level seed it takes a fixed one, so the order depends on ``seed``
    # alone.
    graph = tf.compat.v1.get_default_graph()
    graph_seed, graph.seed = graph.seed, None
    try:
        return rows.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=False)
    finally:
        graph.seed = graph_seed


def _statistics(id_batches, config):
    """One pass over the id batches: their ``LengthCounts`` and, after the
    length limits, how many pairs fall in each bucket."""
    max_source, max_target = config.max_source_tokens, config.max_target_tokens
    boundaries = config.effective_bucket_boundaries
    limits = tf.constant(boundaries, tf.int64, shape=[len(boundaries)])
    buckets = len(boundaries) + 1

    def statistics(source, target):
        counts = _over_limit_counts(source, target, max_source, max_target)
        source_lengths, target_lengths = source.row_lengths(), target.row_lengths()
        if config.too_long == "drop":
            keep = (source_lengths <= max_source) & (target_lengths <= max_target)
            source_lengths = tf.boolean_mask(source_lengths, keep)
            target_lengths = tf.boolean_mask(target_lengths, keep)
        else:
            source_lengths = tf.minimum(source_lengths, max_source)
            target_lengths = tf.minimum(target_lengths, max_target)
        bucket = _bucket_index(_padded_lengths(source_lengths, target_lengths), limits)
        histogram = tf.math.bincount(bucket, minlength=buckets, maxlength=buckets, dtype=tf.int64)
        return tf.concat([counts, histogram], axis=0)

    totals = _sum(id_batches.map(statistics, num_parallel_calls=tf.data.AUTOTUNE), 4 + buckets)
    return LengthCounts(*totals[:4]), totals[4:]


def padding_efficiency(dataset):
    """Real (non-PAD) tokens / all positions over the model inputs
    (``encoder_tokens`` and ``decoder_tokens``) of a finite dataset of
    ``(inputs, labels)`` batches: 1.0 means no padding at all."""
    _check_finite(dataset)

    def count(inputs, labels):
        tensors = list(inputs.values()) if isinstance(inputs, dict) else [inputs]
        real = tf.add_n([tf.math.count_nonzero(t != PAD_ID) for t in tensors])
        total = tf.add_n([tf.size(t, out_type=tf.int64) for t in tensors])
        return tf.stack([real, total])

    real, total = (
        dataset.map(count, num_parallel_calls=tf.data.AUTOTUNE)
        .reduce(tf.zeros([2], tf.int64), lambda sum_, counts: sum_ + counts)
        .numpy()
    )
    if total == 0:
        raise ValueError("the dataset has no token positions; padding efficiency is undefined.")
    return float(real) / float(total)


def _log_counts(counts, config):
    if counts.over_limit == 0:
        _logger.info("all %d pairs are within the length limits.", counts.total)
        return
    action = "dropped" if config.too_long == "drop" else "truncated"
    _logger.warning(
        "%s %d of %d pairs (%.2f%%) over the length limits: %d with more than "
        "max_source_tokens=%d, %d with more than max_target_tokens=%d.",
        action,
        counts.over_limit,
        counts.total,
        100.0 * counts.over_limit / counts.total,
        counts.source_over_limit,
        config.max_source_tokens,
        counts.target_over_limit,
        config.max_target_tokens,
    )


def _ragged_ids(tokenizer, texts, name):
    ids = tokenizer.tokenize(texts)
    if not isinstance(ids, tf.RaggedTensor) or ids.shape.rank != 2:
        raise TypeError(
            f"{name}.tokenize(texts) must return a (batch, None) RaggedTensor of ids, "
            f"got {ids!r}; use a tokenizer without a fixed sequence_length."
        )
    if not ids.dtype.is_integer:
        raise TypeError(f"{name}.tokenize(texts) must return integer ids, got {ids.dtype.name}.")
    ids = tf.cast(ids, tf.int32)
    check = tf.debugging.assert_none_equal(
        ids.flat_values,
        PAD_ID,
        message=f"{name} gave the id PAD = {PAD_ID} to a token; the models mask that id, "
        "so the vocabulary must start with the reserved tokens (RESERVED_TOKENS)",
    )
    with tf.control_dependencies([check]):
        return tf.identity(ids)


def _check_text_pairs(dataset):
    spec = dataset.element_spec
    if not (
        isinstance(spec, tuple)
        and len(spec) == 2
        and all(
            isinstance(s, tf.TensorSpec) and s.dtype == tf.string and s.shape.rank == 0
            for s in spec
        )
    ):
        raise ValueError(
            "expected a dataset of (source_text, target_text) scalar strings, got elements "
            f"{spec}; build one with tf.data.Dataset.from_tensor_slices((sources, targets))."
        )


def _check_finite(dataset):
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "the dataset is infinite (repeat() without a count?); pass one epoch of data "
            "and let model.fit(epochs=...) repeat it."
        )


def _check_boundaries(boundaries):
    given = boundaries
    try:
        boundaries = tuple(
            int(b) if isinstance(b, numbers.Integral) and not isinstance(b, bool) else b
            for b in boundaries
        )
    except TypeError:
        boundaries = None
    if (
        boundaries is None
        or not all(validation.is_int(b) and b > 1 for b in boundaries)
        or any(a >= b for a, b in zip(boundaries, boundaries[1:]))
    ):
        raise ValueError(
            "bucket boundaries must be increasing integers > 1 (a bucket holds lengths in "
            "[previous boundary, boundary)), or () for a single bucket; "
            f"got {given!r}."
        )
    return boundaries
