"""Keras' implicit masks and call contract on our layers, as
``keras.layers.MultiHeadAttention`` and keras-hub's blocks behave.

A mask from ``Embedding(mask_zero=True)`` or ``Masking`` must reach the
attention (padding must not change the real positions' outputs), pass on to
the next layer, and raise no "does not support masking" warning.
"""

import warnings

import keras
import numpy as np
import pytest

from keras_attention.layers import (
    MultiHeadAttention,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)

VOCAB, DIM = 20, 8
# Two sentences, padded with 0 to the longest, and each one on its own.
TOKENS = np.array([[5, 6, 7, 0, 0], [9, 3, 0, 0, 0]], "int32")
LENGTHS = [3, 2]
SOURCE = np.array([[4, 8, 11, 12, 0, 0], [7, 0, 0, 0, 0, 0]], "int32")


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _no_mask_warnings(caught):
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "mask" in m], messages


def _functional(layer_call, inputs=1):
    """A functional model: ``Embedding(mask_zero=True)`` per input, then ``layer_call``."""
    keras.utils.set_random_seed(0)
    tokens = [keras.Input((None,), dtype="int32") for _ in range(inputs)]
    embedded = [keras.layers.Embedding(VOCAB, DIM, mask_zero=True)(t) for t in tokens]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs = layer_call(*embedded)
        pooled = keras.layers.GlobalAveragePooling1D()(outputs)  # reads the propagated mask
    _no_mask_warnings(caught)
    assert outputs._keras_mask is not None  # propagated
    return keras.Model(tokens, [outputs, pooled])


def _assert_padding_changes_nothing(model, *batches):
    """Outputs at real positions and the masked mean equal those of each
    sentence run alone, without padding."""
    outputs, pooled = (_np(x) for x in model(list(batches) if len(batches) > 1 else batches[0]))
    for row, length in enumerate(LENGTHS):
        alone = [b[row : row + 1, : (b[row] != 0).sum()] for b in batches]
        single, single_pooled = (_np(x) for x in model(alone if len(alone) > 1 else alone[0]))
        np.testing.assert_allclose(outputs[row, :length], single[0], atol=1e-5)
        np.testing.assert_allclose(pooled[row], single_pooled[0], atol=1e-5)


def test_encoder_block_honours_embedding_mask_zero():
    model = _functional(TransformerEncoderBlock(16, 2))
    _assert_padding_changes_nothing(model, TOKENS)
    block = model.layers[2]
    embedded = model.layers[1](TOKENS)
    explicit = _np(block(embedded, padding_mask=TOKENS != 0))
    unmasked = _np(block(_np(embedded)))  # a plain array: no mask, attends to padding
    implicit = _np(model(TOKENS)[0])
    real = TOKENS != 0
    np.testing.assert_allclose(implicit[real], explicit[real], atol=1e-6)
    assert not np.allclose(implicit[real], unmasked[real], atol=1e-3)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_decoder_block_honours_both_masks(normalize_first):
    block = TransformerDecoderBlock(16, 2, normalize_first=normalize_first)
    model = _functional(lambda target, source: block(target, source), inputs=2)
    _assert_padding_changes_nothing(model, TOKENS, SOURCE)
    target, source = model.layers[2](TOKENS), model.layers[3](SOURCE)
    explicit = _np(block(target, source, decoder_padding_mask=TOKENS != 0,
                         encoder_padding_mask=SOURCE != 0))
    real = TOKENS != 0
    np.testing.assert_allclose(_np(model([TOKENS, SOURCE])[0])[real], explicit[real], atol=1e-6)


def test_attention_reads_a_masking_layer_and_propagates_the_query_mask():
    values = np.random.default_rng(0).normal(size=(2, 5, DIM)).astype("float32")
    values[TOKENS == 0] = 0.0  # Masking(0) masks these steps
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, DIM))
    masked = keras.layers.Masking(0.0)(inputs)
    attention = MultiHeadAttention(num_heads=2, key_dim=4)
    outputs = attention(masked)
    assert outputs._keras_mask is not None
    model = keras.Model(inputs, outputs)
    real = TOKENS != 0
    explicit = _np(attention(values, padding_mask=real))
    np.testing.assert_allclose(_np(model(values))[real], explicit[real], atol=1e-6)


def test_implicit_masks_equal_keras_multi_head_attention():
    """Same weights, masks from the inputs: our layer and Keras' agree at every
    position (padded queries included: both give them zero scores)."""
    rng = np.random.default_rng(1)
    query_values = _masked(rng.normal(size=(2, 5, DIM)), TOKENS)
    value_values = _masked(rng.normal(size=(2, 6, 6)), SOURCE)

    def inputs():
        # Fresh tensors per call: Keras' layer removes the masks of its inputs.
        return keras.layers.Masking(0.0)(query_values), keras.layers.Masking(0.0)(value_values)

    ours = MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3)
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, value_dim=3)
    ours(*inputs())
    ref(*inputs())
    ours.set_weights([w * 3.0 for w in ref.get_weights()])
    ref.set_weights([w * 3.0 for w in ref.get_weights()])
    got, got_scores = ours(*inputs(), return_attention_scores=True)
    want, want_scores = ref(*inputs(), return_attention_scores=True)
    np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)
    np.testing.assert_allclose(_np(got_scores), _np(want_scores), atol=1e-6)
    real_rows = _np(got_scores)[0][:, TOKENS[0] != 0]  # (heads, real queries, keys)
    assert np.all(real_rows[:, :, SOURCE[0] == 0] == 0.0)
    assert np.all(real_rows[:, :, SOURCE[0] != 0] > 0.0)
    assert np.array_equal(_np(got._keras_mask), TOKENS != 0)


def _masked(array, tokens):
    array = np.asarray(array, "float32")
    array[tokens == 0] = 0.0
    return array


@pytest.mark.parametrize("argument", ["query_mask", "value_mask", "key_mask"])
def test_keras_mask_arguments_equal_keras_multi_head_attention(argument):
    rng = np.random.default_rng(2)
    query = rng.normal(size=(2, 5, DIM)).astype("float32")
    value = rng.normal(size=(2, 6, DIM)).astype("float32")
    mask = (TOKENS if argument == "query_mask" else SOURCE) != 0
    ours = MultiHeadAttention(num_heads=2, key_dim=4)
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ours(query, value)
    ref(query, value)
    ours.set_weights(ref.get_weights())
    got = ours(query, value, value, **{argument: mask})
    want = ref(query, value, value, **{argument: mask})
    if argument == "query_mask":
        # Keras' layer reads the query's own mask instead of this argument;
        # the real queries agree either way, and ours zeroes the padded rows.
        np.testing.assert_allclose(_np(got)[mask], _np(want)[mask], atol=1e-5)
        assert np.array_equal(_np(got._keras_mask), mask)
    else:
        np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)
    if argument != "query_mask":  # the same as our padding_mask
        np.testing.assert_allclose(_np(got), _np(ours(query, value, padding_mask=mask)),
                                   atol=1e-6)


def test_cached_decoding_ignores_the_step_mask_for_keys():
    """With a cache, keys come from the cache: a step's implicit mask is not a key mask."""
    block = TransformerDecoderBlock(16, 2)
    target = np.random.default_rng(3).normal(size=(2, 4, DIM)).astype("float32")
    source = np.random.default_rng(4).normal(size=(2, 6, DIM)).astype("float32")
    block(target, source)
    full = _np(block(target, source))
    cache = (np.zeros((2, 2, 4, 4), "float32"),) * 2
    step = keras.layers.Masking(-99.0)(target[:, :1])  # all real: a (2, 1) mask
    out, cache = block(step, source, self_attention_cache=cache,
                       self_attention_cache_update_index=0)
    np.testing.assert_allclose(_np(out), full[:, :1], atol=1e-5)


# ---------------------------------------------------------------- call contract


def test_output_shape_is_an_alias_of_output_dim():
    for output_shape in (7, (7,), [7]):
        layer = MultiHeadAttention(num_heads=2, key_dim=4, output_shape=output_shape)
        assert layer.output_dim == 7
        assert layer.get_config()["output_dim"] == 7
    x = np.zeros((1, 3, DIM), "float32")
    assert MultiHeadAttention(num_heads=2, key_dim=4, output_shape=7)(x).shape == (1, 3, 7)
    with pytest.raises(ValueError, match="output_dim=5 and output_shape=7 disagree"):
        MultiHeadAttention(num_heads=2, key_dim=4, output_dim=5, output_shape=7)
    with pytest.raises(ValueError, match=r"output_shape must be one size, got \(3, 4\)"):
        MultiHeadAttention(num_heads=2, key_dim=4, output_shape=(3, 4))


def test_compute_output_shape():
    layer = MultiHeadAttention(num_heads=2, key_dim=4, output_dim=5)
    assert layer.compute_output_shape((None, 3, DIM), (None, 7, 6)) == (None, 3, 5)
    assert MultiHeadAttention(2, 4).compute_output_shape((2, 3, DIM)) == (2, 3, DIM)
    block = TransformerDecoderBlock(16, 2)
    assert block.compute_output_shape((None, 3, DIM), (None, 7, DIM)) == (None, 3, DIM)
    assert TransformerEncoderBlock(16, 2).compute_output_shape((4, 3, DIM)) == (4, 3, DIM)


def test_symbolic_attention_scores_in_the_functional_api():
    target = keras.Input((5, DIM))
    source = keras.Input((6, 6))
    output, scores = MultiHeadAttention(2, 4)(target, source, return_attention_scores=True)
    assert (tuple(output.shape), tuple(scores.shape)) == ((None, 5, DIM), (None, 2, 5, 6))
    encoded, self_scores = TransformerEncoderBlock(16, 2)(target, return_attention_scores=True)
    assert tuple(self_scores.shape) == (None, 2, 5, 5)
    decoded, block_scores = TransformerDecoderBlock(16, 2)(
        target, encoded, return_attention_scores=True)
    assert {k: tuple(v.shape) for k, v in block_scores.items()} == {
        "self_attention": (None, 2, 5, 5), "cross_attention": (None, 2, 5, 5)}
    model = keras.Model([target, source], [output, scores, decoded, block_scores])
    rng = np.random.default_rng(0)
    results = model([rng.normal(size=(3, 5, DIM)), rng.normal(size=(3, 6, 6))])
    assert tuple(results[1].shape) == (3, 2, 5, 6)
    np.testing.assert_allclose(_np(results[1]).sum(-1), 1.0, atol=1e-5)
    assert tuple(results[3]["cross_attention"].shape) == (3, 2, 5, 5)


def test_value_and_key_of_different_lengths_are_refused_as_keras_does():
    query = np.zeros((1, 3, DIM), "float32")
    message = "All dimensions of `value` and `key`, except the last one, must be equal"
    with pytest.raises(ValueError, match=message):
        keras.layers.MultiHeadAttention(2, 4)(query, np.zeros((1, 4, DIM)), np.zeros((1, 5, DIM)))
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(2, 4)(query, np.zeros((1, 4, DIM)), np.zeros((1, 5, DIM)))


def test_a_query_mask_of_the_wrong_length_is_a_clear_error():
    query = np.zeros((2, 5, DIM), "float32")
    with pytest.raises(ValueError, match=r"query_mask must have shape \(batch, query_length\)"):
        MultiHeadAttention(2, 4)(query, query_mask=np.ones((2, 4), bool))
