"""Metrics that ignore padding (label id 0)."""

import keras
from keras import ops

from keras_attention.constants import PAD_ID


@keras.saving.register_keras_serializable(package="keras_attention")
class MaskedAccuracy(keras.metrics.Metric):
    """Token accuracy over non-padding labels, exact over the whole epoch
    (correct tokens / real tokens, not an average of batch ratios)."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.not_equal(y_true, PAD_ID)
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        correct = ops.logical_and(mask, ops.equal(predicted, y_true))
        self.correct.assign_add(ops.sum(ops.cast(correct, "float32")))
        self.total.assign_add(ops.sum(ops.cast(mask, "float32")))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


@keras.saving.register_keras_serializable(package="keras_attention")
class Perplexity(keras.metrics.Metric):
    """``exp`` of the mean cross entropy (no label smoothing) over the
    non-padding labels of the whole epoch, from float32 logits."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.cross_entropy = self.add_variable(shape=(), initializer="zeros", name="cross_entropy")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)[..., 0]
        self.cross_entropy.assign_add(-ops.sum(picked * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self):
        return ops.exp(ops.divide_no_nan(self.cross_entropy, self.total))

    def reset_state(self):
        self.cross_entropy.assign(0.0)
        self.total.assign(0.0)
