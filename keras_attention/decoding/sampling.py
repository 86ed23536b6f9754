"""Sampling: temperature, top-k and nucleus (top-p), seeded and reproducible.

Runs on the token loop of ``greedy.py`` with a ``pick`` that draws from the
processed scores after the sampling warpers. The draw at each step is a
stateless random op seeded with ``(seed, index)``, so a given seed gives the
same samples eagerly, in ``tf.function`` and in an exported SavedModel, and
no random-state variable has to be tracked or exported.
"""

import tensorflow as tf  # stateless draws with a per-step seed tensor (keras.random takes ints)
from keras import ops

from keras_attention.decoding.cache import tile_rows
from keras_attention.decoding.greedy import token_search
from keras_attention.decoding.processors import LogSoftmax, apply_processors


def sampling_pick(warpers, seed):
    """A ``pick`` drawing one token per row from ``softmax(warpers(scores))``
    with the stateless seed ``(seed, index)``."""

    def pick(scores, tokens, index):
        logits = apply_processors(warpers, scores, tokens, index)
        # Rows with nothing allowed (only ended rows, whose pick is discarded)
        # would make the draw return an out-of-range id.
        logits = ops.where(ops.all(logits == float("-inf"), axis=-1, keepdims=True), 0.0, logits)
        step_seed = ops.stack([ops.cast(seed, "int32"), ops.cast(index, "int32")])
        return ops.cast(tf.random.stateless_categorical(logits, 1, seed=step_seed)[:, 0], "int32")

    return pick


def sample_search(
    next_fn,
    start_tokens,
    cache,
    max_length,
    end_id,
    pad_id=0,
    num_samples=1,
    seed=0,
    processors=(LogSoftmax(),),
    warpers=(),
    resize_fn=None,
):
    """Draw ``num_samples`` independent sequences per sentence.

    Args:
        next_fn, start_tokens, max_length, end_id, pad_id: as ``token_search``
            (``start_tokens`` is ``(batch,)``).
        cache: state for the ``batch`` sentences; tiled to ``batch *
            num_samples`` rows here.
        num_samples: sequences drawn per sentence.
        seed: int seed; the same seed draws the same sequences.
        processors: logit processors on ``(batch * num_samples, vocabulary)``;
            the scores are the sums of their outputs for the drawn tokens.
        warpers: processors applied to the scores for the draw only
            (``Temperature``, ``TopK``, ``TopP``).
        resize_fn: as ``token_search``.

    Returns:
        ``tokens`` ``(batch, num_samples, max_length)`` (START first) and
        ``scores`` ``(batch, num_samples)``, each sentence's samples sorted
        best first.
    """
    batch = ops.shape(start_tokens)[0]
    tokens, scores = token_search(
        next_fn,
        sampling_pick(warpers, seed),
        tile_rows(ops.cast(start_tokens, "int32"), num_samples),
        tile_rows(cache, num_samples),
        max_length,
        end_id,
        pad_id,
        processors,
        resize_fn,
    )
    scores = ops.reshape(scores, (batch, num_samples))
    tokens = ops.reshape(tokens, (batch, num_samples, max_length))
    scores, order = ops.top_k(scores, num_samples, sorted=True)
    order = ops.broadcast_to(ops.expand_dims(ops.cast(order, "int32"), 2), ops.shape(tokens))
    return ops.take_along_axis(tokens, order, axis=1), scores
