"""Copy (pointer-generator) attention of ``Transformer`` (``copy_attention=True``)
and the ``summarization`` preset: the outputs are log-probabilities of
``p_gen * softmax(vocabulary logits) + (1 - p_gen) * copy``, cached decoding
equals uncached decoding, serialization keeps the option, and a copy model
learns to copy ids it has barely seen as targets."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data import WordTokenizer
from keras_attention.decoding import DecodingConfig, cached_steps, generate, uncached_steps
from keras_attention.models import (
    PRESETS,
    TrainedModel,
    Transformer,
    TransformerConfig,
    get_preset,
    load_trained_model,
    save_trained_model,
)
from keras_attention.models.transformer import scatter_to_vocabulary
from keras_attention.training import sequence_loss
from keras_attention.training.config import ModelConfig
from models import test_transformer as transformer_tests
from models.test_transformer import _np

pytestmark = pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")

VOCAB = 17
# Repeated source ids (5 twice) and padding.
ENCODER_TOKENS = np.array([[5, 7, 5, 9, 0, 0], [3, 9, 4, 0, 0, 0]], dtype="int32")
DECODER_TOKENS = np.array([[1, 10, 11, 12, 13], [1, 14, 15, 0, 0]], dtype="int32")


def _inputs(encoder_tokens=ENCODER_TOKENS, decoder_tokens=DECODER_TOKENS):
    return {"encoder_tokens": encoder_tokens, "decoder_tokens": decoder_tokens}


def _config(**changes):
    """test_transformer's very small model, with one encoder layer and copy."""
    return transformer_tests._config(
        **{"num_encoder_layers": 1, "share_embeddings": True, "copy_attention": True, **changes}
    )


def _force_gate(model, bias):
    """p_gen = sigmoid(bias): 0 for a very negative bias, 1 for a very positive one."""
    kernel, _ = model.copy_gate.get_weights()
    model.copy_gate.set_weights([np.zeros_like(kernel), np.array([bias], "float32")])


def _scatter(weights, ids, vocabulary_size):
    """NumPy reference: out[b, t, v] = sum_s weights[b, t, s] * (ids[b, s] == v)."""
    return np.einsum("bts,bsv->btv", weights, np.eye(vocabulary_size)[ids])


def _last_cross_attention(model, encoder_tokens=ENCODER_TOKENS, decoder_tokens=DECODER_TOKENS):
    """The last decoder layer's cross-attention averaged over heads, PAD columns zeroed."""
    scores = _np(model.attention_scores(encoder_tokens, decoder_tokens)["cross"][-1]).mean(axis=1)
    return scores * (encoder_tokens != 0)[:, None, :]


# ---------------------------------------------------------------- the mixture


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_outputs_are_log_probabilities(dtype):
    model = Transformer(_config(), dtype=dtype)
    outputs = model(_inputs())
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    assert tuple(outputs.shape) == (2, 5, VOCAB)
    probabilities = np.exp(_np(outputs))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    # softmax(log p) == p: losses and decoders that log-softmax logits see p.
    np.testing.assert_allclose(_np(keras.ops.softmax(outputs)), probabilities, atol=1e-6)
    assert model.copy_gate.compute_dtype == "float32"


def test_copy_only_output_is_the_scattered_attention_golden():
    model = Transformer(_config())
    _force_gate(model, -1e4)
    # Zero query projection of the last layer's cross-attention: equal scores,
    # so the attention is uniform over the 4 real source tokens of row 0 (5, 7,
    # 5, 9) and the 3 of row 1 (3, 9, 4).
    attention = model.decoder_blocks[-1].cross_attention
    attention.query_dense.kernel.assign(np.zeros(attention.query_dense.kernel.shape, "float32"))
    attention.query_dense.bias.assign(np.zeros(attention.query_dense.bias.shape, "float32"))
    probabilities = np.exp(_np(model(_inputs())))
    expected = np.zeros((2, VOCAB))
    expected[0, [5, 7, 9]] = [0.5, 0.25, 0.25]  # the two 5s add up
    expected[1, [3, 9, 4]] = 1 / 3
    for t in range(5):
        np.testing.assert_allclose(probabilities[:, t], expected, atol=1e-6)


def test_copy_only_output_scatters_the_last_layers_attention():
    model = Transformer(_config())
    _force_gate(model, -1e4)
    probabilities = np.exp(_np(model(_inputs())))
    attention = _last_cross_attention(model)
    assert not np.allclose(attention[0, :, 0], attention[0, :, 2])  # not a uniform case
    expected = _scatter(attention, ENCODER_TOKENS, VOCAB)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(probabilities[0, :, 5], attention[0, :, 0] + attention[0, :, 2], atol=1e-6)
    # PAD (id 0) is in the source but gets no copy mass.
    assert np.all(probabilities[..., 0] < 1e-12)


def test_generate_only_output_is_the_vocabulary_softmax():
    model = Transformer(_config(), name="seq2seq")
    _force_gate(model, 1e4)
    plain = Transformer(_config(copy_attention=False), name="seq2seq")
    weights = {w.path: w for w in model.weights}
    for w in plain.weights:
        w.assign(weights[w.path])
    assert len(model.weights) == len(plain.weights) + 2  # the gate's kernel and bias
    expected = _np(keras.ops.log_softmax(plain(_inputs()), axis=-1))
    np.testing.assert_allclose(_np(model(_inputs())), expected, atol=1e-5)
    np.testing.assert_allclose(_np(model.logits(np.zeros((1, 1, 16), "float32"))),
                               _np(plain.logits(np.zeros((1, 1, 16), "float32"))))


def test_gate_is_the_see_et_al_formula():
    """p = p_gen * softmax(logits) + (1 - p_gen) * copy with p_gen = sigmoid(w . [s, c, x] + b)."""
    model = Transformer(_config(tie_output_embeddings=True))
    rng = np.random.default_rng(0)
    kernel = rng.normal(scale=0.1, size=(48, 1)).astype("float32")
    model.copy_gate.set_weights([kernel, np.array([0.3], "float32")])

    encoder_output, encoder_mask = model.encode(ENCODER_TOKENS)
    embedded = _np(model.decoder_embedding(DECODER_TOKENS))
    hidden = embedded
    for block in model.decoder_blocks:
        hidden = block(hidden, encoder_output, encoder_padding_mask=encoder_mask)
    state = _np(hidden)
    attention = _last_cross_attention(model)
    context = np.einsum("bts,bsd->btd", attention, _np(encoder_output))
    p_gen = 1 / (1 + np.exp(-(np.concatenate([state, context, embedded], -1) @ kernel + 0.3)))
    logits = state @ _np(model.decoder_embedding.embeddings).T
    vocabulary = np.exp(logits - logits.max(-1, keepdims=True))
    vocabulary /= vocabulary.sum(-1, keepdims=True)
    expected = p_gen * vocabulary + (1 - p_gen) * _scatter(attention, ENCODER_TOKENS, VOCAB)
    assert 0.05 < p_gen.min() and p_gen.max() < 0.95  # both terms matter here
    np.testing.assert_allclose(np.exp(_np(model(_inputs()))), expected, atol=1e-5)


def test_scatter_to_vocabulary_and_its_gradient():
    rng = np.random.default_rng(1)
    weights = rng.random((2, 3, 6)).astype("float32")
    ids = np.array([[4, 2, 4, 0, 1, 4], [3, 3, 3, 3, 2, 1]], "int32")
    np.testing.assert_allclose(_np(scatter_to_vocabulary(weights, ids, 5)),
                               _scatter(weights, ids, 5), atol=1e-6)
    upstream = rng.random((2, 3, 5)).astype("float32")
    variable = tf.Variable(weights)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(scatter_to_vocabulary(variable, ids, 5) * upstream)
    # d/dw[b, t, s] = upstream[b, t, ids[b, s]]
    expected = np.take_along_axis(upstream, np.broadcast_to(ids[:, None, :], (2, 3, 6)), axis=2)
    np.testing.assert_allclose(_np(tape.gradient(total, variable)), expected, atol=1e-6)


def test_padding_gets_no_copy_mass_and_changes_nothing():
    model = Transformer(_config())
    outputs = _np(model(_inputs()))
    padded = np.concatenate([ENCODER_TOKENS, np.zeros((2, 5), "int32")], axis=1)
    np.testing.assert_allclose(_np(model(_inputs(padded))), outputs, atol=1e-5)
    np.testing.assert_allclose(_np(model(_inputs(ENCODER_TOKENS[:, :4]))), outputs, atol=1e-5)


def test_all_padding_source_puts_all_mass_on_the_vocabulary():
    model = Transformer(_config())
    empty = np.zeros((1, 4), "int32")
    outputs = _np(model(_inputs(empty, DECODER_TOKENS[:1])))
    np.testing.assert_allclose(np.exp(outputs).sum(-1), 1.0, atol=1e-5)
    _force_gate(model, 1e4)
    np.testing.assert_allclose(_np(model(_inputs(empty, DECODER_TOKENS[:1]))), outputs, atol=1e-5)


def test_sequence_loss_is_the_negative_log_probability_and_gradients_reach_every_weight():
    model = Transformer(_config(tie_output_embeddings=True, normalize_first=True, dropout=0.1))
    labels = np.roll(DECODER_TOKENS, -1, axis=1)
    outputs = _np(model(_inputs()))
    real = labels != 0
    picked = np.take_along_axis(outputs, labels[..., None], axis=-1)[..., 0]
    loss = float(sequence_loss()(labels, outputs))
    np.testing.assert_allclose(loss, -picked[real].mean(), rtol=1e-5)

    with tf.GradientTape() as tape:
        loss = sequence_loss()(labels, model(_inputs(), training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    assert not [w.path for w, g in zip(model.trainable_weights, gradients) if g is None]
    assert all(np.all(np.isfinite(_np(g))) for g in gradients)
    by_path = dict(zip([w.path for w in model.trainable_weights], gradients))
    assert np.any(_np(by_path[model.copy_gate.kernel.path]) != 0)


# ---------------------------------------------------------------- cached decoding


def _decode_step_by_step(model, encoder_tokens, decoder_tokens, max_length):
    encoder_output, encoder_mask = model.encode(encoder_tokens)
    cache = model.init_cache(encoder_output, encoder_mask, max_length, encoder_tokens=encoder_tokens)
    outputs = []
    for i in range(decoder_tokens.shape[1]):
        step, cache = model.decode_step(decoder_tokens[:, i : i + 1], cache, i)
        outputs.append(_np(step))
    return np.concatenate(outputs, axis=1), cache


@pytest.mark.parametrize("normalize_first", [False, True])
def test_decode_step_equals_decode(normalize_first):
    model = Transformer(_config(normalize_first=normalize_first, tie_output_embeddings=True))
    full = _np(model(_inputs()))
    encoder_output, encoder_mask = model.encode(ENCODER_TOKENS)
    uncached = model.decode(DECODER_TOKENS, encoder_output, encoder_mask, encoder_tokens=ENCODER_TOKENS)
    np.testing.assert_allclose(_np(uncached), full, atol=1e-6)
    incremental, cache = _decode_step_by_step(model, ENCODER_TOKENS, DECODER_TOKENS, 8)
    np.testing.assert_allclose(incremental, full, atol=1e-5)
    assert set(cache) == {
        "self_attention", "cross_attention", "encoder_padding_mask", "encoder_tokens", "encoder_output"
    }
    np.testing.assert_array_equal(_np(cache["encoder_tokens"]), ENCODER_TOKENS)


def test_decode_step_under_tf_function():
    model = Transformer(_config())
    full = _np(model(_inputs()))
    encoder_output, encoder_mask = model.encode(ENCODER_TOKENS)
    cache = model.init_cache(encoder_output, encoder_mask, 5, encoder_tokens=ENCODER_TOKENS)
    step = tf.function(model.decode_step)
    outputs = []
    for i in range(5):
        out, cache = step(DECODER_TOKENS[:, i : i + 1], cache, tf.constant(i))
        outputs.append(_np(out))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, atol=1e-5)


@pytest.mark.parametrize(
    "config",
    [DecodingConfig(), DecodingConfig(strategy="beam", beam_size=3, n_best=2)],
    ids=["greedy", "beam"],
)
def test_generate_cached_equals_uncached(config):
    keras.utils.set_random_seed(3)
    model = Transformer(_config(max_sequence_length=10))
    _force_gate(model, -1.0)  # copy matters: p_gen ~ 0.27
    sources = np.array([[5, 7, 5, 9, 11, 0], [3, 9, 4, 0, 0, 0], [8, 0, 0, 0, 0, 0]], "int32")
    cached = generate(model, sources, config, cached_steps(model))
    uncached = generate(model, sources, config, uncached_steps(model))
    np.testing.assert_array_equal(_np(cached.ids), _np(uncached.ids))
    np.testing.assert_allclose(_np(cached.scores), _np(uncached.scores), atol=1e-4)
    assert _np(cached.ids).shape[:2] == (3, config.n_best)


def test_copy_model_needs_the_source_ids():
    model = Transformer(_config())
    encoder_output, encoder_mask = model.encode(ENCODER_TOKENS)
    message = (r"this model copies from the source \(copy_attention=True\), so decode needs "
               r"the source ids: pass encoder_tokens=...")
    with pytest.raises(ValueError, match=message):
        model.decode(DECODER_TOKENS, encoder_output, encoder_mask)
    with pytest.raises(ValueError, match="so init_cache needs the source ids"):
        model.init_cache(encoder_output, encoder_mask, 5)
    # A model without copy ignores them and keeps its cache as before.
    plain = Transformer(_config(copy_attention=False))
    encoder_output, encoder_mask = plain.encode(ENCODER_TOKENS)
    cache = plain.init_cache(encoder_output, encoder_mask, 5, encoder_tokens=ENCODER_TOKENS)
    assert set(cache) == {"self_attention", "cross_attention", "encoder_padding_mask"}
    np.testing.assert_allclose(
        _np(plain.decode(DECODER_TOKENS, encoder_output, encoder_mask, encoder_tokens=ENCODER_TOKENS)),
        _np(plain.decode(DECODER_TOKENS, encoder_output, encoder_mask)))


# ---------------------------------------------------------------- configuration


def test_copy_attention_needs_shared_embeddings():
    message = (r"copy_attention needs share_embeddings=True \(one vocabulary, so a source id is "
               r"a target id\); set share_embeddings=True and build a shared vocabulary.")
    with pytest.raises(ValueError, match=message):
        _config(share_embeddings=False)
    with pytest.raises(ValueError, match=message):
        get_preset("small", copy_attention=True)
    with pytest.raises(ValueError, match="copy_attention must be true or false, got 'yes'"):
        _config(copy_attention="yes")
    with pytest.raises(ValueError, match="^changes: copy_attention needs share_embeddings=True"):
        ModelConfig(preset="small", changes={"copy_attention": True})


def test_summarization_preset():
    config = PRESETS["summarization"]
    assert (config.num_encoder_layers, config.num_decoder_layers) == (3, 3)
    assert (config.hidden_dim, config.num_heads, config.intermediate_dim) == (256, 4, 1024)
    assert config.dropout == 0.1 and config.max_sequence_length == 1024
    assert config.share_embeddings and config.tie_output_embeddings
    assert not config.copy_attention
    # As training builds it: vocabulary sizes from the (shared) tokenizer, and
    # a recipe's ``model.changes``.
    model_config = ModelConfig(preset="summarization", changes={"copy_attention": True})
    built = model_config.transformer_config(300, 300)
    assert built == config.replace(encoder_vocabulary_size=300, decoder_vocabulary_size=300,
                                   copy_attention=True)
    model = Transformer(built)
    assert model.decoder_embedding is model.encoder_embedding
    assert model.output_projection is None and model.copy_gate is not None
    # Embeddings once (300 x 256), the gate 3 * 256 + 1, no output layer.
    plain = Transformer.from_preset("summarization", encoder_vocabulary_size=300,
                                    decoder_vocabulary_size=300)
    assert model.count_params() - plain.count_params() == 3 * 256 + 1
    outputs = model(_inputs(), training=False)
    np.testing.assert_allclose(np.exp(_np(outputs)).sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="share_embeddings needs one vocabulary"):
        model_config.transformer_config(300, 400)


# ---------------------------------------------------------------- serialization


def test_get_config_and_keras_file_round_trip(tmp_path):
    model = Transformer(_config(normalize_first=True, tie_output_embeddings=True))
    _force_gate(model, -0.5)
    expected = _np(model(_inputs()))
    config = model.get_config()
    assert config["config"]["copy_attention"] is True
    revived = Transformer.from_config(config)
    assert revived.config == model.config
    revived.set_weights(model.get_weights())
    np.testing.assert_allclose(_np(revived(_inputs())), expected, atol=1e-6)

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.config.copy_attention
    np.testing.assert_allclose(_np(loaded(_inputs())), expected, atol=1e-6)
    incremental, _ = _decode_step_by_step(loaded, ENCODER_TOKENS, DECODER_TOKENS, 5)
    np.testing.assert_allclose(incremental, expected, atol=1e-5)


def test_older_configs_without_the_field_load_as_no_copy():
    config = _config(copy_attention=False).to_dict()
    del config["copy_attention"]
    assert not TransformerConfig(**config).copy_attention


def test_trained_model_folder_round_trip(tmp_path):
    texts = ["the cat sat on the mat", "a dog sat on a log", "the cat saw a dog"]
    tokenizer = WordTokenizer.build(texts)
    model = Transformer(_config(encoder_vocabulary_size=tokenizer.vocabulary_size,
                                decoder_vocabulary_size=tokenizer.vocabulary_size))
    source = tokenizer.tokenize(texts).to_tensor().numpy()
    decoder = np.concatenate([np.ones((3, 1), "int32"), source[:, :-1]], axis=1)
    expected = _np(model(_inputs(source, decoder)))
    trained = TrainedModel(model, tokenizer, tokenizer, task="summarization")
    save_trained_model(trained, str(tmp_path / "model"))
    loaded = load_trained_model(str(tmp_path / "model"))
    assert loaded.task == "summarization" and loaded.model.config.copy_attention
    np.testing.assert_allclose(_np(loaded.model(_inputs(source, decoder))), expected, atol=1e-6)


# ---------------------------------------------------------------- learning to copy

COPY_VOCAB, COMMON, RARE, LENGTH = 128, np.arange(4, 28), np.arange(28, 128), 10


def _copy_pairs(count, rng, rare_per_source=None, rare_fraction=0.1):
    """"Copy the source" pairs over the 24 common ids. In training a source
    holds one of 100 rare ids with probability ``rare_fraction`` (each rare id
    is a target a handful of times); ``rare_per_source`` puts that many rare
    ids in every source (the test set)."""
    encoder = np.zeros((count, LENGTH), "int32")
    decoder = np.zeros((count, LENGTH), "int32")
    labels = np.zeros((count, LENGTH), "int32")
    for i in range(count):
        n = int(rng.integers(3, 8))
        source = rng.choice(COMMON, size=n)
        if rare_per_source:
            positions = rng.choice(n, size=rare_per_source, replace=False)
            source[positions] = rng.choice(RARE, size=rare_per_source)
        elif rng.random() < rare_fraction:
            source[rng.integers(n)] = rng.choice(RARE)
        encoder[i, :n] = source
        decoder[i, 0], decoder[i, 1 : n + 1] = 1, source
        labels[i, :n], labels[i, n] = source, 2
    return encoder, decoder, labels


def _exact_match_after_training(copy_attention, steps=400, batch_size=32):
    keras.utils.set_random_seed(0)
    encoder, decoder, labels = _copy_pairs(steps * batch_size, np.random.default_rng(0))
    model = Transformer(
        TransformerConfig(
            encoder_vocabulary_size=COPY_VOCAB, decoder_vocabulary_size=COPY_VOCAB,
            num_encoder_layers=1, num_decoder_layers=1, hidden_dim=32, num_heads=2,
            intermediate_dim=64, dropout=0.0, max_sequence_length=LENGTH + 2,
            normalize_first=True, share_embeddings=True, tie_output_embeddings=True,
            copy_attention=copy_attention,
        )
    )
    # RMSprop: learns as fast as Adam here and traces in half the time on CPU.
    model.compile(optimizer=keras.optimizers.RMSprop(3e-3), loss=sequence_loss(), jit_compile=False)
    model.fit({"encoder_tokens": encoder, "decoder_tokens": decoder}, labels,
              batch_size=batch_size, epochs=1, verbose=0)
    test_encoder, _, test_labels = _copy_pairs(100, np.random.default_rng(99), rare_per_source=2)
    ids = _np(generate(model, test_encoder, DecodingConfig(max_length=LENGTH)).ids)[:, 0]
    width = min(ids.shape[1], LENGTH)
    return float(np.mean(np.all(ids[:, :width] == test_labels[:, :width], axis=1)))


def test_copy_model_learns_to_copy_rare_ids_a_plain_model_cannot():
    copy = _exact_match_after_training(copy_attention=True)
    plain = _exact_match_after_training(copy_attention=False)
    assert copy > 0.6 and plain < 0.2, (copy, plain)


def test_tflite_export_of_a_copy_model_decodes_as_generate(tmp_path):
    """The mixture uses TFLite builtin ops only (segment sum, logaddexp)."""
    from keras_attention.export.tflite import TFLiteDecoder, export_tflite

    keras.utils.set_random_seed(3)
    model = Transformer(_config(max_sequence_length=10))
    _force_gate(model, -1.0)
    sources = np.array([[5, 7, 5, 9, 11, 0], [3, 9, 4, 0, 0, 0], [8, 0, 0, 0, 0, 0]], "int32")
    expected = _np(generate(model, sources, DecodingConfig(max_length=8)).ids)[:, 0]
    path = export_tflite(model, str(tmp_path / "copy.tflite"), DecodingConfig(max_length=8), 6)
    np.testing.assert_array_equal(TFLiteDecoder(path)(sources), expected)
