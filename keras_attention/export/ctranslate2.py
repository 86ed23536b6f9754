"""CTranslate2 export: a trained model as a CTranslate2 model folder, and
decoding with it behind our own tokenizers.

CTranslate2 (the C++ inference engine OpenNMT users deploy) runs the same
weights several times faster than a TensorFlow graph on CPU. The converter
is written against its public specs API (``TransformerSpec.from_config`` and a
``ctranslate2.converters.Converter`` subclass):

- post-norm (``pre_norm=False``, no final norm) and pre-norm (final norms);
- positions: our own table (sinusoidal, channels interleaved sin/cos, or
  the learned embeddings), never CTranslate2's built-in sinusoid, which lays
  channels out differently; token embeddings scaled by ``sqrt(hidden_dim)``;
- self-attention as one fused QKV linear, cross-attention as Q then fused KV;
  ``LinearSpec`` weights are ``[out, in]``;
- shared and tied embeddings; ``layer_norm_epsilon`` in the model config;
- the vocabulary is our ids written as tokens (``<blank> <s> </s> <unk>``
  for the reserved ids, then ``"4"``, ``"5"``, ...): tokenization stays ours
  (any of our tokenizer types) and ids go in and come out unchanged.

The folder holds CTranslate2's files (``model.bin``, ``config.json``, the
vocabularies), our tokenizers (``source.*``, ``target.*``) and
``keras_attention.json`` (``format: ctranslate2``, task, length limit,
decoding), so ``keras-attention translate/summarize/evaluate --model
FOLDER`` decode with it. Copy-attention models have no CTranslate2
counterpart. ``ctranslate2`` is an optional dependency
(``pip install 'keras-attention[ctranslate2]'``), imported only here.
"""

import json
import os

import keras
import numpy as np

from keras_attention import validation
from keras_attention.atomic import atomic_directory
from keras_attention.constants import (
    CTRANSLATE2_MODEL_FILE as MODEL_FILE,
    CTRANSLATE2_QUANTIZATIONS as QUANTIZATIONS,
    END_ID,
    METADATA_FILE,
    START_ID,
    UNK_ID,
)
from keras_attention.data.tokenizer_files import load_tokenizer, save_tokenizer
from keras_attention.decoding.generate import DecodingConfig, max_output_length
from keras_attention.decoding.text import Hypothesis, check_source_lengths, detokenize, source_ids
from keras_attention.layers.positional import SinusoidalPositionEncoding

FORMAT = "ctranslate2"
# Our reserved ids 0-3 (PAD, START, END, UNK) under the names CTranslate2 knows.
SPECIAL_TOKENS = ("<blank>", "<s>", "</s>", "<unk>")
INSTALL_HINT = "pip install 'keras-attention[ctranslate2]'"


def _ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ImportError(
            f"CTranslate2 is not installed; install it with: {INSTALL_HINT}"
        ) from None
    return ctranslate2


def vocabulary(size):
    """The CTranslate2 tokens of ids ``0 .. size - 1``."""
    return list(SPECIAL_TOKENS) + [str(i) for i in range(len(SPECIAL_TOKENS), size)]


def _numpy(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _out_in(kernel):
    """A Keras ``(in, ...out)`` kernel as CTranslate2's ``[out, in]`` matrix."""
    kernel = _numpy(kernel)
    return kernel.reshape(kernel.shape[0], -1).T


def _linear(spec, kernel, bias):
    """``spec`` from a Keras kernel and its bias."""
    _fused(spec, [(kernel, bias)])


def _fused(spec, parts):
    """One linear computing the ``(kernel, bias)`` projections ``parts``
    side by side (CTranslate2's fused QKV and KV)."""
    spec.weight = np.ascontiguousarray(np.concatenate([_out_in(k) for k, _ in parts], axis=0))
    if all(b is not None for _, b in parts):
        spec.bias = np.concatenate([_numpy(b).reshape(-1) for _, b in parts])


def _output(spec, attention):
    kernel = _numpy(attention.output_dense.kernel)  # (heads, head_dim, hidden)
    spec.weight = np.ascontiguousarray(kernel.reshape(-1, kernel.shape[-1]).T)
    if attention.output_dense.bias is not None:
        spec.bias = _numpy(attention.output_dense.bias)


def _parts(*projections):
    """``(kernel, bias)`` of each ``EinsumDense`` projection."""
    return [(dense.kernel, dense.bias) for dense in projections]


def _layer_norm(spec, norm):
    spec.gamma = _numpy(norm.gamma)
    spec.beta = _numpy(norm.beta)


def _self_attention(spec, residual, attention):
    _fused(spec.linear[0], _parts(attention.query_dense, attention.key_dense,
                                  attention.value_dense))
    _output(spec.linear[1], attention)
    _layer_norm(spec.layer_norm, residual._norm)


def _cross_attention(spec, residual, attention):
    _fused(spec.linear[0], _parts(attention.query_dense))
    _fused(spec.linear[1], _parts(attention.key_dense, attention.value_dense))
    _output(spec.linear[2], attention)
    _layer_norm(spec.layer_norm, residual._norm)


def _feedforward(spec, residual, feedforward):
    _linear(spec.linear_0, feedforward._intermediate.kernel, feedforward._intermediate.bias)
    _linear(spec.linear_1, feedforward._output.kernel, feedforward._output.bias)
    _layer_norm(spec.layer_norm, residual._norm)


def position_table(embedding):
    """Float32 ``(max_sequence_length, hidden_dim)``: what ``embedding``
    (a ``TokenAndPositionEmbedding``) adds at each position."""
    positions = embedding.position_embedding
    if hasattr(positions, "position_embeddings"):
        return _numpy(positions.position_embeddings)
    table = SinusoidalPositionEncoding(max_wavelength=positions.max_wavelength, dtype="float32")
    return _numpy(table(np.zeros((1, embedding.sequence_length, embedding.embedding_dim),
                                 np.float32))[0])


def _embeddings(spec, tokens, embedding):
    """The token (``tokens``: its ``EmbeddingsSpec``) and position
    embeddings of the encoder or decoder ``spec``."""
    tokens.weight = _numpy(embedding.embeddings)
    spec.scale_embeddings = embedding.scale_embeddings
    spec.position_encodings.encodings = position_table(embedding)


def transformer_spec(model):
    """The ``ctranslate2.specs.TransformerSpec`` of ``model`` (a
    ``Transformer``) with its weights; a ``ValueError`` for what CTranslate2
    cannot run."""
    _ctranslate2()  # the install hint, before the specs imports fail
    from ctranslate2.specs import common_spec
    from ctranslate2.specs import transformer_spec as specs

    c = model.config
    if c.copy_attention:
        raise ValueError(
            "copy-attention models (copy_attention: true) have no CTranslate2 equivalent; "
            "export a SavedModel (--format saved_model) or TFLite instead."
        )
    if c.attention_heads:
        raise ValueError(
            "a pruned model (attention layers with fewer heads than others) has no CTranslate2 "
            "equivalent (one head count for every layer); export a SavedModel or TFLite instead."
        )
    activations = {"relu": common_spec.Activation.RELU, "gelu": common_spec.Activation.GELU}
    if c.activation not in activations:
        raise ValueError(
            f"activation {c.activation!r} has no CTranslate2 equivalent (it runs "
            f"{sorted(activations)}); export a SavedModel instead."
        )
    spec = specs.TransformerSpec.from_config(
        (c.num_encoder_layers, c.num_decoder_layers), c.num_heads,
        pre_norm=c.normalize_first, no_final_norm=not c.normalize_first,
        activation=activations[c.activation],
    )
    spec.config.layer_norm_epsilon = c.layer_norm_epsilon
    spec.config.unk_token = SPECIAL_TOKENS[UNK_ID]
    spec.config.bos_token = spec.config.decoder_start_token = SPECIAL_TOKENS[START_ID]
    spec.config.eos_token = SPECIAL_TOKENS[END_ID]

    encoder, decoder = spec.encoder, spec.decoder
    _embeddings(encoder, encoder.embeddings[0], model.encoder_embedding)
    _embeddings(decoder, decoder.embeddings, model.decoder_embedding)
    for layer, block in zip(encoder.layer, model.encoder_blocks):
        _self_attention(layer.self_attention, block.self_attention_residual, block.self_attention)
        _feedforward(layer.ffn, block.feedforward_residual, block.feedforward)
    for layer, block in zip(decoder.layer, model.decoder_blocks):
        _self_attention(layer.self_attention, block.self_attention_residual, block.self_attention)
        _cross_attention(layer.attention, block.cross_attention_residual, block.cross_attention)
        _feedforward(layer.ffn, block.feedforward_residual, block.feedforward)
    if c.normalize_first:
        _layer_norm(encoder.layer_norm, model.encoder_norm)
        _layer_norm(decoder.layer_norm, model.decoder_norm)
    if model.output_projection is not None:
        _linear(decoder.projection, model.output_projection.kernel,
                model.output_projection.bias)
    else:  # tied: logits are the decoder embeddings' transpose
        decoder.projection.weight = _numpy(model.decoder_embedding.embeddings)

    spec.register_source_vocabulary(vocabulary(c.encoder_vocabulary_size))
    spec.register_target_vocabulary(vocabulary(c.decoder_vocabulary_size))
    return spec


def _converter_class():
    ctranslate2 = _ctranslate2()

    class KerasAttentionConverter(ctranslate2.converters.Converter):
        """A ``Converter`` over an in-memory ``Transformer``."""

        def __init__(self, model):
            self._model = model

        def _load(self):
            return transformer_spec(self._model)

    return KerasAttentionConverter


def export_ctranslate2(trained, directory, quantization="none", metadata=None,
                       overwrite=False):
    """Write ``trained`` (a ``TrainedModel``) as a CTranslate2 folder at
    ``directory`` (atomically; an existing one only with ``overwrite``).

    ``quantization``: one of ``QUANTIZATIONS`` (weights as stored; the
    engine may compute in another type). ``metadata`` goes into
    ``keras_attention.json`` with the format, task, length limit and the
    folder's stored decoding. Returns ``directory``.
    """
    validation.check_choice("quantization", quantization, QUANTIZATIONS)
    converter = _converter_class()(trained.model)
    ctranslate2 = _ctranslate2()
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        converter.convert(tmp, quantization=None if quantization == "none" else quantization,
                          force=True)
        save_tokenizer(trained.source_tokenizer, tmp, "source")
        save_tokenizer(trained.target_tokenizer, tmp, "target")
        info = {
            "format": FORMAT,
            "task": trained.task,
            "quantization": quantization,
            "max_sequence_length": trained.model.config.max_sequence_length,
            "versions": {"ctranslate2": ctranslate2.__version__, "keras": keras.__version__},
        }
        if trained.metadata.get("decoding"):
            info["decoding"] = trained.metadata["decoding"]
        info.update(metadata or {})
        with open(os.path.join(tmp, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
    return os.path.abspath(directory)


def read_metadata(folder):
    """The ``keras_attention.json`` of ``folder`` as a dict."""
    with open(os.path.join(folder, METADATA_FILE), encoding="utf-8") as f:
        return json.load(f)


def ctranslate2_folder(path):
    """``path``, or its highest numbered version folder (the export layout),
    when it holds a folder ``export_ctranslate2`` wrote; else ``None``."""
    if not os.path.isdir(path):
        return None
    versions = [int(name) for name in os.listdir(path) if name.isdigit()]
    candidates = [path] + ([os.path.join(path, str(max(versions)))] if versions else [])
    for folder in candidates:
        if (os.path.isfile(os.path.join(folder, MODEL_FILE))
                and os.path.isfile(os.path.join(folder, METADATA_FILE))
                and read_metadata(folder).get("format") == FORMAT):
            return folder
    return None


def _search_options(config, limit):
    """``Translator.translate_batch`` options for a ``DecodingConfig`` and a
    per-sentence limit of generated tokens (END excluded, as CTranslate2
    counts). Scores are plain sums of log-probabilities (CTranslate2's
    length penalty is ``score / length ** alpha``, not GNMT's): beam search
    returns all ``beam_size`` hypotheses, which ``_gnmt_best`` ranks."""
    if config.repetition_penalty != 1.0:
        raise ValueError("repetition_penalty is not supported by CTranslate2 decoding here; "
                         "decode with the trained model folder instead.")
    if config.strategy == "beam" and config.beam_stopping != "early":
        raise ValueError("beam_stopping 'exact' is not supported by CTranslate2 decoding, "
                         "which stops early; decode with the trained model folder instead.")
    options = dict(
        max_decoding_length=limit,
        min_decoding_length=config.min_length,
        no_repeat_ngram_size=config.no_repeat_ngram_size,
        max_input_length=0,  # no silent cut: lengths are checked before
        length_penalty=0.0,
        return_scores=True,
    )
    if config.strategy == "greedy":
        return dict(options, beam_size=1)
    if config.strategy == "beam":
        return dict(options, beam_size=config.beam_size, num_hypotheses=config.beam_size)
    return dict(options, beam_size=1, num_hypotheses=config.n_best,
                sampling_topk=config.top_k, sampling_topp=config.top_p,
                sampling_temperature=config.temperature)


def _gnmt_best(ids, scores, config):
    """The ``n_best`` of hypotheses ``ids`` (END included) with
    log-probabilities ``scores``, ranked and scored as our beam search does:
    ``log P / ((5 + length) / 6) ** length_penalty``."""
    if config.strategy != "beam":
        return list(zip(ids, scores))
    penalized = [score / ((5 + len(row)) / 6) ** config.length_penalty
                 for row, score in zip(ids, scores)]
    order = sorted(range(len(ids)), key=lambda i: -penalized[i])[: config.n_best]
    return [(ids[i], penalized[i]) for i in order]


class CTranslate2Translator:
    """Text -> n-best hypotheses with a CTranslate2 folder and our tokenizers.

    Args:
        path: a folder written by ``export_ctranslate2`` (or its parent:
            the highest numbered version is used).
        config: a ``DecodingConfig`` (greedy, beam search or sampling).
        truncate: cut inputs longer than the model's limit instead of failing.
        device, compute_type, intra_threads: ``ctranslate2.Translator``
            options (``intra_threads=0``: one per core).
    """

    def __init__(self, path, config=DecodingConfig(), truncate=False, device="cpu",
                 compute_type="default", intra_threads=0):
        folder = ctranslate2_folder(path)
        if folder is None:
            raise FileNotFoundError(
                f"'{path}' is not a CTranslate2 export (no {MODEL_FILE} with a "
                f"{METADATA_FILE} of format ctranslate2); write one with "
                "'keras-attention export --format ctranslate2'."
            )
        ctranslate2 = _ctranslate2()
        self.metadata = read_metadata(folder)
        self.task = self.metadata.get("task")
        self.config = config
        self.truncate = bool(truncate)
        self.max_source_length = self.metadata["max_sequence_length"]
        self._max_length = max_output_length(self.max_source_length, config)
        self.source_tokenizer = load_tokenizer(folder, "source")
        self.target_tokenizer = load_tokenizer(folder, "target")
        self._translator = ctranslate2.Translator(
            folder, device=device, compute_type=compute_type, intra_threads=intra_threads)
        self._tokens = vocabulary(self.source_tokenizer.vocabulary_size)

    def source_lengths(self, texts):
        return [len(row) for row in source_ids(self.source_tokenizer, texts)]

    def _limit(self, row):
        """Generated tokens allowed for a source of ``row`` ids (END included)."""
        c, limit = self.config, self._max_length
        if c.max_length_ratio is not None:
            scaled = int(np.ceil(c.max_length_ratio * len(row) - 1e-4)) + c.max_length_offset
            limit = max(1, min(limit, scaled))
        return limit

    def _decode(self, rows):
        """n-best ``Hypothesis`` lists of the id lists ``rows``: one
        ``translate_batch`` per distinct length limit."""
        by_limit = {}
        for i, row in enumerate(rows):
            by_limit.setdefault(self._limit(row), []).append(i)
        found = [None] * len(rows)  # (hypotheses as token lists, their scores)
        for limit, indices in by_limit.items():
            # CTranslate2 counts END outside its limit; ours includes it.
            options = _search_options(self.config, limit - 1)
            batch = [[self._tokens[i] for i in rows[j]] for j in indices]
            for j, result in zip(indices, self._translator.translate_batch(batch, **options)):
                found[j] = (result.hypotheses, list(result.scores))
            self._score_at_limit(batch, [found[j] for j in indices], limit - 1)
        outputs = []
        for hypotheses, scores in found:
            ids = [[_token_id(token) for token in hypothesis] + [END_ID]
                   for hypothesis in hypotheses]
            best = _gnmt_best(ids, scores, self.config)
            texts = detokenize(self.target_tokenizer, [row for row, _ in best])
            outputs.append([Hypothesis(text, float(score))
                            for text, (_, score) in zip(texts, best)])
        return outputs

    def _score_at_limit(self, sources, found, limit):
        """Rescore, in place, the hypotheses of ``limit`` tokens: CTranslate2
        stops there without END, and its score lacks the END our search
        forces (and counts) at the limit; ``score_batch`` adds it (one that
        ended there by itself gets the same score)."""
        at_limit = [(i, k) for i, (hypotheses, _) in enumerate(found)
                    for k, hypothesis in enumerate(hypotheses) if len(hypothesis) == limit]
        if not at_limit:
            return
        rescored = self._translator.score_batch(
            [sources[i] for i, _ in at_limit], [found[i][0][k] for i, k in at_limit],
            max_input_length=0)
        for (i, k), result in zip(at_limit, rescored):
            found[i][1][k] = float(sum(result.log_probs))

    def stream(self, texts, batch_size=32, on_batch=None):
        """As ``TextGenerator.stream``: lists of n-best lists in input order,
        batch by batch (CTranslate2 sorts within a batch itself)."""
        validation.check_positive_int("batch_size", batch_size)
        ids = source_ids(self.source_tokenizer, texts)
        limit = self.max_source_length
        check_source_lengths([len(row) for row in ids], limit, self.truncate,
                             "--truncate, CTranslate2Translator(truncate=True)")
        ids = [row[:limit] for row in ids]
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            outputs = self._decode(chunk)
            if on_batch is not None:
                on_batch(len(chunk))
            yield outputs

    def generate(self, texts, batch_size=32, on_batch=None):
        return [h for ready in self.stream(texts, batch_size, on_batch) for h in ready]


def _token_id(token):
    if token in SPECIAL_TOKENS:
        return SPECIAL_TOKENS.index(token)
    return int(token)
