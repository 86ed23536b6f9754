"""Logit processors on hand-made scores: golden outputs."""

import numpy as np
import pytest

from keras_attention.decoding import (
    DecodingConfig,
    ForceEndAtLimit,
    LogSoftmax,
    MinLength,
    NoRepeatNgram,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
    decoding_processors,
    sampling_warpers,
)

END = 2
INF = np.inf


def run(processor, scores, tokens, index):
    return np.asarray(processor(np.asarray(scores, "float32"), np.asarray(tokens, "int32"), index))


def test_log_softmax_gives_float32_log_probabilities():
    out = run(LogSoftmax(), [[0.0, np.log(3.0)]], [[1]], 0)
    np.testing.assert_allclose(out, np.log([[0.25, 0.75]]), rtol=1e-6)
    assert out.dtype == np.float32


def test_repetition_penalty_divides_positive_and_multiplies_negative_seen_logits():
    scores = [[1.0, 2.0, -1.0, 4.0, -3.0, 6.0]]
    # START at 0 is not a generated token; 5 at position 4 is beyond index.
    tokens = [[1, 2, 3, 2, 5]]
    out = run(RepetitionPenalty(2.0), scores, tokens, index=3)
    np.testing.assert_allclose(out, [[1.0, 2.0, -2.0, 2.0, -3.0, 6.0]])


def test_min_length_forbids_end_until_enough_tokens():
    scores = [[0.0, 0.0, 5.0, 1.0]]
    for index, end_allowed in [(0, False), (2, False), (3, True), (7, True)]:
        out = run(MinLength(3, END), scores, [[1] * 8], index)
        assert np.isfinite(out[0, END]) == end_allowed
        np.testing.assert_array_equal(np.delete(out, END, axis=1), [[0.0, 0.0, 1.0]])


def test_force_end_at_per_row_limit():
    scores = np.zeros((3, 5), "float32")
    out = run(ForceEndAtLimit([2, 3, 10], END), scores, np.ones((3, 10)), index=2)
    # Row 0 is past its limit, row 1 at it (3rd token), row 2 free.
    for row in (0, 1):
        assert out[row, END] == 0.0 and np.all(np.delete(out[row], END) == -INF)
    np.testing.assert_array_equal(out[2], np.zeros(5))


def test_no_repeat_bigram_and_trigram():
    # Sequence: START 3 4 5 3 | pad...  (index 4 = the last '3')
    tokens = [[1, 3, 4, 5, 3, 0, 0], [1, 3, 4, 3, 4, 3, 0]]
    scores = np.zeros((2, 7), "float32")
    bigram = run(NoRepeatNgram(2), scores, tokens, index=4)
    # Row 0: last token 3 was followed by 4 before. Row 1: the last token
    # (index 4) is 4, previously followed by 3.
    assert np.flatnonzero(bigram[0] == -INF).tolist() == [4]
    assert np.flatnonzero(bigram[1] == -INF).tolist() == [3]
    trigram = run(NoRepeatNgram(3), scores, tokens, index=5)
    # Row 0 at index 5 is PAD 0 after (3, 0): no earlier (3, 0). Row 1: (4, 3)
    # was followed by 4 at positions 2..4.
    assert np.flatnonzero(trigram[0] == -INF).tolist() == []
    assert np.flatnonzero(trigram[1] == -INF).tolist() == [4]
    # Too short to repeat anything yet.
    assert np.all(run(NoRepeatNgram(3), scores, tokens, index=0) == 0)
    # Unigrams: every token so far (START included) is banned.
    unigram = run(NoRepeatNgram(1), scores, tokens, index=2)
    assert np.flatnonzero(unigram[0] == -INF).tolist() == [1, 3, 4]


def test_no_repeat_includes_the_start_token_as_first_token():
    tokens = [[1, 5, 1, 0]]
    out = run(NoRepeatNgram(2), np.zeros((1, 6), "float32"), tokens, index=2)
    assert np.flatnonzero(out[0] == -INF).tolist() == [5]


def test_temperature_top_k_and_top_p():
    scores = np.log(np.array([[0.1, 0.2, 0.3, 0.4]], "float32"))
    np.testing.assert_allclose(run(Temperature(0.5), scores, [[1]], 0), scores * 2)
    top2 = run(TopK(2), scores, [[1]], 0)
    np.testing.assert_array_equal(np.isfinite(top2), [[False, False, True, True]])
    np.testing.assert_allclose(top2[0, 2:], scores[0, 2:])
    # k beyond the vocabulary keeps all.
    assert np.isfinite(run(TopK(10), scores, [[1]], 0)).all()
    # Nucleus: 0.4 < 0.5 so 0.3 is needed too; 0.7 reaches 0.7 exactly.
    for p, kept in [(0.5, [2, 3]), (0.4, [3]), (0.1, [3]), (0.71, [1, 2, 3]), (1.0, [0, 1, 2, 3])]:
        out = run(TopP(p), scores, [[1]], 0)
        assert np.flatnonzero(np.isfinite(out[0])).tolist() == kept, p


def test_config_builds_the_processor_chain_in_order():
    names = [type(p).__name__ for p in decoding_processors(DecodingConfig(), [5], END)]
    assert names == ["LogSoftmax", "ForceEndAtLimit"]
    config = DecodingConfig(repetition_penalty=1.2, min_length=2, no_repeat_ngram_size=3)
    names = [type(p).__name__ for p in decoding_processors(config, [5], END)]
    assert names == ["RepetitionPenalty", "LogSoftmax", "MinLength", "NoRepeatNgram",
                     "ForceEndAtLimit"]
    assert sampling_warpers(DecodingConfig(strategy="sample")) == []
    warpers = sampling_warpers(DecodingConfig(strategy="sample", temperature=0.7, top_k=5,
                                              top_p=0.9))
    assert [type(w).__name__ for w in warpers] == ["Temperature", "TopK", "TopP"]


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(strategy="nucleus"), "strategy must be one of"),
        (dict(beam_size=0), "beam_size must be an integer >= 1"),
        (dict(strategy="beam", beam_size=2, n_best=3), "n_best=3 exceeds beam_size=2"),
        (dict(n_best=2), "greedy search returns one hypothesis"),
        (dict(n_best=0, strategy="sample"), "n_best must be an integer >= 1"),
        (dict(length_penalty=-0.1), "length_penalty must be >= 0"),
        (dict(beam_stopping="never"), "beam_stopping must be one of ('early', 'exact')"),
        (dict(temperature=0.0), "temperature must be > 0"),
        (dict(top_k=-1), "top_k must be an integer >= 0"),
        (dict(top_p=0.0), "top_p must be in (0, 1]"),
        (dict(top_p=1.5), "top_p must be in (0, 1]"),
        (dict(max_length=0), "max_length must be an integer >= 1"),
        (dict(max_length_ratio=0.0), "max_length_ratio must be > 0"),
        (dict(max_length_offset=-1), "max_length_offset must be an integer >= 0"),
        (dict(min_length=-1), "min_length must be an integer >= 0"),
        (dict(min_length=5, max_length=5), "min_length=5 leaves no room for END"),
        (dict(no_repeat_ngram_size=-2), "no_repeat_ngram_size must be an integer >= 0"),
        (dict(repetition_penalty=0.0), "repetition_penalty must be > 0"),
        (dict(seed=1.5), "seed must be an integer or None"),
    ],
)
def test_config_validation_errors_are_one_line(changes, message):
    with pytest.raises(ValueError) as error:
        DecodingConfig(**changes)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
