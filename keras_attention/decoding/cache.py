"""Decoding steps over a model: the cached (key/value cache) and the uncached
(full recomputation) step, and the row operations beam search and sampling
need (tile each sentence's state, reorder rows).

A *steps* object has four methods, all plain ``keras.ops`` on fixed shapes:

- ``start(source_ids, length) -> state``: encode once and build the state for
  ``length`` target positions (START included);
- ``next(tokens (rows, 1), state, index) -> (float32 logits (rows, 1, vocabulary),
  state)``: one decoding step for the token at position ``index``;
- ``reorder(state, rows) -> state``: keep the rows ``rows`` (beam search);
- ``resize(state, length) -> state``: the state for ``length`` target
  positions, those decoded so far kept (the ``resize_fn`` of the search loops).

The search loops run in *windows* (``window_lengths``): the state starts
with room for the first ``FIRST_WINDOW`` positions and doubles whenever the
decoded positions fill it, so a step attends over (and copies) a cache about
as long as what was decoded, not one of the longest possible output; a batch
whose outputs all end early never grows it. Each window is its own
``while_loop`` over fixed shapes (SavedModel, XLA and TFLite friendly); the
positions past the decoded ones are masked, so the outputs are those of one
loop over the full length.

``cached_steps(model)`` is the one to decode with; ``uncached_steps(model)``
recomputes ``model.decode`` over the whole fixed-size token buffer at each
step (the causal mask makes it exact), the reference for tests and the
benchmark. ``generate(..., steps=...)`` takes either.
"""

from keras import ops, tree

# Positions the decoding state has room for at first; it doubles from there.
FIRST_WINDOW = 16


def tile_rows(state, count):
    """Repeat every row of every tensor in ``state`` ``count`` times
    (``[a, b] -> [a, a, b, b]`` for 2): one copy per beam or sample."""
    return tree.map_structure(lambda x: ops.repeat(x, count, axis=0), state)


def gather_rows(state, rows):
    """Rows ``rows`` of every tensor in ``state``."""
    return tree.map_structure(lambda x: ops.take(x, rows, axis=0), state)


def window_lengths(length, first=FIRST_WINDOW):
    """State lengths of the decoding loop's windows: ``first``, doubling,
    ending with ``length`` (``[length]`` when ``length < 2 * first``):
    ``[16, 32, 64, 128]`` for 128, ``[16, 32, 100]`` for 100."""
    lengths = []
    window = first
    while 2 * window <= length:
        lengths.append(window)
        window *= 2
    return lengths + [length]


def while_loop_in_windows(cond, body, loop_vars, length, resize_fn=None):
    """``ops.while_loop(cond, body, loop_vars)`` with the state grown in windows.

    ``loop_vars`` is ``(index, ..., state)``: the position first, the
    decoding state last. With ``resize_fn(state, window)`` the loop runs
    once per ``window_lengths(length)``, each while ``index < window``, the
    state resized to the window before it (``length`` is its final length);
    without, one loop on the state as given.
    """
    if resize_fn is None:
        return ops.while_loop(cond, body, loop_vars)
    for window in window_lengths(length):
        loop_vars = (*loop_vars[:-1], resize_fn(loop_vars[-1], window))

        def window_cond(*values, window=window):
            return ops.logical_and(values[0] < window, cond(*values))

        loop_vars = tuple(ops.while_loop(window_cond, body, loop_vars))
    return loop_vars


def resize_axis(x, axis, length):
    """``x`` cut or zero-padded to ``length`` along ``axis`` (a static size)."""
    size = x.shape[axis]
    if size >= length:
        return x[(slice(None),) * axis + (slice(0, length),)] if size > length else x
    padding = [[0, 0]] * len(x.shape)
    padding[axis] = [0, length - size]
    return ops.pad(x, padding)


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

    def resize(self, state, length):
        """Room for ``length`` positions in every self-attention key/value
        tensor ``(rows, heads, length, head_dim)``."""
        resized = tree.map_structure(lambda x: resize_axis(x, 2, length), state["self_attention"])
        return dict(state, self_attention=resized)


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

    def resize(self, state, length):
        """A token buffer of ``length`` positions (PAD after the decoded ones)."""
        return dict(state, tokens=resize_axis(state["tokens"], 1, length))


def cached_steps(model):
    """Decoding steps over ``model``'s key/value cache (the default)."""
    return CachedSteps(model)


def uncached_steps(model):
    """Decoding steps that recompute ``model.decode`` on the whole buffer."""
    return UncachedSteps(model)
