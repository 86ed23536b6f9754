"""Greedy search: hand-made step functions, and cached vs. uncached Transformer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.decoding import greedy_search
from keras_attention.models import Transformer

# Attention over a single position (a one-token source, or the first step of the
# uncached reference) makes Keras warn about a softmax over one key; expected here.
pytestmark = pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")

START, END, PAD = 1, 2, 0
VOCAB = 8


def _one_hot_logits(choices, vocabulary=VOCAB):
    """Logits ``(steps, batch, vocabulary)`` whose argmax is ``choices[step][row]``;
    the runner-up is a distinct token so a wrong pick changes the output."""
    choices = np.asarray(choices)
    logits = np.zeros(choices.shape + (vocabulary,), "float32")
    steps, batch = choices.shape
    for s in range(steps):
        for b in range(batch):
            logits[s, b, choices[s, b]] = 5.0
            logits[s, b, (choices[s, b] + 1) % vocabulary] = 4.0
    return logits


def _table_next_fn(table, calls=None):
    """next_fn returning ``table[index]``; counts Python calls in ``calls``."""
    table = tf.constant(table)

    def next_fn(tokens, cache, index):
        if calls is not None:
            calls.append(index)
        assert tokens.shape[-1] == 1
        return tf.gather(table, index)[:, None, :], cache

    return next_fn


def test_returns_argmax_path_stops_at_end_and_pads_per_sequence():
    # Rows: ends at step 2; ends at step 4; never ends.
    choices = [
        [4, 5, 6],
        [END, 7, 4],
        [5, 3, 7],  # after END row 0 must be padded, whatever the logits say
        [6, END, 3],
        [7, 4, 5],
    ]
    calls = []
    tokens = greedy_search(_table_next_fn(_one_hot_logits(choices), calls),
                           tf.fill([3], START), cache=tf.zeros([]), max_length=6, end_id=END)
    np.testing.assert_array_equal(
        np.asarray(tokens),
        [
            [START, 4, END, PAD, PAD, PAD],
            [START, 5, 7, 3, END, PAD],
            [START, 6, 4, 7, 3, 5],
        ],
    )
    assert np.asarray(tokens).dtype == np.int32
    assert len(calls) == 5  # max_length - 1 steps


def test_stops_early_once_every_sequence_ended():
    choices = [[4, END], [END, 5], [6, END], [6, 6], [6, 6]]
    calls = []
    tokens = greedy_search(_table_next_fn(_one_hot_logits(choices), calls),
                           tf.fill([2], START), tf.zeros([]), max_length=6, end_id=END)
    np.testing.assert_array_equal(
        np.asarray(tokens), [[START, 4, END, PAD, PAD, PAD], [START, END, PAD, PAD, PAD, PAD]])
    assert len(calls) == 2  # no step after the last sequence ended


def test_custom_pad_and_end_ids():
    choices = [[5, 4], [7, 5], [6, 7]]
    tokens = greedy_search(_table_next_fn(_one_hot_logits(choices)), tf.constant([3, 3]),
                           tf.zeros([]), max_length=4, end_id=5, pad_id=7)
    # Row 0 ends at once (5), then pad 7; row 1 ends at step 1.
    np.testing.assert_array_equal(np.asarray(tokens), [[3, 5, 7, 7], [3, 4, 5, 7]])


@pytest.mark.parametrize("max_length", [1, 2, 3])
def test_respects_max_length(max_length):
    choices = [[4, 5]] * 4
    calls = []
    tokens = np.asarray(greedy_search(_table_next_fn(_one_hot_logits(choices), calls),
                                      tf.fill([2], START), tf.zeros([]), max_length, END))
    assert tokens.shape == (2, max_length)
    expected = np.array([[START, 4, 4], [START, 5, 5]])[:, :max_length]
    np.testing.assert_array_equal(tokens, expected)
    assert len(calls) == max_length - 1


def _markov_next_fn(transitions):
    """Next token depends on the *input* token (a transition table), and the
    step counter travels in the cache, which must equal ``index``."""
    transitions = tf.constant(transitions)

    def next_fn(tokens, cache, index):
        tf.debugging.assert_equal(cache, tf.cast(index, cache.dtype))
        logits = tf.gather(transitions, tokens[:, 0])
        return logits[:, None, :], cache + 1

    return next_fn


def _transitions():
    # 1 -> 4, 4 -> 6, 6 -> 5, 5 -> END, 7 -> 7 (never ends), 3 -> 4
    table = np.zeros((VOCAB, VOCAB), "float32")
    for a, b in {1: 4, 4: 6, 6: 5, 5: END, 7: 7, 3: 4, 0: 0, 2: 0}.items():
        table[a, b] = 1.0
    return table


def test_feeds_chosen_token_back_and_threads_cache():
    tokens = greedy_search(_markov_next_fn(_transitions()), tf.constant([1, 7, 6]),
                           tf.constant(0, tf.int32), max_length=7, end_id=END)
    np.testing.assert_array_equal(
        np.asarray(tokens),
        [[1, 4, 6, 5, END, PAD, PAD], [7, 7, 7, 7, 7, 7, 7], [6, 5, END, PAD, PAD, PAD, PAD]],
    )


def test_inside_tf_function_gives_same_result():
    choices = [[4, END, 6], [END, 7, 4], [5, 3, 7], [6, 5, 3], [7, 4, 5]]
    next_fn = _table_next_fn(_one_hot_logits(choices))
    eager = greedy_search(next_fn, tf.fill([3], START), tf.zeros([]), 6, END)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def decode(start):
        return greedy_search(next_fn, start, tf.zeros([]), 6, END)

    graph = decode(tf.fill([3], START))
    np.testing.assert_array_equal(graph.numpy(), np.asarray(eager))
    np.testing.assert_array_equal(
        graph.numpy(),
        [[START, 4, END, PAD, PAD, PAD], [START, END, PAD, PAD, PAD, PAD],
         [START, 6, 4, 7, 3, 5]],
    )

    markov = tf.function(lambda start: greedy_search(
        _markov_next_fn(_transitions()), start, tf.constant(0, tf.int32), 7, END))
    np.testing.assert_array_equal(
        markov(tf.constant([1, 7])).numpy(), [[1, 4, 6, 5, END, PAD, PAD], [7] * 7])


# ---------------------------------------------------------------- Transformer

SOURCE_VOCAB, TARGET_VOCAB, MAX_LENGTH = 20, 20, 12
SOURCES = [
    [5, 6, 7, 8, 9, 10, 11],
    [12, 4, 17],
    [19, 3, 8, 8, 5],
    [7],
]


# (seed, config changes): seeds picked so the untrained models make varied,
# source-dependent choices; the last one ends some rows early and not others.
MODELS = {
    "post_norm": (0, {}),
    "pre_norm_learned": (3, dict(normalize_first=True, position_encoding="learned")),
    "pre_norm_learned_ending": (2, dict(normalize_first=True, position_encoding="learned")),
}


@pytest.fixture(scope="module", params=["post_norm", "pre_norm_learned"])
def model(request):
    seed, changes = MODELS[request.param]
    keras.utils.set_random_seed(seed)
    return Transformer.from_preset(
        "tiny",
        encoder_vocabulary_size=SOURCE_VOCAB,
        decoder_vocabulary_size=TARGET_VOCAB,
        max_sequence_length=MAX_LENGTH,
        num_encoder_layers=1,
        num_decoder_layers=2,
        **changes,
    )


def _padded(sources, length=None):
    length = length or max(len(s) for s in sources)
    return np.array([s + [0] * (length - len(s)) for s in sources], "int32")


def cached_greedy(model, source, max_length=MAX_LENGTH):
    encoder_output, mask = model.encode(source)
    cache = model.init_cache(encoder_output, mask, max_length)
    start = tf.fill([tf.shape(source)[0]], START)
    return np.asarray(greedy_search(model.decode_step, start, cache, max_length, END, PAD))


def uncached_greedy(model, source, max_length=MAX_LENGTH):
    """Reference: the full model on the whole prefix at every step."""
    source = tf.constant(source)

    def next_fn(tokens, buffer, index):
        buffer = tf.tensor_scatter_nd_update(
            tf.transpose(buffer), [[index]], tf.transpose(tokens))
        buffer = tf.transpose(buffer)
        logits = model({"encoder_tokens": source, "decoder_tokens": buffer})
        return logits[:, index:index + 1], buffer

    buffer = tf.zeros([source.shape[0], max_length], tf.int32)
    start = tf.fill([source.shape[0]], START)
    return np.asarray(greedy_search(next_fn, start, buffer, max_length, END, PAD))


def python_greedy(model, source, max_length=MAX_LENGTH):
    """A plain loop without greedy_search, one sentence, growing prefix."""
    tokens = [START]
    while len(tokens) < max_length and tokens[-1] != END:
        logits = model({"encoder_tokens": np.array([source], "int32"),
                        "decoder_tokens": np.array([tokens], "int32")})
        tokens.append(int(np.argmax(np.asarray(logits)[0, -1])))
    return tokens + [PAD] * (max_length - len(tokens))


def test_cached_equals_uncached_on_padded_batch(model):
    source = _padded(SOURCES)
    cached = cached_greedy(model, source)
    uncached = uncached_greedy(model, source)
    np.testing.assert_array_equal(cached, uncached)
    assert cached.shape == (len(SOURCES), MAX_LENGTH)
    # The untrained model still makes varied, source-dependent choices, so
    # the comparison has teeth.
    assert len(np.unique(cached[:, 1:])) >= 4
    assert len({tuple(row) for row in cached}) > 1


def test_end_pads_rows_independently_in_model_batch():
    seed, changes = MODELS["pre_norm_learned_ending"]
    keras.utils.set_random_seed(seed)
    model = Transformer.from_preset(
        "tiny", encoder_vocabulary_size=SOURCE_VOCAB, decoder_vocabulary_size=TARGET_VOCAB,
        max_sequence_length=MAX_LENGTH, num_encoder_layers=1, num_decoder_layers=2, **changes)
    tokens = cached_greedy(model, _padded(SOURCES))
    np.testing.assert_array_equal(tokens, uncached_greedy(model, _padded(SOURCES)))
    ended = (tokens == END).any(axis=1)
    assert ended.any() and not ended.all()
    for row in tokens[ended]:
        end = list(row).index(END)
        assert (row[end + 1:] == PAD).all()
        assert END not in row[:end] and PAD not in row[:end]


def test_cached_equals_plain_python_loop(model):
    sentence = SOURCES[1]  # padded in the batch, alone here
    expected = python_greedy(model, sentence)
    np.testing.assert_array_equal(cached_greedy(model, _padded([sentence]))[0], expected)
    np.testing.assert_array_equal(cached_greedy(model, _padded(SOURCES))[1], expected)


_COMPILED = {}


def compiled_greedy(model, source):
    """``cached_greedy`` traced once per model (fast for many calls)."""
    if id(model) not in _COMPILED:
        _COMPILED[id(model)] = tf.function(
            lambda s: cached_greedy_graph(model, s),
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
        )
    return _COMPILED[id(model)](tf.constant(source)).numpy()


def test_batched_equals_per_sentence(model):
    batched = cached_greedy(model, _padded(SOURCES))
    np.testing.assert_array_equal(compiled_greedy(model, _padded(SOURCES)), batched)
    for row, sentence in zip(batched, SOURCES):
        np.testing.assert_array_equal(row, compiled_greedy(model, _padded([sentence]))[0])
    # Extra source padding must not change the output either.
    np.testing.assert_array_equal(compiled_greedy(model, _padded(SOURCES, length=11)), batched)
    np.testing.assert_array_equal(
        compiled_greedy(model, _padded(SOURCES[1:2], length=9))[0], batched[1])


def test_cached_step_logits_match_full_model(model):
    source = _padded(SOURCES)
    targets = np.array([[START, 4, 9, 13, 2, 6, 7, 19],
                        [START, 5, 5, 5, 18, 0, 0, 0],
                        [START, 11, 3, 14, 8, 12, 10, 4],
                        [START, 2, 0, 0, 0, 0, 0, 0]], "int32")
    full = np.asarray(model({"encoder_tokens": source, "decoder_tokens": targets}))
    encoder_output, mask = model.encode(source)
    cache = model.init_cache(encoder_output, mask, MAX_LENGTH)
    for index in range(targets.shape[1]):
        logits, cache = model.decode_step(targets[:, index:index + 1], cache, index)
        np.testing.assert_allclose(np.asarray(logits)[:, 0], full[:, index], atol=2e-4)


def test_step_logits_do_not_depend_on_source_padding(model):
    batch = _padded(SOURCES)
    targets = np.array([[START, 4, 9, 13, 5]] * len(SOURCES), "int32")

    def step_logits(source, targets):
        encoder_output, mask = model.encode(source)
        cache = model.init_cache(encoder_output, mask, MAX_LENGTH)
        out = []
        for index in range(targets.shape[1]):
            logits, cache = model.decode_step(targets[:, index:index + 1], cache, index)
            out.append(np.asarray(logits)[:, 0])
        return np.stack(out, axis=1)

    batched = step_logits(batch, targets)
    for i, sentence in enumerate(SOURCES):
        alone = step_logits(_padded([sentence]), targets[i:i + 1])
        np.testing.assert_allclose(batched[i], alone[0], atol=2e-4)
    # ... while the source itself does matter.
    assert np.abs(batched[0] - batched[3]).max() > 1e-2


def test_cached_greedy_inside_tf_function(model):
    source = _padded(SOURCES)
    np.testing.assert_array_equal(compiled_greedy(model, source), cached_greedy(model, source))
    np.testing.assert_array_equal(compiled_greedy(model, source), uncached_greedy(model, source))


def cached_greedy_graph(model, source):
    encoder_output, mask = model.encode(source)
    cache = model.init_cache(encoder_output, mask, MAX_LENGTH)
    start = tf.fill([tf.shape(source)[0]], START)
    return greedy_search(model.decode_step, start, cache, MAX_LENGTH, END, PAD)
