"""Beam search with the GNMT length penalty and n-best output.

The tensor2tensor formulation with fixed shapes: per sentence ``beam_size``
*alive* hypotheses (not ended) and ``beam_size`` *finished* ones. Each step
extends the alive beams, takes the ``2 * beam_size`` best extensions, keeps
the best ``beam_size`` that did not end as the new alive set (the cache rows
are reordered to follow them) and merges the ones that ended within the
``beam_size`` best into the finished set (so ``beam_size=1`` is greedy search), scored ``log P / ((5 + length) / 6) ** length_penalty`` (Wu et
al., 2016; ``length`` counts the generated tokens, END included).

The search stops once no alive beam can beat the ``n_best``-th finished
hypothesis of any sentence. ``stopping`` says how an alive beam is bounded:

- ``"early"`` (the default, Hugging Face's ``early_stopping=False`` rule):
  its score at its current length, its log-probability over today's
  penalty. A beam whose next tokens are all near-certain could still
  overtake later, so this can miss a better hypothesis: on Multi30k
  test2016, the same outputs as ``"exact"`` on 480 of 500 sentences (BLEU
  11.23 -> 11.25), in about half the steps;
- ``"exact"``: the best score it could ever reach. Log-probabilities only
  decrease and, for ``length_penalty >= 0``, the penalty grows with length,
  so that is its log-probability over the penalty at the maximum length;
  no better hypothesis is missed, but the search runs on long after the
  outputs have ended.

With ``length_penalty=0`` both bounds are the same. A sentence that stops
keeps its hypotheses while the rest of its batch goes on, so each output is
what the sentence would give alone.
"""

from keras import ops

from keras_attention import validation
from keras_attention.constants import BEAM_STOPPINGS as STOPPINGS
from keras_attention.decoding.cache import gather_rows, tile_rows, while_loop_in_windows
from keras_attention.decoding.processors import NEG_INF, LogSoftmax, apply_processors


def gnmt_length_penalty(length, alpha):
    """``((5 + length) / 6) ** alpha`` (float32)."""
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


def gather_beams(values, indices):
    """``values[b, indices[b, j]]`` for ``(batch, beams, ...)`` values and
    int32 ``(batch, chosen)`` indices: one gather of flattened rows
    (``take_along_axis`` transposes on the TensorFlow backend, a tenth of a
    plain beam step's time)."""
    batch = ops.shape(values)[0]
    beams, chosen = values.shape[1], indices.shape[1]
    rows = ops.reshape(indices + ops.expand_dims(ops.arange(batch, dtype="int32") * beams, 1),
                       (-1,))
    flat = ops.reshape(values, (-1,) + tuple(values.shape[2:]))
    return ops.reshape(ops.take(flat, rows, axis=0), (batch, chosen) + tuple(values.shape[2:]))


def initial_beams(start_tokens, beams, max_length, pad_id):
    """``(alive_tokens (batch, beams, max_length), alive_log_probs (batch,
    beams), finished_tokens, finished_scores)`` before the first step: START
    then PAD; only the first beam alive (the copies would repeat it), nothing
    finished."""
    batch = ops.shape(start_tokens)[0]
    alive_tokens = ops.concatenate(
        [ops.broadcast_to(ops.reshape(start_tokens, (-1, 1, 1)), (batch, beams, 1)),
         ops.full((batch, beams, max_length - 1), pad_id, dtype="int32")], axis=2)
    first = ops.concatenate([ops.zeros((1,)), ops.full((beams - 1,), NEG_INF)], axis=0)
    alive_log_probs = ops.broadcast_to(ops.expand_dims(first, 0), (batch, beams))
    finished_tokens = ops.zeros_like(alive_tokens) + pad_id
    finished_scores = ops.full((batch, beams), NEG_INF, dtype="float32")
    return alive_tokens, alive_log_probs, finished_tokens, finished_scores


def beam_search(
    next_fn,
    start_tokens,
    cache,
    max_length,
    end_id,
    pad_id=0,
    beam_size=4,
    length_penalty=0.6,
    n_best=1,
    processors=(LogSoftmax(),),
    reorder_fn=gather_rows,
    resize_fn=None,
    stopping="early",
):
    """Beam search over ``next_fn``.

    Args:
        next_fn: ``next_fn(tokens (rows, 1), cache, index) -> (logits (rows,
            1, vocabulary), cache)`` with ``rows = batch * beam_size``.
        start_tokens: ``(batch,)`` ids at position 0.
        cache: state for the ``batch`` sentences; every tensor is tiled to
            ``batch * beam_size`` rows (beam-major per sentence) here.
        max_length: output length including the start token.
        end_id, pad_id: END and filler ids.
        beam_size: hypotheses kept per sentence.
        length_penalty: GNMT alpha (>= 0); 0 ranks by log-probability.
        n_best: hypotheses returned per sentence (<= beam_size).
        processors: logit processors run on ``(batch * beam_size, vocabulary)``
            (per-row tensors in them must be repeated per beam).
        reorder_fn: ``reorder_fn(cache, rows) -> cache`` keeping ``rows``
            (default: gather every tensor).
        resize_fn: ``resize_fn(cache, length) -> cache``: run the loop in
            windows of growing cache length (as ``token_search``).
        stopping: ``"early"`` or ``"exact"``, how alive beams are bounded
            when deciding to stop (module docstring).

    Returns:
        ``tokens``: ``(batch, n_best, max_length)`` ids, START first, END
        then ``pad_id``; ``scores``: ``(batch, n_best)`` float32 length-penalized
        log-probabilities, best first.
    """
    validation.check_choice("stopping", stopping, STOPPINGS)
    start_tokens = ops.cast(start_tokens, "int32")
    batch = ops.shape(start_tokens)[0]
    k = beam_size
    alpha = float(length_penalty)
    cache = tile_rows(cache, k)
    alive_tokens, alive_log_probs, finished_tokens, finished_scores = initial_beams(
        start_tokens, k, max_length, pad_id)
    max_penalty = gnmt_length_penalty(max_length - 1, alpha)
    beam_offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * k, 1)

    def improvable(index, alive_log_probs, finished_scores):
        """``(batch,)``: whether an alive beam may still beat the sentence's
        ``n_best``-th finished hypothesis (by the ``stopping`` rule)."""
        penalty = max_penalty if stopping == "exact" else gnmt_length_penalty(index, alpha)
        best_possible = alive_log_probs[:, 0] / penalty
        return ops.logical_not(finished_scores[:, n_best - 1] >= best_possible)

    def cond(index, alive_tokens, alive_log_probs, finished_tokens, finished_scores, stops,
             cache):
        return ops.logical_and(index < max_length - 1, ops.any(stops > index))

    def body(index, alive_tokens, alive_log_probs, finished_tokens, finished_scores, stops,
             cache):
        # A sentence that stopped keeps its hypotheses as they are while the
        # rest of the batch goes on, so its output does not depend on the
        # other sentences of the batch.
        stopped = stops <= index
        before = alive_tokens, alive_log_probs, finished_tokens, finished_scores
        rows_tokens = ops.reshape(alive_tokens, (batch * k, max_length))
        logits, cache = next_fn(ops.slice(rows_tokens, (0, index), (batch * k, 1)), cache, index)
        step = apply_processors(processors, logits[:, -1, :], rows_tokens, index)
        vocabulary = ops.shape(step)[-1]
        candidates = ops.expand_dims(alive_log_probs, 2) + ops.reshape(step, (batch, k, -1))
        candidates = ops.reshape(candidates, (batch, -1))
        top_log_probs, top_ids = ops.top_k(candidates, 2 * k, sorted=True)
        top_ids = ops.cast(top_ids, "int32")
        parents = top_ids // vocabulary
        new_tokens = top_ids % vocabulary
        top_tokens = gather_beams(alive_tokens, parents)
        top_tokens = ops.slice_update(
            top_tokens, (0, 0, index + 1), ops.expand_dims(new_tokens, 2)
        )
        # An ended extension counts only among the k best (as in Hugging Face
        # transformers), so beam_size=1 is greedy search.
        ended = new_tokens == end_id
        in_top_k = ops.expand_dims(ops.arange(2 * k) < k, 0)
        finishes = ops.logical_and(ended, in_top_k)

        # Alive: the best k extensions that did not end.
        alive_candidates = ops.where(ended, NEG_INF, top_log_probs)
        alive_log_probs, alive_ids = ops.top_k(alive_candidates, k, sorted=True)
        alive_ids = ops.cast(alive_ids, "int32")
        alive_tokens = gather_beams(top_tokens, alive_ids)
        rows = ops.reshape(gather_beams(parents, alive_ids) + beam_offsets, (-1,))
        cache = reorder_fn(cache, rows)

        # Finished: the best k of the old finished and the new ended ones.
        penalty = gnmt_length_penalty(index + 1, alpha)
        ended_scores = ops.where(finishes, top_log_probs / penalty, NEG_INF)
        merged_scores = ops.concatenate([finished_scores, ended_scores], axis=1)
        merged_tokens = ops.concatenate([finished_tokens, top_tokens], axis=1)
        finished_scores, keep = ops.top_k(merged_scores, k, sorted=True)
        finished_tokens = gather_beams(merged_tokens, ops.cast(keep, "int32"))
        after = alive_tokens, alive_log_probs, finished_tokens, finished_scores
        kept = [ops.where(ops.reshape(stopped, (-1,) + (1,) * (len(new.shape) - 1)), old, new)
                for old, new in zip(before, after)]
        # A sentence stops at the next position if it cannot improve there.
        cannot_improve = ops.logical_not(improvable(index + 1, kept[1], kept[3]))
        stops = ops.where(ops.logical_and(stops > index + 1, cannot_improve), index + 1, stops)
        return (index + 1, *kept, stops, cache)

    # Where each sentence stopped (max_length: still going); nothing has
    # finished at position 0, so every sentence starts going.
    stops = ops.full((batch,), max_length, dtype="int32")
    index, alive_tokens, alive_log_probs, finished_tokens, finished_scores, stops, _ = (
        while_loop_in_windows(
            cond,
            body,
            (0, alive_tokens, alive_log_probs, finished_tokens, finished_scores, stops, cache),
            max_length,
            resize_fn,
        )
    )
    # Hypotheses that never ended (max_length reached without a forced END)
    # fill the places no finished one took; on ties finished ones come first.
    # Each sentence's alive beams have the length it stopped at.
    lengths = ops.minimum(stops, index)
    alive_scores = alive_log_probs / ops.expand_dims(gnmt_length_penalty(lengths, alpha), 1)
    scores, best = ops.top_k(
        ops.concatenate([finished_scores, alive_scores], axis=1), n_best, sorted=True
    )
    tokens = gather_beams(
        ops.concatenate([finished_tokens, alive_tokens], axis=1), ops.cast(best, "int32")
    )
    return tokens, scores
