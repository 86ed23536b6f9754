"""Attention layers and Transformer blocks (Keras 3, backend-agnostic ``keras.ops``)."""

from keras_attention.layers.attention import MultiHeadAttention
from keras_attention.layers.decoder import TransformerDecoderBlock
from keras_attention.layers.encoder import TransformerEncoderBlock
from keras_attention.layers.masking import (
    compute_causal_mask,
    merge_padding_and_attention_mask,
)
from keras_attention.layers.positional import (
    LearnedPositionEmbedding,
    SinusoidalPositionEncoding,
    TokenAndPositionEmbedding,
)
from keras_attention.layers.sublayers import FeedForward, ResidualNorm, TransformerBlock

__all__ = [
    "FeedForward",
    "LearnedPositionEmbedding",
    "MultiHeadAttention",
    "ResidualNorm",
    "SinusoidalPositionEncoding",
    "TokenAndPositionEmbedding",
    "TransformerBlock",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "compute_causal_mask",
    "merge_padding_and_attention_mask",
]
