"""Tests of ``keras_attention.models.Transformer`` and its configuration."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_testing import assert_outputs_close

from keras_attention.models import PAD_ID, PRESETS, Transformer, TransformerConfig, get_preset

VOCAB = 17

ENCODER_TOKENS = np.array([[5, 6, 7, 8, 0, 0], [3, 9, 4, 0, 0, 0]], dtype="int32")
DECODER_TOKENS = np.array([[1, 10, 11, 12, 13], [1, 14, 15, 0, 0]], dtype="int32")


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _inputs(encoder_tokens=ENCODER_TOKENS, decoder_tokens=DECODER_TOKENS):
    return {"encoder_tokens": encoder_tokens, "decoder_tokens": decoder_tokens}


def _config(**changes):
    """A very small model for fast tests."""
    base = dict(
        encoder_vocabulary_size=VOCAB,
        decoder_vocabulary_size=VOCAB,
        num_encoder_layers=2,
        num_decoder_layers=2,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        dropout=0.0,
        max_sequence_length=12,
    )
    base.update(changes)
    return TransformerConfig(**base)


def expected_parameter_count(c):
    """Parameters of an encoder-decoder Transformer with configuration ``c``."""
    d, f = c.hidden_dim, c.intermediate_dim
    attention = 4 * (d * d + d)  # q, k, v, o kernels and biases (heads * head_dim = d)
    feedforward = d * f + f + f * d + d
    norm = 2 * d
    encoder_block = attention + feedforward + 2 * norm
    decoder_block = 2 * attention + feedforward + 3 * norm
    embedding = c.encoder_vocabulary_size * d
    if c.position_encoding == "learned":
        embedding += c.max_sequence_length * d
    embeddings = embedding if c.share_embeddings else 2 * embedding + (
        (c.decoder_vocabulary_size - c.encoder_vocabulary_size) * d
    )
    final_norms = 2 * norm if c.normalize_first else 0
    output = 0 if c.tie_output_embeddings else d * c.decoder_vocabulary_size + c.decoder_vocabulary_size
    return (
        c.num_encoder_layers * encoder_block
        + c.num_decoder_layers * decoder_block
        + embeddings
        + final_norms
        + output
    )


# ---------------------------------------------------------------- forward pass


def test_output_shape_and_float32_logits():
    model = Transformer(_config())
    logits = model(_inputs())
    assert tuple(logits.shape) == (2, 5, VOCAB)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.all(np.isfinite(_np(logits)))
    assert model.count_params() == expected_parameter_count(model.config)
    encoder_output, mask = model.encode(ENCODER_TOKENS)
    assert tuple(encoder_output.shape) == (2, 6, 16)
    np.testing.assert_array_equal(_np(mask), ENCODER_TOKENS != PAD_ID)


def test_unequal_vocabularies_and_lengths():
    model = Transformer(_config(encoder_vocabulary_size=11, decoder_vocabulary_size=23))
    logits = model(_inputs(ENCODER_TOKENS % 11, DECODER_TOKENS[:, :3]))
    assert tuple(logits.shape) == (2, 3, 23)
    assert model.count_params() == expected_parameter_count(model.config)


def test_config_may_be_a_dict_but_not_anything_else():
    model = Transformer(_config().to_dict())
    assert model.config == _config()
    with pytest.raises(TypeError, match="config must be a TransformerConfig, got str"):
        Transformer("tiny")


# ---------------------------------------------------------------- presets


@pytest.mark.parametrize(
    "name, fields",
    [
        ("tiny", dict(num_encoder_layers=2, num_decoder_layers=2, hidden_dim=64, num_heads=4, intermediate_dim=128)),
        ("small", dict(num_encoder_layers=3, num_decoder_layers=3, hidden_dim=256, num_heads=4, intermediate_dim=1024)),
        ("base", dict(num_encoder_layers=6, num_decoder_layers=6, hidden_dim=512, num_heads=8, intermediate_dim=2048)),
    ],
)
def test_presets_build_with_expected_sizes(name, fields):
    model = Transformer.from_preset(name, encoder_vocabulary_size=40, decoder_vocabulary_size=50)
    config = model.config
    for field, value in fields.items():
        assert getattr(config, field) == value, field
    assert (config.encoder_vocabulary_size, config.decoder_vocabulary_size) == (40, 50)
    assert config == get_preset(name, encoder_vocabulary_size=40, decoder_vocabulary_size=50)
    assert len(model.encoder_blocks) == fields["num_encoder_layers"]
    assert len(model.decoder_blocks) == fields["num_decoder_layers"]
    assert model.count_params() == expected_parameter_count(config)
    if name == "base":
        # Transformer base is ~44M parameters without the (here tiny) vocabulary.
        assert 44_000_000 < model.count_params() < 44_300_000
    logits = model(_inputs(ENCODER_TOKENS, DECODER_TOKENS[:, :2]))
    assert tuple(logits.shape) == (2, 2, 50)


def test_presets_are_untouched_by_changes():
    changed = get_preset("tiny", hidden_dim=32, num_heads=2)
    assert changed.hidden_dim == 32
    assert PRESETS["tiny"].hidden_dim == 64
    with pytest.raises(ValueError, match=r"unknown preset 'huge'; choose one of \['base', 'small', 'summarization', 'tiny'\]"):
        get_preset("huge")
    with pytest.raises(ValueError, match="unknown preset"):
        Transformer.from_preset("huge")


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(hidden_dim=30, num_heads=4), "hidden_dim=30 must be divisible by num_heads=4"),
        (
            dict(share_embeddings=True, encoder_vocabulary_size=10, decoder_vocabulary_size=12),
            "share_embeddings needs one vocabulary: encoder_vocabulary_size=10 != decoder_vocabulary_size=12",
        ),
        (dict(hidden_dim=-16), "hidden_dim must be a positive integer, got -16"),
        (dict(encoder_vocabulary_size=0), "encoder_vocabulary_size must be a positive integer, got 0"),
        (dict(num_decoder_layers=-1), "num_decoder_layers must be a positive integer, got -1"),
        (dict(intermediate_dim=2.5), "intermediate_dim must be a positive integer, got 2.5"),
        (dict(max_sequence_length=True), "max_sequence_length must be a positive integer, got True"),
        (dict(num_heads=0), "num_heads must be a positive integer, got 0"),
        (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
        (dict(dropout=-0.5), r"dropout must be in \[0, 1\)"),
        (dict(layer_norm_epsilon=0.0), "layer_norm_epsilon must be positive"),
        (dict(position_encoding="rope"), r"position_encoding must be one of \('sinusoidal', 'learned'\), got 'rope'"),
    ],
)
def test_config_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        _config(**changes)
    # replace() validates again.
    with pytest.raises(ValueError, match=message):
        _config().replace(**changes)


def test_config_replace():
    config = _config()
    changed = config.replace(hidden_dim=32, num_heads=4)
    assert (changed.hidden_dim, changed.num_heads) == (32, 4)
    assert config.hidden_dim == 16  # frozen, untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden_dim = 8
    with pytest.raises(ValueError, match=r"unknown TransformerConfig field\(s\) \['heads', 'width'\]"):
        config.replace(width=3, heads=2)
    assert TransformerConfig(**config.to_dict()) == config


# ---------------------------------------------------------------- embeddings


def test_shared_embeddings():
    model = Transformer(_config(share_embeddings=True))
    assert model.decoder_embedding is model.encoder_embedding
    separate = Transformer(_config())
    assert separate.count_params() - model.count_params() == VOCAB * 16
    assert model.count_params() == expected_parameter_count(model.config)
    # Every trainable variable appears once.
    paths = [w.path for w in model.trainable_weights]
    assert len(paths) == len(set(paths))
    logits = model(_inputs())
    assert tuple(logits.shape) == (2, 5, VOCAB)


def test_shared_embeddings_with_learned_positions():
    """share_embeddings + learned positions is a valid config and must build.

    Currently fails: ``Transformer.build`` builds the shared embedding twice and
    ``LearnedPositionEmbedding.build`` then adds its weight to an already-built
    layer (keras raises "You cannot add new elements of state ...").
    """
    config = _config(share_embeddings=True, position_encoding="learned")
    model = Transformer(config)
    assert model.decoder_embedding is model.encoder_embedding
    assert model.count_params() == expected_parameter_count(config)
    assert tuple(model(_inputs()).shape) == (2, 5, VOCAB)
    incremental, _ = _decode_step_by_step(model, ENCODER_TOKENS, DECODER_TOKENS, 6)
    np.testing.assert_allclose(incremental, _np(model(_inputs())), atol=1e-5)


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("normalize_first", [False, True])
def test_tied_output_embeddings(share, normalize_first):
    model = Transformer(
        _config(tie_output_embeddings=True, share_embeddings=share, normalize_first=normalize_first)
    )
    assert model.output_projection is None
    assert not any("output_projection" in w.path for w in model.weights)
    assert model.count_params() == expected_parameter_count(model.config)
    logits = _np(model(_inputs()))

    # Recompute the decoder's hidden states and project them on E^T by hand.
    encoder_output, encoder_mask = model.encode(ENCODER_TOKENS)
    hidden = model.decoder_embedding(DECODER_TOKENS)
    for block in model.decoder_blocks:
        hidden = block(hidden, encoder_output, encoder_padding_mask=encoder_mask)
    if model.decoder_norm is not None:
        hidden = model.decoder_norm(hidden)
    embeddings = _np(model.decoder_embedding.embeddings)
    assert embeddings.shape == (VOCAB, 16)
    np.testing.assert_allclose(logits, _np(hidden) @ embeddings.T, atol=1e-4)


def test_gradients_reach_every_weight():
    model = Transformer(_config(tie_output_embeddings=True, normalize_first=True))
    labels = np.roll(DECODER_TOKENS, -1, axis=1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(_inputs(), training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    missing = [w.path for w, g in zip(model.trainable_weights, gradients) if g is None]
    assert not missing
    assert all(np.all(np.isfinite(_np(g))) for g in gradients)


# ---------------------------------------------------------------- serialization


def test_get_config_from_config_round_trip():
    model = Transformer(_config(normalize_first=True, position_encoding="learned"), name="seq2seq")
    config = model.get_config()
    assert config["config"] == model.config.to_dict()
    assert config["name"] == "seq2seq"
    revived = Transformer.from_config(config)
    assert revived.config == model.config
    assert revived.name == "seq2seq"
    assert [w.shape for w in revived.weights] == [w.shape for w in model.weights]
    revived.set_weights(model.get_weights())
    assert_outputs_close(revived(_inputs()), model(_inputs()), atol=1e-6)
    # Also through keras' generic (de)serialization.
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(again, Transformer) and again.config == model.config


@pytest.mark.parametrize(
    "changes",
    [
        dict(),
        dict(normalize_first=True, position_encoding="learned", tie_output_embeddings=True),
        dict(share_embeddings=True, tie_output_embeddings=True),
    ],
    ids=["default", "prenorm_learned_tied", "shared_tied"],
)
def test_keras_file_round_trip(changes, tmp_path):
    model = Transformer(_config(**changes))
    expected = _np(model(_inputs()))

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, Transformer)
    assert loaded.config == model.config
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(_np(a), _np(b))
    np.testing.assert_allclose(_np(loaded(_inputs())), expected, atol=1e-6)
    # Incremental decoding works on the loaded model as well.
    incremental, _ = _decode_step_by_step(loaded, ENCODER_TOKENS, DECODER_TOKENS, 5)
    np.testing.assert_allclose(incremental, expected, atol=1e-5)


# ---------------------------------------------------------------- incremental decoding


def _decode_step_by_step(model, encoder_tokens, decoder_tokens, max_length, step=None):
    encoder_output, encoder_mask = model.encode(encoder_tokens)
    cache = model.init_cache(encoder_output, encoder_mask, max_length)
    step = step or model.decode_step
    logits = []
    for i in range(decoder_tokens.shape[1]):
        step_logits, cache = step(decoder_tokens[:, i : i + 1], cache, i)
        logits.append(_np(step_logits))
    return np.concatenate(logits, axis=1), cache


@pytest.mark.parametrize("normalize_first", [False, True], ids=["postnorm", "prenorm"])
@pytest.mark.parametrize("position_encoding", ["sinusoidal", "learned"])
def test_decode_step_equals_full_call(normalize_first, position_encoding):
    model = Transformer(
        _config(normalize_first=normalize_first, position_encoding=position_encoding)
    )
    full = _np(model(_inputs()))
    max_length = 8
    incremental, cache = _decode_step_by_step(model, ENCODER_TOKENS, DECODER_TOKENS, max_length)
    np.testing.assert_allclose(incremental, full, atol=1e-5)

    assert set(cache) == {"self_attention", "cross_attention", "encoder_padding_mask"}
    # One (keys, values) pair per decoder layer, (batch, heads, length, head_dim) each.
    shapes = keras.tree.map_structure(lambda x: tuple(x.shape), cache)
    assert shapes["self_attention"] == (((2, 2, max_length, 8),) * 2,) * 2
    assert shapes["cross_attention"] == (((2, 2, 6, 8),) * 2,) * 2
    # Positions never decoded stay empty.
    for part in keras.tree.flatten(cache["self_attention"]):
        assert np.all(_np(part)[:, :, 5:] == 0.0)


def test_decode_step_under_tf_function_with_tensor_index():
    model = Transformer(_config(position_encoding="learned", tie_output_embeddings=True))
    full = _np(model(_inputs()))

    @tf.function
    def step(tokens, cache, index):
        return model.decode_step(tokens, cache, tf.convert_to_tensor(index))

    incremental, _ = _decode_step_by_step(model, ENCODER_TOKENS, DECODER_TOKENS, 5, step)
    np.testing.assert_allclose(incremental, full, atol=1e-5)


# ---------------------------------------------------------------- padding


@pytest.mark.parametrize("normalize_first", [False, True])
def test_extra_encoder_padding_does_not_change_logits(normalize_first):
    model = Transformer(_config(normalize_first=normalize_first))
    logits = _np(model(_inputs()))
    padded = np.concatenate([ENCODER_TOKENS, np.zeros((2, 4), "int32")], axis=1)
    np.testing.assert_allclose(_np(model(_inputs(padded))), logits, atol=1e-5)
    trimmed = ENCODER_TOKENS[:, :4]  # drops only PAD columns
    np.testing.assert_allclose(_np(model(_inputs(trimmed))), logits, atol=1e-5)
    # A real token in place of PAD does change them (the check above is not vacuous).
    changed = ENCODER_TOKENS.copy()
    changed[1, 3] = 7
    assert not np.allclose(_np(model(_inputs(changed)))[1], logits[1], atol=1e-4)


def test_later_decoder_tokens_do_not_change_earlier_logits():
    model = Transformer(_config())
    logits = _np(model(_inputs()))
    changed = DECODER_TOKENS.copy()
    changed[:, 3:] = 9
    np.testing.assert_allclose(_np(model(_inputs(decoder_tokens=changed)))[:, :3], logits[:, :3], atol=1e-5)


# ---------------------------------------------------------------- training


def test_mixed_bfloat16_fit_step_and_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        # One layer each: keras' graph tracing of a train step is slow on CPU.
        model = Transformer(_config(dropout=0.1, num_encoder_layers=1, num_decoder_layers=1))
        assert model.compute_dtype == "bfloat16"
        assert model.encoder_blocks[0].compute_dtype == "bfloat16"
        assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in model.weights)
        model.compile(
            jit_compile=False,
            # SGD: tracing Adam's per-variable update is several seconds on CPU.
            optimizer=keras.optimizers.SGD(0.05),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
        )
        before = [_np(w).copy() for w in model.trainable_weights]
        labels = np.roll(DECODER_TOKENS, -1, axis=1)
        dataset = tf.data.Dataset.from_tensor_slices((_inputs(), labels)).batch(2)
        history = model.fit(dataset, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = [_np(w) for w in model.trainable_weights]
        assert sum(not np.array_equal(a, b) for a, b in zip(before, after)) == len(before)

        logits = model(_inputs())
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
        assert np.all(np.isfinite(_np(logits)))
        # Incremental decoding works under the policy as well.
        incremental, _ = _decode_step_by_step(model, ENCODER_TOKENS, DECODER_TOKENS, 5)
        assert np.all(np.isfinite(incremental))
        np.testing.assert_allclose(incremental, _np(logits), atol=0.1, rtol=0.05)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_dtype_argument_mixed_bfloat16():
    model = Transformer(_config(tie_output_embeddings=True), dtype="mixed_bfloat16")
    assert model.decoder_blocks[0].compute_dtype == "bfloat16"
    logits = model(_inputs())
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.all(np.isfinite(_np(logits)))


def _reversal_pairs(count=8, seed=0):
    """``count`` sentence pairs: the target is the reversed source, then END."""
    rng = np.random.default_rng(seed)
    bos, end, length = 1, 2, 8
    encoder = np.zeros((count, length), "int32")
    decoder = np.zeros((count, length), "int32")
    labels = np.zeros((count, length), "int32")
    for i in range(count):
        n = int(rng.integers(3, length))
        source = rng.integers(3, VOCAB, size=n)
        target = list(source[::-1]) + [end]
        encoder[i, :n] = source
        decoder[i, : n + 1] = [bos] + target[:-1]
        labels[i, : n + 1] = target
    return encoder, decoder, labels


def test_tiny_model_overfits_a_few_pairs():
    encoder, decoder, labels = _reversal_pairs()
    model = Transformer(
        _config(
            hidden_dim=32, num_heads=4, intermediate_dim=64, normalize_first=True,
            num_encoder_layers=1, num_decoder_layers=1,
        )
    )
    model.compile(
        jit_compile=False,
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID),
    )
    inputs = {"encoder_tokens": encoder, "decoder_tokens": decoder}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).repeat(250).batch(8)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])

    predictions = np.argmax(_np(model(inputs)), axis=-1)
    real = labels != PAD_ID
    accuracy = float(np.mean(predictions[real] == labels[real]))
    assert accuracy > 0.95, accuracy
    # Greedy incremental decoding reproduces the targets too.
    encoder_output, encoder_mask = model.encode(encoder)
    cache = model.init_cache(encoder_output, encoder_mask, decoder.shape[1])
    tokens = np.ones((len(encoder), 1), "int32")
    generated = []
    for i in range(decoder.shape[1]):
        step_logits, cache = model.decode_step(tokens, cache, i)
        tokens = np.argmax(_np(step_logits), axis=-1).astype("int32")
        generated.append(tokens[:, 0])
    generated = np.stack(generated, axis=1)
    assert float(np.mean(generated[real] == labels[real])) > 0.95


def test_cache_dtypes_follow_the_compute_dtype_under_mixed_bfloat16():
    model = Transformer.from_preset(
        "tiny", encoder_vocabulary_size=20, decoder_vocabulary_size=20, dtype="mixed_bfloat16"
    )
    encoder_output, mask = model.encode(np.array([[5, 6, 7, 0]]))
    cache = model.init_cache(encoder_output, mask, 8)
    for part in keras.tree.flatten((cache["self_attention"], cache["cross_attention"])):
        assert keras.backend.standardize_dtype(part.dtype) == "bfloat16"
