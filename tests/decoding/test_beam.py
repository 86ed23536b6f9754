"""Beam search on hand-written step functions with known probabilities."""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.decoding import (
    ForceEndAtLimit,
    LogSoftmax,
    beam_search,
    gnmt_length_penalty,
    greedy_search,
    token_search,
    argmax_pick,
)

PAD, START, END, A, B, X, Y = 0, 1, 2, 3, 4, 5, 6
VOCAB = 7


def markov_next_fn(table, calls=None):
    """Next-token probabilities depend only on the input token: ``table[token]``.
    The cache counts steps and must equal ``index`` (checks reordering keeps it)."""
    log_table = tf.constant(np.log(np.maximum(table, 1e-30)), tf.float32)

    def next_fn(tokens, cache, index):
        if calls is not None:
            calls.append(index)
        tf.debugging.assert_equal(cache, tf.fill(tf.shape(cache), tf.cast(index, cache.dtype)))
        return tf.gather(log_table, tokens[:, 0])[:, None, :], cache + 1

    return next_fn


def trap_table():
    """Greedy takes A (0.6) and then must go on with X (0.36): 0.6 * 0.36 * 1.0;
    B then END is better: 0.4 * 0.95."""
    table = np.full((VOCAB, VOCAB), 1e-9)
    table[START, [A, B]] = [0.6, 0.4]
    table[A, [X, END, Y]] = [0.36, 0.34, 0.30]
    table[B, [END, Y]] = [0.95, 0.05]
    table[X, END] = 1.0
    table[Y, END] = 1.0
    table[[PAD, END]] = 1.0 / VOCAB
    return table / table.sum(axis=1, keepdims=True)


def test_beam_finds_the_better_sequence_greedy_misses():
    table = trap_table()
    start, cache = tf.constant([START]), tf.zeros([1], tf.int32)
    greedy, greedy_score = token_search(markov_next_fn(table), argmax_pick, start, cache, 6, END)
    np.testing.assert_array_equal(greedy, [[START, A, X, END, PAD, PAD]])
    calls = []
    tokens, scores = beam_search(markov_next_fn(table, calls), start, cache, 6, END,
                                 beam_size=2, length_penalty=0.0, n_best=2)
    np.testing.assert_array_equal(tokens[0], [[START, B, END, PAD, PAD, PAD],
                                              [START, A, X, END, PAD, PAD]])
    np.testing.assert_allclose(scores[0], np.log([0.4 * 0.95, 0.6 * 0.36]), rtol=1e-5)
    np.testing.assert_allclose(greedy_score, np.log([0.6 * 0.36]), rtol=1e-5)
    # Early stop: after 3 steps no alive beam can beat the two finished ones.
    assert len(calls) == 3


def test_length_penalty_changes_the_ranking_as_gnmt_says():
    table = trap_table()
    start, cache = tf.constant([START]), tf.zeros([1], tf.int32)
    alpha = 5.0  # strongly favours length
    _, scores = beam_search(markov_next_fn(table), start, cache, 6, END,
                            beam_size=3, length_penalty=alpha, n_best=3)
    long = np.log(0.6 * 0.36) / float(gnmt_length_penalty(3, alpha))
    short = np.log(0.4 * 0.95) / float(gnmt_length_penalty(2, alpha))
    assert long > short
    np.testing.assert_allclose(scores[0, 0], long, rtol=1e-5)
    assert np.isclose(np.asarray(scores[0]), short, rtol=1e-5).any()
    np.testing.assert_allclose(float(gnmt_length_penalty(7, 0.6)), (12 / 6) ** 0.6, rtol=1e-6)


def test_beam_size_one_equals_greedy_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(5):
        table = rng.dirichlet(np.full(VOCAB, 0.3), size=VOCAB)
        start = tf.constant([START, A, B, X])
        cache = tf.zeros([4], tf.int32)
        greedy, greedy_scores = token_search(markov_next_fn(table), argmax_pick, start, cache,
                                             8, END)
        tokens, scores = beam_search(markov_next_fn(table), start, cache, 8, END,
                                     beam_size=1, length_penalty=0.0)
        np.testing.assert_array_equal(tokens[:, 0], greedy)
        # Rows that never ended are still returned (unfinished) with their score.
        np.testing.assert_allclose(scores[:, 0], greedy_scores, rtol=1e-5)


def test_n_best_sorted_distinct_and_scored_by_recomputation():
    rng = np.random.default_rng(1)
    table = rng.dirichlet(np.full(VOCAB, 0.5), size=VOCAB)
    log_table = np.log(table)
    alpha, length = 0.6, 7
    tokens, scores = beam_search(
        markov_next_fn(table), tf.constant([START, A]), tf.zeros([2], tf.int32), length, END,
        beam_size=5, length_penalty=alpha, n_best=5,
        processors=(LogSoftmax(), ForceEndAtLimit([length - 1] * 10, END)))
    tokens, scores = np.asarray(tokens), np.asarray(scores)
    for row in range(2):
        assert np.all(np.diff(scores[row]) <= 0)
        assert len({tuple(t) for t in tokens[row]}) == 5
        for hypothesis, score in zip(tokens[row], scores[row]):
            end = list(hypothesis).index(END)  # every hypothesis ended (forced at the limit)
            assert (hypothesis[end + 1:] == PAD).all()
            log_prob = sum(log_table[a, b] for a, b in zip(hypothesis[:end], hypothesis[1:end + 1]))
            np.testing.assert_allclose(score, log_prob / ((5 + end) / 6) ** alpha, rtol=1e-5)


def test_beam_search_is_exact_on_small_search_spaces():
    """With as many beams as there are extensions of all unfinished prefixes
    (3 ** 3 * 4), beam search is exhaustive: compare with enumerating every
    sequence."""
    rng = np.random.default_rng(2)
    vocab = 4  # PAD START END and one word
    table = rng.dirichlet(np.ones(vocab), size=vocab)
    log_table = np.log(table)
    length = 5  # 4 generated tokens at most
    tokens, scores = beam_search(markov_next_fn(table), tf.constant([START]),
                                 tf.zeros([1], tf.int32), length, END, beam_size=108,
                                 length_penalty=1.0, n_best=3,
                                 processors=(LogSoftmax(), ForceEndAtLimit([4] * 108, END)),
                                 stopping="exact")
    candidates = []

    def extend(prefix, log_prob):
        for token in range(vocab):
            score = log_prob + log_table[prefix[-1], token]
            if token == END or len(prefix) == length - 1:
                if token == END:
                    candidates.append((score / ((5 + len(prefix)) / 6), prefix[1:] + [END]))
            else:
                extend(prefix + [token], score)

    extend([START], 0.0)
    candidates.sort(key=lambda c: -c[0])
    np.testing.assert_allclose(scores[0], [c[0] for c in candidates[:3]], rtol=1e-5)
    for hypothesis, (_, expected) in zip(np.asarray(tokens[0]), candidates[:3]):
        assert list(hypothesis[1:len(expected) + 1]) == expected


def late_bloomer_table():
    """START -> END (0.40) ends at once: log 0.4 / 1 = -0.92 (alpha 1); START
    -> A (0.35) goes on with certainty A X Y B END: log 0.35 / (10 / 6) =
    -0.63, better, but after one step A's score at its length is -1.05."""
    table = np.full((VOCAB, VOCAB), 1e-9)
    table[START, [END, A, Y]] = [0.40, 0.35, 0.25]
    table[A, X] = table[X, Y] = table[Y, B] = table[B, END] = 1.0
    table[[PAD, END]] = 1.0 / VOCAB
    return table / table.sum(axis=1, keepdims=True)


def test_early_stopping_can_miss_a_late_bloomer_that_exact_finds():
    table = late_bloomer_table()
    start, cache = tf.constant([START]), tf.zeros([1], tf.int32)
    runs = {}
    for stopping in ("early", "exact"):
        calls = []
        tokens, scores = beam_search(markov_next_fn(table, calls), start, cache, 8, END,
                                     beam_size=2, length_penalty=1.0, stopping=stopping)
        runs[stopping] = np.asarray(tokens[0, 0]), float(scores[0, 0]), len(calls)
    tokens, score, calls = runs["early"]
    np.testing.assert_array_equal(tokens, [START, END] + [PAD] * 6)
    np.testing.assert_allclose(score, np.log(0.40), rtol=1e-5)
    assert calls == 1  # A's -1.05 at its length cannot beat -0.92: stop
    tokens, score, calls = runs["exact"]
    np.testing.assert_array_equal(tokens, [START, A, X, Y, B, END, PAD, PAD])
    np.testing.assert_allclose(score, np.log(0.35) / (10 / 6), rtol=1e-5)
    assert calls == 5
    with pytest.raises(ValueError, match="stopping must be one of"):
        beam_search(markov_next_fn(table), start, cache, 8, END, stopping="never")


def test_each_sentence_decodes_as_it_would_alone():
    """A sentence that stops (early rule) keeps its hypotheses while the rest
    of the batch goes on, so its output does not depend on its neighbours;
    the late bloomer of START is not found because a neighbour runs longer."""
    rng = np.random.default_rng(3)
    starts = [START, A, B, X, Y]
    for _ in range(4):
        table = late_bloomer_table()
        table[[A, B, X, Y]] = rng.dirichlet(np.full(VOCAB, 0.4), size=4)
        cache = tf.zeros([len(starts)], tf.int32)
        batch = beam_search(markov_next_fn(table), tf.constant(starts), cache, 10, END,
                            beam_size=2, length_penalty=1.0, n_best=2)
        for row, start in enumerate(starts):
            alone = beam_search(markov_next_fn(table), tf.constant([start]), cache[:1], 10, END,
                                beam_size=2, length_penalty=1.0, n_best=2)
            np.testing.assert_array_equal(batch[0][row], alone[0][0])
            np.testing.assert_allclose(batch[1][row], alone[1][0], rtol=1e-5)
        np.testing.assert_array_equal(batch[0][0, 0, :2], [START, END])


def test_inside_tf_function_equals_eager():
    table = trap_table()
    next_fn = markov_next_fn(table)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def decode(start):
        return beam_search(next_fn, start, tf.zeros_like(start), 6, END, beam_size=2,
                           length_penalty=0.0, n_best=2)

    start = tf.constant([START, A, B])
    graph = decode(start)
    eager = beam_search(next_fn, start, tf.zeros([3], tf.int32), 6, END, beam_size=2,
                        length_penalty=0.0, n_best=2)
    np.testing.assert_array_equal(graph[0], eager[0])
    np.testing.assert_allclose(graph[1], eager[1])
    # The existing greedy entry point still gives the argmax path.
    np.testing.assert_array_equal(greedy_search(next_fn, start, tf.zeros([3], tf.int32), 6, END),
                                  [[START, A, X, END, PAD, PAD],
                                   [A, X, END, PAD, PAD, PAD],
                                   [B, END, PAD, PAD, PAD, PAD]])
