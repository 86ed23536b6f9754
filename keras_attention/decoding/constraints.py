"""Lexically constrained beam search: every output contains given phrases.

Dynamic beam allocation (Post & Vilar, 2018). Each sentence has up to ``C``
constraints, phrases of target ids (``(batch, C, L)`` int32, PAD after a
phrase and for missing ones). A hypothesis tracks which constraints it has
met and how far it is into the one it is generating (a phrase must appear
contiguously; a token that breaks it off undoes that progress). At each
step the candidates are

- the ``2 * beam_size`` best extensions overall (as plain beam search),
- for every alive hypothesis, each token that starts an unmet constraint
  (or continues the one in progress): what makes it reach its constraints,
- for every alive hypothesis, its single best next token,

and the new beam is chosen from them by *banks*: a candidate's bank is the
number of constraint tokens it has met. The beam is filled round-robin, the
best candidate of each bank from the fullest bank down, then the second
best of each, and so on; so the beam holds hypotheses at every stage of
meeting the constraints, and a bank with too few candidates leaves its
places to the others (the paper's redistribution). Hypotheses that end
among the chosen beam are finished (with no constraints that is the k best,
so the search is plain beam search). END is allowed only once every
constraint is met, so a finished hypothesis contains them all.

The exception is a row's length limit: there END is forced (as in every
search), and a hypothesis that ends there without its constraints ranks
below every one that met them; only when none did within the limit does an
output lack a constraint (raise the limit). Ranking, the length penalty and
the stopping rule are plain beam search's (``beam.py``), with only
finished hypotheses that met their constraints counting as found.

All of it is ``keras.ops`` on fixed shapes: batched, in ``tf.function``,
SavedModels and XLA.
"""

from keras import ops

from keras_attention import validation
from keras_attention.constants import BEAM_STOPPINGS as STOPPINGS
from keras_attention.decoding.beam import gather_beams, gnmt_length_penalty, initial_beams
from keras_attention.decoding.cache import tile_rows, while_loop_in_windows
from keras_attention.decoding.processors import NEG_INF, apply_processors

# Added to the ranking of a hypothesis that ended (at its length limit)
# without meeting its constraints, so every one that met them ranks first.
_UNMET = 1e9


class Constraints:
    """The phrases of each sentence and what a hypothesis has met of them.

    ``phrases``: int32 ``(batch, C, L)``, PAD = 0 after each phrase. A
    hypothesis state is ``(met (batch, beams, C) bool, current (batch,
    beams) int32: the phrase in progress or -1, progress (batch, beams):
    its tokens generated so far)``.
    """

    def __init__(self, phrases, pad_id=0):
        self.phrases = ops.cast(phrases, "int32")
        self.count, self.width = self.phrases.shape[1], self.phrases.shape[2]
        self.lengths = ops.sum(ops.cast(ops.not_equal(self.phrases, pad_id), "int32"), axis=2)
        self.given = self.lengths > 0  # (batch, C)
        self.total = ops.sum(self.lengths, axis=1)  # (batch,) tokens to meet
        self.most = self.count * self.width  # a bound on every sentence's total

    def initial(self, beams):
        batch = ops.shape(self.phrases)[0]
        return (ops.zeros((batch, beams, self.count), dtype="bool"),
                ops.full((batch, beams), -1, dtype="int32"),
                ops.zeros((batch, beams), dtype="int32"))

    def _at(self, values, phrase, position=None):
        """``values[b, phrase[b, m]]`` (or ``[b, phrase, position]`` of the
        phrases) for ``(batch, M)`` indices."""
        batch, m = ops.shape(phrase)[0], phrase.shape[1]
        rows = ops.expand_dims(ops.arange(batch, dtype="int32"), 1)
        if position is None:
            flat = rows * self.count + phrase
            return ops.reshape(ops.take(ops.reshape(values, (-1,)), ops.reshape(flat, (-1,))),
                               (batch, m))
        flat = (rows * self.count + phrase) * self.width + position
        return ops.reshape(ops.take(ops.reshape(values, (-1,)), ops.reshape(flat, (-1,))),
                           (batch, m))

    def met_tokens(self, state):
        """``(batch, beams)``: constraint tokens met (the bank)."""
        met, _, progress = state
        lengths = ops.expand_dims(self.lengths, 1)
        return ops.sum(ops.where(met, lengths, 0), axis=2) + progress

    def all_met(self, state):
        """``(batch, beams)``: every given constraint met."""
        met = state[0]
        return ops.all(ops.logical_or(met, ops.logical_not(ops.expand_dims(self.given, 1))),
                       axis=2)

    def advance(self, state, tokens):
        """The states after ``tokens`` ``(batch, M)`` for parent ``state``
        (already gathered to ``(batch, M, ...)``)."""
        met, current, progress = state
        safe = ops.maximum(current, 0)
        expected = self._at(self.phrases, safe, ops.minimum(progress, self.width - 1))
        continues = ops.logical_and(current >= 0, tokens == expected)
        completes = ops.logical_and(continues, progress + 1 == self._at(self.lengths, safe))
        one_hot = ops.arange(self.count, dtype="int32") == ops.expand_dims(safe, 2)
        met = ops.logical_or(met, ops.logical_and(one_hot, ops.expand_dims(completes, 2)))
        going = ops.logical_and(continues, ops.logical_not(completes))
        current = ops.where(going, current, -1)
        progress = ops.where(going, progress + 1, 0)
        # Not continuing a phrase: the token may start one not met yet.
        firsts = ops.expand_dims(self.phrases[:, :, 0], 1)  # (batch, 1, C)
        starts = ops.logical_and(firsts == ops.expand_dims(tokens, 2),
                                 ops.logical_and(ops.logical_not(met),
                                                 ops.expand_dims(self.given, 1)))
        starts = ops.logical_and(starts, ops.expand_dims(ops.logical_not(continues), 2))
        started = ops.any(starts, axis=2)
        phrase = ops.cast(ops.argmax(ops.cast(starts, "int32"), axis=2), "int32")
        single = self._at(self.lengths, phrase) == 1
        one_hot = ops.arange(self.count, dtype="int32") == ops.expand_dims(phrase, 2)
        met = ops.logical_or(met, ops.logical_and(
            one_hot, ops.expand_dims(ops.logical_and(started, single), 2)))
        opens = ops.logical_and(started, ops.logical_not(single))
        return met, ops.where(opens, phrase, current), ops.where(opens, 1, progress)

    def next_tokens(self, state):
        """``(batch, beams, C)`` ids that make progress on each constraint
        (PAD where none: met, not given, or another one in progress)."""
        met, current, progress = state
        beams = current.shape[1]
        firsts = ops.broadcast_to(ops.expand_dims(self.phrases[:, :, 0], 1),
                                  (ops.shape(current)[0], beams, self.count))
        fresh = ops.logical_and(ops.logical_not(met), ops.expand_dims(self.given, 1))
        fresh = ops.logical_and(fresh, ops.expand_dims(current < 0, 2))
        expected = self._at(self.phrases, ops.maximum(current, 0),
                            ops.minimum(progress, self.width - 1))
        own = ops.arange(self.count, dtype="int32") == ops.expand_dims(current, 2)
        tokens = ops.where(fresh, firsts, 0)
        return ops.where(own, ops.expand_dims(expected, 2), tokens)


def _first_occurrences(ids, valid):
    """``(batch, M)``: valid and no earlier valid entry has the same id."""
    m = ids.shape[1]
    same = ops.expand_dims(ids, 2) == ops.expand_dims(ids, 1)  # (batch, M, M)
    earlier = ops.arange(m)[None, :] < ops.arange(m)[:, None]  # [i, j]: j before i
    repeated = ops.any(ops.logical_and(ops.logical_and(same, earlier[None]),
                                       ops.expand_dims(valid, 1)), axis=2)
    return ops.logical_and(valid, ops.logical_not(repeated))


def allocate(scores, banks, valid, beams, most):
    """Indices ``(batch, beams)`` of the candidates that form the new beam:
    round-robin over banks (the best of each bank, fullest bank first,
    then the second best of each, ...), and whether each is a real one."""
    better = ops.logical_or(
        ops.expand_dims(scores, 1) > ops.expand_dims(scores, 2),
        ops.logical_and(ops.expand_dims(scores, 1) == ops.expand_dims(scores, 2),
                        ops.arange(scores.shape[1])[None, :] < ops.arange(scores.shape[1])[:, None]),
    )  # [b, i, j]: candidate j ranks before i
    same_bank = ops.expand_dims(banks, 1) == ops.expand_dims(banks, 2)
    rank = ops.sum(ops.cast(ops.logical_and(ops.logical_and(better, same_bank),
                                            ops.expand_dims(valid, 1)), "int32"), axis=2)
    order = rank * (most + 1) + (most - banks)
    order = ops.where(valid, order, (most + 1) * (scores.shape[1] + 1))
    _, chosen = ops.top_k(-ops.cast(order, "float32"), beams, sorted=True)
    chosen = ops.cast(chosen, "int32")
    return chosen, ops.take_along_axis(valid, chosen, axis=1)


def constrained_beam_search(
    next_fn,
    start_tokens,
    cache,
    max_length,
    end_id,
    constraints,
    limits,
    pad_id=0,
    beam_size=4,
    length_penalty=0.6,
    n_best=1,
    processors=(),
    reorder_fn=None,
    resize_fn=None,
    stopping="early",
):
    """Beam search whose outputs contain every phrase of ``constraints``.

    Arguments are ``beam.beam_search``'s, plus ``constraints`` (int32
    ``(batch, C, L)`` phrases of target ids, PAD after each; an all-PAD
    phrase is none) and ``limits`` (``(batch * beam_size,)`` each row's
    generated-token limit, where END is forced: the only place an output may
    end without its constraints). ``reorder_fn`` is required.

    Returns:
        ``tokens`` ``(batch, n_best, max_length)`` (START first) and
        ``scores`` ``(batch, n_best)``, best first; hypotheses that met their
        constraints rank before those that did not.
    """
    validation.check_choice("stopping", stopping, STOPPINGS)
    start_tokens = ops.cast(start_tokens, "int32")
    batch = ops.shape(start_tokens)[0]
    k = beam_size
    alpha = float(length_penalty)
    phrases = Constraints(constraints, pad_id)
    limits = ops.reshape(ops.cast(limits, "int32"), (batch, k))
    cache = tile_rows(cache, k)
    alive_tokens, alive_log_probs, finished_tokens, finished_scores = initial_beams(
        start_tokens, k, max_length, pad_id)
    finished_met = ops.zeros((batch, k), dtype="bool")
    max_penalty = gnmt_length_penalty(max_length - 1, alpha)
    beam_offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * k, 1)

    def found(scores, met):
        return ops.where(met, scores, NEG_INF)

    def ranking(scores, met):
        return ops.where(met, scores, scores - _UNMET)

    def improvable(index, alive_log_probs, finished_scores, finished_met):
        penalty = max_penalty if stopping == "exact" else gnmt_length_penalty(index, alpha)
        best_possible = ops.max(alive_log_probs, axis=1) / penalty
        nth = ops.top_k(found(finished_scores, finished_met), n_best, sorted=True)[0][:, -1]
        return ops.logical_not(nth >= best_possible)

    def candidates(step, alive_log_probs, state):
        """Parents, tokens and scores ``(batch, M)`` of the step's candidates."""
        vocabulary = step.shape[-1]
        total = ops.expand_dims(alive_log_probs, 2) + step  # (batch, k, vocabulary)
        flat = ops.reshape(total, (batch, -1))
        top_scores, top_ids = ops.top_k(flat, 2 * k, sorted=True)
        top_ids = ops.cast(top_ids, "int32")
        wanted = phrases.next_tokens(state)  # (batch, k, C)
        wanted_scores = ops.take_along_axis(total, wanted, axis=2)
        wanted_scores = ops.where(wanted == pad_id, NEG_INF, wanted_scores)
        best = ops.cast(ops.argmax(total, axis=2), "int32")  # (batch, k)
        best_scores = ops.max(total, axis=2)
        beam_ids = ops.arange(k, dtype="int32")
        parents = ops.concatenate([
            top_ids // vocabulary,
            ops.reshape(ops.broadcast_to(beam_ids[None, :, None], (batch, k, phrases.count)),
                        (batch, -1)),
            ops.broadcast_to(beam_ids[None, :], (batch, k))], axis=1)
        tokens = ops.concatenate([top_ids % vocabulary, ops.reshape(wanted, (batch, -1)), best],
                                 axis=1)
        scores = ops.concatenate([top_scores, ops.reshape(wanted_scores, (batch, -1)),
                                  best_scores], axis=1)
        valid = _first_occurrences(parents * vocabulary + tokens, scores > NEG_INF)
        return parents, tokens, ops.where(valid, scores, NEG_INF), valid

    def body(index, alive_tokens, alive_log_probs, met, current, progress, finished_tokens,
             finished_scores, finished_met, stops, cache):
        stopped = stops <= index
        state = (met, current, progress)
        before = (alive_tokens, alive_log_probs, met, current, progress, finished_tokens,
                  finished_scores, finished_met)
        rows_tokens = ops.reshape(alive_tokens, (batch * k, max_length))
        logits, cache = next_fn(ops.slice(rows_tokens, (0, index), (batch * k, 1)), cache, index)
        step = apply_processors(processors, logits[:, -1, :], rows_tokens, index)
        step = ops.reshape(step, (batch, k, -1))
        # END only once every constraint is met (or where the limit forces it).
        may_end = ops.logical_or(phrases.all_met(state), index + 1 >= limits)
        is_end = ops.arange(step.shape[-1], dtype="int32") == end_id
        step = ops.where(ops.logical_and(is_end[None, None, :],
                                         ops.logical_not(may_end)[:, :, None]), NEG_INF, step)
        parents, tokens, scores, valid = candidates(step, alive_log_probs, state)
        parent_state = tuple(gather_beams(part, parents) for part in state)
        new_state = phrases.advance(parent_state, tokens)
        ended = tokens == end_id
        candidate_tokens = ops.slice_update(gather_beams(alive_tokens, parents), (0, 0, index + 1),
                                            ops.expand_dims(tokens, 2))

        banks = phrases.met_tokens(new_state)
        # Finished: those that ended among the beam the banks choose (with no
        # constraints, the k best: plain beam search's rule).
        chosen, _ = allocate(scores, banks, valid, k, phrases.most)
        ends = ops.take_along_axis(ops.logical_and(valid, ended), chosen, axis=1)
        penalty = gnmt_length_penalty(index + 1, alpha)
        ended_scores = ops.where(ends, ops.take_along_axis(scores, chosen, axis=1) / penalty,
                                 NEG_INF)
        ended_met = ops.take_along_axis(phrases.all_met(new_state), chosen, axis=1)
        ended_tokens = gather_beams(candidate_tokens, chosen)

        # Alive: the banks' best that did not end.
        going = ops.logical_and(valid, ops.logical_not(ended))
        chosen, real = allocate(scores, banks, going, k, phrases.most)
        alive_log_probs = ops.where(real, ops.take_along_axis(scores, chosen, axis=1), NEG_INF)
        alive_tokens = gather_beams(candidate_tokens, chosen)
        met, current, progress = (gather_beams(part, chosen) for part in new_state)
        cache = reorder_fn(cache, ops.reshape(gather_beams(parents, chosen) + beam_offsets, (-1,)))

        # The best k of the old finished and the ones that ended now.
        merged_scores = ops.concatenate([finished_scores, ended_scores], axis=1)
        merged_met = ops.concatenate([finished_met, ended_met], axis=1)
        merged_tokens = ops.concatenate([finished_tokens, ended_tokens], axis=1)
        _, keep = ops.top_k(ranking(merged_scores, merged_met), k, sorted=True)
        keep = ops.cast(keep, "int32")
        finished_scores = ops.take_along_axis(merged_scores, keep, axis=1)
        finished_met = ops.take_along_axis(merged_met, keep, axis=1)
        finished_tokens = gather_beams(merged_tokens, keep)
        after = (alive_tokens, alive_log_probs, met, current, progress, finished_tokens,
                 finished_scores, finished_met)
        kept = [ops.where(ops.reshape(stopped, (-1,) + (1,) * (len(new.shape) - 1)), old, new)
                for old, new in zip(before, after)]
        cannot_improve = ops.logical_not(improvable(index + 1, kept[1], kept[6], kept[7]))
        stops = ops.where(ops.logical_and(stops > index + 1, cannot_improve), index + 1, stops)
        return (index + 1, *kept, stops, cache)

    def cond(index, *values):
        return ops.logical_and(index < max_length - 1, ops.any(values[-2] > index))

    stops = ops.full((batch,), max_length, dtype="int32")
    met, current, progress = phrases.initial(k)
    loop_vars = (0, alive_tokens, alive_log_probs, met, current, progress, finished_tokens,
                 finished_scores, finished_met, stops, cache)
    (index, alive_tokens, alive_log_probs, met, current, progress, finished_tokens,
     finished_scores, finished_met, stops, _) = while_loop_in_windows(
        cond, body, loop_vars, max_length, resize_fn)
    lengths = ops.minimum(stops, index)
    alive_scores = alive_log_probs / ops.expand_dims(gnmt_length_penalty(lengths, alpha), 1)
    alive_met = phrases.all_met((met, current, progress))
    scores = ops.concatenate([finished_scores, alive_scores], axis=1)
    met = ops.concatenate([finished_met, alive_met], axis=1)
    _, best = ops.top_k(ranking(scores, met), n_best, sorted=True)
    best = ops.cast(best, "int32")
    tokens = gather_beams(ops.concatenate([finished_tokens, alive_tokens], axis=1), best)
    return tokens, ops.take_along_axis(scores, best, axis=1)
