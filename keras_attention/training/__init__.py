"""Training pieces for ``model.fit``: losses and metrics that ignore padding."""

import keras

from keras_attention.training.metrics import MaskedAccuracy


def sequence_loss():
    """Cross entropy over float32 logits that ignores PAD (id 0) labels."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)


__all__ = ["MaskedAccuracy", "sequence_loss"]
