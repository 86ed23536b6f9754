"""Tests of ``TransformerEncoderBlock`` (and the sublayers it is made of)."""

import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from keras_attention.layers import (
    FeedForward,
    ResidualNorm,
    TransformerEncoderBlock,
)

BATCH, LENGTH, HIDDEN = 2, 5, 8


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _inputs(seed=0, shape=(BATCH, LENGTH, HIDDEN)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _padding_mask():
    mask = np.ones((BATCH, LENGTH), dtype=bool)
    mask[0, 3:] = False
    mask[1, 4:] = False
    return mask


def numpy_layer_norm(x, norm, epsilon):
    gamma, beta = (_np(w) for w in norm.weights)
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


@pytest.mark.parametrize("normalize_first", [False, True])
def test_layer_contract(normalize_first, tmp_path):
    run_layer_test(
        TransformerEncoderBlock,
        dict(
            intermediate_dim=16,
            num_heads=2,
            dropout=0.1,
            activation="gelu",
            layer_norm_epsilon=1e-6,
            normalize_first=normalize_first,
            kernel_initializer="glorot_normal",
        ),
        _inputs(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        tensor_call_kwargs=dict(padding_mask=_padding_mask()),
        tmp_path=tmp_path,
    )


def test_layer_contract_with_explicit_key_dim(tmp_path):
    layer = run_layer_test(
        TransformerEncoderBlock,
        dict(intermediate_dim=12, num_heads=3, key_dim=5),
        _inputs(shape=(BATCH, LENGTH, 10)),
        expected_output_shape=(BATCH, LENGTH, 10),
        tmp_path=tmp_path,
    )
    assert layer.self_attention.key_dim == 5


@pytest.mark.parametrize("normalize_first", [False, True])
def test_wiring_matches_manual_composition(normalize_first):
    """Post-norm: LN(x + f(x)); pre-norm: x + f(LN(x)), for attention then FFN."""
    x = _inputs()
    padding = _padding_mask()
    eps = 1e-5
    block = TransformerEncoderBlock(16, 2, normalize_first=normalize_first, layer_norm_epsilon=eps)
    out = _np(block(x, padding_mask=padding))
    attn_norm = block.self_attention_residual._norm
    ffn_norm = block.feedforward_residual._norm
    # Make the norms non-trivial so that the check sees them.
    rng = np.random.default_rng(5)
    for norm in (attn_norm, ffn_norm):
        norm.set_weights([1 + 0.1 * rng.normal(size=(HIDDEN,)), 0.1 * rng.normal(size=(HIDDEN,))])
    out = _np(block(x, padding_mask=padding))

    def attention(h):
        return _np(block.self_attention(h, padding_mask=padding))

    def feedforward(h):
        return _np(block.feedforward(h))

    if normalize_first:
        h = x + attention(numpy_layer_norm(x, attn_norm, eps).astype("float32"))
        expected = h + feedforward(numpy_layer_norm(h, ffn_norm, eps).astype("float32"))
    else:
        h = numpy_layer_norm(x + attention(x), attn_norm, eps).astype("float32")
        expected = numpy_layer_norm(h + feedforward(h), ffn_norm, eps)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_feedforward_matches_numpy():
    x = _inputs()
    layer = FeedForward(16, activation="relu")
    out = _np(layer(x))
    k1, b1, k2, b2 = (_np(w) for w in layer.weights)
    assert k1.shape == (HIDDEN, 16) and k2.shape == (16, HIDDEN)
    np.testing.assert_allclose(out, np.maximum(x @ k1 + b1, 0) @ k2 + b2, atol=1e-5)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_residual_norm_layer_contract(normalize_first, tmp_path):
    x = _inputs()
    run_layer_test(
        ResidualNorm,
        dict(normalize_first=normalize_first, dropout=0.2, layer_norm_epsilon=1e-3),
        (x, 2 * x),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        tmp_path=tmp_path,
    )


def test_feedforward_layer_contract(tmp_path):
    run_layer_test(
        FeedForward,
        dict(intermediate_dim=6, activation="gelu", dropout=0.1, kernel_initializer="he_uniform"),
        _inputs(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("normalize_first", [False, True])
def test_padding_does_not_leak(normalize_first):
    x = _inputs()
    padding = _padding_mask()
    block = TransformerEncoderBlock(16, 2, normalize_first=normalize_first)
    out, scores = block(x, padding_mask=padding, return_attention_scores=True)
    changed = x.copy()
    changed[~padding] = 100.0 * _inputs(seed=7)[~padding]
    out_changed = block(changed, padding_mask=padding)
    np.testing.assert_allclose(_np(out_changed)[padding], _np(out)[padding], atol=1e-5)
    scores = _np(scores)
    assert scores.shape == (BATCH, 2, LENGTH, LENGTH)
    assert np.all(scores[np.broadcast_to(~padding[:, None, None], scores.shape)] == 0.0)


def test_attention_mask_is_applied():
    x = _inputs()
    block = TransformerEncoderBlock(16, 2)
    causal = np.tril(np.ones((LENGTH, LENGTH), dtype=bool))[None].repeat(BATCH, 0)
    out = _np(block(x, attention_mask=causal))
    changed = x.copy()
    changed[:, -1] = 5.0
    np.testing.assert_allclose(_np(block(changed, attention_mask=causal))[:, :-1], out[:, :-1], atol=1e-5)
    assert not np.allclose(_np(block(changed))[:, 0], _np(block(x))[:, 0])


def test_dropout_only_in_training():
    x = _inputs()
    block = TransformerEncoderBlock(16, 2, dropout=0.5)
    np.testing.assert_allclose(_np(block(x)), _np(block(x, training=False)), atol=1e-6)
    assert not np.allclose(_np(block(x, training=True)), _np(block(x)))


def test_default_key_dim_needs_divisible_hidden_size():
    block = TransformerEncoderBlock(intermediate_dim=16, num_heads=4)
    with pytest.raises(ValueError, match="hidden size 10 is not divisible by num_heads=4"):
        block(_inputs(shape=(1, 3, 10)))
    # With an explicit key_dim any hidden size works.
    block = TransformerEncoderBlock(intermediate_dim=16, num_heads=4, key_dim=3)
    assert block(_inputs(shape=(1, 3, 10))).shape == (1, 3, 10)
    # Default key_dim is hidden // num_heads.
    block = TransformerEncoderBlock(intermediate_dim=16, num_heads=4)
    block(_inputs(shape=(1, 3, 12)))
    assert block.self_attention.key_dim == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(intermediate_dim=0), "intermediate_dim must be a positive integer"),
        (dict(num_heads=-1), "num_heads must be a positive integer"),
        (dict(key_dim=0), "key_dim must be a positive integer"),
        (dict(dropout=1.0), r"dropout must be a number in \[0, 1\)"),
        (dict(layer_norm_epsilon=0.0), "layer_norm_epsilon must be a positive number"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = dict(intermediate_dim=16, num_heads=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        TransformerEncoderBlock(**args)
