"""Transformer encoder block: self-attention and feed-forward, each with a residual."""

import keras

from keras_attention.layers.masking import implicit_mask
from keras_attention.layers.sublayers import TransformerBlock


@keras.saving.register_keras_serializable(package="keras_attention")
class TransformerEncoderBlock(TransformerBlock):
    """One encoder layer of the Transformer (Vaswani et al., 2017).

    Arguments are those of ``TransformerBlock``.

    Call arguments:
        inputs: ``(batch, length, hidden_dim)``.
        padding_mask: ``(batch, length)``, true for real tokens; defaults to
            the Keras mask of ``inputs``.
        attention_mask: ``(batch, length, length)``, true = attend.
        return_attention_scores: also return the self-attention probabilities.
    """

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        self.self_attention = self._attention(hidden_dim, "self_attention")
        self.self_attention.build(inputs_shape)
        self.self_attention_residual = self._residual("self_attention_residual")
        self.self_attention_residual.build(inputs_shape)
        self.feedforward = self._feedforward()
        self.feedforward.build(inputs_shape)
        self.feedforward_residual = self._residual("feedforward_residual")
        self.feedforward_residual.build(inputs_shape)
        self.built = True

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
    ):
        if padding_mask is None:
            padding_mask = implicit_mask(inputs)
        x = self.self_attention_residual.before(inputs)
        x, scores = self.self_attention(
            x,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            return_attention_scores=True,
            training=training,
        )
        x = self.self_attention_residual.after(inputs, x, training=training)
        y = self.feedforward(self.feedforward_residual.before(x), training=training)
        x = self.feedforward_residual.after(x, y, training=training)
        return (x, scores) if return_attention_scores else x

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def compute_output_spec(self, inputs, return_attention_scores=False, **kwargs):
        """Symbolic outputs (functional API), as ``call`` returns them."""
        output = keras.KerasTensor(inputs.shape, self.compute_dtype)
        if not return_attention_scores:
            return output
        length = inputs.shape[1]
        return output, keras.KerasTensor((inputs.shape[0], self.num_heads, length, length), "float32")
