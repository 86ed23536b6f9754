"""Head importance and pruning: a pruned model is the original with those
heads' outputs zeroed, physically smaller."""

import keras
import numpy as np
import pytest

from keras_attention.decoding import DecodingConfig, generate
from keras_attention.models import Transformer
from keras_attention.models.pruning import (
    attention_layers,
    head_importance,
    least_important,
    prune_heads,
)
from keras_attention.training.losses import SequenceCrossEntropy

INPUTS = {"encoder_tokens": np.array([[5, 6, 7, 9, 11, 0], [4, 8, 13, 0, 0, 0]], "int32"),
          "decoder_tokens": np.array([[1, 8, 9, 3, 12], [1, 5, 14, 0, 0]], "int32")}
LABELS = np.array([[8, 9, 3, 12, 2], [5, 14, 2, 0, 0]], "int32")
DROP = {"encoder_block_0/self_attention": [1, 3], "decoder_block_1/cross_attention": [0],
        "decoder_block_0/self_attention": [2]}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _model(**changes):
    keras.utils.set_random_seed(0)
    return Transformer.from_preset("tiny", encoder_vocabulary_size=20,
                                   decoder_vocabulary_size=20, max_sequence_length=12,
                                   dropout=0.0, **changes)


def _zeroed(model, heads):
    """A copy of ``model`` whose ``heads`` give no output (zero output-kernel rows)."""
    copy = Transformer(model.config)
    copy.set_weights(model.get_weights())
    for name, dropped in heads.items():
        kernel = attention_layers(copy)[name].output_dense.kernel
        value = _np(kernel)
        value[dropped] = 0.0
        kernel.assign(value)
    return copy


@pytest.mark.parametrize("changes", [{}, dict(normalize_first=True, share_embeddings=True,
                                              tie_output_embeddings=True)],
                         ids=["post_norm", "pre_norm_tied"])
def test_pruned_model_equals_the_original_with_those_heads_zeroed(changes, tmp_path):
    model = _model(**changes)
    pruned = prune_heads(model, DROP)
    assert pruned.config.attention_heads == {"encoder_block_0/self_attention": 2,
                                             "decoder_block_1/cross_attention": 3,
                                             "decoder_block_0/self_attention": 3}
    reference = _zeroed(model, DROP)
    np.testing.assert_allclose(_np(pruned(INPUTS)), _np(reference(INPUTS)), atol=1e-5)
    assert not np.allclose(_np(pruned(INPUTS)), _np(model(INPUTS)), atol=1e-3)
    # Physically smaller: 4 heads of head_dim 16 dropped, each (in 64 + 3 biases... )
    head = model.config.head_dim
    hidden = model.config.hidden_dim
    per_head = 3 * (hidden * head + head) + head * hidden
    assert model.count_params() - pruned.count_params() == 4 * per_head
    attention = attention_layers(pruned)["encoder_block_0/self_attention"]
    assert tuple(attention.query_dense.kernel.shape) == (hidden, 2, head)
    assert tuple(attention.output_dense.kernel.shape) == (2, head, hidden)
    # Cached decoding (per-layer cache shapes) gives the zeroed model's outputs.
    for config in (DecodingConfig(), DecodingConfig(strategy="beam", beam_size=3)):
        got, want = (generate(m, INPUTS["encoder_tokens"], config) for m in (pruned, reference))
        np.testing.assert_array_equal(_np(got.ids), _np(want.ids))
        np.testing.assert_allclose(_np(got.scores), _np(want.scores), atol=1e-4)
    pruned.save(tmp_path / "pruned.keras")
    reloaded = keras.saving.load_model(tmp_path / "pruned.keras")
    assert reloaded.config == pruned.config
    np.testing.assert_allclose(_np(reloaded(INPUTS)), _np(pruned(INPUTS)), atol=1e-6)


def test_importance_is_the_gradient_of_the_loss_at_a_head_gate():
    """Finite differences of the loss when one head's output is scaled by
    1 +- eps agree with the computed importance; a silenced head scores 0."""
    model = _zeroed(_model(), {"decoder_block_0/cross_attention": [2]})
    raw = head_importance(model, [(INPUTS, LABELS)], normalize=False)
    assert raw["decoder_block_0/cross_attention"][2] == 0.0
    loss_fn = SequenceCrossEntropy(0.0)
    # The most important head: its loss change stands well above float32 rounding.
    name, head = max(((n, h) for n, s in raw.items() for h in range(len(s))),
                     key=lambda nh: raw[nh[0]][nh[1]])
    kernel = attention_layers(model)[name].output_dense.kernel
    original = _np(kernel)
    eps = 0.05
    losses = []
    for gate in (1 + eps, 1 - eps):
        value = original.copy()
        value[head] *= gate
        kernel.assign(value)
        losses.append(float(loss_fn(LABELS, model(INPUTS))))
    kernel.assign(original)
    finite = abs(losses[0] - losses[1]) / (2 * eps)
    assert raw[name][head] == pytest.approx(finite, rel=0.02)
    normalized = head_importance(model, [(INPUTS, LABELS)])
    for name, scores in normalized.items():
        assert scores.shape == (4,)
        assert np.linalg.norm(scores) == pytest.approx(1.0, abs=1e-6)


def test_least_important_keeps_a_head_per_layer_and_counts():
    importance = {"a": np.array([0.1, 0.9]), "b": np.array([0.05, 0.01, 0.8])}
    assert least_important(importance, 2) == {"b": [0, 1]}
    assert least_important(importance, 3) == {"a": [0], "b": [0, 1]}
    with pytest.raises(ValueError, match=r"cannot prune 4 heads: the model has 5 in 2 attention "
                                         r"layers and keeps at least one per layer \(at most 3\)"):
        least_important(importance, 4)


def test_bad_prunings_are_refused():
    model = _model()
    with pytest.raises(ValueError, match="pruning every head of encoder_block_0/self_attention"):
        prune_heads(model, {"encoder_block_0/self_attention": [0, 1, 2, 3]})
    with pytest.raises(ValueError, match=r"encoder_block_0/self_attention has heads 0..3, not \[4\]"):
        prune_heads(model, {"encoder_block_0/self_attention": [4]})
    with pytest.raises(ValueError, match="no prunable attention layer 'encoder_block_9/self_att"):
        prune_heads(model, {"encoder_block_9/self_attention": [0]})
    copy = _model(share_embeddings=True, copy_attention=True)
    with pytest.raises(ValueError, match="no prunable attention layer 'decoder_block_1/cross"):
        prune_heads(copy, {"decoder_block_1/cross_attention": [0]})
