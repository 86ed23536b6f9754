"""TFLite export of the whole pipeline: a string in, its translation out.

``export_tflite_text`` puts tokenization, the encoder, the cached greedy or
beam search of ``ids.SearchIdsModule`` and detokenization in one ``.tflite``:

- input ``inputs``: a string ``(1,)`` (UTF-8); tokens past the model's
  ``max_sequence_length`` are cut, as the SavedModel does;
- outputs ``outputs``: the detokenized string ``(1,)``, and ``ids``: int32
  ``(1, max_output_length)`` generated ids (END included, PAD after).

Tokenization uses TF Text's ``FastSentencepieceTokenizer`` ops, which have
TFLite kernels (custom ops ``TFText>FastSentencepieceTokenize`` /
``...Detokenize``); everything else is TFLite builtin ops (no Flex delegate).
Interpreters must register the TF Text ops
(``tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS`` in Python, the
``tensorflow_text`` TFLite op library on Android/iOS); see
``saved_models/README.md``.

Only SentencePiece **unigram** tokenizers without ``lowercase`` or
``normalization`` can be expressed this way: ``FastSentencepieceTokenizer``
implements unigram segmentation only, and lowercasing, Unicode normalization
and the WordPiece/word/character splitters need string ops that TFLite has no
kernel for. For those ``fast_sentencepiece`` raises a one-line error naming
the fallback: the ids -> ids model (``ids.export_tflite``) with the
tokenizers run by the app.

One known difference from the SavedModel: the fast tokenizer treats control
whitespace (tab, newline...) that the vocabulary lacks as a space where our
tokenizer gives ``[UNK]``; invalid UTF-8 is not replaced with U+FFFD.
"""

import tensorflow as tf
import tensorflow_text as tf_text
from sentencepiece import sentencepiece_model_pb2

from keras_attention.atomic import write_atomically
from keras_attention.data.subword import SentencePieceTokenizer
from keras_attention.data.tokenizers import END_ID, RESERVED_TOKENS
from keras_attention.decoding.generate import DecodingConfig
from keras_attention.export.signatures import IDS_NAME, INPUT_NAME, OUTPUT_NAME
from keras_attention.export.tflite.convert import check_quantize, float32_copy, to_tflite
from keras_attention.export.tflite.ids import SearchIdsModule
from keras_attention.models.saving import TrainedModel

_UNIGRAM = sentencepiece_model_pb2.TrainerSpec.UNIGRAM


def fast_sentencepiece(tokenizer, role="source"):
    """A ``tf_text.FastSentencepieceTokenizer`` that gives ``tokenizer``'s
    ids and text, or a ``ValueError`` saying why there is none and naming the
    fallback. ``role`` (``"source"``/``"target"``) goes into the message.

    Our ``SentencePieceTokenizer`` trains its model without SentencePiece's
    dummy prefix and adds the leading space itself (a string op TFLite lacks);
    the fast tokenizer is built from the same model with the dummy prefix
    switched on, which adds that space in the kernel (and drops it when
    detokenizing), for the same ids.
    """
    fallback = ("no TFLite kernel can run it, so there is no string -> string TFLite model; "
                "export the ids -> ids model (--io ids) and tokenize in the app with the "
                f"folder's {role}.json tokenizer")
    if type(tokenizer) is not SentencePieceTokenizer:
        raise ValueError(f"the {role} tokenizer is a {type(tokenizer).__name__}: {fallback}.")
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(tokenizer.model_proto)
    if model.trainer_spec.model_type != _UNIGRAM:
        kind = sentencepiece_model_pb2.TrainerSpec.ModelType.Name(model.trainer_spec.model_type)
        raise ValueError(f"the {role} tokenizer is a SentencePiece {kind} model (TF Text's "
                         f"fast kernel implements unigram only): {fallback}.")
    if tokenizer.lowercase or tokenizer.normalization is not None:
        raise ValueError(f"the {role} tokenizer lowercases or normalizes text "
                         f"(lowercase={tokenizer.lowercase}, normalization="
                         f"{tokenizer.normalization!r}): {fallback}.")
    model.normalizer_spec.add_dummy_prefix = True
    return tf_text.FastSentencepieceTokenizer(model.SerializeToString())


def text_model_problem(trained):
    """Why ``trained`` has no string -> string TFLite model (the one-line
    message of ``fast_sentencepiece``), or ``None`` when it has one."""
    try:
        fast_sentencepiece(trained.source_tokenizer, "source")
        fast_sentencepiece(trained.target_tokenizer, "target")
    except ValueError as error:
        return str(error)
    return None


class TextSearchModule(tf.Module):
    """The graph ``export_tflite_text`` converts: a string -> its
    translation (and the generated ids).

    Args:
        trained: a ``models.TrainedModel`` whose tokenizers pass
            ``fast_sentencepiece``.
        config: the ``DecodingConfig`` to run (as for ``ids.SearchIdsModule``;
            source length: the model's ``max_sequence_length``).
    """

    def __init__(self, trained, config=DecodingConfig()):
        super().__init__(name="search_text")
        self.source = fast_sentencepiece(trained.source_tokenizer, "source")
        self.target = fast_sentencepiece(trained.target_tokenizer, "target")
        self.target_vocabulary_size = trained.target_tokenizer.vocabulary_size
        self.decoder = SearchIdsModule(float32_copy(trained.model), config)
        self.text = tf.function(
            self._text, input_signature=[tf.TensorSpec([1], tf.string, name=INPUT_NAME)])

    def _text(self, inputs):
        length = self.decoder.max_source_length
        tokens = self.source.tokenize(inputs).flat_values[:length]
        source_ids = tf.reshape(tf.pad(tokens, [[0, length - tf.size(tokens)]]), [1, length])
        ids = self.decoder.search(source_ids)[IDS_NAME]
        # The target tokenizer's detokenize rule (stop at END, drop reserved
        # and unknown ids) with dense ops.
        row = ids[0]
        before_end = tf.math.cumsum(tf.cast(row == END_ID, tf.int32)) == 0
        keep = before_end & (row >= len(RESERVED_TOKENS)) & (row < self.target_vocabulary_size)
        kept = tf.boolean_mask(row, keep)
        text = self.target.detokenize(
            tf.RaggedTensor.from_row_splits(kept, tf.stack([0, tf.size(kept)]), validate=False))
        return {OUTPUT_NAME: text, IDS_NAME: ids}


def export_tflite_text(trained, path, config=DecodingConfig(), quantize="none"):
    """Write the string -> string model of ``trained`` to ``path``
    (through a temporary file renamed into place).

    Args:
        trained: a ``models.TrainedModel`` with SentencePiece unigram
            tokenizers (see ``fast_sentencepiece``).
        path: the ``.tflite`` file to write.
        config: the ``DecodingConfig`` to run (greedy or beam search,
            ``n_best=1``; ``max_length`` fixes the ids output's length).
        quantize: one of ``convert.QUANTIZATIONS``.

    Returns:
        ``path``.
    """
    if not isinstance(trained, TrainedModel):
        raise TypeError("export_tflite_text needs a TrainedModel (model and tokenizers), "
                        f"got {type(trained).__name__}; load one with load_trained_model.")
    check_quantize(quantize)
    module = TextSearchModule(trained, config)
    write_atomically(path, to_tflite(module.text.get_concrete_function(), module, quantize,
                                     custom_ops=True))
    return path
