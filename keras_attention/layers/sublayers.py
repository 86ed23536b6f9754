"""Pieces shared by the Transformer blocks: feed-forward sublayer, residual +
norm wrapper, and the base class holding the blocks' common arguments."""

import keras

from keras_attention import validation
from keras_attention.layers.attention import MultiHeadAttention
from keras_attention.layers.dtype_maps import dtype_config


@keras.saving.register_keras_serializable(package="keras_attention")
class FeedForward(keras.layers.Layer):
    """``Dense(intermediate_dim, activation) -> dropout -> Dense(hidden_dim)``.

    Args:
        intermediate_dim: width of the hidden layer.
        activation: activation of the hidden layer.
        dropout: dropout rate after the activation.
        kernel_initializer: initializer of both kernels.
    """

    def __init__(
        self,
        intermediate_dim,
        activation="relu",
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_dim = validation.check_positive_int("intermediate_dim", intermediate_dim)
        self.activation = keras.activations.get(activation)
        self.dropout = validation.check_rate("dropout", dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, inputs_shape):
        self._intermediate = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="intermediate",
        )
        self._intermediate.build(inputs_shape)
        self._dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self._output = keras.layers.Dense(
            inputs_shape[-1],
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="output",
        )
        self._output.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def call(self, inputs, training=None):
        x = self._dropout_layer(self._intermediate(inputs), training=training)
        return self._output(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "dtype": dtype_config(self),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_attention")
class ResidualNorm(keras.layers.Layer):
    """Layer norm + dropout + residual connection around one sublayer.

    ``normalize_first=True`` gives pre-norm ``x + f(norm(x))``; ``False`` gives
    post-norm ``norm(x + f(x))`` as in the original Transformer. A block calls
    ``before(x)`` to get the sublayer's input and ``after(x, f_out)`` to merge.

    Args:
        normalize_first: pre-norm (True) or post-norm (False).
        dropout: dropout rate on the sublayer's output.
        layer_norm_epsilon: epsilon of the layer normalization.
    """

    def __init__(self, normalize_first=False, dropout=0.0, layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.normalize_first = bool(normalize_first)
        self.dropout = validation.check_rate("dropout", dropout)
        self.layer_norm_epsilon = validation.check_positive_number(
            "layer_norm_epsilon", layer_norm_epsilon
        )
        self._norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm"
        )
        self._dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, inputs_shape):
        self._norm.build(inputs_shape)
        self.built = True

    def before(self, x):
        """The sublayer's input."""
        return self._norm(x) if self.normalize_first else x

    def after(self, residual, sublayer_output, training=None):
        """Merge the sublayer's output into the residual stream."""
        x = residual + self._dropout_layer(sublayer_output, training=training)
        return x if self.normalize_first else self._norm(x)

    def call(self, residual, sublayer_output, training=None):
        return self.after(residual, sublayer_output, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "normalize_first": self.normalize_first,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


class TransformerBlock(keras.layers.Layer):
    """Common arguments of ``TransformerEncoderBlock`` and ``TransformerDecoderBlock``.

    The blocks take Keras masks as padding masks (a sequence from
    ``Embedding(mask_zero=True)`` needs no ``padding_mask``) and pass the
    mask of their first input on to their output.

    Args:
        intermediate_dim: width of the feed-forward hidden layer.
        num_heads: number of attention heads.
        key_dim: size of each head; defaults to ``hidden_dim // num_heads``.
        dropout: dropout rate in attention, feed-forward and residual paths.
        activation: activation of the feed-forward hidden layer.
        layer_norm_epsilon: epsilon of the layer normalizations.
        normalize_first: pre-norm (True) or post-norm (False, the original).
        kernel_initializer: initializer of all kernels.
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        key_dim=None,
        dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        normalize_first=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_dim = validation.check_positive_int("intermediate_dim", intermediate_dim)
        self.num_heads = validation.check_positive_int("num_heads", num_heads)
        self.key_dim = validation.check_positive_int("key_dim", key_dim, optional=True)
        self.dropout = validation.check_rate("dropout", dropout)
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = validation.check_positive_number(
            "layer_norm_epsilon", layer_norm_epsilon
        )
        self.normalize_first = bool(normalize_first)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def _head_size(self, hidden_dim):
        if self.key_dim is not None:
            return self.key_dim
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden size {hidden_dim} is not divisible by num_heads={self.num_heads}; "
                "choose num_heads that divides it or pass key_dim."
            )
        return hidden_dim // self.num_heads

    def _attention(self, hidden_dim, name, num_heads=None):
        return MultiHeadAttention(
            num_heads=num_heads or self.num_heads,
            key_dim=self._head_size(hidden_dim),
            dropout=self.dropout,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _residual(self, name):
        return ResidualNorm(
            normalize_first=self.normalize_first,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name=name,
        )

    def _feedforward(self):
        return FeedForward(
            self.intermediate_dim,
            activation=self.activation,
            dropout=self.dropout,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="feedforward",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "normalize_first": self.normalize_first,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "dtype": dtype_config(self),
            }
        )
        return config
