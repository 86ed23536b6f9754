"""``text_pair_dataset``: teacher-forcing inputs, labels, truncation, shuffling."""

import numpy as np
import pytest

from keras_attention.data import (
    END_ID,
    PAD_ID,
    START_ID,
    CharacterTokenizer,
    WordTokenizer,
    teacher_forcing,
    text_pair_dataset,
    tokenize_pairs,
)

# Fixed vocabularies, so ids in the golden arrays are known.
SOURCE = WordTokenizer(["[PAD]", "[START]", "[END]", "[UNK]", "a", "b", "c", "d"])
TARGET = CharacterTokenizer(["[PAD]", "[START]", "[END]", "[UNK]", "x", "y", "z"])
#                             0        1          2        3       4    5    6


def _batches(dataset):
    return [
        ({k: v.numpy() for k, v in inputs.items()}, labels.numpy()) for inputs, labels in dataset
    ]


def test_text_pair_dataset_golden_two_pairs():
    pairs = [("a b c", "xy"), ("d", "zzx")]
    [(inputs, labels)] = _batches(text_pair_dataset(pairs, SOURCE, TARGET, 2, max_length=10))
    assert set(inputs) == {"encoder_tokens", "decoder_tokens"}
    np.testing.assert_array_equal(inputs["encoder_tokens"], [[4, 5, 6], [7, 0, 0]])
    np.testing.assert_array_equal(inputs["decoder_tokens"], [[1, 4, 5, 0], [1, 6, 6, 4]])
    np.testing.assert_array_equal(labels, [[4, 5, 2, 0], [6, 6, 4, 2]])
    for array in (*inputs.values(), labels):
        assert array.dtype == np.int32


def test_decoder_tokens_are_labels_shifted_right():
    pairs = [("a b", "xyz"), ("c", "x"), ("d d d d", "yy"), ("a", "")]
    for inputs, labels in _batches(text_pair_dataset(pairs, SOURCE, TARGET, 3, max_length=8)):
        decoder = inputs["decoder_tokens"]
        assert decoder.shape == labels.shape
        np.testing.assert_array_equal(decoder[:, 0], START_ID)
        np.testing.assert_array_equal(decoder[:, 1:], np.where(labels[:, :-1] == END_ID,
                                                               PAD_ID, labels[:, :-1]))
        # Exactly one END per row, right after the target.
        np.testing.assert_array_equal((labels == END_ID).sum(axis=1), 1)
        np.testing.assert_array_equal(
            (decoder != PAD_ID).sum(axis=1), (labels != PAD_ID).sum(axis=1))


def test_empty_target_gives_start_and_end_only():
    [(inputs, labels)] = _batches(text_pair_dataset([("a", "")], SOURCE, TARGET, 4, 5))
    np.testing.assert_array_equal(inputs["decoder_tokens"], [[START_ID]])
    np.testing.assert_array_equal(labels, [[END_ID]])


def test_batch_size_splits_pairs_in_order():
    pairs = [("a", "x"), ("b", "y"), ("c", "z"), ("d", "xy"), ("a b", "zz")]
    batches = _batches(text_pair_dataset(pairs, SOURCE, TARGET, 2, 10))
    assert [len(labels) for _, labels in batches] == [2, 2, 1]
    firsts = [inputs["encoder_tokens"][:, 0].tolist() for inputs, _ in batches]
    assert firsts == [[4, 5], [6, 7], [4]]
    # Each batch is padded to its own longest sequence only.
    assert [inputs["encoder_tokens"].shape[1] for inputs, _ in batches] == [1, 1, 2]


def test_max_length_truncates_source_and_target():
    pairs = [("a b c d a b", "xyzxyzx"), ("c", "y")]
    [(inputs, labels)] = _batches(text_pair_dataset(pairs, SOURCE, TARGET, 2, max_length=4))
    # Sources are cut to max_length tokens.
    np.testing.assert_array_equal(inputs["encoder_tokens"], [[4, 5, 6, 7], [6, 0, 0, 0]])
    # Targets are cut to max_length - 1 before START / END are added.
    np.testing.assert_array_equal(inputs["decoder_tokens"], [[1, 4, 5, 6], [1, 5, 0, 0]])
    np.testing.assert_array_equal(labels, [[4, 5, 6, 2], [5, 2, 0, 0]])


@pytest.mark.parametrize("max_length", [1, 2, 3, 6])
def test_max_length_bounds_every_tensor(max_length):
    pairs = [("a b c d a b c d", "xyzxyzxyz"), ("a", "x"), ("b c", "")]
    for inputs, labels in _batches(text_pair_dataset(pairs, SOURCE, TARGET, 2, max_length)):
        assert inputs["encoder_tokens"].shape[1] <= max_length
        assert inputs["decoder_tokens"].shape[1] <= max_length
        assert labels.shape[1] <= max_length
        # END survives truncation.
        np.testing.assert_array_equal((labels == END_ID).sum(axis=1), 1)


def _order(seed, pairs):
    dataset = text_pair_dataset(pairs, SOURCE, TARGET, 3, 10, shuffle_seed=seed)
    return [row.tolist() for inputs, _ in _batches(dataset) for row in inputs["encoder_tokens"]]


def test_shuffle_seed_is_reproducible_and_keeps_all_pairs():
    words = ["a", "b", "c", "d"]
    pairs = [(f"{words[i % 4]} {words[i // 4 % 4]}", "x") for i in range(16)]
    unshuffled = _order(None, pairs)
    first = _order(7, pairs)
    assert _order(7, pairs) == first
    assert first != unshuffled
    assert sorted(first) == sorted(unshuffled)
    assert _order(8, pairs) != first


def test_tokenize_pairs_and_teacher_forcing_compose():
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((["a b", "c"], ["x", "yz"])).batch(2)
    dataset = dataset.apply(tokenize_pairs(SOURCE, TARGET, 1, 2))
    [(source, target)] = list(dataset)
    assert source.to_list() == [[4], [6]]
    assert target.to_list() == [[4], [5]]
    inputs, labels = next(iter(dataset.apply(teacher_forcing())))
    np.testing.assert_array_equal(inputs["decoder_tokens"].numpy(), [[1, 4], [1, 5]])
    np.testing.assert_array_equal(labels.numpy(), [[4, 2], [5, 2]])


def test_empty_pairs_raise():
    with pytest.raises(ValueError, match="no sentence pairs"):
        text_pair_dataset([], SOURCE, TARGET, 2, 10)
