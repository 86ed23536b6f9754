"""Tests of ``compute_causal_mask`` and ``merge_padding_and_attention_mask``."""

import keras
import numpy as np
import pytest

from keras_attention.layers import compute_causal_mask, merge_padding_and_attention_mask

T, F = True, False


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_causal_mask_golden():
    mask = _np(compute_causal_mask(2, 3, 3))
    assert mask.dtype == bool
    assert mask.shape == (2, 3, 3)
    expected = [[T, F, F], [T, T, F], [T, T, T]]
    np.testing.assert_array_equal(mask[0], expected)
    np.testing.assert_array_equal(mask[1], expected)


def test_causal_mask_rectangular_golden():
    # More keys than queries: query i sees keys 0..i only.
    np.testing.assert_array_equal(
        _np(compute_causal_mask(1, 2, 4))[0],
        [[T, F, F, F], [T, T, F, F]],
    )


@pytest.mark.parametrize(
    "start_index, expected",
    [
        (0, [[T, F, F, F, F], [T, T, F, F, F]]),
        (2, [[T, T, T, F, F], [T, T, T, T, F]]),
        (3, [[T, T, T, T, F], [T, T, T, T, T]]),
    ],
)
def test_causal_mask_start_index_golden(start_index, expected):
    mask = _np(compute_causal_mask(1, 2, 5, start_index=start_index))
    np.testing.assert_array_equal(mask[0], expected)


def test_causal_mask_start_index_is_a_slice_of_the_full_mask():
    full = _np(compute_causal_mask(1, 6, 6))[0]
    for start in range(6):
        for length in range(1, 7 - start):
            part = _np(compute_causal_mask(1, length, 6, start_index=start))[0]
            np.testing.assert_array_equal(part, full[start : start + length])


def test_causal_mask_tensor_start_index():
    mask = _np(compute_causal_mask(1, 1, 4, start_index=keras.ops.convert_to_tensor(2)))
    np.testing.assert_array_equal(mask[0], [[T, T, T, F]])


def test_merge_no_masks_is_none():
    query, key = np.zeros((2, 3, 4)), np.zeros((2, 5, 4))
    assert merge_padding_and_attention_mask(query, key) is None


def test_merge_padding_mask_golden():
    query, key = np.zeros((2, 2, 4)), np.zeros((2, 3, 4))
    padding = np.array([[1, 1, 0], [1, 0, 0]])  # ints are accepted as booleans
    mask = _np(merge_padding_and_attention_mask(query, key, padding_mask=padding))
    assert mask.dtype == bool
    np.testing.assert_array_equal(
        mask,
        [
            [[T, T, F], [T, T, F]],
            [[T, F, F], [T, F, F]],
        ],
    )


def test_merge_attention_mask_only_golden():
    query, key = np.zeros((1, 2, 4)), np.zeros((1, 2, 4))
    attention = np.array([[[1, 0], [0, 1]]])
    mask = _np(merge_padding_and_attention_mask(query, key, attention_mask=attention))
    np.testing.assert_array_equal(mask, [[[T, F], [F, T]]])


def test_merge_causal_only_golden():
    query, key = np.zeros((1, 3, 4)), np.zeros((1, 3, 4))
    mask = _np(merge_padding_and_attention_mask(query, key, use_causal_mask=True))
    np.testing.assert_array_equal(mask, [[[T, F, F], [T, T, F], [T, T, T]]])


def test_merge_all_three_golden():
    query, key = np.zeros((2, 3, 4)), np.zeros((2, 3, 4))
    padding = np.array([[T, T, F], [T, T, T]])
    attention = np.ones((2, 3, 3), dtype=bool)
    attention[1, 2, 0] = False
    mask = _np(
        merge_padding_and_attention_mask(
            query, key, padding_mask=padding, attention_mask=attention, use_causal_mask=True
        )
    )
    np.testing.assert_array_equal(
        mask,
        [
            [[T, F, F], [T, T, F], [T, T, F]],
            [[T, F, F], [T, T, F], [F, T, T]],
        ],
    )


def test_merge_causal_start_index_golden():
    # One query at absolute position 2 over a cache of 4 keys, last key padded.
    query, key = np.zeros((1, 1, 4)), np.zeros((1, 4, 2, 2))
    mask = _np(
        merge_padding_and_attention_mask(
            query, key, padding_mask=np.array([[T, F, T, T]]),
            use_causal_mask=True, causal_start_index=2,
        )
    )
    np.testing.assert_array_equal(mask, [[[T, F, T, F]]])


def test_merge_rejects_bad_shapes():
    query, key = np.zeros((2, 3, 4)), np.zeros((2, 5, 4))
    with pytest.raises(ValueError, match=r"padding_mask must have shape \(batch, key_length\)=\(2, 5\), got \(2, 3\)"):
        merge_padding_and_attention_mask(query, key, padding_mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"padding_mask must have shape .*got \(3, 5\)"):
        merge_padding_and_attention_mask(query, key, padding_mask=np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, query_length, key_length\)=\(2, 3, 5\), got \(2, 5\)"):
        merge_padding_and_attention_mask(query, key, attention_mask=np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"attention_mask must have shape .*got \(2, 5, 3\)"):
        merge_padding_and_attention_mask(query, key, attention_mask=np.ones((2, 5, 3)))
