"""``make_training_dataset`` and its steps: length limits, bucketing, token batches."""

import collections
import dataclasses
import logging
import random

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data import END_ID, PAD_ID, START_ID, CharacterTokenizer, WordTokenizer
from keras_attention.data.batching import (
    BatchingConfig,
    LengthCounts,
    automatic_bucket_boundaries,
    batch_by_size,
    batch_by_tokens,
    bucket_rows,
    count_filtered,
    filter_by_length,
    make_training_dataset,
    padding_efficiency,
    teacher_forcing,
    tokenize_batches,
    truncate,
)

# Fixed vocabularies, so ids in the golden arrays are known.
SOURCE = WordTokenizer(["[PAD]", "[START]", "[END]", "[UNK]", "a", "b", "c", "d"])
TARGET = CharacterTokenizer(["[PAD]", "[START]", "[END]", "[UNK]", "x", "y", "z"])
#                             0        1          2        3       4    5    6

# Padded lengths max(source, target + 1): 2, 4, 1, 3, 2.
TINY = [("a", "x"), ("a b c d", "xyz"), ("b", ""), ("c d", "yy"), ("d", "z")]

# Two-letter words, so WordTokenizer gives one id per word.
WORDS = [chr(ord("a") + i // 26) + chr(ord("a") + i % 26) for i in range(50)]
WORD_TOKENIZER = WordTokenizer(["[PAD]", "[START]", "[END]", "[UNK]", *WORDS])


def _corpus(count, seed=0, shortest=3, longest=60):
    """Translation-like pairs: source lengths uniform in [shortest, longest],
    target lengths within 20% of the source length."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        n = rng.randint(shortest, longest)
        m = min(longest, max(shortest, round(n * rng.uniform(0.8, 1.2))))
        pairs.append((" ".join(rng.choices(WORDS, k=n)), " ".join(rng.choices(WORDS, k=m))))
    return pairs


CORPUS = _corpus(600)


def _dataset(pairs):
    sources, targets = zip(*pairs)
    return tf.data.Dataset.from_tensor_slices((list(sources), list(targets)))


def _make(pairs, source=SOURCE, target=TARGET, **config):
    return make_training_dataset(_dataset(pairs), source, target, BatchingConfig(**config))


def _batches(dataset):
    return [
        ({k: v.numpy() for k, v in inputs.items()}, labels.numpy()) for inputs, labels in dataset
    ]


def _pairs_in(batches):
    """(source ids, target ids) of every row, rebuilt from encoder tokens and labels."""
    pairs = []
    for inputs, labels in batches:
        for source, label in zip(inputs["encoder_tokens"], labels):
            end = list(label).index(END_ID)
            pairs.append((tuple(source[source != PAD_ID]), tuple(label[:end])))
    return pairs


def _token_ids(pairs, source=WORD_TOKENIZER, target=WORD_TOKENIZER):
    sources, targets = zip(*pairs)
    return list(
        zip(
            (tuple(ids) for ids in source.tokenize(list(sources)).to_list()),
            (tuple(ids) for ids in target.tokenize(list(targets)).to_list()),
        )
    )


# Golden batches ------------------------------------------------------------


def test_golden_batches_by_size(caplog):
    # Bucket 0 holds padded lengths < 3, bucket 1 the rest; no shuffling, so
    # bucket 0 fills first, then bucket 1, and ("d", "z") is flushed at the end.
    with caplog.at_level(logging.WARNING, logger="keras_attention.data.batching"):
        dataset = _make(
            TINY, batch_size=2, bucket_boundaries=(3,), shuffle_buffer=0, max_source_tokens=8
        )
    assert not caplog.records  # nothing over the limits, nothing to warn about
    assert dataset.cardinality() == 3
    batches = _batches(dataset)
    assert len(batches) == 3
    (inputs, labels), (inputs2, labels2), (inputs3, labels3) = batches
    np.testing.assert_array_equal(inputs["encoder_tokens"], [[4], [5]])
    np.testing.assert_array_equal(inputs["decoder_tokens"], [[1, 4], [1, 0]])
    np.testing.assert_array_equal(labels, [[4, 2], [2, 0]])
    np.testing.assert_array_equal(inputs2["encoder_tokens"], [[4, 5, 6, 7], [6, 7, 0, 0]])
    np.testing.assert_array_equal(inputs2["decoder_tokens"], [[1, 4, 5, 6], [1, 5, 5, 0]])
    np.testing.assert_array_equal(labels2, [[4, 5, 6, 2], [5, 5, 2, 0]])
    np.testing.assert_array_equal(inputs3["encoder_tokens"], [[7]])
    np.testing.assert_array_equal(inputs3["decoder_tokens"], [[1, 6]])
    np.testing.assert_array_equal(labels3, [[6, 2]])
    for inputs, labels in batches:
        assert set(inputs) == {"encoder_tokens", "decoder_tokens"}
        for array in (*inputs.values(), labels):
            assert array.dtype == np.int32


def test_golden_batches_by_tokens():
    # max_length = max(4, 3 + 1) = 4. Bucket 0 (lengths < 3, at most 2 long)
    # takes 8 // 2 = 4 rows, bucket 1 (lengths 3..4) takes 8 // 4 = 2 rows.
    dataset = _make(
        TINY,
        batch_tokens=8,
        bucket_boundaries=(3,),
        shuffle_buffer=0,
        max_source_tokens=4,
        max_target_tokens=3,
    )
    (inputs, labels), (inputs2, labels2) = _batches(dataset)
    np.testing.assert_array_equal(inputs["encoder_tokens"], [[4, 5, 6, 7], [6, 7, 0, 0]])
    np.testing.assert_array_equal(labels, [[4, 5, 6, 2], [5, 5, 2, 0]])
    np.testing.assert_array_equal(inputs2["encoder_tokens"], [[4], [5], [7]])
    np.testing.assert_array_equal(inputs2["decoder_tokens"], [[1, 4], [1, 0], [1, 6]])
    np.testing.assert_array_equal(labels2, [[4, 2], [2, 0], [6, 2]])


def test_steps_compose_without_make_training_dataset():
    dataset = (
        _dataset(TINY)
        .apply(tokenize_batches(SOURCE, TARGET, batch_size=2))
        .apply(filter_by_length(max_source_tokens=3, max_target_tokens=2))
        .apply(bucket_rows(bucket_boundaries=(), max_length=3))
        .apply(batch_by_size(batch_size=8))
        .apply(teacher_forcing())
    )
    [(inputs, labels)] = _batches(dataset)
    # ("a b c d", "xyz") is over both limits; the others keep their order.
    np.testing.assert_array_equal(inputs["encoder_tokens"], [[4, 0], [5, 0], [6, 7], [7, 0]])
    np.testing.assert_array_equal(labels, [[4, 2, 0], [2, 0, 0], [5, 5, 2], [6, 2, 0]])


def test_bucket_rows_golden():
    rows = (
        _dataset(TINY)
        .apply(tokenize_batches(SOURCE, TARGET, batch_size=3))
        .apply(bucket_rows(bucket_boundaries=(2, 4), max_length=6))
    )
    # Padded lengths 2, 4, 1, 3, 2 -> buckets [2, 4), [4, 6], [0, 2), [2, 4), [2, 4).
    assert [(s.tolist(), t.tolist(), int(b)) for s, t, b in rows.as_numpy_iterator()] == [
        ([4], [4], 3),
        ([4, 5, 6, 7], [4, 5, 6], 6),
        ([5], [], 1),
        ([6, 7], [5, 5], 3),
        ([7], [6], 3),
    ]


# Length limits and their counts ---------------------------------------------


def test_count_filtered_golden():
    batches = _dataset(TINY).apply(tokenize_batches(SOURCE, TARGET, batch_size=2))
    counts = count_filtered(batches, max_source_tokens=2, max_target_tokens=2)
    # "a b c d" is over on both sides; "yy" is within max_target_tokens=2.
    assert counts == LengthCounts(total=5, over_limit=1, source_over_limit=1, target_over_limit=1)
    assert counts.within_limit == 4
    assert count_filtered(batches, 1, 1) == LengthCounts(5, 2, 2, 2)


def test_drop_logs_the_count_and_drops_exactly_those_pairs(caplog):
    with caplog.at_level(logging.WARNING, logger="keras_attention.data.batching"):
        dataset = _make(TINY, batch_size=8, max_source_tokens=1, max_target_tokens=2)
    [record] = caplog.records
    assert "dropped 2 of 5 pairs" in record.getMessage()
    assert "2 with more than max_source_tokens=1" in record.getMessage()
    assert "1 with more than max_target_tokens=2" in record.getMessage()
    kept = _pairs_in(_batches(dataset))
    assert sorted(kept) == sorted([((4,), (4,)), ((5,), ()), ((7,), (6,))])


def test_truncate_logs_the_count_and_keeps_every_pair(caplog):
    with caplog.at_level(logging.WARNING, logger="keras_attention.data.batching"):
        dataset = _make(
            TINY, batch_size=8, max_source_tokens=1, max_target_tokens=2, too_long="truncate"
        )
    [record] = caplog.records
    assert record.getMessage().startswith("truncated 2 of 5 pairs")
    pairs = _pairs_in(_batches(dataset))
    assert sorted(pairs) == sorted(
        [((4,), (4,)), ((4,), (4, 5)), ((5,), ()), ((6,), (5, 5)), ((7,), (6,))]
    )


LIMIT = 40


@pytest.fixture(scope="module", params=["drop", "truncate"])
def corpus_epochs(request):
    """Two epochs of ``CORPUS`` in batches of at most 500 tokens, pairs over
    ``LIMIT`` tokens dropped or truncated: (too_long, cardinality, epochs)."""
    config = BatchingConfig(
        batch_tokens=500,
        max_source_tokens=LIMIT,
        max_target_tokens=LIMIT,
        too_long=request.param,
        shuffle_buffer=100,
    )
    dataset = make_training_dataset(_dataset(CORPUS), WORD_TOKENIZER, WORD_TOKENIZER, config)
    return request.param, int(dataset.cardinality()), [_batches(dataset) for _ in range(2)]


def test_every_pair_appears_exactly_once_per_epoch(corpus_epochs):
    too_long, _, epochs = corpus_epochs
    expected = _token_ids(CORPUS)
    if too_long == "drop":
        expected = [(s, t) for s, t in expected if len(s) <= LIMIT and len(t) <= LIMIT]
        assert 0 < len(expected) < len(CORPUS)
    else:
        expected = [(s[:LIMIT], t[:LIMIT]) for s, t in expected]
    for batches in epochs:  # every epoch, not only the one that fills the cache
        assert collections.Counter(_pairs_in(batches)) == collections.Counter(expected)
    assert _pairs_in(epochs[0]) != _pairs_in(epochs[1])  # each epoch in a new order


def test_bucketing_rejects_rows_over_max_length():
    dataset = (
        _dataset(TINY)
        .apply(tokenize_batches(SOURCE, TARGET))
        .apply(bucket_rows(bucket_boundaries=(2,), max_length=3))
        .apply(batch_by_tokens(batch_tokens=8))
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="longer than max_length=3"):
        list(dataset)


def test_batch_by_tokens_rejects_batches_over_the_budget():
    dataset = (
        _dataset(TINY)
        .apply(tokenize_batches(SOURCE, TARGET))
        .apply(bucket_rows(bucket_boundaries=(), max_length=4))
        .apply(batch_by_tokens(batch_tokens=3))
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than batch_tokens=3"):
        list(dataset)


# Token budget, shift, masks -------------------------------------------------


def _assert_within_batch_tokens(batches, batch_tokens):
    for inputs, labels in batches:
        encoder, decoder = inputs["encoder_tokens"], inputs["decoder_tokens"]
        assert decoder.shape == labels.shape
        assert len(encoder) == len(decoder) >= 1
        assert len(encoder) * max(encoder.shape[1], decoder.shape[1]) <= batch_tokens


def test_every_batch_respects_batch_tokens(corpus_epochs):
    _, cardinality, epochs = corpus_epochs
    for batches in epochs:
        _assert_within_batch_tokens(batches, 500)
        # Counted in advance, so model.fit knows the steps per epoch.
        assert cardinality == len(batches)


@pytest.mark.parametrize("batch_tokens, boundaries", [(61, None), (400, ())])
def test_batch_tokens_bound_holds_at_the_edges(batch_tokens, boundaries):
    config = BatchingConfig(
        batch_tokens=batch_tokens,
        max_source_tokens=60,
        max_target_tokens=59,  # max_length = max(60, 59 + 1) = 60: 61 holds one pair
        too_long="truncate",
        bucket_boundaries=boundaries,
    )
    dataset = make_training_dataset(_dataset(CORPUS), WORD_TOKENIZER, WORD_TOKENIZER, config)
    batches = _batches(dataset)
    _assert_within_batch_tokens(batches, batch_tokens)
    assert sum(len(labels) for _, labels in batches) == len(CORPUS)
    assert dataset.cardinality() == len(batches)


def test_batch_size_batches_hold_batch_size_pairs_except_one_per_bucket():
    boundaries = (10, 20, 40)
    dataset = make_training_dataset(
        _dataset(CORPUS),
        WORD_TOKENIZER,
        WORD_TOKENIZER,
        BatchingConfig(
            batch_size=16, max_source_tokens=60, max_target_tokens=60, bucket_boundaries=boundaries
        ),
    )
    sizes = [len(labels) for _, labels in _batches(dataset)]
    assert dataset.cardinality() == len(sizes)
    assert sum(sizes) == len(CORPUS)
    assert max(sizes) == 16
    assert sum(size < 16 for size in sizes) <= len(boundaries) + 1


def test_decoder_tokens_are_labels_shifted_right_and_pad_masks_match(corpus_epochs):
    _, _, epochs = corpus_epochs
    for inputs, labels in epochs[0]:
        encoder, decoder = inputs["encoder_tokens"], inputs["decoder_tokens"]
        np.testing.assert_array_equal(decoder[:, 0], START_ID)
        np.testing.assert_array_equal(
            decoder[:, 1:], np.where(labels[:, :-1] == END_ID, PAD_ID, labels[:, :-1])
        )
        np.testing.assert_array_equal((labels == END_ID).sum(axis=1), 1)
        # PAD = 0 is exactly the padding: a prefix of real ids, then only PAD,
        # in the same places for decoder tokens and labels.
        np.testing.assert_array_equal(decoder == PAD_ID, labels == PAD_ID)
        for array in (encoder, labels):
            real = array != PAD_ID
            np.testing.assert_array_equal(real, np.cumprod(real, axis=1).astype(bool))
        # Batches are padded to their own longest row only.
        assert (encoder[:, -1] != PAD_ID).any()
        assert (labels[:, -1] != PAD_ID).any()


# Shuffling and caching ------------------------------------------------------


def _epochs(seed, count=2):
    """Pairs in the order they come, for ``count`` epochs."""
    dataset = make_training_dataset(
        _dataset(CORPUS[:60]),
        WORD_TOKENIZER,
        WORD_TOKENIZER,
        BatchingConfig(
            batch_size=8, max_source_tokens=60, max_target_tokens=60, shuffle_buffer=60, seed=seed
        ),
    )
    return [_pairs_in(_batches(dataset)) for _ in range(count)]


def test_seeded_shuffling_is_reproducible_and_reshuffles_each_epoch():
    first = _epochs(seed=3)
    assert _epochs(seed=3) == first
    assert first[0] != first[1]
    assert collections.Counter(first[0]) == collections.Counter(first[1])
    assert _epochs(seed=4) != first


def test_epochs_of_one_dataset_depend_on_the_seed_and_the_epoch_alone():
    def epochs(initial_epoch, global_seed):
        tf.random.set_seed(global_seed)  # another process may have another one
        dataset = make_training_dataset(
            _dataset(CORPUS[:60]), WORD_TOKENIZER, WORD_TOKENIZER,
            BatchingConfig(batch_size=8, max_source_tokens=60, max_target_tokens=60,
                           shuffle_buffer=60, seed=3),
            epochs=3, initial_epoch=initial_epoch)
        steps = int(dataset.cardinality()) // (3 - initial_epoch)
        batches = _batches(dataset)
        assert len(batches) == steps * (3 - initial_epoch)
        return [_pairs_in(batches[i : i + steps]) for i in range(0, len(batches), steps)]

    whole = epochs(0, global_seed=0)
    assert len(whole) == 3 and whole[0] != whole[1] != whole[2]
    assert collections.Counter(whole[0]) == collections.Counter(whole[2])
    # What a run resumed at epoch 2 (index 1) in a new process iterates.
    assert epochs(1, global_seed=7) == whole[1:]


def test_epochs_must_follow_initial_epoch():
    with pytest.raises(ValueError, match=r"^initial_epoch must be an integer in \[0, "
                       r"epochs=2\), got 2\.$"):
        make_training_dataset(_dataset(TINY), SOURCE, TARGET, BatchingConfig(batch_size=2),
                              epochs=2, initial_epoch=2)


class _CountingTokenizer(tf.Module):
    """Counts the texts it tokenizes."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer
        self.texts = tf.Variable(0, dtype=tf.int64)

    def tokenize(self, texts):
        self.texts.assign_add(tf.size(texts, out_type=tf.int64))
        return self.tokenizer.tokenize(texts)


def test_later_epochs_read_the_cache_instead_of_tokenizing():
    source = _CountingTokenizer(SOURCE)
    dataset = _make(TINY, source=source, batch_size=2)
    assert source.texts.numpy() == len(TINY)  # counted while building
    for _ in range(3):
        assert len(_pairs_in(_batches(dataset))) == len(TINY)
    assert source.texts.numpy() == 2 * len(TINY)  # and tokenized once more, in epoch 1
    source = _CountingTokenizer(SOURCE)
    dataset = make_training_dataset(_dataset(TINY), source, TARGET, BatchingConfig(batch_size=2),
                                    epochs=3)  # three epochs in one pass
    assert len(_pairs_in(_batches(dataset))) == 3 * len(TINY)
    assert source.texts.numpy() == 2 * len(TINY)


# Padding efficiency -----------------------------------------------------------


def test_padding_efficiency_golden():
    inputs = {
        "encoder_tokens": tf.constant([[4, 0], [5, 6]]),
        "decoder_tokens": tf.constant([[1, 0, 0], [1, 4, 5]]),
    }
    dataset = tf.data.Dataset.from_tensors((inputs, tf.constant([[2, 0, 0], [4, 5, 2]])))
    assert padding_efficiency(dataset.repeat(3)) == pytest.approx(7 / 10)


def test_bucketing_raises_padding_efficiency():
    pairs = _corpus(5000, seed=1)
    dataset = _dataset(pairs)

    def efficiency(**config):
        config = BatchingConfig(max_source_tokens=60, max_target_tokens=60, **config)
        return padding_efficiency(
            make_training_dataset(dataset, WORD_TOKENIZER, WORD_TOKENIZER, config)
        )

    bucketed = efficiency(batch_tokens=2048)
    unbucketed = efficiency(batch_tokens=2048, bucket_boundaries=())
    assert bucketed >= 0.85
    assert bucketed - unbucketed >= 0.25


def test_automatic_bucket_boundaries():
    assert automatic_bucket_boundaries(30) == (*range(2, 21), 22, 24, 26, 28, 30)
    boundaries = automatic_bucket_boundaries(129)
    assert boundaries[-1] <= 129
    widths = np.diff(boundaries)
    assert (widths >= 1).all()
    assert (widths <= 0.11 * np.array(boundaries[1:]) + 1).all()


# Errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(), "exactly one of batch_tokens"),
        (dict(batch_tokens=4096, batch_size=32), "exactly one of batch_tokens"),
        (dict(batch_tokens=0), "batch_tokens must be a positive integer"),
        (dict(batch_size=2.5), "batch_size must be a positive integer"),
        (dict(batch_size=8, max_source_tokens=0), "max_source_tokens must be a positive"),
        (dict(batch_size=8, max_target_tokens=True), "max_target_tokens must be a positive"),
        (dict(batch_size=8, too_long="cut"), "too_long must be one of"),
        (dict(batch_size=8, bucket_boundaries=(4, 4)), "increasing integers > 1"),
        (dict(batch_size=8, bucket_boundaries=(1, 4)), "increasing integers > 1"),
        (dict(batch_size=8, bucket_boundaries=8), "increasing integers > 1"),
        (dict(batch_size=8, shuffle_buffer=-1), "shuffle_buffer must be an integer >= 0"),
        (dict(batch_size=8, seed="7"), "seed must be an integer or None"),
        (dict(batch_size=8, cache_file=None), "cache_file must be a string"),
        (
            dict(batch_tokens=100, max_source_tokens=64, max_target_tokens=100),
            r"batch_tokens=100 cannot hold one pair of the longest allowed length 101",
        ),
    ],
)
def test_config_validation(config, message):
    with pytest.raises(ValueError, match=message):
        BatchingConfig(**config)


def test_config_accepts_lists_and_resolves_automatic_boundaries():
    config = BatchingConfig(batch_size=8, bucket_boundaries=[4, np.int64(9)])
    assert config.bucket_boundaries == (4, 9)
    assert config.effective_bucket_boundaries == (4, 9)
    automatic = BatchingConfig(batch_tokens=4096, max_source_tokens=50, max_target_tokens=60)
    assert automatic.max_length == 61
    assert automatic.effective_bucket_boundaries == automatic_bucket_boundaries(61)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 16


def test_all_pairs_too_long_raises():
    with pytest.raises(ValueError, match="all 5 pairs are longer than max_source_tokens=1"):
        _make([("a b", "x")] * 5, batch_size=2, max_source_tokens=1)


def test_empty_or_infinite_dataset_raises():
    with pytest.raises(ValueError, match="pairs_dataset is empty"):
        make_training_dataset(_dataset(TINY).take(0), SOURCE, TARGET, BatchingConfig(batch_size=2))
    with pytest.raises(ValueError, match="infinite"):
        make_training_dataset(_dataset(TINY).repeat(), SOURCE, TARGET, BatchingConfig(batch_size=2))


def test_wrong_inputs_raise():
    with pytest.raises(TypeError, match="config must be a BatchingConfig"):
        make_training_dataset(_dataset(TINY), SOURCE, TARGET, {"batch_size": 2})
    ids = tf.data.Dataset.from_tensor_slices(([1, 2], [3, 4]))
    with pytest.raises(ValueError, match=r"\(source_text, target_text\) scalar strings"):
        make_training_dataset(ids, SOURCE, TARGET, BatchingConfig(batch_size=2))

    class DenseTokenizer:
        def tokenize(self, texts):
            return SOURCE.tokenize(texts).to_tensor()

    with pytest.raises(TypeError, match="source_tokenizer.tokenize.*RaggedTensor"):
        make_training_dataset(
            _dataset(TINY), DenseTokenizer(), TARGET, BatchingConfig(batch_size=2)
        )


def test_pad_id_from_a_tokenizer_raises():
    # A vocabulary that does not start with the reserved tokens maps "a" to 0.
    class PadTokenizer:
        def tokenize(self, texts):
            return SOURCE.tokenize(texts) - 4

    with pytest.raises(tf.errors.InvalidArgumentError, match="source_tokenizer gave the id PAD"):
        make_training_dataset(_dataset(TINY), PadTokenizer(), TARGET, BatchingConfig(batch_size=2))


def test_step_arguments_are_checked():
    with pytest.raises(ValueError, match="batch_tokens must be a positive integer"):
        batch_by_tokens(0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        batch_by_size(None)
    with pytest.raises(ValueError, match="increasing integers > 1"):
        bucket_rows((5, 3), max_length=10)
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        bucket_rows((), max_length=0)
    with pytest.raises(ValueError, match="max_target_tokens must be a positive integer"):
        truncate(5, 0)
    with pytest.raises(ValueError, match="growth must be > 1"):
        automatic_bucket_boundaries(10, growth=1.0)
