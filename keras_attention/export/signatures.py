"""The serving module: raw strings in, decoded strings out, all inside the graph."""

import tensorflow as tf

from keras_attention.data.tokenizers import END_ID, PAD_ID, START_ID
from keras_attention.decoding.greedy import greedy_search

INPUT_NAME = "inputs"
OUTPUT_NAME = "outputs"


class TextToTextModule(tf.Module):
    """Tokenize -> encode -> cached greedy decoding -> detokenize, as one graph.

    ``serve`` is the ``serving_default`` signature: a 1-D batch of UTF-8
    strings named ``inputs`` gives ``{"outputs": strings}``. Inputs longer
    than the model's ``max_sequence_length`` tokens are truncated; an empty
    string gives a defined (model-chosen) output.

    Args:
        model: a ``keras_attention.models.Transformer``.
        source_tokenizer, target_tokenizer: ``keras_attention.data`` tokenizers.
        max_output_length: most target tokens generated, START included;
            at most the model's ``max_sequence_length``.
    """

    def __init__(self, model, source_tokenizer, target_tokenizer, max_output_length=None):
        super().__init__(name="text_to_text")
        limit = model.config.max_sequence_length
        if max_output_length is not None and not 1 < max_output_length <= limit:
            raise ValueError(
                f"max_output_length must be in [2, {limit}] (the model's "
                f"max_sequence_length), got {max_output_length}."
            )
        self.model = model
        # The TF1 loader (saved_model_cli, TF Serving) finds variables only
        # when the module tracks them itself.
        self.tf_vars = [v.value for v in model.weights]
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_input_length = limit
        self.max_output_length = max_output_length or limit

    def encode_text(self, texts):
        """Padded source ids ``(batch, length >= 1)``, truncated to the limit."""
        ids = self.source_tokenizer.tokenize(texts)[:, : self.max_input_length]
        ids = ids.to_tensor(PAD_ID)
        # A batch of empty strings still needs one (padding) position.
        return tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])

    def generate_ids(self, source_ids):
        """Greedy target ids ``(batch, max_output_length)`` for source ids."""
        encoder_output, padding_mask = self.model.encode(source_ids)
        cache = self.model.init_cache(encoder_output, padding_mask, self.max_output_length)
        start = tf.fill([tf.shape(source_ids)[0]], START_ID)
        return greedy_search(
            self.model.decode_step, start, cache, self.max_output_length, END_ID, PAD_ID
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def serve(self, inputs):
        tokens = self.generate_ids(self.encode_text(inputs))
        return {OUTPUT_NAME: self.target_tokenizer.detokenize(tokens)}
