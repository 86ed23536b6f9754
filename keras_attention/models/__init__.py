"""Sequence-to-sequence models assembled from ``keras_attention.layers``.
Names import their module on first use (``transformer`` needs Keras alone,
``saving`` TensorFlow too)."""

from keras_attention.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "keras_attention.models.presets": ("PRESETS", "TransformerConfig", "get_preset"),
    "keras_attention.models.saving": (
        "TrainedModel", "check_vocabularies", "load_trained_model", "save_trained_model"),
    "keras_attention.models.transformer": ("PAD_ID", "Transformer"),
})
