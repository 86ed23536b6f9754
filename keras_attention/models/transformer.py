"""Encoder-decoder Transformer for sequence-to-sequence tasks."""

import keras
from keras import ops

from keras_attention.layers.decoder import TransformerDecoderBlock
from keras_attention.layers.encoder import TransformerEncoderBlock
from keras_attention.layers.positional import TokenAndPositionEmbedding
from keras_attention.models.presets import TransformerConfig, get_preset

PAD_ID = 0


@keras.saving.register_keras_serializable(package="keras_attention")
class Transformer(keras.Model):
    """Encoder-decoder Transformer (Vaswani et al., 2017).

    Inputs are a dict ``{"encoder_tokens": (batch, source_length),
    "decoder_tokens": (batch, target_length)}`` of integer ids with PAD = 0;
    the output is float32 logits ``(batch, target_length, vocabulary)``.
    Trains with ``model.compile`` + ``model.fit`` and saves as ``.keras``.

    For incremental decoding use ``encode`` once, ``init_cache`` and then
    ``decode_step`` per generated token; the cache holds each decoder layer's
    self-attention keys/values and the cross-attention keys/values of the
    encoder output, computed once.

    Args:
        config: a ``TransformerConfig`` (or its dict form).
    """

    def __init__(self, config, **kwargs):
        if isinstance(config, dict):
            config = TransformerConfig(**config)
        if not isinstance(config, TransformerConfig):
            raise TypeError(
                f"config must be a TransformerConfig, got {type(config).__name__}; "
                "use Transformer.from_preset('small', ...) or TransformerConfig(...)."
            )
        super().__init__(**kwargs)
        self.config = config
        c = config

        def embedding(vocabulary_size, name):
            return TokenAndPositionEmbedding(
                vocabulary_size,
                c.max_sequence_length,
                c.hidden_dim,
                position_encoding=c.position_encoding,
                dtype=self.dtype_policy,
                name=name,
            )

        self.encoder_embedding = embedding(c.encoder_vocabulary_size, "encoder_embedding")
        self.decoder_embedding = (
            self.encoder_embedding
            if c.share_embeddings
            else embedding(c.decoder_vocabulary_size, "decoder_embedding")
        )
        self.embedding_dropout = keras.layers.Dropout(c.dropout, dtype=self.dtype_policy)
        block_args = dict(
            intermediate_dim=c.intermediate_dim,
            num_heads=c.num_heads,
            dropout=c.dropout,
            activation=c.activation,
            layer_norm_epsilon=c.layer_norm_epsilon,
            normalize_first=c.normalize_first,
            dtype=self.dtype_policy,
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(**block_args, name=f"encoder_block_{i}")
            for i in range(c.num_encoder_layers)
        ]
        self.decoder_blocks = [
            TransformerDecoderBlock(**block_args, name=f"decoder_block_{i}")
            for i in range(c.num_decoder_layers)
        ]
        # Pre-norm stacks end with a layer norm; post-norm blocks already end in one.
        self.encoder_norm = self.decoder_norm = None
        if c.normalize_first:
            self.encoder_norm = keras.layers.LayerNormalization(
                epsilon=c.layer_norm_epsilon, dtype=self.dtype_policy, name="encoder_norm"
            )
            self.decoder_norm = keras.layers.LayerNormalization(
                epsilon=c.layer_norm_epsilon, dtype=self.dtype_policy, name="decoder_norm"
            )
        self.output_projection = None
        if not c.tie_output_embeddings:
            # Logits stay float32 under mixed precision for a stable softmax/loss.
            self.output_projection = keras.layers.Dense(
                c.decoder_vocabulary_size, dtype="float32", name="output_projection"
            )
        self.build()

    @classmethod
    def from_preset(cls, preset, dtype=None, name=None, **changes):
        """Build the named preset (``tiny``, ``small``, ``base``) with config
        ``changes``; ``dtype`` (e.g. ``"mixed_bfloat16"``) and ``name`` go to
        the model."""
        return cls(get_preset(preset, **changes), dtype=dtype, name=name)

    def build(self, inputs_shape=None):
        hidden = (None, None, self.config.hidden_dim)
        self.encoder_embedding.build((None, None))
        if self.decoder_embedding is not self.encoder_embedding:
            self.decoder_embedding.build((None, None))
        for block in self.encoder_blocks:
            block.build(hidden)
        for block in self.decoder_blocks:
            block.build(hidden, hidden)
        for norm in (self.encoder_norm, self.decoder_norm):
            if norm is not None:
                norm.build(hidden)
        if self.output_projection is not None:
            self.output_projection.build(hidden)
        self.built = True

    def encode(self, encoder_tokens, training=None):
        """Encoder output ``(batch, source_length, hidden_dim)`` and its padding mask."""
        padding_mask = ops.not_equal(encoder_tokens, PAD_ID)
        x = self.embedding_dropout(self.encoder_embedding(encoder_tokens), training=training)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=padding_mask, training=training)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return x, padding_mask

    def logits(self, decoder_output):
        """Float32 vocabulary logits of decoder hidden states."""
        if self.output_projection is not None:
            return self.output_projection(decoder_output)
        embeddings = ops.cast(self.decoder_embedding.embeddings, "float32")
        return ops.matmul(ops.cast(decoder_output, "float32"), ops.transpose(embeddings))

    def call(self, inputs, training=None):
        encoder_output, encoder_padding_mask = self.encode(
            inputs["encoder_tokens"], training=training
        )
        return self.decode(
            inputs["decoder_tokens"], encoder_output, encoder_padding_mask, training=training
        )

    def decode(self, decoder_tokens, encoder_output, encoder_padding_mask, training=None):
        """Logits for all ``decoder_tokens`` (causal, no cache): teacher forcing,
        and the uncached reference for incremental decoding."""
        x = self.embedding_dropout(self.decoder_embedding(decoder_tokens), training=training)
        for block in self.decoder_blocks:
            x = block(
                x,
                encoder_output,
                encoder_padding_mask=encoder_padding_mask,
                training=training,
            )
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        return self.logits(x)

    def attention_scores(self, encoder_tokens, decoder_tokens):
        """Attention probabilities of every layer (inference mode, no cache).

        Returns a dict of lists, one float32 entry per layer:
        ``encoder`` self-attention ``(batch, heads, source_length, source_length)``,
        ``decoder`` causal self-attention ``(batch, heads, target_length,
        target_length)`` and ``cross`` attention ``(batch, heads,
        target_length, source_length)``; row ``i`` is the query at position
        ``i``, columns are the keys.
        """
        padding_mask = ops.not_equal(encoder_tokens, PAD_ID)
        x = self.encoder_embedding(encoder_tokens)
        scores = {"encoder": [], "decoder": [], "cross": []}
        for block in self.encoder_blocks:
            x, layer_scores = block(x, padding_mask=padding_mask, return_attention_scores=True)
            scores["encoder"].append(layer_scores)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        y = self.decoder_embedding(decoder_tokens)
        for block in self.decoder_blocks:
            y, layer_scores = block(
                y, x, encoder_padding_mask=padding_mask, return_attention_scores=True
            )
            scores["decoder"].append(layer_scores["self_attention"])
            scores["cross"].append(layer_scores["cross_attention"])
        return scores

    def init_cache(self, encoder_output, encoder_padding_mask, max_length):
        """Decoding state for up to ``max_length`` target positions.

        Returns a dict: ``self_attention`` zeros ``(batch, layers, 2, max_length,
        heads, head_dim)``, ``cross_attention`` keys/values of the encoder
        output ``(batch, layers, 2, source_length, heads, head_dim)`` and the
        ``encoder_padding_mask``.
        """
        c = self.config
        batch = ops.shape(encoder_output)[0]
        head_dim = c.hidden_dim // c.num_heads
        cross = [block.compute_cross_attention_cache(encoder_output) for block in self.decoder_blocks]
        return {
            "self_attention": ops.zeros(
                (batch, c.num_decoder_layers, 2, max_length, c.num_heads, head_dim),
                dtype=self.compute_dtype,
            ),
            "cross_attention": ops.stack(cross, axis=1),
            "encoder_padding_mask": encoder_padding_mask,
        }

    def decode_step(self, decoder_tokens, cache, index):
        """Logits for ``decoder_tokens`` at positions ``index ..`` and the new cache.

        Args:
            decoder_tokens: ``(batch, steps)`` ids, usually one step at a time.
            cache: the dict from ``init_cache`` (or a previous step).
            index: position of ``decoder_tokens[:, 0]`` in the target sequence.
        """
        x = self.decoder_embedding(decoder_tokens, start_index=index)
        self_caches = []
        for i, block in enumerate(self.decoder_blocks):
            x, layer_cache = block(
                x,
                encoder_padding_mask=cache["encoder_padding_mask"],
                self_attention_cache=cache["self_attention"][:, i],
                self_attention_cache_update_index=index,
                cross_attention_cache=cache["cross_attention"][:, i],
            )
            self_caches.append(layer_cache)
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        new_cache = dict(cache, self_attention=ops.stack(self_caches, axis=1))
        return self.logits(x), new_cache

    def get_config(self):
        config = super().get_config()
        config["config"] = self.config.to_dict()
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
