"""Transformer decoder block: causal self-attention, cross-attention, feed-forward."""

import keras

from keras_attention import validation
from keras_attention.layers.masking import implicit_mask
from keras_attention.layers.sublayers import TransformerBlock


@keras.saving.register_keras_serializable(package="keras_attention")
class TransformerDecoderBlock(TransformerBlock):
    """One decoder layer of the Transformer (Vaswani et al., 2017).

    Arguments are those of ``TransformerBlock``, and
    ``cross_attention_num_heads`` (defaults to ``num_heads``; a pruned model's
    cross-attention may keep other heads than its self-attention). Without
    ``encoder_sequence`` at build time the block has no cross-attention
    (decoder-only use).

    Call arguments:
        decoder_sequence: ``(batch, target_length, hidden_dim)``.
        encoder_sequence: ``(batch, source_length, encoder_dim)``.
        decoder_padding_mask: ``(batch, target_length)``, true for real tokens;
            defaults to the Keras mask of ``decoder_sequence`` (not with a cache).
        decoder_attention_mask: ``(batch, target_length, target_length)``.
        encoder_padding_mask: ``(batch, source_length)``, true for real tokens;
            defaults to the Keras mask of ``encoder_sequence``.
        self_attention_cache: a ``(keys, values)`` pair, each ``(batch,
            num_heads, max_length, key_dim)`` (``MultiHeadAttention``'s
            cache); with ``self_attention_cache_update_index`` the step's
            keys and values are written there (incremental decoding).
        self_attention_cache_update_index: position of ``decoder_sequence[:, 0]``.
        cross_attention_cache: keys/values of the encoder output computed once
            by ``compute_cross_attention_cache``; replaces ``encoder_sequence``.
        return_attention_scores: also return a dict of ``self_attention`` and
            ``cross_attention`` probabilities.

    Returns:
        ``output``, then the scores dict if requested, then the updated
        self-attention cache if one was given.
    """

    def __init__(self, intermediate_dim, num_heads, cross_attention_num_heads=None, **kwargs):
        super().__init__(intermediate_dim, num_heads, **kwargs)
        self.cross_attention_num_heads = validation.check_positive_int(
            "cross_attention_num_heads", cross_attention_num_heads, optional=True)

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        hidden_dim = decoder_sequence_shape[-1]
        self.self_attention = self._attention(hidden_dim, "self_attention")
        self.self_attention.build(decoder_sequence_shape)
        self.self_attention_residual = self._residual("self_attention_residual")
        self.self_attention_residual.build(decoder_sequence_shape)
        self.cross_attention = None
        if encoder_sequence_shape is not None:
            self.cross_attention = self._attention(
                hidden_dim, "cross_attention", num_heads=self.cross_attention_num_heads)
            self.cross_attention.build(decoder_sequence_shape, encoder_sequence_shape)
            self.cross_attention_residual = self._residual("cross_attention_residual")
            self.cross_attention_residual.build(decoder_sequence_shape)
        self.feedforward = self._feedforward()
        self.feedforward.build(decoder_sequence_shape)
        self.feedforward_residual = self._residual("feedforward_residual")
        self.feedforward_residual.build(decoder_sequence_shape)
        self.built = True

    def compute_cross_attention_cache(self, encoder_sequence):
        """Project the encoder output to cross-attention keys/values once."""
        if self.cross_attention is None:
            raise ValueError("this decoder block has no cross-attention (built without an encoder).")
        return self.cross_attention.compute_key_value_cache(encoder_sequence)

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        return_attention_scores=False,
        training=None,
    ):
        if self.cross_attention is None and encoder_sequence is not None:
            raise ValueError(
                "this decoder block was built without an encoder, so it has no "
                "cross-attention; build it with encoder_sequence_shape to use one."
            )
        if decoder_padding_mask is None and self_attention_cache is None:
            decoder_padding_mask = implicit_mask(decoder_sequence)
        if encoder_padding_mask is None:
            encoder_padding_mask = implicit_mask(encoder_sequence)
        scores = {}
        x = self.self_attention_residual.before(decoder_sequence)
        attended = self.self_attention(
            x,
            padding_mask=decoder_padding_mask,
            attention_mask=decoder_attention_mask,
            use_causal_mask=True,
            return_attention_scores=return_attention_scores,
            cache=self_attention_cache,
            cache_update_index=self_attention_cache_update_index,
            training=training,
        )
        attended = attended if isinstance(attended, tuple) else (attended,)
        x = attended[0]
        if return_attention_scores:
            scores["self_attention"] = attended[1]
        if self_attention_cache is not None:
            self_attention_cache = attended[-1]
        x = self.self_attention_residual.after(decoder_sequence, x, training=training)

        has_source = encoder_sequence is not None or cross_attention_cache is not None
        if self.cross_attention is not None and has_source:
            residual = x
            attended = self.cross_attention(
                self.cross_attention_residual.before(x),
                value=encoder_sequence,
                padding_mask=encoder_padding_mask,
                return_attention_scores=return_attention_scores,
                cache=cross_attention_cache,
                training=training,
            )
            attended = attended if isinstance(attended, tuple) else (attended,)
            if return_attention_scores:
                scores["cross_attention"] = attended[1]
            x = self.cross_attention_residual.after(residual, attended[0], training=training)

        y = self.feedforward(self.feedforward_residual.before(x), training=training)
        x = self.feedforward_residual.after(x, y, training=training)

        results = (x,)
        if return_attention_scores:
            results += (scores,)
        if self_attention_cache is not None:
            results += (self_attention_cache,)
        return results[0] if len(results) == 1 else results

    def compute_output_shape(self, decoder_sequence_shape, encoder_sequence_shape=None):
        return decoder_sequence_shape

    def compute_output_spec(
        self,
        decoder_sequence,
        encoder_sequence=None,
        self_attention_cache=None,
        cross_attention_cache=None,
        return_attention_scores=False,
        **kwargs,
    ):
        """Symbolic outputs (functional API), as ``call`` returns them."""
        batch, length = decoder_sequence.shape[0], decoder_sequence.shape[1]
        results = (keras.KerasTensor(decoder_sequence.shape, self.compute_dtype),)
        if return_attention_scores:
            keys = length if self_attention_cache is None else self_attention_cache[0].shape[2]
            scores = {"self_attention": (batch, self.num_heads, length, keys)}
            if self.cross_attention is not None:
                if cross_attention_cache is not None:
                    scores["cross_attention"] = (batch, self.cross_attention.num_heads, length,
                                                 cross_attention_cache[0].shape[2])
                elif encoder_sequence is not None:
                    scores["cross_attention"] = (batch, self.cross_attention.num_heads, length,
                                                 encoder_sequence.shape[1])
            results += ({k: keras.KerasTensor(v, "float32") for k, v in scores.items()},)
        if self_attention_cache is not None:
            results += (tuple(keras.KerasTensor(part.shape, self.compute_dtype)
                              for part in self_attention_cache),)
        return results[0] if len(results) == 1 else results

    def get_config(self):
        config = super().get_config()
        config["cross_attention_num_heads"] = self.cross_attention_num_heads
        return config
