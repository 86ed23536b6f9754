"""Keras 3 features on our layers and models through their EinsumDense/Dense
sublayers: ``quantize("int8")`` and its saving, ``enable_lora``, dtype policy
maps, and files written before the projections were sublayers."""

import os

import keras
import numpy as np
import pytest

from keras_attention.layers import MultiHeadAttention, TransformerEncoderBlock
from keras_attention.models import Transformer
from keras_attention.training import sequence_loss

LEGACY = os.path.join(os.path.dirname(__file__), "..", "models", "legacy")
DIM = 8
X = np.random.default_rng(0).normal(size=(3, 5, DIM)).astype("float32")
INPUTS = {"encoder_tokens": np.array([[5, 6, 7, 9, 0], [4, 8, 0, 0, 0]], "int32"),
          "decoder_tokens": np.array([[1, 8, 9, 3], [1, 5, 0, 0]], "int32")}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _model(**changes):
    keras.utils.set_random_seed(0)
    return Transformer.from_preset("tiny", encoder_vocabulary_size=20, decoder_vocabulary_size=20,
                                   max_sequence_length=12, num_encoder_layers=1,
                                   num_decoder_layers=1, **changes)


def _functional(layer):
    inputs = keras.Input((5, DIM))
    return keras.Model(inputs, layer(inputs))


def _kernels(model):
    return {v.path: _np(v) for v in model.weights if "lora" not in v.path}


def test_projections_are_keras_einsum_dense_layers():
    layer = MultiHeadAttention(num_heads=2, key_dim=4, name="attention")
    layer(X)
    assert [type(d) for d in (layer.query_dense, layer.key_dense, layer.value_dense,
                              layer.output_dense)] == [keras.layers.EinsumDense] * 4
    assert [w.path for w in layer.weights] == [
        f"attention/{name}/{kind}"
        for name in ("query", "key", "value", "attention_output") for kind in ("kernel", "bias")]


@pytest.mark.parametrize("kind", ["attention", "encoder_block"])
def test_quantize_int8_and_its_keras_file(kind, tmp_path):
    keras.utils.set_random_seed(0)
    layer = MultiHeadAttention(2, 4) if kind == "attention" else TransformerEncoderBlock(16, 2)
    model = _functional(layer)
    expected = _np(model(X))
    model.quantize("int8")
    quantized = _np(model(X))
    int8 = [v.path for v in model.weights if v.dtype == "int8"]
    assert len(int8) == (4 if kind == "attention" else 6)  # 4 projections (+ 2 feed-forward)
    assert np.abs(quantized - expected).max() < 0.05 * np.abs(expected).max()
    assert not np.array_equal(quantized, expected)
    # keras.layers.MultiHeadAttention's config forgets its quantized sublayers
    # (such a model does not load); ours name them in a DTypePolicyMap.
    model.save(tmp_path / "int8.keras")
    reloaded = keras.saving.load_model(tmp_path / "int8.keras")
    assert sorted(v.path for v in reloaded.weights if v.dtype == "int8") == sorted(int8)
    np.testing.assert_array_equal(_np(reloaded(X)), quantized)


@pytest.mark.parametrize("changes", [{}, dict(share_embeddings=True, tie_output_embeddings=True)],
                         ids=["separate", "tied"])
def test_transformer_quantizes_to_int8_and_reloads(changes, tmp_path):
    model = _model(**changes)
    expected = _np(model(INPUTS))
    model.quantize("int8")
    quantized = _np(model(INPUTS))
    probabilities = [keras.ops.softmax(x) for x in (expected, quantized)]
    assert np.abs(_np(probabilities[0]) - _np(probabilities[1])).max() < 0.02
    assert {"int8"} < {v.dtype for v in model.weights}
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(_np(reloaded(INPUTS)), quantized)
    assert reloaded.count_params() == model.count_params()


def test_dtype_policy_map_sets_one_projection():
    policy = keras.dtype_policies.DTypePolicyMap(
        default_policy="float32",
        policy_map={"attention/value": keras.dtype_policies.get("bfloat16")})
    layer = MultiHeadAttention(2, 4, dtype=policy, name="attention")
    layer(X)
    assert layer.value_dense.compute_dtype == "bfloat16"
    assert layer.value_dense.kernel.dtype == "bfloat16"
    assert {d.compute_dtype for d in (layer.query_dense, layer.key_dense,
                                      layer.output_dense)} == {"float32"}
    assert layer.compute_dtype == "float32"


def test_lora_on_attention_trains_only_the_adapters():
    layer = MultiHeadAttention(2, 4, name="attention")
    layer(X)
    before = _np(layer(X))
    layer.enable_lora(2)
    # B starts at zero: the same outputs until it trains.
    np.testing.assert_allclose(_np(layer(X)), before, atol=1e-6)
    trainable = sorted(v.path for v in layer.trainable_weights)
    assert [p for p in trainable if "lora" in p] == [
        "attention/query/lora_kernel_a", "attention/query/lora_kernel_b",
        "attention/value/lora_kernel_a", "attention/value/lora_kernel_b"]
    assert "attention/query/kernel" not in trainable
    with pytest.raises(ValueError, match=r"unknown projections \['gate'\]"):
        _built().enable_lora(2, projections=["gate"])
    with pytest.raises(ValueError, match="is not built; call it once before enable_lora"):
        MultiHeadAttention(2, 4).enable_lora(2)


def _built():
    layer = MultiHeadAttention(2, 4)
    layer(X)
    return layer


def test_transformer_lora_fine_tuning_changes_only_adapters_and_saves_merged(tmp_path):
    model = _model()
    frozen = _kernels(model)
    total = model.count_params()
    trained_parameters = model.enable_lora(4)
    names = {v.path.split("/")[-1] for v in model.trainable_variables}
    assert names == {"lora_kernel_a", "lora_kernel_b", "bias"}
    assert trained_parameters == sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert trained_parameters < 0.15 * total
    labels = np.array([[8, 9, 3, 2], [5, 2, 0, 0]], "int32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=sequence_loss())
    first = model.evaluate(INPUTS, labels, verbose=0)
    model.fit(INPUTS, labels, epochs=8, verbose=0)
    assert model.evaluate(INPUTS, labels, verbose=0) < first
    after = _kernels(model)
    changed = sorted(p for p in frozen if not np.array_equal(frozen[p], after[p]))
    assert changed and all(p.endswith(("query/bias", "value/bias")) for p in changed), changed
    tuned = _np(model(INPUTS))
    model.save(tmp_path / "lora.keras")
    merged = keras.saving.load_model(tmp_path / "lora.keras")
    assert not any("lora" in v.path for v in merged.weights)
    assert merged.count_params() == total
    np.testing.assert_allclose(_np(merged(INPUTS)), tuned, atol=1e-5)


def test_a_file_from_before_the_sublayers_loads_with_its_outputs(tmp_path):
    """``legacy/transformer_0.keras`` was written when the projections were
    the attention layer's own weights; it loads into the sublayers unchanged."""
    recorded = np.load(os.path.join(LEGACY, "transformer_0_outputs.npz"))
    model = keras.saving.load_model(os.path.join(LEGACY, "transformer_0.keras"))
    inputs = {k: recorded[k] for k in ("encoder_tokens", "decoder_tokens")}
    np.testing.assert_array_equal(_np(model(inputs)), recorded["logits"])
    model.save(tmp_path / "current.keras")  # the current layout loads again
    np.testing.assert_array_equal(
        _np(keras.saving.load_model(tmp_path / "current.keras")(inputs)), recorded["logits"])


def test_the_int8_benchmark_measures_both_models_in_one_run():
    from benchmark_scripts import load_benchmark

    result = load_benchmark("keras_int8").run(batch_size=2, length=3, repeats=1, preset="tiny",
                                              vocabulary_size=200, strategies=("greedy",))
    assert "int8_beam4_sentences_per_s" not in result
    for name in ("greedy",):
        ratio = (result[f"int8_{name}_sentences_per_s"]
                 / result[f"float32_{name}_sentences_per_s"])
        assert result[f"int8_over_float32_{name}"] == pytest.approx(ratio, abs=1e-3)
    assert 0 < result["max_probability_change"] < 0.05
    assert 0.5 <= result["same_argmax_fraction"] <= 1.0
