"""Ensembles: the models' log-probabilities averaged at every step."""

import keras
import numpy as np
import pytest
from decoding.test_golden import fixed_model, sources

from keras_attention.data import WordTokenizer
from keras_attention.decoding import DecodingConfig, generate
from keras_attention.decoding.cache import uncached_steps
from keras_attention.decoding.ensemble import check_members, ensemble_steps
from keras_attention.decoding.text import TextGenerator
from keras_attention.models import TrainedModel, Transformer

CONFIGS = [DecodingConfig(), DecodingConfig(strategy="beam", beam_size=3, n_best=2)]


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.fixture(scope="module")
def models():
    """Two tiny models with different weights (and head counts)."""
    first = fixed_model({}, 14)
    second = fixed_model({"num_heads": 2}, 14)
    rng = np.random.default_rng(11)
    for weight in second.weights:
        weight.assign(rng.normal(0.0, 0.4, weight.shape).astype("float32"))
    return first, second


@pytest.mark.parametrize("config", CONFIGS)
def test_a_model_with_itself_decodes_as_the_model(models, config):
    alone = generate(models[0], sources(), config)
    twice = generate(models[0], sources(), config, steps=ensemble_steps([models[0]] * 2))
    np.testing.assert_array_equal(_np(twice.ids), _np(alone.ids))
    np.testing.assert_allclose(_np(twice.scores), _np(alone.scores), atol=1e-5)


def test_a_step_is_the_mean_of_the_log_probabilities(models):
    steps = ensemble_steps(models)
    source = sources()
    state = steps.start(source, 8)
    tokens = np.full((len(source), 1), 1, "int32")
    mean, _ = steps.next(tokens, state, 0)
    expected = []
    for model in models:
        encoded, mask = model.encode(source)
        logits = model.decode(np.pad(tokens, [[0, 0], [0, 7]]), encoded, mask)[:, :1]
        expected.append(_np(keras.ops.log_softmax(logits, axis=-1)))
    np.testing.assert_allclose(_np(mean), np.mean(expected, axis=0), atol=1e-5)
    # Different models: the ensemble's outputs differ from each one's.
    config = CONFIGS[1]
    ensemble = _np(generate(models[0], source, config, steps=steps).ids)
    assert any(not np.array_equal(ensemble, _np(generate(m, source, config).ids))
               for m in models)


@pytest.mark.parametrize("config", CONFIGS)
def test_cached_equals_uncached(models, config):
    cached = generate(models[0], sources(), config, steps=ensemble_steps(models))
    uncached = generate(models[0], sources(), config,
                        steps=ensemble_steps(models, steps=uncached_steps))
    np.testing.assert_array_equal(_np(cached.ids), _np(uncached.ids))
    np.testing.assert_allclose(_np(cached.scores), _np(uncached.scores), atol=1e-4)


def _trained(model, texts):
    tokenizer = WordTokenizer.build(texts)
    return TrainedModel(model, tokenizer, tokenizer)


def _tiny(vocabulary, max_sequence_length=16):
    return Transformer.from_preset("tiny", encoder_vocabulary_size=vocabulary,
                                   decoder_vocabulary_size=vocabulary,
                                   max_sequence_length=max_sequence_length)


def test_members_need_the_same_vocabularies_and_limit():
    texts = ["a b c", "b c d"]
    first = _trained(_tiny(WordTokenizer.build(texts).vocabulary_size), texts)
    other_words = ["a b c", "b c e"]  # as many words, one of them another
    other = _trained(_tiny(first.source_tokenizer.vocabulary_size), other_words)
    with pytest.raises(ValueError, match="'b' has another source vocabulary than 'a'"):
        check_members(first, [other], ["'a'", "'b'"])
    longer = _trained(_tiny(first.source_tokenizer.vocabulary_size, 32), texts)
    with pytest.raises(ValueError, match="'b' reads up to 32 tokens but 'a' 16"):
        check_members(first, [longer], ["'a'", "'b'"])
    check_members(first, [_trained(_tiny(first.source_tokenizer.vocabulary_size), texts)],
                  ["'a'", "'b'"])
    with pytest.raises(TypeError, match="ensemble members must be models.TrainedModel"):
        TextGenerator(first, ensemble=[first.model])


def test_text_generator_ensemble_of_a_trained_model_with_itself(trained_date_model):
    trained, _ = trained_date_model
    texts = ["5 apr 1917", "march 3, 2001", "12/11/1999"]
    config = DecodingConfig(strategy="beam")
    alone = TextGenerator(trained, config=config).generate(texts)
    twice = TextGenerator(trained, config=config, ensemble=[trained]).generate(texts)
    assert [[h.text for h in hs] for hs in twice] == [[h.text for h in hs] for hs in alone]
    np.testing.assert_allclose([h[0].score for h in twice], [h[0].score for h in alone],
                               atol=1e-4)
