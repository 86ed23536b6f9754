"""The ids -> ids TFLite model: padded source ids in, ``generate``'s ids out,
TFLite builtin ops only.

``export_tflite`` converts the model's encoder and the search of a
``DecodingConfig`` (greedy or beam search with all of its controls: length
limits, n-gram blocking, repetition penalty, beam stopping) into one
``.tflite`` flatbuffer:

- input ``source_ids``: int32 ``(1, max_source_length)``, PAD = 0 after the
  tokens (padding does not change the output);
- output ``ids``: int32 ``(1, max_output_length)`` generated ids (no START,
  END included, PAD after), those of ``generate(model, source_ids, config)``,
  ``max_output_length`` being ``config.max_length`` (or the model's limit).

The graph is ``generate`` itself: ``tf.while_loop``s (TFLite ``WHILE``) over
the per-layer key/value cache, grown in windows, whose conditions stop at
END (beam search: once no beam can win), so short outputs take few steps.
The one change is the greedy argmax, which Keras computes with a bitwise op
TFLite lacks. Tokenization stays with the caller (the folder's tokenizers).

The model's key/value cache is 4-D tensors (one keys and one values tensor
per layer): ``tf.lite.Interpreter``, like older runtimes on phones, slices
at most 5-D tensors, so it runs the file as LiteRT does.
"""

import tensorflow as tf

from keras_attention import validation
from keras_attention.atomic import write_atomically
from keras_attention.decoding.generate import DecodingConfig, generate, output_length
from keras_attention.export.signatures import IDS_NAME, SOURCE_IDS_NAME, check_exportable
from keras_attention.export.tflite.convert import check_quantize, float32_copy, to_tflite
from keras_attention.models.saving import TrainedModel


def tflite_argmax_pick(scores, tokens, index):
    """Greedy choice with TFLite's ``ARG_MAX`` (``keras.ops.argmax`` adds a
    bitwise op for signed zeros that TFLite has no kernel for)."""
    return tf.math.argmax(scores, axis=-1, output_type=tf.int32)


def check_tflite_decoding(config):
    """A one-line ``ValueError`` unless a TFLite model can run ``config``:
    greedy or beam search (deterministic), one output per input."""
    check_exportable(config)
    if config.n_best != 1:
        raise ValueError(f"a TFLite model returns one output per input, got n_best="
                         f"{config.n_best}; use n_best=1 (or the SavedModel's n_best signature).")


def fixed_lengths(model, config, max_source_length=None):
    """``(max_source_length, max_output_length)`` of a TFLite model of
    ``model`` running ``config`` (``None``: the model's
    ``max_sequence_length``; the output: ``config.max_length`` or the
    model's limit), or a one-line ``ValueError`` when it cannot be built."""
    check_tflite_decoding(config)
    limit = model.config.max_sequence_length
    max_source_length = limit if max_source_length is None else max_source_length
    validation.check_positive_int("max_source_length", max_source_length)
    if max_source_length > limit:
        raise ValueError(
            f"max_source_length={max_source_length} exceeds the model's "
            f"max_sequence_length {limit}; use at most {limit}."
        )
    return max_source_length, output_length(model, config)


class SearchIdsModule(tf.Module):
    """The graph ``export_tflite`` converts: padded source ids -> the ids of
    ``generate(model, source_ids, config)``.

    Args:
        model: a ``keras_attention.models.Transformer``.
        config: a ``DecodingConfig`` (greedy or beam search, ``n_best=1``);
            its ``max_length`` (``None``: the model's limit) is the output's
            fixed length, ``max_output_length``.
        max_source_length: source positions (``None``: the model's
            ``max_sequence_length``).
    """

    def __init__(self, model, config=DecodingConfig(), max_source_length=None):
        super().__init__(name="search_ids")
        self.max_source_length, self.max_output_length = fixed_lengths(
            model, config, max_source_length)
        self.model = model
        self.tf_vars = [v.value for v in model.weights]
        self.config = config.replace(max_length=self.max_output_length)
        self.ids = tf.function(
            self.search,
            input_signature=[tf.TensorSpec([1, self.max_source_length], tf.int32,
                                           name=SOURCE_IDS_NAME)],
        )

    def search(self, source_ids):
        """``{"ids": (1, max_output_length) int32}`` for padded source ids."""
        generation = generate(self.model, source_ids, self.config,
                              greedy_pick=tflite_argmax_pick)
        return {IDS_NAME: generation.ids[:, 0]}


def export_tflite(trained_or_model, path, config=DecodingConfig(), max_source_length=None,
                  quantize="none"):
    """Write the ids -> ids decoder of a model to ``path`` (``.tflite``).

    Args:
        trained_or_model: a ``models.TrainedModel`` or a ``Transformer``.
        path: the file to write, through a temporary file renamed into place.
        config: the ``DecodingConfig`` to run (see ``SearchIdsModule``).
        max_source_length: the input's fixed length (pad with 0; ``None``:
            the model's ``max_sequence_length``).
        quantize: one of ``convert.QUANTIZATIONS``.

    Returns:
        ``path``.
    """
    model = trained_or_model.model if isinstance(trained_or_model, TrainedModel) \
        else trained_or_model
    check_quantize(quantize)
    module = SearchIdsModule(float32_copy(model), config, max_source_length)
    write_atomically(path, to_tflite(module.ids.get_concrete_function(), module, quantize))
    return path
