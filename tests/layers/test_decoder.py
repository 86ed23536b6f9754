"""Tests of ``TransformerDecoderBlock``."""

import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from keras_attention.layers import TransformerDecoderBlock

BATCH, TARGET, SOURCE, HIDDEN, HEADS = 2, 5, 4, 8, 2


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _decoder_inputs(seed=0):
    return _random((BATCH, TARGET, HIDDEN), seed)


def _encoder_inputs(seed=1, dim=HIDDEN):
    return _random((BATCH, SOURCE, dim), seed)


def _encoder_padding_mask():
    return np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)


def _block(normalize_first=False, encoder_dim=HIDDEN, **kwargs):
    block = TransformerDecoderBlock(16, HEADS, normalize_first=normalize_first, **kwargs)
    block(_decoder_inputs(), _encoder_inputs(dim=encoder_dim))
    return block


@pytest.mark.parametrize("normalize_first", [False, True])
def test_layer_contract(normalize_first, tmp_path):
    layer = run_layer_test(
        TransformerDecoderBlock,
        dict(
            intermediate_dim=16,
            num_heads=HEADS,
            dropout=0.1,
            activation="gelu",
            layer_norm_epsilon=1e-6,
            normalize_first=normalize_first,
            kernel_initializer="glorot_normal",
        ),
        (_decoder_inputs(), _encoder_inputs(dim=6)),
        expected_output_shape=(BATCH, TARGET, HIDDEN),
        tensor_call_kwargs=dict(encoder_padding_mask=_encoder_padding_mask()),
        tmp_path=tmp_path,
    )
    assert layer.cross_attention is not None
    # Cross-attention keys/values come from the 6-wide encoder output.
    assert tuple(layer.cross_attention.weights[2].shape) == (6, HEADS, HIDDEN // HEADS)


def test_layer_contract_decoder_only(tmp_path):
    layer = run_layer_test(
        TransformerDecoderBlock,
        dict(intermediate_dim=16, num_heads=HEADS),
        _decoder_inputs(),
        expected_output_shape=(BATCH, TARGET, HIDDEN),
        tmp_path=tmp_path,
    )
    assert layer.cross_attention is None
    with pytest.raises(ValueError, match="no cross-attention"):
        layer.compute_cross_attention_cache(_encoder_inputs())


@pytest.mark.parametrize("normalize_first", [False, True])
def test_causality(normalize_first):
    block = _block(normalize_first)
    x, enc = _decoder_inputs(), _encoder_inputs()
    full = _np(block(x, enc))
    for t in range(TARGET - 1):
        changed = x.copy()
        changed[:, t + 1 :] = _random(changed[:, t + 1 :].shape, seed=20 + t)
        out = _np(block(changed, enc))
        np.testing.assert_allclose(out[:, : t + 1], full[:, : t + 1], atol=1e-5)
        assert not np.allclose(out[:, t + 1 :], full[:, t + 1 :])


def test_attention_scores():
    block = _block()
    padding = _encoder_padding_mask()
    out, scores = block(
        _decoder_inputs(), _encoder_inputs(), encoder_padding_mask=padding,
        return_attention_scores=True,
    )
    assert out.shape == (BATCH, TARGET, HIDDEN)
    assert set(scores) == {"self_attention", "cross_attention"}
    self_scores, cross_scores = _np(scores["self_attention"]), _np(scores["cross_attention"])
    assert self_scores.shape == (BATCH, HEADS, TARGET, TARGET)
    assert cross_scores.shape == (BATCH, HEADS, TARGET, SOURCE)
    future = np.triu(np.ones((TARGET, TARGET), dtype=bool), k=1)
    assert np.all(self_scores[..., future] == 0.0)
    assert np.all(cross_scores[np.broadcast_to(~padding[:, None, None], cross_scores.shape)] == 0.0)
    np.testing.assert_allclose(cross_scores.sum(-1), 1.0, atol=1e-6)


def test_encoder_padding_does_not_leak():
    block = _block()
    x, enc = _decoder_inputs(), _encoder_inputs()
    padding = _encoder_padding_mask()
    changed = enc.copy()
    changed[~padding] = 50.0
    np.testing.assert_allclose(
        _np(block(x, changed, encoder_padding_mask=padding)),
        _np(block(x, enc, encoder_padding_mask=padding)),
        atol=1e-5,
    )


def test_decoder_padding_mask_blocks_padded_targets():
    block = _block()
    x, enc = _decoder_inputs(), _encoder_inputs()
    padding = np.ones((BATCH, TARGET), dtype=bool)
    padding[:, 1] = False
    _, scores = block(x, enc, decoder_padding_mask=padding, return_attention_scores=True)
    self_scores = _np(scores["self_attention"])
    assert np.all(self_scores[:, :, 1:, 1] == 0.0)


def _empty_self_cache(block, length):
    head = block.self_attention.key_dim
    empty = np.zeros((BATCH, HEADS, length, head), dtype="float32")
    return empty, empty


def _stacked(cache):
    """A ``(keys, values)`` cache as one array ``(batch, 2, heads, length, dim)``."""
    return np.stack([_np(part) for part in cache], axis=1)


@pytest.mark.parametrize("normalize_first", [False, True])
@pytest.mark.parametrize("use_cross_cache", [True, False], ids=["cross_cache", "encoder_sequence"])
def test_cached_step_by_step_equals_full(normalize_first, use_cross_cache):
    block = _block(normalize_first)
    x, enc = _decoder_inputs(), _encoder_inputs()
    padding = _encoder_padding_mask()
    full = _np(block(x, enc, encoder_padding_mask=padding))

    cross_cache = block.compute_cross_attention_cache(enc)
    assert [tuple(part.shape) for part in cross_cache] == [(BATCH, HEADS, SOURCE, HIDDEN // HEADS)] * 2
    cache = _empty_self_cache(block, TARGET + 1)
    steps = []
    for t in range(TARGET):
        out, cache = block(
            x[:, t : t + 1],
            None if use_cross_cache else enc,
            encoder_padding_mask=padding,
            self_attention_cache=cache,
            self_attention_cache_update_index=t,
            cross_attention_cache=cross_cache if use_cross_cache else None,
        )
        assert out.shape == (BATCH, 1, HIDDEN)
        steps.append(_np(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)
    assert np.all(_stacked(cache)[:, :, :, TARGET:] == 0.0)


def test_cached_call_returns_scores_then_cache():
    block = _block()
    enc = _encoder_inputs()
    cache = _empty_self_cache(block, 3)
    out, scores, new_cache = block(
        _decoder_inputs()[:, :1],
        cross_attention_cache=block.compute_cross_attention_cache(enc),
        self_attention_cache=cache,
        self_attention_cache_update_index=0,
        return_attention_scores=True,
    )
    assert out.shape == (BATCH, 1, HIDDEN)
    assert scores["self_attention"].shape == (BATCH, HEADS, 1, 3)
    assert scores["cross_attention"].shape == (BATCH, HEADS, 1, SOURCE)
    np.testing.assert_allclose(_np(scores["self_attention"])[..., 0], 1.0, atol=1e-6)
    new_cache = _stacked(new_cache)
    assert new_cache.shape == _stacked(cache).shape
    assert np.any(new_cache[:, :, :, 0] != 0) and np.all(new_cache[:, :, :, 1:] == 0)


def test_default_key_dim_needs_divisible_hidden_size():
    block = TransformerDecoderBlock(intermediate_dim=16, num_heads=3)
    with pytest.raises(ValueError, match="hidden size 8 is not divisible by num_heads=3"):
        block(_decoder_inputs(), _encoder_inputs())
    block = TransformerDecoderBlock(intermediate_dim=16, num_heads=3, key_dim=4)
    assert block(_decoder_inputs(), _encoder_inputs()).shape == (BATCH, TARGET, HIDDEN)


def test_mixed_bfloat16_cached_decoding_is_finite_and_close():
    block = _block()
    mixed = TransformerDecoderBlock(16, HEADS, dtype="mixed_bfloat16")
    mixed(_decoder_inputs(), _encoder_inputs())
    mixed.set_weights(block.get_weights())
    x, enc = _decoder_inputs(), _encoder_inputs()
    expected = _np(block(x, enc))
    cross = mixed.compute_cross_attention_cache(enc)
    cache = _empty_self_cache(mixed, TARGET)
    steps = []
    for t in range(TARGET):
        out, cache = mixed(
            x[:, t : t + 1], cross_attention_cache=cross,
            self_attention_cache=cache, self_attention_cache_update_index=t,
        )
        assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
        steps.append(_np(keras.ops.cast(out, "float32")))
    got = np.concatenate(steps, axis=1)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, atol=0.15, rtol=0.05)
