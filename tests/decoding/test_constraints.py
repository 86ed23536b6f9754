"""Lexically constrained beam search (dynamic beam allocation): every output
contains its phrases; with none it is plain beam search."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from decoding.test_golden import VOCAB, fixed_model, sources

from keras_attention.constants import END_ID, PAD_ID
from keras_attention.decoding import DecodingConfig, generate
from keras_attention.decoding.constraints import Constraints
from keras_attention.decoding.text import TextGenerator

BEAM = DecodingConfig(strategy="beam", beam_size=4, n_best=2)


@pytest.fixture(scope="module")
def model():
    return fixed_model({}, 14)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _phrases(rows, count=2, width=3):
    """``(len(rows), count, width)`` PAD-filled phrases from lists of lists."""
    batch = np.zeros((len(rows), count, width), "int32")
    for row, phrases in enumerate(rows):
        for k, phrase in enumerate(phrases):
            batch[row, k, :len(phrase)] = phrase
    return batch


def _contains(hypothesis, phrase):
    tokens = list(hypothesis)
    return any(tokens[i:i + len(phrase)] == phrase for i in range(len(tokens)))


def _generated(hypothesis):
    """The tokens before END."""
    tokens = list(hypothesis)
    return tokens[:tokens.index(END_ID)] if END_ID in tokens else tokens


# Phrases of one and several tokens, repeated tokens, two per sentence, none.
PHRASES = [[[7, 8]], [[11], [4, 5, 6]], [[20]], [[9, 9]], []]


@pytest.mark.parametrize("config", [BEAM, BEAM.replace(beam_size=3, n_best=1, length_penalty=0.0),
                                    BEAM.replace(beam_stopping="exact")])
def test_without_constraints_it_is_beam_search(model, config):
    free = generate(model, sources(), config)
    none = generate(model, sources(), config, constraint_ids=_phrases([[]] * 5))
    np.testing.assert_array_equal(_np(none.ids), _np(free.ids))
    np.testing.assert_allclose(_np(none.scores), _np(free.scores), atol=1e-6)


def test_every_output_contains_its_phrases(model):
    free = generate(model, sources(), BEAM)
    constrained = generate(model, sources(), BEAM, constraint_ids=_phrases(PHRASES))
    free_ids, ids, scores = _np(free.ids), _np(constrained.ids), _np(constrained.scores)
    for row, phrases in enumerate(PHRASES):
        best = _generated(ids[row, 0])
        assert all(_contains(best, phrase) for phrase in phrases), (row, best)
        assert ids[row, 0][len(best)] == END_ID  # it ended (not cut at the limit)
        if not phrases:  # a sentence without constraints decodes as without
            np.testing.assert_array_equal(ids[row], free_ids[row])
    # Plain beam search left most of them out; that is what the search adds.
    missed = sum(not all(_contains(_generated(free_ids[r, 0]), p) for p in PHRASES[r])
                 for r in range(4))
    assert missed == 4
    assert np.all(np.isfinite(scores)) and np.all(scores[:, 0] <= _np(free.scores)[:, 0] + 1e-5)


def test_a_sentence_does_not_depend_on_its_batch(model):
    batch = generate(model, sources(), BEAM, constraint_ids=_phrases(PHRASES))
    for row in (1, 3):
        alone = generate(model, sources()[row:row + 1], BEAM,
                         constraint_ids=_phrases(PHRASES[row:row + 1]))
        np.testing.assert_array_equal(_np(alone.ids)[0], _np(batch.ids)[row])
        np.testing.assert_allclose(_np(alone.scores)[0], _np(batch.scores)[row], atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_in_a_graph_as_eagerly(model, jit_compile):
    phrases = _phrases(PHRASES)
    eager = generate(model, sources(), BEAM, constraint_ids=phrases)

    @tf.function(jit_compile=jit_compile)
    def run(source_ids, constraint_ids):
        generation = generate(model, source_ids, BEAM, constraint_ids=constraint_ids)
        return generation.ids, generation.scores

    ids, scores = run(tf.constant(sources()), tf.constant(phrases))
    if not jit_compile:
        np.testing.assert_array_equal(ids.numpy(), _np(eager.ids))
    # XLA rounds differently: where two hypotheses nearly tie (this random
    # model's outputs are mostly one repeated token) it may pick the other.
    for row, wanted in enumerate(PHRASES):
        assert all(_contains(_generated(ids.numpy()[row, 0]), phrase) for phrase in wanted)
    np.testing.assert_allclose(scores.numpy(), _np(eager.scores), atol=1e-3 if jit_compile
                               else 1e-5)


def test_a_phrase_that_cannot_fit_ends_at_the_limit(model):
    config = BEAM.replace(max_length=3)
    generation = generate(model, sources()[:1], config, constraint_ids=_phrases([[[5, 6, 7]]]))
    ids = _np(generation.ids)[0, 0]
    assert ids[2] == END_ID and not _contains(ids, [5, 6, 7])  # forced END at the limit
    assert np.all(np.isfinite(_np(generation.scores)))


def test_progress_on_a_phrase_is_undone_when_it_breaks_off():
    phrases = Constraints(_phrases([[[5, 6], [9]]]))
    state = phrases.initial(1)
    seen = []
    for token in (5, 7, 5, 6, 9, 4):
        state = phrases.advance(state, np.array([[token]], "int32"))
        seen.append((_np(state[0])[0, 0].tolist(), int(_np(state[1])[0, 0]),
                     int(_np(phrases.met_tokens(state))[0, 0])))
    assert seen == [([False, False], 0, 1),   # 5: into "5 6"
                    ([False, False], -1, 0),  # 7 breaks it off
                    ([False, False], 0, 1),   # 5 again
                    ([True, False], -1, 2),   # 6: "5 6" met
                    ([True, True], -1, 3),    # 9 met
                    ([True, True], -1, 3)]
    assert bool(_np(phrases.all_met(state))[0, 0])


def test_errors_name_the_fix(model):
    with pytest.raises(ValueError, match="constraints need beam search, not greedy"):
        generate(model, sources(), DecodingConfig(), constraint_ids=_phrases(PHRASES))
    with pytest.raises(ValueError, match="has 2 rows for 5 sources"):
        generate(model, sources(), BEAM, constraint_ids=_phrases(PHRASES[:2]))
    assert VOCAB > 20 and PAD_ID == 0


# A trained model: the constraint goes where it fits and the rest stays a date.
# Characters are tokens here, so "-12-" is 4 constraint tokens: 5 banks, and
# a beam of 4 would leave none for the hypotheses that have met nothing yet
# (as in every DBA implementation); 8 leaves room.

def test_a_trained_model_puts_the_constraint_into_a_well_formed_output(trained_date_model):
    trained, _ = trained_date_model
    generator = TextGenerator(trained, config=DecodingConfig(strategy="beam", beam_size=8))
    texts = ["5 apr 1917", "march 3, 2001", "twelfth of june 1985", "1 jan 2020",
             "sunday, 14 july 1789"]
    wanted = [["-12-"], ["-01"], ["-07-"], ["31"], ["-08"]]
    free = generator.best(texts)
    assert not any(w[0] in f for f, w in zip(free, wanted))  # beam search leaves them out
    constrained = generator.best(texts, constraints=wanted)
    for text, phrases, output in zip(texts, wanted, constrained):
        assert all(phrase in output for phrase in phrases), (text, output)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", output), output
    # What the constraint does not touch is kept: the year and the day.
    assert constrained[0][:4] == free[0][:4] and constrained[0][-2:] == free[0][-2:]
    with pytest.raises(ValueError, match="constraint line 2 has an empty phrase"):
        generator.best(texts[:2], constraints=[["1"], ["a", " "]])
    with pytest.raises(ValueError, match="2 constraint lists for 5 inputs"):
        generator.best(texts, constraints=[[], []])
