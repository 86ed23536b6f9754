"""Sequence-to-sequence models assembled from ``keras_attention.layers``."""

from keras_attention.models.presets import PRESETS, TransformerConfig, get_preset
from keras_attention.models.transformer import PAD_ID, Transformer

__all__ = ["PAD_ID", "PRESETS", "Transformer", "TransformerConfig", "get_preset"]
