"""Sequence-to-sequence models assembled from ``keras_attention.layers``."""

from keras_attention.models.presets import PRESETS, TransformerConfig, get_preset
from keras_attention.models.saving import (
    TrainedModel,
    check_vocabularies,
    load_trained_model,
    save_trained_model,
)
from keras_attention.models.transformer import PAD_ID, Transformer

__all__ = [
    "PAD_ID",
    "PRESETS",
    "TrainedModel",
    "Transformer",
    "TransformerConfig",
    "check_vocabularies",
    "get_preset",
    "load_trained_model",
    "save_trained_model",
]
