"""SequenceCrossEntropy (label smoothing, PAD masked) and Perplexity."""

import math

import keras
import numpy as np
import pytest

from keras_attention.training import Perplexity, SequenceCrossEntropy

LABELS = np.array([[3, 1, 4, 2, 0, 0], [2, 0, 0, 0, 0, 0], [5, 5, 1, 6, 2, 0]])


def logits(seed=0, vocabulary=7):
    return np.random.default_rng(seed).normal(size=LABELS.shape + (vocabulary,)).astype("float32")


def numpy_loss(labels, logits, smoothing):
    logits = logits.astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    vocabulary = logits.shape[-1]
    target = np.full(log_probs.shape, smoothing / (vocabulary - 2))
    target[..., 0] = 0.0  # PAD gets no mass
    np.put_along_axis(target, labels[..., None], 1.0 - smoothing, axis=-1)
    per_token = -(target * log_probs).sum(-1)
    mask = labels != 0
    return (per_token * mask).sum() / mask.sum()


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_matches_numpy(smoothing):
    loss = float(SequenceCrossEntropy(smoothing)(LABELS, logits()))
    assert loss == pytest.approx(numpy_loss(LABELS, logits(), smoothing), rel=1e-5)


def test_no_smoothing_equals_keras_sparse_cross_entropy_with_ignore_class():
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    for seed in range(3):
        assert float(SequenceCrossEntropy(0.0)(LABELS, logits(seed))) == pytest.approx(
            float(keras_loss(LABELS, logits(seed))), rel=1e-6)


def test_padding_logits_and_extra_padding_change_nothing():
    loss = SequenceCrossEntropy(0.1)
    base = float(loss(LABELS, logits()))
    changed = logits()
    changed[LABELS == 0] = 50.0
    assert float(loss(LABELS, changed)) == pytest.approx(base, rel=1e-6)
    padded = np.pad(logits(), [(0, 0), (0, 4), (0, 0)], constant_values=3.0)
    assert float(loss(np.pad(LABELS, [(0, 0), (0, 4)]), padded)) == pytest.approx(base, rel=1e-5)


def test_config_round_trip_and_mixed_precision_logits():
    loss = SequenceCrossEntropy(0.2)
    restored = SequenceCrossEntropy.from_config(loss.get_config())
    assert restored.label_smoothing == 0.2
    bf16 = keras.ops.cast(logits(), "bfloat16")
    assert float(loss(LABELS, bf16)) == pytest.approx(
        numpy_loss(LABELS, np.asarray(keras.ops.cast(bf16, "float32")), 0.2), rel=1e-4)
    with pytest.raises(ValueError, match=r"^label_smoothing must be in \[0, 1\), got 1.0.$"):
        SequenceCrossEntropy(1.0)


def test_perplexity_is_exp_of_masked_mean_cross_entropy_over_batches():
    metric = Perplexity()
    first, second = logits(1), logits(2)
    metric.update_state(LABELS, first)
    metric.update_state(LABELS[:1], second[:1])
    stacked_labels = np.concatenate([LABELS, LABELS[:1]])
    stacked_logits = np.concatenate([first, second[:1]])
    expected = math.exp(numpy_loss(stacked_labels, stacked_logits, 0.0))
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    metric.reset_state()
    assert float(metric.result()) == 1.0  # no tokens: exp(0)
    assert Perplexity.from_config(Perplexity(name="ppl").get_config()).name == "ppl"
