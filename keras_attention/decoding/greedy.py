"""The token-by-token decoding loop, and greedy search on it.

``token_search`` runs ``next(tokens, cache, index) -> (logits, cache)`` one
position at a time (as keras-hub's samplers do), passes the logits through
the logit processors and lets a ``pick`` function choose the next token:
``argmax`` for greedy search, a seeded draw for sampling (``sampling.py``).
Beam search (``beam.py``) keeps several hypotheses and has its own loop.

Written with ``keras.ops.while_loop`` and fixed-shape loop variables, so the
same code runs eagerly, inside ``tf.function`` and in exported graphs.
"""

from keras import ops

from keras_attention.decoding.cache import while_loop_in_windows
from keras_attention.decoding.processors import LogSoftmax, apply_processors


def argmax_pick(scores, tokens, index):
    """Greedy choice: the highest-scoring token of each row."""
    return ops.cast(ops.argmax(scores, axis=-1), "int32")


def token_search(
    next_fn,
    pick,
    start_tokens,
    cache,
    max_length,
    end_id,
    pad_id=0,
    processors=(LogSoftmax(),),
    resize_fn=None,
):
    """Decode one token per step with ``pick`` until every sequence has ended.

    Args:
        next_fn: ``next_fn(tokens (rows, 1), cache, index) -> (logits
            (rows, 1, vocabulary), cache)``; ``index`` is the position of the
            input token.
        pick: ``pick(scores (rows, vocabulary), tokens, index) -> (rows,)``
            int32 ids (``tokens`` and ``index`` as for the processors).
        start_tokens: ``(rows,)`` ids placed at position 0 (usually START).
        cache: state passed to ``next_fn``; its shapes must not change
            (but see ``resize_fn``).
        max_length: total length of the output including the start token.
        end_id: id that ends a sequence; later positions are ``pad_id``.
        pad_id: filler id after the end.
        processors: logit processors (``processors.py``); the default only
            turns logits into log-probabilities.
        resize_fn: ``resize_fn(cache, length) -> cache`` with room for
            ``length`` positions (``cache.py``'s ``resize``): the loop then
            runs in windows of growing length (``while_loop_in_windows``),
            ending with ``max_length``. Without it, ``cache`` must have room
            for ``max_length`` positions from the start.

    Returns:
        ``tokens``: ``(rows, max_length)`` ids - the start token, the
        generated tokens up to and including ``end_id``, then ``pad_id``;
        ``scores``: ``(rows,)`` float32 sum of the processed scores
        (log-probabilities) of the generated tokens.
    """
    start_tokens = ops.cast(start_tokens, "int32")
    rows = ops.shape(start_tokens)[0]
    tokens = ops.concatenate(
        [
            ops.expand_dims(start_tokens, 1),
            ops.full((rows, max_length - 1), pad_id, dtype="int32"),
        ],
        axis=1,
    )
    done = ops.zeros((rows,), dtype="bool")
    scores = ops.zeros((rows,), dtype="float32")

    def cond(index, tokens, scores, done, cache):
        return ops.logical_and(index < max_length - 1, ops.logical_not(ops.all(done)))

    def body(index, tokens, scores, done, cache):
        current = ops.slice(tokens, (0, index), (rows, 1))
        logits, cache = next_fn(current, cache, index)
        step_scores = apply_processors(processors, logits[:, -1, :], tokens, index)
        chosen = pick(step_scores, tokens, index)
        chosen_score = ops.take_along_axis(step_scores, ops.expand_dims(chosen, 1), axis=1)[:, 0]
        chosen = ops.where(done, pad_id, chosen)
        scores = scores + ops.where(done, 0.0, chosen_score)
        tokens = ops.slice_update(tokens, (0, index + 1), ops.expand_dims(chosen, 1))
        return index + 1, tokens, scores, ops.logical_or(done, chosen == end_id), cache

    _, tokens, scores, _, _ = while_loop_in_windows(
        cond, body, (0, tokens, scores, done, cache), max_length, resize_fn
    )
    return tokens, scores


def greedy_search(next_fn, start_tokens, cache, max_length, end_id, pad_id=0, processors=(LogSoftmax(),)):
    """Pick the most likely token at each step until every sequence has ended.

    Arguments are ``token_search``'s. Returns ``(rows, max_length)`` ids: the
    start token, the generated tokens up to and including ``end_id``, then
    ``pad_id`` (``generate`` also returns the scores).
    """
    return token_search(
        next_fn, argmax_pick, start_tokens, cache, max_length, end_id, pad_id, processors
    )[0]
