"""The serving module: raw strings in, decoded strings out, all inside the graph.

``TextToTextModule`` wraps a model, its tokenizers and a ``DecodingConfig``
(greedy or beam search) as a ``tf.Module`` with three signatures:

- ``serving_default`` (``serve``): ``inputs`` 1-D strings -> ``outputs``
  (batch,) best strings, ``scores`` (batch,) float32;
- ``n_best``: ``inputs`` -> ``outputs`` (batch, n_best) strings, ``scores``
  (batch, n_best), best first;
- ``ids``: ``source_ids`` int32 (batch, length), PAD = 0 -> ``ids`` (batch,
  n_best, length) int32 generated ids (no START, END included, PAD after),
  ``scores`` (batch, n_best);
- ``source_lengths``: ``inputs`` -> ``lengths`` (batch,) int32, the source
  tokens of each input before truncation (so a client can tell which inputs
  the other signatures cut; exports before it lack it);
- ``prefix``: ``inputs`` and ``prefixes`` (batch,) strings -> ``outputs``
  (batch,) that start with their prefix (``""``: none) and continue it,
  ``scores`` (batch,) (interactive translation; not XLA-compiled);
- ``alignments``: ``inputs`` and ``outputs`` (batch,) strings (e.g. what
  ``serving_default`` returned, or a post-edited version) -> ``alignments``
  (batch,) strings ``"i-j ..."``: target token ``j`` aligned to source
  token ``i`` (``decoding/alignment.py``: the export's decoder layer's
  cross-attention, averaged over heads).

The text signatures call ``ids``, so decoding is traced once.
"""

import dataclasses

import tensorflow as tf

from keras_attention import validation
from keras_attention.constants import PAD_ID, START_ID
from keras_attention.decoding.alignment import check_layer
from keras_attention.decoding.generate import DecodingConfig, generate, output_length

DEFAULT_SIGNATURE = "serving_default"
INPUT_NAME = "inputs"
OUTPUT_NAME = "outputs"
SCORES_NAME = "scores"
SOURCE_IDS_NAME = "source_ids"
IDS_NAME = "ids"
LENGTHS_NAME = "lengths"
PREFIXES_NAME = "prefixes"
ALIGNMENTS_NAME = "alignments"
EXPORTABLE_STRATEGIES = ("greedy", "beam")


def check_exportable(config):
    """A one-line ``ValueError`` unless ``config``'s strategy can be exported
    (exports must be deterministic: greedy or beam search)."""
    if config.strategy not in EXPORTABLE_STRATEGIES:
        raise ValueError(
            f"strategy {config.strategy!r} cannot be exported: exports must be "
            f"deterministic; use one of {EXPORTABLE_STRATEGIES}."
        )

# What each signature takes and gives (recorded in the export's metadata).
SIGNATURES = {
    DEFAULT_SIGNATURE: {
        "inputs": {INPUT_NAME: "string (batch,)"},
        "outputs": {OUTPUT_NAME: "string (batch,)", SCORES_NAME: "float32 (batch,)"},
    },
    "n_best": {
        "inputs": {INPUT_NAME: "string (batch,)"},
        "outputs": {OUTPUT_NAME: "string (batch, n_best)",
                    SCORES_NAME: "float32 (batch, n_best)"},
    },
    "ids": {
        "inputs": {SOURCE_IDS_NAME: "int32 (batch, length), PAD = 0"},
        "outputs": {IDS_NAME: "int32 (batch, n_best, length)",
                    SCORES_NAME: "float32 (batch, n_best)"},
    },
    "source_lengths": {
        "inputs": {INPUT_NAME: "string (batch,)"},
        "outputs": {LENGTHS_NAME: "int32 (batch,), source tokens before truncation"},
    },
    "prefix": {
        "inputs": {INPUT_NAME: "string (batch,)", PREFIXES_NAME: "string (batch,), '' = none"},
        "outputs": {OUTPUT_NAME: "string (batch,), each starting with its prefix",
                    SCORES_NAME: "float32 (batch,)"},
    },
    "alignments": {
        "inputs": {INPUT_NAME: "string (batch,)", OUTPUT_NAME: "string (batch,)"},
        "outputs": {ALIGNMENTS_NAME: "string (batch,), 'i-j' pairs: target token j aligned "
                                     "to source token i"},
    },
}


class TextToTextModule(tf.Module):
    """Tokenize -> encode -> cached greedy or beam search -> detokenize, as one graph.

    Behaviour inside the graph (so TF Serving clients get it too):

    - inputs longer than the model's ``max_sequence_length`` tokens are
      truncated to it (text and ``ids`` signatures);
    - a batch larger than ``max_batch_size`` fails with an
      ``InvalidArgumentError`` naming ``max_batch_size`` (send smaller batches
      or export again with a larger one); an empty batch gives empty outputs;
    - an empty string (no source tokens) gives an empty output with score
      0.0 (``ids``: ``[END]`` then PAD), whatever else is in the batch;
    - invalid UTF-8 bytes are replaced with U+FFFD before tokenizing, never
      an error;
    - ``ids`` outside ``[0, source vocabulary size)`` fail with an
      ``InvalidArgumentError``.

    Args:
        model: a ``keras_attention.models.Transformer``.
        source_tokenizer, target_tokenizer: ``keras_attention.data`` tokenizers.
        max_output_length: most target tokens, START included (kept for
            compatibility: the same as ``config.max_length = max_output_length - 1``);
            at most the model's ``max_sequence_length``.
        config: a ``DecodingConfig`` with strategy ``greedy`` or ``beam``
            (exports must be deterministic, so ``sample`` is rejected).
        max_batch_size: most inputs per call.
        jit_compile: run the search compiled with XLA (``export --xla``):
            decoding several times faster on CPU once compiled, at the cost
            of one compilation (seconds) per shape bucket: batches are padded
            to a power of two and sources to a multiple of ``length_bucket``
            tokens, so at most ``log2(max_batch_size) + 1`` times
            ``max_sequence_length / length_bucket`` shapes. TF Serving runs
            it with ``--xla_cpu_compilation_enabled=true``. Outputs can differ
            from the plain graph's where two tokens nearly tie (XLA rounds
            differently).
        length_bucket: with ``jit_compile``, sources are padded to a multiple
            of this many tokens.
        alignment_layer: the decoder layer whose cross-attention the
            ``alignments`` signature reads (``-1``: the last).
    """

    def __init__(self, model, source_tokenizer, target_tokenizer, max_output_length=None,
                 config=DecodingConfig(), max_batch_size=64, jit_compile=False,
                 length_bucket=16, alignment_layer=-1):
        super().__init__(name="text_to_text")
        limit = model.config.max_sequence_length
        if not isinstance(config, DecodingConfig):
            raise TypeError(f"config must be a DecodingConfig, got {type(config).__name__}.")
        check_exportable(config)
        if max_output_length is not None:
            if not 1 < max_output_length <= limit:
                raise ValueError(
                    f"max_output_length must be in [2, {limit}] (the model's "
                    f"max_sequence_length), got {max_output_length}."
                )
            if config.max_length is not None:
                raise ValueError(
                    "pass either max_output_length or config.max_length, not both; "
                    "config.max_length counts generated tokens (START excluded)."
                )
            config = config.replace(max_length=max_output_length - 1)
        validation.check_positive_int("max_batch_size", max_batch_size)
        validation.check_positive_int("length_bucket", length_bucket)
        check_layer(model, alignment_layer)
        self.alignment_layer = alignment_layer % model.config.num_decoder_layers
        self.model = model
        # The TF1 loader (saved_model_cli, TF Serving) finds variables only
        # when the module tracks them itself.
        self.tf_vars = [v.value for v in model.weights]
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.config = config
        self.max_input_length = limit
        self.max_output_length = output_length(model, config) + 1  # START included
        self.max_batch_size = max_batch_size
        self.jit_compile = bool(jit_compile)
        self.length_bucket = length_bucket
        self._compiled_search = tf.function(self._search, jit_compile=True)

    def describe(self):
        """What the export does, for its metadata file."""
        return {
            "decoding": dataclasses.asdict(self.config),
            "max_input_length": self.max_input_length,
            "max_generated_tokens": self.max_output_length - 1,
            "max_batch_size": self.max_batch_size,
            "xla": self.jit_compile,
            "alignment_layer": self.alignment_layer,
            "decoder_layers": self.model.config.num_decoder_layers,
            "signatures": SIGNATURES,
        }

    def _check_batch(self, batch):
        return tf.debugging.assert_less_equal(
            tf.shape(batch)[0],
            tf.constant(self.max_batch_size, tf.int32),
            message=(
                f"batch larger than max_batch_size={self.max_batch_size}; send smaller "
                "batches or export again with a larger --max-batch-size"
            ),
        )

    def source_tokens(self, texts):
        """Ragged source ids of ``texts``, not truncated; invalid UTF-8 is
        replaced with U+FFFD first."""
        return self.source_tokenizer.tokenize(_valid_utf8(texts))

    def encode_text(self, texts):
        """Padded source ids ``(batch, length >= 1)``, truncated to the limit;
        invalid UTF-8 is replaced with U+FFFD first."""
        return _padded(self.source_tokens(texts)[:, : self.max_input_length])

    def encode_target(self, texts, limit):
        """Padded target ids ``(batch, length >= 1)`` of ``texts`` (prefixes,
        outputs), cut to ``limit`` tokens, and each one's length."""
        ids = self.target_tokenizer.tokenize(_valid_utf8(texts))[:, :limit]
        return _padded(ids), tf.cast(ids.row_lengths(), tf.int32)

    def _check_pairs(self, inputs, others, what):
        """The batch check, and one ``what`` per input."""
        return [self._check_batch(inputs), tf.debugging.assert_equal(
            tf.shape(others)[0], tf.shape(inputs)[0],
            message=f"one {what} per input: as many {what}es as inputs")]

    def generate_ids(self, source_ids):
        """``(ids (batch, n_best, length), scores (batch, n_best))`` for
        padded source ids, truncated to the model's limit."""
        source_ids = tf.cast(source_ids, tf.int32)[:, : self.max_input_length]
        if not self.jit_compile:
            return self._search(source_ids)
        rows = tf.shape(source_ids)[0]
        ids, scores = self._compiled_search(self._bucketed(source_ids))
        return ids[:rows], scores[:rows]

    def _search(self, source_ids):
        generation = generate(self.model, source_ids, self.config)
        return generation.ids, generation.scores

    def _bucketed(self, source_ids):
        """``source_ids`` padded to a shape bucket for XLA (one compilation
        each): rows to a power of two (at most ``max_batch_size``) by
        repeating the last row, length to a multiple of ``length_bucket``
        (at most the model's limit) with PAD."""
        shape = tf.shape(source_ids)
        power = shape[0] - 1  # the next power of two >= rows, by smearing bits
        for shift in (1, 2, 4, 8, 16):
            power = tf.bitwise.bitwise_or(power, tf.bitwise.right_shift(power, shift))
        rows = tf.where(shape[0] > 0, tf.minimum(power + 1, self.max_batch_size), 0)
        bucket = self.length_bucket
        # source_ids are cut to max_input_length already, so length >= shape[1].
        length = tf.minimum((shape[1] + bucket - 1) // bucket * bucket, self.max_input_length)
        last = tf.maximum(shape[0] - 1, 0)
        source_ids = tf.gather(source_ids, tf.minimum(tf.range(rows), last))
        return tf.pad(source_ids, [[0, 0], [0, length - shape[1]]], constant_values=PAD_ID)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=SOURCE_IDS_NAME)])
    def ids(self, source_ids):
        vocabulary = self.model.config.encoder_vocabulary_size
        checks = [
            self._check_batch(source_ids),
            tf.debugging.assert_non_negative(
                source_ids, message="source_ids must be >= 0 (PAD = 0)"
            ),
            tf.debugging.assert_less(
                source_ids, tf.constant(vocabulary, tf.int32),
                message=f"source_ids must be < the source vocabulary size {vocabulary}",
            ),
        ]
        with tf.control_dependencies(checks):
            source_ids = tf.identity(source_ids)
        ids, scores = self.generate_ids(source_ids)
        return {IDS_NAME: ids, SCORES_NAME: scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def n_best(self, inputs):
        with tf.control_dependencies([self._check_batch(inputs)]):
            inputs = tf.identity(inputs)
        result = self.ids(self.encode_text(inputs))
        ids = result[IDS_NAME]
        shape = tf.shape(ids)
        texts = self.target_tokenizer.detokenize(tf.reshape(ids, [-1, shape[2]]))
        return {OUTPUT_NAME: tf.reshape(texts, shape[:2]), SCORES_NAME: result[SCORES_NAME]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def source_lengths(self, inputs):
        lengths = self.source_tokens(inputs).row_lengths()
        return {LENGTHS_NAME: tf.cast(lengths, tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def serve(self, inputs):
        result = self.n_best(inputs)
        return {OUTPUT_NAME: result[OUTPUT_NAME][:, 0], SCORES_NAME: result[SCORES_NAME][:, 0]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME),
                                  tf.TensorSpec([None], tf.string, name=PREFIXES_NAME)])
    def prefix(self, inputs, prefixes):
        with tf.control_dependencies(self._check_pairs(inputs, prefixes, "prefix")):
            inputs = tf.identity(inputs)
        # A prefix leaves room for END: it is cut to max_output_length - 2 tokens.
        prefix_ids, _ = self.encode_target(prefixes, self.max_output_length - 2)
        generation = generate(self.model, self.encode_text(inputs), self.config,
                              prefix_ids=prefix_ids)
        texts = self.target_tokenizer.detokenize(generation.ids[:, 0])
        return {OUTPUT_NAME: texts, SCORES_NAME: generation.scores[:, 0]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME),
                                  tf.TensorSpec([None], tf.string, name=OUTPUT_NAME)])
    def alignments(self, inputs, outputs):
        with tf.control_dependencies(self._check_pairs(inputs, outputs, "output")):
            inputs = tf.identity(inputs)
        source_ids = self.encode_text(inputs)
        target_ids, lengths = self.encode_target(outputs, self.max_input_length - 1)
        start = tf.fill([tf.shape(target_ids)[0], 1], START_ID)
        decoder_ids = tf.concat([start, target_ids], axis=1)
        cross = self.model.attention_scores(source_ids, decoder_ids)["cross"]
        weights = tf.reduce_mean(tf.cast(cross[self.alignment_layer], tf.float32), axis=1)
        # Decoder position j (START, then the outputs' tokens) predicts token j.
        weights = weights[:, : tf.shape(target_ids)[1], :]
        weights = tf.where((source_ids != PAD_ID)[:, None, :], weights, float("-inf"))
        best = tf.argmax(weights, axis=-1, output_type=tf.int32)
        positions = tf.broadcast_to(tf.range(tf.shape(best)[1]), tf.shape(best))
        pairs = tf.strings.join([tf.strings.as_string(best), tf.strings.as_string(positions)],
                                separator="-")
        pairs = tf.RaggedTensor.from_tensor(pairs, lengths=lengths)
        return {ALIGNMENTS_NAME: tf.strings.reduce_join(pairs, axis=1, separator=" ")}

    def signatures(self):
        """The signatures to save, by name."""
        return {"serving_default": self.serve, "n_best": self.n_best, "ids": self.ids,
                "source_lengths": self.source_lengths, "prefix": self.prefix,
                "alignments": self.alignments}


def _valid_utf8(texts):
    """``texts`` with invalid UTF-8 replaced by U+FFFD."""
    return tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace",
                                        replacement_char=0xFFFD)


def _padded(ragged):
    """A dense PAD-filled tensor of ragged ids, at least one column (a batch
    of empty strings still needs one padding position)."""
    ids = ragged.to_tensor(PAD_ID)
    return tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])
