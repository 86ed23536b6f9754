"""Positional encodings and the token + position embedding used by the models."""

import math

import keras
from keras import ops

from keras_attention import validation
from keras_attention.constants import POSITION_ENCODINGS
from keras_attention.layers.dtype_maps import dtype_config


@keras.saving.register_keras_serializable(package="keras_attention")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Fixed sine/cosine position encoding (Vaswani et al., 2017, section 3.5).

    Channel ``2i`` holds ``sin(p / max_wavelength^(2i/d))`` and channel ``2i+1``
    the cosine of the same angle. Returns a tensor shaped like ``inputs``.

    Args:
        max_wavelength: the largest wavelength of the sinusoids.

    Call arguments:
        inputs: ``(batch, length, hidden_dim)``; only its shape is used.
        start_index: position of ``inputs[:, 0]`` (for cached decoding).
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = validation.check_positive_number("max_wavelength", max_wavelength)

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length, hidden_dim = shape[-2], inputs.shape[-1]
        positions = ops.cast(ops.arange(length) + start_index, "float32")
        channels = ops.arange(hidden_dim)
        exponents = ops.cast(2 * (channels // 2), "float32") / float(hidden_dim)
        inverse_frequencies = ops.power(self.max_wavelength, -exponents)
        angles = ops.expand_dims(positions, -1) * ops.expand_dims(inverse_frequencies, 0)
        encoding = ops.where(channels % 2 == 0, ops.sin(angles), ops.cos(angles))
        return ops.broadcast_to(ops.cast(encoding, self.compute_dtype), shape)

    def get_config(self):
        config = super().get_config()
        config["max_wavelength"] = self.max_wavelength
        return config


@keras.saving.register_keras_serializable(package="keras_attention")
class LearnedPositionEmbedding(keras.layers.Layer):
    """A trained embedding per position ``0 .. sequence_length - 1``.

    Args:
        sequence_length: the largest number of positions.
        initializer: initializer of the position embeddings.

    Call arguments:
        inputs: ``(batch, length, hidden_dim)``; only its shape is used.
        start_index: position of ``inputs[:, 0]`` (for cached decoding).
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = validation.check_positive_int("sequence_length", sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, inputs_shape):
        if self.built:
            return
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=self.initializer,
        )
        self.built = True

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length = inputs.shape[-2]
        if isinstance(length, int) and isinstance(start_index, int):
            if start_index + length > self.sequence_length:
                raise ValueError(
                    f"positions up to {start_index + length} exceed sequence_length="
                    f"{self.sequence_length}; truncate the input or build the layer "
                    "with a larger sequence_length."
                )
        embeddings = ops.slice(
            ops.convert_to_tensor(self.position_embeddings),
            (start_index, 0),
            (shape[-2], inputs.shape[-1]),
        )
        return ops.broadcast_to(ops.cast(embeddings, self.compute_dtype), shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_attention")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding scaled by ``sqrt(embedding_dim)`` plus a position encoding.

    Args:
        vocabulary_size: number of token ids.
        sequence_length: the largest number of positions.
        embedding_dim: size of the embeddings.
        position_encoding: ``"sinusoidal"`` (fixed) or ``"learned"``.
        scale_embeddings: multiply token embeddings by ``sqrt(embedding_dim)``.
        embeddings_initializer: initializer of the token embeddings.

    Call arguments:
        token_ids: ``(batch, length)`` integer ids.
        start_index: position of ``token_ids[:, 0]`` (for cached decoding).
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        embedding_dim,
        position_encoding="sinusoidal",
        scale_embeddings=True,
        embeddings_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = validation.check_positive_int("vocabulary_size", vocabulary_size)
        self.sequence_length = validation.check_positive_int("sequence_length", sequence_length)
        self.embedding_dim = validation.check_positive_int("embedding_dim", embedding_dim)
        if position_encoding not in POSITION_ENCODINGS:
            raise ValueError(
                f"position_encoding must be one of {POSITION_ENCODINGS}, "
                f"got {position_encoding!r}."
            )
        self.position_encoding = position_encoding
        self.scale_embeddings = bool(scale_embeddings)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            embedding_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        if position_encoding == "learned":
            self.position_embedding = LearnedPositionEmbedding(
                sequence_length, dtype=self.dtype_policy, name="position_embedding"
            )
        else:
            self.position_embedding = SinusoidalPositionEncoding(
                dtype=self.dtype_policy, name="position_embedding"
            )

    def build(self, token_ids_shape):
        self.token_embedding.build(token_ids_shape)
        self.position_embedding.build(tuple(token_ids_shape) + (self.embedding_dim,))
        self.built = True

    @property
    def embeddings(self):
        """The token embedding matrix ``(vocabulary_size, embedding_dim)``,
        in float after ``quantize("int8")`` (tied output logits read it)."""
        layer = self.token_embedding
        if layer.quantization_mode is None:
            return layer.embeddings
        if layer.quantization_mode != "int8":
            raise NotImplementedError(
                f"{layer.quantization_mode} embeddings cannot be read back as a matrix; "
                "quantize this model with 'int8'."
            )
        # Keras' int8 Embedding looks rows up as int8 rows divided by their scale.
        return ops.divide(
            ops.cast(layer._embeddings, self.compute_dtype),
            ops.expand_dims(ops.cast(layer.embeddings_scale, self.compute_dtype), -1),
        )

    def call(self, token_ids, start_index=0):
        tokens = self.token_embedding(token_ids)
        if self.scale_embeddings:
            tokens = tokens * ops.cast(math.sqrt(self.embedding_dim), tokens.dtype)
        return tokens + self.position_embedding(tokens, start_index=start_index)

    def compute_output_shape(self, token_ids_shape):
        return tuple(token_ids_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "position_encoding": self.position_encoding,
                "scale_embeddings": self.scale_embeddings,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "dtype": dtype_config(self),
            }
        )
        return config
