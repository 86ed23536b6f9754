"""Greedy decoding over a ``next(tokens, cache, index)`` step function.

Written with ``keras.ops.while_loop`` and fixed-shape loop variables, so the
same code runs eagerly, inside ``tf.function`` and in exported graphs.
"""

from keras import ops


def greedy_search(next_fn, start_tokens, cache, max_length, end_id, pad_id=0):
    """Pick the most likely token at each step until every sequence has ended.

    Args:
        next_fn: ``next_fn(tokens (batch, 1), cache, index) -> (logits
            (batch, 1, vocabulary), cache)``; ``index`` is the position of the
            input token.
        start_tokens: ``(batch,)`` ids placed at position 0 (usually START).
        cache: state passed to ``next_fn``; its shapes must not change.
        max_length: total length of the output including the start token.
        end_id: id that ends a sequence; later positions are ``pad_id``.
        pad_id: filler id after the end.

    Returns:
        ``(batch, max_length)`` ids: the start token, the generated tokens up
        to and including ``end_id``, then ``pad_id``.
    """
    start_tokens = ops.cast(start_tokens, "int32")
    batch = ops.shape(start_tokens)[0]
    tokens = ops.concatenate(
        [
            ops.expand_dims(start_tokens, 1),
            ops.full((batch, max_length - 1), pad_id, dtype="int32"),
        ],
        axis=1,
    )
    done = ops.zeros((batch,), dtype="bool")

    def cond(index, tokens, cache, done):
        return ops.logical_and(index < max_length - 1, ops.logical_not(ops.all(done)))

    def body(index, tokens, cache, done):
        current = ops.slice(tokens, (0, index), (batch, 1))
        logits, cache = next_fn(current, cache, index)
        chosen = ops.cast(ops.argmax(logits[:, -1, :], axis=-1), "int32")
        chosen = ops.where(done, pad_id, chosen)
        tokens = ops.slice_update(tokens, (0, index + 1), ops.expand_dims(chosen, 1))
        return index + 1, tokens, cache, ops.logical_or(done, chosen == end_id)

    _, tokens, _, _ = ops.while_loop(cond, body, (0, tokens, cache, done))
    return tokens
