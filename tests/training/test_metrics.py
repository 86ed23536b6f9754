"""MaskedAccuracy and sequence_loss: padding (label 0) must not count."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.training import MaskedAccuracy, sequence_loss


def _logits_for(predictions, vocabulary=5):
    """Logits ``(batch, length, vocabulary)`` whose argmax is ``predictions``."""
    predictions = np.asarray(predictions)
    logits = np.full(predictions.shape + (vocabulary,), -1.0, "float32")
    np.put_along_axis(logits, predictions[..., None], 3.0, axis=-1)
    return logits


def test_masked_accuracy_ignores_padding_labels():
    metric = MaskedAccuracy()
    labels = np.array([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0]])
    # Row 0: 2 of 3 right; padding positions predict 0 (would be "right").
    # Row 1: 1 of 1 right; padding positions predict junk (would be "wrong").
    predicted = np.array([[1, 2, 4, 0, 0], [4, 1, 2, 3, 4]])
    metric.update_state(labels, _logits_for(predicted))
    assert float(metric.result()) == pytest.approx(3 / 4)
    assert float(metric.correct) == 3.0 and float(metric.total) == 4.0


def test_masked_accuracy_accumulates_tokens_not_batch_ratios():
    metric = MaskedAccuracy()
    # Batch 1: 1 of 4 real tokens right.
    metric.update_state(np.array([[1, 2, 3, 4]]), _logits_for([[1, 0, 0, 0]]))
    assert float(metric.result()) == pytest.approx(1 / 4)
    # Batch 2: 1 of 1 real token right (plus padding).
    metric.update_state(np.array([[2, 0, 0, 0]]), _logits_for([[2, 0, 1, 1]]))
    # Exact: 2 / 5 = 0.4, not the mean of ratios (0.25 + 1) / 2 = 0.625.
    assert float(metric.result()) == pytest.approx(2 / 5)
    # A batch of padding only changes nothing.
    metric.update_state(np.zeros((2, 3), "int32"), _logits_for(np.zeros((2, 3), "int32")))
    assert float(metric.result()) == pytest.approx(2 / 5)


def test_masked_accuracy_reset_state():
    metric = MaskedAccuracy()
    metric.update_state(np.array([[1, 2]]), _logits_for([[1, 2]]))
    assert float(metric.result()) == 1.0
    metric.reset_state()
    assert float(metric.result()) == 0.0  # no tokens: 0, not NaN
    assert float(metric.correct) == 0.0 and float(metric.total) == 0.0
    metric.update_state(np.array([[1, 2, 0]]), _logits_for([[3, 2, 1]]))
    assert float(metric.result()) == pytest.approx(1 / 2)


def test_masked_accuracy_only_padding_is_zero_not_nan():
    metric = MaskedAccuracy()
    metric.update_state(np.zeros((1, 3), "int32"), _logits_for([[0, 0, 0]]))
    assert float(metric.result()) == 0.0


def test_masked_accuracy_name_config_and_graph():
    metric = MaskedAccuracy()
    assert metric.name == "accuracy"
    restored = MaskedAccuracy.from_config(MaskedAccuracy(name="token_acc").get_config())
    assert restored.name == "token_acc"

    @tf.function
    def update(labels, logits):
        metric.update_state(labels, logits)

    update(tf.constant([[1, 2, 0]]), tf.constant(_logits_for([[1, 3, 0]])))
    update(tf.constant([[4, 0, 0]]), tf.constant(_logits_for([[4, 2, 2]])))
    assert float(metric.result()) == pytest.approx(2 / 3)


def _manual_cross_entropy(labels, logits):
    logits = logits.astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
    mask = labels != 0
    return -(picked * mask).sum() / mask.sum()


def test_sequence_loss_ignores_padding_labels():
    rng = np.random.default_rng(0)
    labels = np.array([[3, 1, 4, 2, 0, 0], [2, 0, 0, 0, 0, 0], [5, 5, 1, 6, 2, 0]])
    logits = rng.normal(size=labels.shape + (7,)).astype("float32")
    loss = float(sequence_loss()(labels, logits))
    expected = _manual_cross_entropy(labels, logits)
    assert loss == pytest.approx(expected, rel=1e-5)
    # Not the mean over all positions (padding included).
    all_positions = -np.mean(np.take_along_axis(
        logits - np.log(np.exp(logits).sum(-1, keepdims=True)), labels[..., None], -1))
    assert abs(loss - all_positions) > 1e-2


def test_sequence_loss_unchanged_by_logits_at_padding():
    rng = np.random.default_rng(1)
    labels = np.array([[3, 1, 2, 0], [4, 2, 0, 0]])
    logits = rng.normal(size=labels.shape + (6,)).astype("float32")
    changed = logits.copy()
    changed[labels == 0] = rng.normal(size=(int((labels == 0).sum()), 6)) * 10
    loss = sequence_loss()
    assert float(loss(labels, changed)) == pytest.approx(float(loss(labels, logits)), rel=1e-6)
    # Padding added to the batch changes nothing either.
    padded_labels = np.pad(labels, [(0, 0), (0, 3)])
    padded_logits = np.pad(logits, [(0, 0), (0, 3), (0, 0)], constant_values=2.0)
    assert float(loss(padded_labels, padded_logits)) == pytest.approx(
        float(loss(labels, logits)), rel=1e-5)


def test_sequence_loss_is_from_logits():
    labels = np.array([[1, 2, 0]])
    logits = np.array([[[0.0, 20.0, 0.0], [0.0, 0.0, 20.0], [20.0, 0.0, 0.0]]], "float32")
    assert float(sequence_loss()(labels, logits)) < 1e-6
    assert isinstance(sequence_loss(), keras.losses.Loss)


def test_compiled_model_reports_exact_masked_accuracy():
    from keras_attention.models import Transformer

    keras.utils.set_random_seed(0)
    model = Transformer.from_preset(
        "tiny", encoder_vocabulary_size=12, decoder_vocabulary_size=9,
        max_sequence_length=8, num_encoder_layers=1, num_decoder_layers=1)
    model.compile(optimizer="adam", loss=sequence_loss(), metrics=[MaskedAccuracy()])
    rng = np.random.default_rng(0)
    batches = []
    for real_lengths in ([5, 1, 3], [2, 6]):  # uneven real tokens per batch
        n = len(real_lengths)
        encoder = rng.integers(4, 12, size=(n, 6)).astype("int32")
        decoder = rng.integers(1, 9, size=(n, 6)).astype("int32")
        labels = rng.integers(1, 9, size=(n, 6)).astype("int32")
        for row, length in enumerate(real_lengths):
            labels[row, length:] = 0
        batches.append(({"encoder_tokens": encoder, "decoder_tokens": decoder}, labels))

    correct = total = 0
    for inputs, labels in batches:
        predicted = np.argmax(np.asarray(model(inputs)), axis=-1)
        mask = labels != 0
        correct += int(((predicted == labels) & mask).sum())
        total += int(mask.sum())

    dataset = tf.data.Dataset.from_tensors(batches[0]).concatenate(
        tf.data.Dataset.from_tensors(batches[1]))
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    assert total == 17 and 0 < correct < total, correct
    assert results["accuracy"] == pytest.approx(correct / total, abs=1e-6)
