"""Decoding steps over a model: the cached (key/value cache) and the uncached
(full recomputation) step, and the row operations beam search and sampling
need (tile each sentence's state, reorder rows).

A *steps* object has three methods, all plain ``keras.ops`` on fixed shapes:

- ``start(source_ids, length) -> state``: encode once and build the state for
  ``length`` target positions (START included);
- ``next(tokens (rows, 1), state, index) -> (float32 logits (rows, 1, vocabulary),
  state)``: one decoding step for the token at position ``index``;
- ``reorder(state, rows) -> state``: keep the rows ``rows`` (beam search).

``cached_steps(model)`` is the one to decode with; ``uncached_steps(model)``
recomputes ``model.decode`` over the whole fixed-size token buffer at each
step (the causal mask makes it exact), the reference for tests and the
benchmark. ``generate(..., steps=...)`` takes either.
"""

from keras import ops, tree


def tile_rows(state, count):
    """Repeat every row of every tensor in ``state`` ``count`` times
    (``[a, b] -> [a, a, b, b]`` for 2): one copy per beam or sample."""
    return tree.map_structure(lambda x: ops.repeat(x, count, axis=0), state)


def gather_rows(state, rows):
    """Rows ``rows`` of every tensor in ``state``."""
    return tree.map_structure(lambda x: ops.take(x, rows, axis=0), state)


class CachedSteps:
    """Incremental decoding with the model's key/value cache.

    The encoder output, the cross-attention keys/values and the source mask
    are computed once in ``start``; a beam reorder gathers only the
    self-attention cache, since the cross-attention part is the same for all
    beams of a sentence.
    """

    def __init__(self, model):
        self.model = model

    def start(self, source_ids, length):
        encoder_output, padding_mask = self.model.encode(source_ids)
        return self.model.init_cache(
            encoder_output, padding_mask, length, encoder_tokens=source_ids
        )

    def next(self, tokens, state, index):
        return self.model.decode_step(tokens, state, index)

    def reorder(self, state, rows):
        return dict(state, self_attention=gather_rows(state["self_attention"], rows))


class UncachedSteps:
    """Recompute the decoder over the whole token buffer at every step.

    The state holds the encoder output, its mask, the source ids (for copy
    models) and a ``(rows, length)``
    buffer of the tokens so far (PAD after ``index``); causal attention makes
    the logits at ``index`` exactly those of the cached step.
    """

    def __init__(self, model):
        self.model = model

    def start(self, source_ids, length):
        encoder_output, padding_mask = self.model.encode(source_ids)
        batch = ops.shape(source_ids)[0]
        return {
            "encoder_output": encoder_output,
            "encoder_padding_mask": padding_mask,
            "encoder_tokens": ops.cast(source_ids, "int32"),
            "tokens": ops.zeros((batch, length), dtype="int32"),
        }

    def next(self, tokens, state, index):
        buffer = ops.slice_update(state["tokens"], (0, index), ops.cast(tokens, "int32"))
        logits = self.model.decode(
            buffer,
            state["encoder_output"],
            state["encoder_padding_mask"],
            encoder_tokens=state["encoder_tokens"],
        )
        step = ops.slice(logits, (0, index, 0), (ops.shape(logits)[0], 1, ops.shape(logits)[2]))
        return step, dict(state, tokens=buffer)

    def reorder(self, state, rows):
        return dict(state, tokens=ops.take(state["tokens"], rows, axis=0))


def cached_steps(model):
    """Decoding steps over ``model``'s key/value cache (the default)."""
    return CachedSteps(model)


def uncached_steps(model):
    """Decoding steps that recompute ``model.decode`` on the whole buffer."""
    return UncachedSteps(model)
