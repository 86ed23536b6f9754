"""Encoder-decoder Transformer for sequence-to-sequence tasks."""

import keras
import numpy as np
from keras import ops

from keras_attention.constants import PAD_ID
from keras_attention.layers.attention import LORA_PROJECTIONS, MultiHeadAttention
from keras_attention.layers.decoder import TransformerDecoderBlock
from keras_attention.layers.dtype_maps import dtype_config, sublayer_dtype
from keras_attention.layers.encoder import TransformerEncoderBlock
from keras_attention.layers.positional import TokenAndPositionEmbedding
from keras_attention.models.presets import TransformerConfig, get_preset

# Smallest copy probability taken to the log: keeps log(0) finite in float32
# (a normal float32, so no denormal flush on accelerators).
_COPY_EPSILON = 1e-20


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

    With ``config.copy_attention`` the model is a pointer-generator (See et
    al., 2017): the outputs are float32 log-probabilities ``log p`` with::

        a      = cross-attention of the last decoder layer, averaged over heads,
                 PAD columns zeroed                              (batch, T, S)
        c      = a @ encoder_output                              (context)
        p_gen  = sigmoid(copy_gate([decoder_state, c, decoder_input_embedding]))
        copy_v = sum of a[:, :, s] over source positions s with source id v
        p      = p_gen * softmax(vocabulary_logits) + (1 - p_gen) * copy

    computed in float32 in log space (``logaddexp``), ``copy`` clipped at
    1e-20. ``softmax(log p) == p``, so losses and decoders that take logits
    work unchanged. An all-padding source has nothing to copy: ``p_gen = 1``.
    ``decode`` and ``init_cache`` then need the source ids (``encoder_tokens``).

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
            key_dim=c.head_dim,
            dropout=c.dropout,
            activation=c.activation,
            layer_norm_epsilon=c.layer_norm_epsilon,
            normalize_first=c.normalize_first,
            dtype=self.dtype_policy,
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(
                **block_args, num_heads=c.heads(f"encoder_block_{i}/self_attention"),
                name=f"encoder_block_{i}")
            for i in range(c.num_encoder_layers)
        ]
        self.decoder_blocks = [
            TransformerDecoderBlock(
                **block_args, num_heads=c.heads(f"decoder_block_{i}/self_attention"),
                cross_attention_num_heads=c.heads(f"decoder_block_{i}/cross_attention"),
                name=f"decoder_block_{i}")
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
                c.decoder_vocabulary_size,
                dtype=sublayer_dtype(self, "output_projection", "float32"),
                name="output_projection",
            )
        self.copy_gate = None
        if c.copy_attention:
            # p_gen's logit; float32 like the output logits.
            self.copy_gate = keras.layers.Dense(
                1, dtype=sublayer_dtype(self, "copy_gate", "float32"), name="copy_gate"
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
        if self.copy_gate is not None:
            self.copy_gate.build((None, None, 3 * self.config.hidden_dim))
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
        """Float32 vocabulary logits of decoder hidden states (before any copy
        mixture: the model's outputs for ``copy_attention=False``)."""
        if self.output_projection is not None:
            return self.output_projection(decoder_output)
        embeddings = ops.cast(self.decoder_embedding.embeddings, "float32")
        return ops.matmul(ops.cast(decoder_output, "float32"), ops.transpose(embeddings))

    def call(self, inputs, training=None):
        encoder_tokens = inputs["encoder_tokens"]
        encoder_output, encoder_padding_mask = self.encode(encoder_tokens, training=training)
        return self.decode(
            inputs["decoder_tokens"],
            encoder_output,
            encoder_padding_mask,
            encoder_tokens=encoder_tokens,
            training=training,
        )

    def decode(
        self,
        decoder_tokens,
        encoder_output,
        encoder_padding_mask,
        encoder_tokens=None,
        training=None,
    ):
        """Logits for all ``decoder_tokens`` (causal, no cache): teacher forcing,
        and the uncached reference for incremental decoding. A copy model
        (``copy_attention``) needs the source ids ``encoder_tokens`` and
        returns log-probabilities."""
        if self.copy_gate is not None:
            self._check_encoder_tokens(encoder_tokens, "decode")
        embedded = self.decoder_embedding(decoder_tokens)
        x = self.embedding_dropout(embedded, training=training)
        last = len(self.decoder_blocks) - 1
        for i, block in enumerate(self.decoder_blocks):
            copy_scores = self.copy_gate is not None and i == last
            outputs = block(
                x,
                encoder_output,
                encoder_padding_mask=encoder_padding_mask,
                return_attention_scores=copy_scores,
                training=training,
            )
            x, scores = outputs if copy_scores else (outputs, None)
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        if self.copy_gate is None:
            return self.logits(x)
        return self.copy_log_probabilities(
            x, embedded, scores["cross_attention"], encoder_output, encoder_tokens
        )

    def copy_log_probabilities(
        self, decoder_output, decoder_inputs, cross_attention, encoder_output, encoder_tokens
    ):
        """The pointer-generator output (see the class docstring): float32
        ``log p`` ``(batch, T, vocabulary)`` from the final decoder states,
        the decoder input embeddings, the last layer's cross-attention
        ``(batch, heads, T, S)``, the encoder output and the source ids."""
        mask = ops.cast(ops.not_equal(encoder_tokens, PAD_ID), "float32")
        attention = ops.mean(ops.cast(cross_attention, "float32"), axis=1) * mask[:, None, :]
        context = ops.einsum("bts,bsd->btd", attention, ops.cast(encoder_output, "float32"))
        gate_inputs = ops.concatenate(
            [ops.cast(decoder_output, "float32"), context, ops.cast(decoder_inputs, "float32")],
            axis=-1,
        )
        gate = self.copy_gate(gate_inputs)  # (batch, T, 1), the logit of p_gen
        # Nothing to copy from an all-padding source: all mass to the vocabulary.
        has_source = ops.any(ops.not_equal(encoder_tokens, PAD_ID), axis=-1)[:, None, None]
        gate = ops.where(has_source, gate, ops.cast(1e4, gate.dtype))
        copy = scatter_to_vocabulary(
            attention, encoder_tokens, self.config.decoder_vocabulary_size
        )
        vocabulary = ops.log_softmax(self.logits(decoder_output), axis=-1)
        return ops.logaddexp(
            ops.log_sigmoid(gate) + vocabulary,
            ops.log_sigmoid(-gate) + ops.log(ops.maximum(copy, _COPY_EPSILON)),
        )

    def _check_encoder_tokens(self, encoder_tokens, method):
        if encoder_tokens is None:
            raise ValueError(
                f"this model copies from the source (copy_attention=True), so {method} "
                "needs the source ids: pass encoder_tokens=..."
            )

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

    def init_cache(self, encoder_output, encoder_padding_mask, max_length, encoder_tokens=None):
        """Decoding state for up to ``max_length`` target positions.

        Returns a dict: ``self_attention``, one ``(keys, values)`` pair per
        decoder layer, zeros ``(batch, heads, max_length, head_dim)`` each;
        ``cross_attention``, the same pairs for the encoder output ``(batch,
        heads, source_length, head_dim)``, computed once; and the
        ``encoder_padding_mask``. A copy model (``copy_attention``) needs the
        source ids ``encoder_tokens`` and also keeps them and the
        ``encoder_output`` there. Every tensor has the batch first, so beam
        search can tile and reorder rows; each layer's keys and values are
        tensors of their own, so a step reads and writes them without
        copying the other layers' (and the attention products read the
        heads-first layout without a transpose).
        """
        batch = ops.shape(encoder_output)[0]
        head_dim = self.config.head_dim

        def empty(block):
            shape = (batch, block.self_attention.num_heads, max_length, head_dim)
            zeros = ops.zeros(shape, dtype=self.compute_dtype)
            return zeros, zeros

        cache = {
            "self_attention": tuple(empty(block) for block in self.decoder_blocks),
            "cross_attention": tuple(
                block.compute_cross_attention_cache(encoder_output)
                for block in self.decoder_blocks
            ),
            "encoder_padding_mask": encoder_padding_mask,
        }
        if self.copy_gate is not None:
            self._check_encoder_tokens(encoder_tokens, "init_cache")
            cache["encoder_tokens"] = ops.cast(encoder_tokens, "int32")
            cache["encoder_output"] = encoder_output
        return cache

    def decode_step(self, decoder_tokens, cache, index):
        """Logits for ``decoder_tokens`` at positions ``index ..`` and the new cache
        (log-probabilities for a copy model, as ``decode``).

        Args:
            decoder_tokens: ``(batch, steps)`` ids, usually one step at a time.
            cache: the dict from ``init_cache`` (or a previous step).
            index: position of ``decoder_tokens[:, 0]`` in the target sequence.
        """
        embedded = self.decoder_embedding(decoder_tokens, start_index=index)
        x = embedded
        last = len(self.decoder_blocks) - 1
        self_caches = []
        layers = zip(self.decoder_blocks, cache["self_attention"], cache["cross_attention"])
        for i, (block, self_cache, cross_cache) in enumerate(layers):
            copy_scores = self.copy_gate is not None and i == last
            outputs = block(
                x,
                encoder_padding_mask=cache["encoder_padding_mask"],
                self_attention_cache=self_cache,
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_cache,
                return_attention_scores=copy_scores,
            )
            if copy_scores:
                x, scores, layer_cache = outputs
            else:
                x, layer_cache = outputs
            self_caches.append(tuple(layer_cache))
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        new_cache = dict(cache, self_attention=tuple(self_caches))
        if self.copy_gate is None:
            return self.logits(x), new_cache
        outputs = self.copy_log_probabilities(
            x,
            embedded,
            scores["cross_attention"],
            cache["encoder_output"],
            cache["encoder_tokens"],
        )
        return outputs, new_cache

    def enable_lora(self, rank, lora_alpha=None, projections=LORA_PROJECTIONS):
        """Fine-tune with LoRA: every other weight freezes, and each attention
        layer trains adapters on ``projections`` (``MultiHeadAttention.enable_lora``;
        those projections' biases train too). Returns the number of trained
        parameters. Saving (``.keras``, exports) merges the adapters."""
        for layer in self._flatten_layers(include_self=False):
            layer.trainable = False
        for layer in self._flatten_layers(include_self=False):
            if isinstance(layer, MultiHeadAttention):
                layer.enable_lora(rank, lora_alpha=lora_alpha, projections=projections)
        return sum(int(np.prod(v.shape)) for v in self.trainable_variables)

    def get_config(self):
        config = super().get_config()
        config["config"] = self.config.to_dict()
        config["dtype"] = dtype_config(self)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def scatter_to_vocabulary(weights, ids, vocabulary_size):
    """``out[b, t, v] = sum of weights[b, t, s] over s with ids[b, s] == v``.

    ``weights`` ``(batch, T, S)`` float, ``ids`` ``(batch, S)`` int in
    ``[0, vocabulary_size)``; returns ``(batch, T, vocabulary_size)``. One
    ``segment_sum`` over the ``batch * S`` rows of the transposed weights
    (segments ``b * vocabulary_size + ids[b, s]``): no ``(batch, S,
    vocabulary)`` one-hot is built, and the gradient is a gather.
    """
    batch, target_length, source_length = ops.shape(weights)
    rows = ops.reshape(ops.transpose(weights, (0, 2, 1)), (-1, target_length))
    offsets = ops.arange(batch, dtype="int32")[:, None] * vocabulary_size
    segments = ops.reshape(ops.cast(ids, "int32") + offsets, (-1,))
    summed = ops.segment_sum(rows, segments, num_segments=batch * vocabulary_size)
    summed = ops.reshape(summed, (batch, vocabulary_size, target_length))
    return ops.transpose(summed, (0, 2, 1))
