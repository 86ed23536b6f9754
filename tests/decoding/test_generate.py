"""``generate`` on tiny Transformers: cached equals uncached for every
strategy, padding invariance, scores equal teacher forcing, the controls,
tf.function / SavedModel, mixed precision and a trained model."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.decoding import (
    DecodingConfig,
    cached_steps,
    generate,
    gnmt_length_penalty,
    uncached_steps,
)
from keras_attention.models import Transformer

pytestmark = pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")

PAD, START, END = 0, 1, 2
VOCAB, MAX_LENGTH = 20, 12
SOURCES = [[5, 6, 7, 8, 9, 10, 11], [12, 4, 17], [19, 3, 8, 8, 5], [7]]


def padded(sources, length=None):
    length = length or max(len(s) for s in sources)
    return np.array([s + [PAD] * (length - len(s)) for s in sources], "int32")


def tiny_model(seed=0, dtype=None):
    keras.utils.set_random_seed(seed)
    return Transformer.from_preset(
        "tiny", dtype=dtype, encoder_vocabulary_size=VOCAB, decoder_vocabulary_size=VOCAB,
        max_sequence_length=MAX_LENGTH, num_encoder_layers=1, num_decoder_layers=2)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def run(model, source, config, steps=None):
    result = generate(model, source, config, steps)
    return np.asarray(result.ids), np.asarray(result.scores)


def log_probs(model, source, ids):
    """Teacher forcing: per-token log-probabilities ``(batch, n, length)`` of ``ids``."""
    batch, n, length = ids.shape
    decoder = np.concatenate([np.full((batch, n, 1), START), ids[:, :, :-1]], axis=2)
    logits = model({"encoder_tokens": np.repeat(source, n, axis=0),
                    "decoder_tokens": decoder.reshape(batch * n, length).astype("int32")})
    table = np.asarray(keras.ops.log_softmax(logits, axis=-1)).reshape(batch, n, length, -1)
    return np.take_along_axis(table, ids[..., None], axis=-1)[..., 0]


def generated_lengths(ids):
    """Tokens up to and including END (all of them if none)."""
    ended = ids == END
    return np.where(ended.any(-1), ended.argmax(-1) + 1, ids.shape[-1])


def teacher_forcing_scores(model, source, ids, alpha=None):
    per_token = log_probs(model, source, ids)
    lengths = generated_lengths(ids)
    mask = np.arange(ids.shape[-1]) < lengths[..., None]
    total = (per_token * mask).sum(-1)
    return total if alpha is None else total / ((5 + lengths) / 6) ** alpha


CONFIGS = {
    "greedy": DecodingConfig(),
    "beam": DecodingConfig(strategy="beam", beam_size=4, n_best=3),
    "sample": DecodingConfig(strategy="sample", n_best=3, seed=7, top_k=8, temperature=0.9),
}


@pytest.mark.parametrize("strategy", sorted(CONFIGS))
def test_cached_equals_uncached(model, strategy):
    source = padded(SOURCES)
    ids, scores = run(model, source, CONFIGS[strategy])
    reference_ids, reference_scores = run(model, source, CONFIGS[strategy], uncached_steps(model))
    np.testing.assert_array_equal(ids, reference_ids)
    np.testing.assert_allclose(scores, reference_scores, atol=1e-4)
    n = CONFIGS[strategy].n_best
    assert ids.shape == (4, n, MAX_LENGTH - 1) and ids.dtype == np.int32
    assert scores.shape == (4, n) and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    assert len(np.unique(ids)) >= 6  # varied, source-dependent choices
    # Every hypothesis ends (at the latest, forced at the limit) and is padded after.
    lengths = generated_lengths(ids)
    assert (ids[..., -1][lengths == ids.shape[-1]] == END).all()
    assert all((row[length:] == PAD).all() for row, length in zip(ids.reshape(-1, 11),
                                                                   lengths.reshape(-1)))


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_sentence_alone_equals_sentence_in_padded_batch(model, strategy):
    config = CONFIGS[strategy]
    batch_ids, batch_scores = run(model, padded(SOURCES), config)
    for i, sentence in enumerate(SOURCES):
        ids, scores = run(model, padded([sentence]), config)
        np.testing.assert_array_equal(ids[0], batch_ids[i])
        np.testing.assert_allclose(scores[0], batch_scores[i], atol=1e-4)
    # Extra padding in the batch does not matter either.
    np.testing.assert_array_equal(run(model, padded(SOURCES, 10), config)[0], batch_ids)


@pytest.mark.parametrize("strategy", sorted(CONFIGS))
def test_all_padding_source_gives_end_with_score_zero(model, strategy):
    source = padded([SOURCES[0], [], SOURCES[1]])
    ids, scores = run(model, source, CONFIGS[strategy])
    expected = np.full(ids.shape[1:], PAD, "int32")
    expected[:, 0] = END
    np.testing.assert_array_equal(ids[1], expected)
    np.testing.assert_array_equal(scores[1], 0.0)
    if strategy != "sample":  # a sample depends on its row in the batch
        # The other sentences decode as they do alone.
        alone, _ = run(model, padded([SOURCES[1]]), CONFIGS[strategy])
        np.testing.assert_array_equal(ids[2], alone[0])


def test_sampling_does_not_depend_on_source_padding(model):
    config = CONFIGS["sample"]
    ids, _ = run(model, padded(SOURCES), config)
    np.testing.assert_array_equal(run(model, padded(SOURCES, 10), config)[0], ids)


@pytest.mark.parametrize(
    "config, alpha",
    [
        (DecodingConfig(), None),
        (DecodingConfig(min_length=4, max_length_ratio=1.0, max_length_offset=2), None),
        (DecodingConfig(strategy="beam", beam_size=4, n_best=4, length_penalty=0.6), 0.6),
        (DecodingConfig(strategy="beam", beam_size=3, n_best=2, length_penalty=0.0,
                        max_length=6), 0.0),
    ],
)
def test_scores_equal_teacher_forcing(model, config, alpha):
    source = padded(SOURCES)
    ids, scores = run(model, source, config)
    np.testing.assert_allclose(scores, teacher_forcing_scores(model, source, ids, alpha),
                               atol=2e-4)


def test_beam_size_one_equals_greedy(model):
    source = padded(SOURCES)
    greedy = run(model, source, DecodingConfig())
    for alpha in (0.0, 0.6):
        beam = run(model, source, DecodingConfig(strategy="beam", beam_size=1,
                                                 length_penalty=alpha))
        np.testing.assert_array_equal(beam[0], greedy[0])
        lengths = generated_lengths(greedy[0])
        np.testing.assert_allclose(beam[1], greedy[1] / np.asarray(
            gnmt_length_penalty(lengths, alpha)), atol=1e-5)


def test_beam_n_best_are_distinct_and_beat_greedy_here(model):
    source = padded(SOURCES)
    ids, scores = run(model, source, DecodingConfig(strategy="beam", beam_size=4, n_best=4,
                                                    length_penalty=0.0))
    for row in ids:
        assert len({tuple(h) for h in row}) == 4
    greedy_ids, greedy_scores = run(model, source, DecodingConfig())
    assert np.all(scores[:, 0] >= greedy_scores[:, 0] - 1e-5)
    assert np.any(scores[:, 0] > greedy_scores[:, 0] + 0.1)


def test_min_length_and_absolute_max_length(model):
    source = padded(SOURCES)
    for strategy in ("greedy", "beam", "sample"):
        config = CONFIGS[strategy].replace(min_length=6, max_length=8)
        ids, _ = run(model, source, config)
        assert ids.shape[-1] == 8
        lengths = generated_lengths(ids)
        assert lengths.min() >= 7 and lengths.max() <= 8
        assert (ids[..., :6] != END).all()


def test_length_limit_relative_to_each_source(model):
    source = padded(SOURCES)
    config = DecodingConfig(max_length_ratio=1.2, max_length_offset=1, min_length=10)
    expected = [min(11, math.ceil(1.2 * len(s)) + 1) for s in SOURCES]  # 10, 5, 7, 3
    assert expected == [10, 5, 7, 3]
    for strategy in ("greedy", "beam", "sample"):
        ids, _ = run(model, source, config.replace(
            strategy=strategy, n_best=CONFIGS[strategy].n_best, seed=1))
        # min_length keeps END away until the sentence's own limit forces it.
        lengths = generated_lengths(ids)
        np.testing.assert_array_equal(lengths, np.repeat([expected], ids.shape[1], 0).T)
    # A ratio like 1.1 * 10 = 11.000000238 in float32 still gives 11 tokens.
    ids, _ = run(model, padded([list(range(3, 13))]),
                 DecodingConfig(max_length_ratio=0.1, max_length_offset=0, min_length=10))
    assert generated_lengths(ids).tolist() == [[1]]


def ngrams(sequence, n):
    return [tuple(sequence[i:i + n]) for i in range(len(sequence) - n + 1)]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram(model, n):
    source = padded(SOURCES)
    plain, _ = run(model, source, DecodingConfig(min_length=9))

    def repeats(ids):
        sequences = [[START] + list(h[:length]) for h, length in
                     zip(ids.reshape(-1, ids.shape[-1]), generated_lengths(ids).reshape(-1))]
        return [len(ngrams(s, n)) - len(set(ngrams(s, n))) for s in sequences]

    assert sum(repeats(plain)) > 0  # the random model repeats itself
    for strategy in ("greedy", "beam", "sample"):
        config = CONFIGS[strategy].replace(no_repeat_ngram_size=n, min_length=min(9, 16 // n))
        ids, _ = run(model, source, config)
        assert sum(repeats(ids)) == 0


def test_repetition_penalty_matches_a_python_reference(model):
    """Greedy with the CTRL penalty equals a plain loop that applies it to the
    model's logits of already generated tokens."""
    penalty, source = 3.0, padded(SOURCES)
    ids, _ = run(model, source, DecodingConfig(repetition_penalty=penalty, min_length=8))
    for row, sentence in enumerate(SOURCES):
        tokens = [START]
        while len(tokens) < MAX_LENGTH and tokens[-1] != END:
            logits = np.array(model({"encoder_tokens": padded([sentence]),
                                       "decoder_tokens": np.array([tokens], "int32")}))[0, -1]
            for token in set(tokens[1:]):
                logits[token] = logits[token] / penalty if logits[token] > 0 else \
                    logits[token] * penalty
            if len(tokens) <= 8:
                logits[END] = -np.inf
            if len(tokens) == MAX_LENGTH - 1:  # the limit forces END
                logits[:] = np.where(np.arange(VOCAB) == END, 0.0, -np.inf)
            tokens.append(int(np.argmax(logits)))
        expected = tokens[1:] + [PAD] * (MAX_LENGTH - len(tokens))
        np.testing.assert_array_equal(ids[row, 0], expected)
    unpenalized, _ = run(model, source, DecodingConfig(min_length=8))
    assert not np.array_equal(ids, unpenalized)


def test_sampling_controls(model):
    source = padded(SOURCES)
    sample = CONFIGS["sample"].replace(n_best=8, top_k=0, temperature=1.0)
    # Seeds reproduce; another seed draws other sequences.
    first = run(model, source, sample.replace(seed=3))
    np.testing.assert_array_equal(run(model, source, sample.replace(seed=3))[0], first[0])
    assert not np.array_equal(run(model, source, sample.replace(seed=4))[0], first[0])
    # Sample scores are the model's log-probabilities of the drawn tokens.
    np.testing.assert_allclose(first[1], teacher_forcing_scores(model, source, first[0]),
                               atol=2e-4)
    # Temperature -> 0 and top_k = 1 are greedy search.
    greedy = run(model, source, DecodingConfig())[0]
    for config in (sample.replace(temperature=1e-4), sample.replace(top_k=1)):
        ids = run(model, source, config)[0]
        np.testing.assert_array_equal(ids, np.repeat(greedy, 8, axis=1))


def ranks(model, source, ids):
    """Rank of every generated token in the model's distribution (0 = best)
    and the probability mass of strictly better tokens."""
    batch, n, length = ids.shape
    decoder = np.concatenate([np.full((batch, n, 1), START), ids[:, :, :-1]], axis=2)
    logits = model({"encoder_tokens": np.repeat(source, n, axis=0),
                    "decoder_tokens": decoder.reshape(batch * n, length).astype("int32")})
    probs = np.asarray(keras.ops.softmax(logits, axis=-1)).reshape(batch, n, length, -1)
    chosen = np.take_along_axis(probs, ids[..., None], axis=-1)
    better = np.where(probs > chosen, probs, 0.0)
    # The END forced at the length limit may have any rank: left out.
    lengths = generated_lengths(ids)
    mask = np.arange(length) < np.minimum(lengths, length - 1)[..., None]
    return (probs > chosen).sum(-1)[mask], better.sum(-1)[mask]


def test_top_k_and_top_p_only_draw_allowed_tokens(model):
    source = padded(SOURCES)
    base = CONFIGS["sample"].replace(n_best=16, top_k=0, temperature=1.0, seed=11)
    unrestricted, _ = ranks(model, source, run(model, source, base)[0])
    assert unrestricted.max() >= 4  # without limits, unlikely tokens get drawn
    token_ranks, _ = ranks(model, source, run(model, source, base.replace(top_k=3))[0])
    assert token_ranks.max() <= 2 and len(set(token_ranks)) == 3
    _, mass_before = ranks(model, source, run(model, source, base.replace(top_p=0.5))[0])
    assert mass_before.max() < 0.5  # drawn from the nucleus only
    assert mass_before.max() > 0  # ... which is more than the top token


def test_tf_function_and_saved_model(model, tmp_path):
    configs = {name: CONFIGS[name] for name in ("greedy", "beam", "sample")}

    class Decoder(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.tf_vars = [v.value for v in model.weights]

        def _decode(self, name, source):
            result = generate(self.model, source, configs[name])
            return {"ids": result.ids, "scores": result.scores}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def greedy(self, source):
            return self._decode("greedy", source)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def beam(self, source):
            return self._decode("beam", source)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def sample(self, source):
            return self._decode("sample", source)

    module = Decoder()
    source = padded(SOURCES)
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    for name in configs:
        eager_ids, eager_scores = run(model, source, configs[name])
        for decoder in (module, loaded):
            outputs = getattr(decoder, name)(tf.constant(source))
            np.testing.assert_array_equal(outputs["ids"].numpy(), eager_ids)
            np.testing.assert_allclose(outputs["scores"].numpy(), eager_scores, atol=1e-4)


def test_mixed_bfloat16_model_decodes():
    model = tiny_model(dtype="mixed_bfloat16")
    source = padded(SOURCES)
    for name in ("greedy", "beam"):
        ids, scores = run(model, source, CONFIGS[name])
        uncached_ids, _ = run(model, source, CONFIGS[name], uncached_steps(model))
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        assert np.isfinite(scores).all()
        assert (generated_lengths(ids) <= ids.shape[-1]).all()
        # bfloat16 rounding differs a little between the two paths.
        assert (ids == uncached_ids).mean() > 0.8
        alpha = 0.6 if name == "beam" else None
        np.testing.assert_allclose(scores, teacher_forcing_scores(model, source, ids, alpha),
                                   atol=0.15)
