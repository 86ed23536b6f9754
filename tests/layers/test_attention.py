"""Tests of ``keras_attention.layers.MultiHeadAttention``."""

import math

import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from keras_attention.layers import MultiHeadAttention

BATCH, TARGET, SOURCE, DIM = 2, 5, 4, 8


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _padding_mask():
    # Batch 0 keeps 3 of 4 keys, batch 1 keeps 2.
    return np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)


def _set_seeded_weights(layer, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [(scale * rng.normal(size=w.shape)).astype("float32") for w in layer.get_weights()]
    )


def reference_attention(query, value, key, weights, key_dim, mask=None):
    """Straightforward numpy multi-head attention (keras MHA weight layout)."""
    q_kernel, q_bias, k_kernel, k_bias, v_kernel, v_bias, o_kernel, o_bias = weights
    q = np.einsum("btd,dhk->bthk", query, q_kernel) + q_bias
    k = np.einsum("bsd,dhk->bshk", key, k_kernel) + k_bias
    v = np.einsum("bsd,dhk->bshk", value, v_kernel) + v_bias
    logits = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(key_dim)
    if mask is not None:
        logits = np.where(mask[:, None], logits, -np.inf)
    logits = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs = probs / probs.sum(axis=-1, keepdims=True)
    context = np.einsum("bhts,bshk->bthk", probs, v)
    return np.einsum("bthk,hkd->btd", context, o_kernel) + o_bias, probs


def _built_layer(query, value=None, key=None, seed=0, **kwargs):
    layer = MultiHeadAttention(**kwargs)
    layer(query, value, key)
    _set_seeded_weights(layer, seed)
    return layer


# ---------------------------------------------------------------- golden values


def test_hand_computed_single_head():
    """One head, identity projections, zero biases: softmax(q k^T / sqrt(2)) v."""
    layer = MultiHeadAttention(num_heads=1, key_dim=2, bias_initializer="zeros")
    query = np.array([[[1.0, 0.0], [0.0, 2.0]]], dtype="float32")
    value = np.array([[[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]]], dtype="float32")
    layer(query, value)
    eye = np.eye(2, dtype="float32")[:, None, :]  # (in, heads=1, key_dim)
    layer.set_weights(
        [eye, np.zeros((1, 2)), eye, np.zeros((1, 2)), eye, np.zeros((1, 2)),
         np.eye(2, dtype="float32")[None], np.zeros((2,))]
    )
    output, scores = layer(query, value, return_attention_scores=True)

    # Computed by hand: logits = q . k / sqrt(2), e.g. [1, 3, 0] / sqrt(2) for q0.
    expected_scores = [[0.178370, 0.733681, 0.087949], [0.055060, 0.931554, 0.013386]]
    expected_output = [[2.379413, 3.379413], [2.849721, 3.849721]]
    logits = [[1 / math.sqrt(2), 3 / math.sqrt(2), 0.0]]
    first = [math.exp(x) / sum(math.exp(y) for y in logits[0]) for x in logits[0]]
    np.testing.assert_allclose(first, expected_scores[0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(scores)[0, 0], expected_scores, atol=1e-6)
    np.testing.assert_allclose(np.asarray(output)[0], expected_output, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, source_length, value_features, use_mask",
    [
        (dict(num_heads=2, key_dim=4), None, None, False),
        (dict(num_heads=2, key_dim=4), None, None, True),
        (dict(num_heads=3, key_dim=2), SOURCE, 6, True),
        (dict(num_heads=2, key_dim=4, value_dim=3, output_dim=5), SOURCE, 6, True),
    ],
    ids=["self", "self_padding", "cross_padding", "value_dim_output_dim"],
)
def test_matches_numpy_reference(kwargs, source_length, value_features, use_mask):
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = None
    if source_length is not None:
        value = _random((BATCH, source_length, value_features), seed=2)
    layer = _built_layer(query, value, **kwargs)
    source = query if value is None else value
    length = source.shape[1]
    padding = None
    if use_mask:
        padding = np.ones((BATCH, length), dtype=bool)
        padding[0, -1] = padding[1, -2:] = False
    output, scores = layer(query, value, padding_mask=padding, return_attention_scores=True)

    mask = None if padding is None else np.broadcast_to(padding[:, None], (BATCH, TARGET, length))
    expected, expected_scores = reference_attention(
        query, source, source, layer.get_weights(), kwargs["key_dim"], mask
    )
    assert output.shape == (BATCH, TARGET, kwargs.get("output_dim", DIM))
    assert scores.shape == (BATCH, kwargs["num_heads"], TARGET, length)
    np.testing.assert_allclose(np.asarray(output), expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(scores), expected_scores, atol=1e-6)


def test_separate_key_input_matches_reference():
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, 6), seed=2)
    key = _random((BATCH, SOURCE, 3), seed=3)
    layer = _built_layer(query, value, key, num_heads=2, key_dim=4)
    expected, _ = reference_attention(query, value, key, layer.get_weights(), 4)
    np.testing.assert_allclose(np.asarray(layer(query, value, key)), expected, atol=1e-5)


# ---------------------------------------------------------------- attention weights


def test_scores_sum_to_one_and_are_float32():
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, DIM), seed=2)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    _, scores = layer(query, value, return_attention_scores=True)
    assert keras.backend.standardize_dtype(scores.dtype) == "float32"
    scores = np.asarray(scores)
    assert np.all(scores >= 0)
    np.testing.assert_allclose(scores.sum(-1), np.ones((BATCH, 2, TARGET)), atol=1e-6)


def test_padding_masked_keys_get_exactly_zero_weight():
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, DIM), seed=2)
    padding = _padding_mask()
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    _, scores = layer(query, value, padding_mask=padding, return_attention_scores=True)
    scores = np.asarray(scores)
    blocked = np.broadcast_to(~padding[:, None, None, :], scores.shape)
    assert np.all(scores[blocked] == 0.0)
    assert np.all(scores[~blocked] > 0.0)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-6)


def test_padded_key_values_do_not_change_output():
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, DIM), seed=2)
    padding = _padding_mask()
    changed = value.copy()
    changed[~padding] = 1e3 * _random(changed[~padding].shape, seed=9)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    np.testing.assert_allclose(
        np.asarray(layer(query, value, padding_mask=padding)),
        np.asarray(layer(query, changed, padding_mask=padding)),
        atol=1e-6,
    )


def test_attention_mask_and_padding_mask_are_combined():
    query = _random((BATCH, 4, DIM), seed=1)
    value = _random((BATCH, SOURCE, DIM), seed=2)
    padding = _padding_mask()
    attention = np.ones((BATCH, 4, SOURCE), dtype=bool)
    attention[:, 0, 0] = False
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    _, scores = layer(
        query, value, padding_mask=padding, attention_mask=attention,
        return_attention_scores=True,
    )
    allowed = padding[:, None, :] & attention
    scores = np.asarray(scores)
    assert np.all(scores[np.broadcast_to(~allowed[:, None], scores.shape)] == 0.0)
    assert np.all(scores[np.broadcast_to(allowed[:, None], scores.shape)] > 0.0)


def test_causal_mask_gives_zero_weight_to_future():
    x = _random((BATCH, TARGET, DIM), seed=1)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    _, scores = layer(x, use_causal_mask=True, return_attention_scores=True)
    scores = np.asarray(scores)
    future = np.triu(np.ones((TARGET, TARGET), dtype=bool), k=1)
    assert np.all(scores[..., future] == 0.0)
    assert np.all(scores[..., ~future] > 0.0)
    # The first query can only see itself.
    np.testing.assert_allclose(scores[:, :, 0, 0], 1.0)


def test_causal_outputs_do_not_depend_on_future_tokens():
    x = _random((BATCH, TARGET, DIM), seed=1)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    full = np.asarray(layer(x, use_causal_mask=True))
    for t in range(TARGET - 1):
        changed = x.copy()
        changed[:, t + 1 :] = _random(changed[:, t + 1 :].shape, seed=10 + t)
        out = np.asarray(layer(changed, use_causal_mask=True))
        np.testing.assert_allclose(out[:, : t + 1], full[:, : t + 1], atol=1e-6)
        assert not np.allclose(out[:, t + 1 :], full[:, t + 1 :])


def test_dropout_only_in_training():
    x = _random((BATCH, TARGET, DIM), seed=1)
    layer = MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.5)
    plain = MultiHeadAttention(num_heads=2, key_dim=4)
    layer(x)
    plain(x)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(plain(x)), atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(layer(x, training=False)), np.asarray(plain(x)), atol=1e-6
    )
    assert not np.allclose(np.asarray(layer(x, training=True)), np.asarray(plain(x)))


# ---------------------------------------------------------------- keras MHA parity


def _keras_pair(query, value=None, key=None, **kwargs):
    ours = MultiHeadAttention(**kwargs)
    ref_kwargs = dict(kwargs)
    if "output_dim" in ref_kwargs:  # keras calls it output_shape
        ref_kwargs["output_shape"] = ref_kwargs.pop("output_dim")
    ref = keras.layers.MultiHeadAttention(**ref_kwargs)
    ours(query, value, key)
    ref(query, query if value is None else value, key)
    _set_seeded_weights(ref, seed=3)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in ref.get_weights()]
    ours.set_weights(ref.get_weights())
    return ours, ref


@pytest.mark.parametrize("case", ["self", "cross", "attention_mask", "causal", "causal_and_mask"])
def test_matches_keras_multi_head_attention(case):
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, 6), seed=2) if case == "cross" else None
    kwargs = dict(num_heads=2, key_dim=4)
    if case == "cross":
        kwargs.update(value_dim=3, output_dim=7)
    ours, ref = _keras_pair(query, value, **kwargs)
    mask = None
    if case in ("attention_mask", "causal_and_mask"):
        mask = np.random.default_rng(4).random((BATCH, TARGET, TARGET)) > 0.3
        mask[:, :, 0] = True  # every query keeps at least one key
    causal = case.startswith("causal")
    source = query if value is None else value

    expected, expected_scores = ref(
        query, source, attention_mask=mask, use_causal_mask=causal,
        return_attention_scores=True,
    )
    output, scores = ours(
        query, value, attention_mask=mask, use_causal_mask=causal,
        return_attention_scores=True,
    )
    np.testing.assert_allclose(np.asarray(output), np.asarray(expected), atol=1e-5)
    np.testing.assert_allclose(np.asarray(scores), np.asarray(expected_scores), atol=1e-5)


def test_padding_mask_matches_keras_attention_mask():
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, DIM), seed=2)
    padding = _padding_mask()
    ours, ref = _keras_pair(query, value, num_heads=2, key_dim=4)
    attention = np.broadcast_to(padding[:, None, :], (BATCH, TARGET, SOURCE))
    np.testing.assert_allclose(
        np.asarray(ours(query, value, padding_mask=padding)),
        np.asarray(ref(query, value, attention_mask=attention)),
        atol=1e-5,
    )


# ---------------------------------------------------------------- caches


def _empty_cache(layer, batch, length):
    empty = np.zeros((batch, layer.num_heads, length, layer.key_dim), dtype="float32")
    return empty, empty


def _stacked(cache):
    """A ``(keys, values)`` cache as one array ``(batch, 2, heads, length, dim)``."""
    return np.stack([np.asarray(part) for part in cache], axis=1)


@pytest.mark.parametrize("chunks", [[1] * TARGET, [3, 1, 1]], ids=["one_step", "prefill_then_steps"])
def test_cached_incremental_decoding_equals_full_causal_attention(chunks):
    x = _random((BATCH, TARGET, DIM), seed=1)
    layer = _built_layer(x, num_heads=2, key_dim=4)
    full = np.asarray(layer(x, use_causal_mask=True))

    max_length = TARGET + 2  # longer than needed: the tail must stay masked
    cache = _empty_cache(layer, BATCH, max_length)
    outputs, index = [], 0
    for size in chunks:
        out, scores, cache = layer(
            x[:, index : index + size],
            use_causal_mask=True,
            cache=cache,
            cache_update_index=index,
            return_attention_scores=True,
        )
        assert [tuple(part.shape) for part in cache] == [(BATCH, 2, max_length, 4)] * 2
        assert scores.shape == (BATCH, 2, size, max_length)
        # Nothing at or after index + size gets weight.
        assert np.all(np.asarray(scores)[..., index + size :] == 0.0)
        outputs.append(np.asarray(out))
        index += size
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, atol=1e-5)
    # The cache holds the projected keys/values of the whole sequence.
    np.testing.assert_allclose(
        _stacked(cache)[:, :, :, :TARGET],
        _stacked(layer.compute_key_value_cache(x)),
        atol=1e-5,
    )
    assert np.all(_stacked(cache)[:, :, :, TARGET:] == 0.0)


def test_cached_decoding_under_tf_function_with_tensor_index():
    import tensorflow as tf

    x = _random((1, 4, DIM), seed=1)
    layer = _built_layer(x, num_heads=2, key_dim=4)
    full = np.asarray(layer(x, use_causal_mask=True))

    @tf.function
    def step(token, cache, index):
        return layer(token, use_causal_mask=True, cache=cache, cache_update_index=index)

    cache = _empty_cache(layer, 1, 4)
    outputs = []
    for i in range(4):
        out, cache = step(x[:, i : i + 1], cache, tf.constant(i))
        outputs.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, atol=1e-5)


def test_precomputed_cross_attention_cache_equals_uncached():
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, 6), seed=2)
    padding = _padding_mask()
    layer = _built_layer(query, value, num_heads=2, key_dim=4)
    cache = layer.compute_key_value_cache(value)
    assert [tuple(part.shape) for part in cache] == [(BATCH, 2, SOURCE, 4)] * 2

    expected, expected_scores = layer(
        query, value, padding_mask=padding, return_attention_scores=True
    )
    out, scores, returned_cache = layer(
        query, padding_mask=padding, cache=cache, return_attention_scores=True
    )
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=1e-5)
    np.testing.assert_allclose(np.asarray(scores), np.asarray(expected_scores), atol=1e-6)
    np.testing.assert_array_equal(_stacked(returned_cache), _stacked(cache))
    # One decoding step at a time over the same cache gives the same rows.
    for t in range(TARGET):
        step, _ = layer(query[:, t : t + 1], padding_mask=padding, cache=cache)
        np.testing.assert_allclose(np.asarray(step)[:, 0], np.asarray(expected)[:, t], atol=1e-5)


def test_value_dim_different_from_key_dim():
    query = _random((BATCH, TARGET, DIM), seed=1)
    layer = _built_layer(query, num_heads=2, key_dim=4, value_dim=6)
    assert layer.get_weights()[4].shape == (DIM, 2, 6)  # value kernel
    assert layer.get_weights()[6].shape == (2, 6, DIM)  # output kernel
    output = layer(query, use_causal_mask=True)
    expected, _ = reference_attention(
        query, query, query, layer.get_weights(), 4,
        np.broadcast_to(np.tril(np.ones((TARGET, TARGET), dtype=bool)), (BATCH, TARGET, TARGET)),
    )
    np.testing.assert_allclose(np.asarray(output), expected, atol=1e-5)
    # The cache keeps keys and values apart, so their sizes may differ.
    keys, values = layer.compute_key_value_cache(query)
    assert keys.shape == (BATCH, 2, TARGET, 4) and values.shape == (BATCH, 2, TARGET, 6)
    cache = (np.zeros((BATCH, 2, TARGET, 4), "float32"), np.zeros((BATCH, 2, TARGET, 6), "float32"))
    steps = []
    for t in range(TARGET):
        step, cache = layer(query[:, t : t + 1], use_causal_mask=True, cache=cache,
                            cache_update_index=t)
        steps.append(np.asarray(step))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), expected, atol=1e-5)


# ---------------------------------------------------------------- mixed precision


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_low_precision_masking_is_safe(policy):
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, DIM), seed=2)
    padding = _padding_mask()
    attention = np.ones((BATCH, TARGET, SOURCE), dtype=bool)
    attention[0, 1, :] = False  # a query that may attend to nothing at all
    layer = MultiHeadAttention(num_heads=2, key_dim=4, dtype=policy)
    output, scores = layer(
        query, value, padding_mask=padding, attention_mask=attention,
        return_attention_scores=True,
    )
    assert keras.backend.standardize_dtype(output.dtype) == policy.split("_")[1]
    assert keras.backend.standardize_dtype(scores.dtype) == "float32"
    output = np.asarray(keras.ops.cast(output, "float32"))
    scores = np.asarray(scores)
    assert np.all(np.isfinite(output))
    assert np.all(np.isfinite(scores))
    allowed = padding[:, None, :] & attention
    allowed[0, 1] = padding[0]  # the fully masked row: only check it is finite
    blocked = np.broadcast_to(~allowed[:, None], scores.shape).copy()
    blocked[0, :, 1] = False
    assert np.all(scores[blocked] == 0.0)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-3)
    # Causal + cache path in bfloat16 stays finite too.
    _, _, cache = layer(
        query[:, :1], use_causal_mask=True, return_attention_scores=True,
        cache=(np.zeros((BATCH, 2, 3, 4), "float32"),) * 2, cache_update_index=0,
    )
    for part in cache:
        assert np.all(np.isfinite(np.asarray(keras.ops.cast(part, "float32"))))


def test_mixed_bfloat16_close_to_float32():
    query = _random((BATCH, TARGET, DIM), seed=1)
    layer = _built_layer(query, num_heads=2, key_dim=4)
    mixed = MultiHeadAttention(num_heads=2, key_dim=4, dtype="mixed_bfloat16")
    mixed(query)
    mixed.set_weights(layer.get_weights())
    expected = np.asarray(layer(query, use_causal_mask=True))
    got = np.asarray(keras.ops.cast(mixed(query, use_causal_mask=True), "float32"))
    np.testing.assert_allclose(got, expected, atol=0.1, rtol=0.05)


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_heads=2, key_dim=0), "key_dim must be a positive integer, got 0"),
        (dict(num_heads=2, key_dim=-3), "key_dim must be a positive integer, got -3"),
        (dict(num_heads=0, key_dim=4), "num_heads must be a positive integer, got 0"),
        (dict(num_heads=2.0, key_dim=4), "num_heads must be a positive integer"),
        (dict(num_heads=2, key_dim=4, dropout=1.5), r"dropout must be a number in \[0, 1\), got 1.5"),
        (dict(num_heads=2, key_dim=4, dropout=-0.1), r"dropout must be a number in \[0, 1\)"),
        (dict(num_heads=2, key_dim=4, value_dim=0), "value_dim must be a positive integer"),
        (dict(num_heads=2, key_dim=4, output_dim=-1), "output_dim must be a positive integer"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(**kwargs)


def test_bad_mask_shapes():
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, DIM), seed=2)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    # Padding mask over the queries instead of the keys.
    with pytest.raises(ValueError, match=r"padding_mask must have shape \(batch, key_length\)"):
        layer(query, value, padding_mask=np.ones((BATCH, TARGET), dtype=bool))
    with pytest.raises(ValueError, match=r"padding_mask must have shape .*got \(2, 4, 1\)"):
        layer(query, value, padding_mask=np.ones((BATCH, SOURCE, 1), dtype=bool))
    with pytest.raises(
        ValueError, match=r"attention_mask must have shape \(batch, query_length, key_length\)"
    ):
        layer(query, value, attention_mask=np.ones((BATCH, SOURCE), dtype=bool))
    with pytest.raises(ValueError, match=r"attention_mask must have shape .*got \(2, 4, 5\)"):
        layer(query, value, attention_mask=np.ones((BATCH, SOURCE, TARGET), dtype=bool))


# ---------------------------------------------------------------- layer contract


def test_layer_contract_self_attention(tmp_path):
    x = _random((BATCH, TARGET, DIM), seed=1)
    run_layer_test(
        MultiHeadAttention,
        dict(num_heads=2, key_dim=4, dropout=0.1, kernel_initializer="he_normal"),
        x,
        expected_output_shape=(BATCH, TARGET, DIM),
        call_kwargs=dict(use_causal_mask=True),
        tmp_path=tmp_path,
    )


def test_layer_contract_cross_attention_with_padding_mask(tmp_path):
    query = _random((BATCH, TARGET, DIM), seed=1)
    value = _random((BATCH, SOURCE, 6), seed=2)
    run_layer_test(
        MultiHeadAttention,
        dict(num_heads=3, key_dim=2, value_dim=5, output_dim=7, use_bias=False),
        (query, value),
        expected_output_shape=[(BATCH, TARGET, 7), (BATCH, 3, TARGET, SOURCE)],
        call_kwargs=dict(return_attention_scores=True),
        tensor_call_kwargs=dict(padding_mask=_padding_mask()),
        tmp_path=tmp_path,
    )
