"""Label-smoothed cross entropy over sequences, with padding masked out."""

import keras
from keras import ops

from keras_attention import validation
from keras_attention.constants import PAD_ID


@keras.saving.register_keras_serializable(package="keras_attention")
class SequenceCrossEntropy(keras.losses.Loss):
    """Cross entropy of float32 logits ``(batch, length, vocabulary)`` against
    integer labels ``(batch, length)``, averaged over the real (non-PAD)
    labels only; PAD (0) positions add nothing, whatever their logits.

    With ``label_smoothing = e`` the target distribution is ``1 - e`` on the
    label plus ``e`` spread uniformly over the ``vocabulary - 1`` other
    non-PAD ids (PAD, never a real label, gets no mass):
    ``loss = -(1 - e) log p(label) - e / (V - 2) * sum_{j not in {label, PAD}} log p(j)``.
    ``label_smoothing = 0`` is ``SparseCategoricalCrossentropy(from_logits=True,
    ignore_class=0)``.
    """

    def __init__(self, label_smoothing=0.0, name="sequence_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = validation.check_rate("label_smoothing", label_smoothing,
                                                     what="in [0, 1)")

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        vocabulary = ops.shape(log_probs)[-1]
        picked = ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)[..., 0]
        losses = -picked
        if self.label_smoothing:
            others = ops.sum(log_probs, axis=-1) - picked - log_probs[..., PAD_ID]
            spread = ops.cast(vocabulary - 2, "float32")
            e = self.label_smoothing
            losses = -(1.0 - e) * picked - e * others / spread
        # Weight real tokens by total/real, so Keras's mean over all positions
        # (and its per-replica scaling under a distribution strategy) is the
        # mean over real tokens.
        mask = ops.cast(ops.not_equal(labels, PAD_ID), "float32")
        total = ops.cast(ops.size(mask), "float32")
        weight = ops.divide_no_nan(total, ops.sum(mask))
        return ops.where(mask > 0, losses, 0.0) * weight

    def get_config(self):
        config = super().get_config()
        config["label_smoothing"] = self.label_smoothing
        return config
