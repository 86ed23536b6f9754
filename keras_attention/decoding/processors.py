"""Logit processors: the decoding controls shared by every strategy.

A processor is a callable ``processor(scores, tokens, index) -> scores``:

- ``scores``: float32 ``(rows, vocabulary)`` for the next token;
- ``tokens``: int32 ``(rows, length)`` buffer of the sequences so far, START
  at position 0, generated tokens at ``1 .. index``, PAD after;
- ``index``: position of the step's input token; the chosen token goes to
  ``index + 1``, so it is the ``index + 1``-th generated token.

``decoding_processors`` builds the chain every strategy runs:
``RepetitionPenalty`` on the model's logits, ``LogSoftmax``, then the masks
(``MinLength``, ``NoRepeatNgram``, ``ForceEndAtLimit``) that set forbidden
tokens to ``-inf`` without renormalizing - so a chosen token's score is the
model's log-probability whenever the masks allow it. Sampling applies its
warpers (``Temperature``, ``TopK``, ``TopP``) on top, for the draw only.
Per-row tensors (``ForceEndAtLimit``'s limits, ``ForcePrefix``'s prefixes)
must have one entry per row (repeat them per beam or sample). With a target
prefix, ``ForcePrefix`` wraps the masks: while a row's prefix lasts its next
token is the prefix's, scored with the model's log-probability, whatever the
masks would say.
"""

from keras import ops

from keras_attention.constants import PAD_ID

NEG_INF = float("-inf")


def _forbid(scores, forbidden):
    return ops.where(forbidden, NEG_INF, scores)


def _token_mask(rows, vocabulary, row_ids, token_ids, valid):
    """Boolean ``(rows, vocabulary)``: true where some valid (row, token) pair hits."""
    indices = ops.stack([ops.reshape(row_ids, (-1,)), ops.reshape(token_ids, (-1,))], axis=1)
    counts = ops.scatter(indices, ops.reshape(ops.cast(valid, "int32"), (-1,)), (rows, vocabulary))
    return counts > 0


def _row_ids_like(tokens):
    rows, length = ops.shape(tokens)[0], ops.shape(tokens)[1]
    return ops.broadcast_to(ops.expand_dims(ops.arange(rows, dtype="int32"), 1), (rows, length))


def generated_token_mask(tokens, index, vocabulary, first=1):
    """``(rows, vocabulary)``: true for the tokens at positions ``first .. index``
    (``first=1``: the generated ones; 0 adds the start token)."""
    positions = ops.arange(ops.shape(tokens)[1], dtype="int32")
    valid = ops.logical_and(positions >= first, positions <= index)
    valid = ops.broadcast_to(ops.expand_dims(valid, 0), ops.shape(tokens))
    return _token_mask(ops.shape(tokens)[0], vocabulary, _row_ids_like(tokens), tokens, valid)


class LogSoftmax:
    """Float32 log-probabilities of the logits."""

    def __call__(self, scores, tokens, index):
        return ops.log_softmax(ops.cast(scores, "float32"), axis=-1)


class RepetitionPenalty:
    """CTRL penalty (Keskar et al., 2019) on the logits of tokens already
    generated: positive logits divided by ``penalty``, negative multiplied."""

    def __init__(self, penalty):
        self.penalty = float(penalty)

    def __call__(self, scores, tokens, index):
        seen = generated_token_mask(tokens, index, ops.shape(scores)[-1])
        penalized = ops.where(scores > 0, scores / self.penalty, scores * self.penalty)
        return ops.where(seen, penalized, scores)


class MinLength:
    """Forbid ``end_id`` until ``min_length`` tokens have been generated;
    ``min_length`` is an int or one per row ``(rows,)``."""

    def __init__(self, min_length, end_id):
        self.min_length = min_length if isinstance(min_length, int) else ops.cast(
            min_length, "int32")
        self.end_id = int(end_id)

    def __call__(self, scores, tokens, index):
        vocabulary = ops.shape(scores)[-1]
        is_end = ops.expand_dims(ops.arange(vocabulary, dtype="int32") == self.end_id, 0)
        too_short = ops.reshape(index < self.min_length, (-1, 1))
        return _forbid(scores, ops.logical_and(is_end, too_short))


class NoRepeatNgram:
    """Forbid any token that would repeat an n-gram of ``size`` already in
    the sequence (START included, as the sequence's first token)."""

    def __init__(self, size):
        self.size = int(size)

    def __call__(self, scores, tokens, index):
        n = self.size
        rows, length = ops.shape(tokens)[0], ops.shape(tokens)[1]
        if n == 1:
            return _forbid(scores, generated_token_mask(tokens, index, ops.shape(scores)[-1], 0))
        windows = length - n + 1  # n-grams tokens[j : j + n]
        if windows <= 0:
            return scores
        # The last n - 1 tokens (positions index - n + 2 .. index); while the
        # sequence is shorter nothing can repeat (``ready`` is false).
        ready = index >= n - 2
        start = ops.maximum(index - (n - 2), 0)
        match = ops.arange(windows, dtype="int32") + (n - 1) <= index  # n-gram complete
        match = ops.logical_and(ops.broadcast_to(match, (rows, windows)), ready)
        for k in range(n - 1):
            suffix_k = ops.slice(tokens, (0, start + k), (rows, 1))
            match = ops.logical_and(match, tokens[:, k : k + windows] == suffix_k)
        following = tokens[:, n - 1 : n - 1 + windows]
        row_ids = ops.broadcast_to(
            ops.expand_dims(ops.arange(rows, dtype="int32"), 1), (rows, windows)
        )
        banned = _token_mask(rows, ops.shape(scores)[-1], row_ids, following, match)
        return _forbid(scores, banned)


class ForceEndAtLimit:
    """Only ``end_id`` is allowed as the ``limits[row]``-th generated token,
    so every row ends within its limit. ``limits``: int ``(rows,)``."""

    def __init__(self, limits, end_id):
        self.limits = ops.cast(limits, "int32")
        self.end_id = int(end_id)

    def __call__(self, scores, tokens, index):
        vocabulary = ops.shape(scores)[-1]
        at_limit = ops.expand_dims(index + 1 >= self.limits, 1)
        not_end = ops.expand_dims(ops.arange(vocabulary, dtype="int32") != self.end_id, 0)
        return _forbid(scores, ops.logical_and(at_limit, not_end))


class ForcePrefix:
    """The first generated tokens of each row are its ``prefix`` (int
    ``(rows, prefix_length)``, PAD after a row's prefix; an all-PAD row has
    none): at those steps only the prefix token is allowed, with its score
    from before ``controls`` (the masks: a prefix may repeat an n-gram or end
    past a length limit); after them ``controls`` run as usual."""

    def __init__(self, prefix, controls):
        self.prefix = ops.cast(prefix, "int32")
        self.controls = list(controls)

    def __call__(self, scores, tokens, index):
        controlled = apply_processors(self.controls, scores, tokens, index)
        length = ops.shape(self.prefix)[1]
        forced = ops.take(self.prefix, ops.minimum(index, length - 1), axis=1)  # (rows,)
        active = ops.logical_and(index < length, forced != PAD_ID)
        vocabulary = ops.shape(scores)[-1]
        only = ops.where(ops.arange(vocabulary, dtype="int32")[None, :] == forced[:, None],
                         scores, NEG_INF)
        return ops.where(active[:, None], only, controlled)


class Temperature:
    """Divide the scores by ``temperature`` (sampling)."""

    def __init__(self, temperature):
        self.temperature = float(temperature)

    def __call__(self, scores, tokens, index):
        return scores / self.temperature


class TopK:
    """Keep the ``k`` highest scores (ties with the k-th kept too)."""

    def __init__(self, k):
        self.k = int(k)

    def __call__(self, scores, tokens, index):
        k = min(self.k, scores.shape[-1]) if scores.shape[-1] is not None else self.k
        kth = ops.top_k(scores, k, sorted=True)[0][:, -1:]
        return _forbid(scores, scores < kth)


class TopP:
    """Nucleus filtering (Holtzman et al., 2020): keep the smallest set of
    highest-probability tokens whose probability reaches ``p``."""

    def __init__(self, p):
        self.p = float(p)

    def __call__(self, scores, tokens, index):
        vocabulary = scores.shape[-1] or ops.shape(scores)[-1]
        ordered = ops.top_k(scores, vocabulary, sorted=True)[0]
        probabilities = ops.softmax(ordered, axis=-1)
        before = ops.cumsum(probabilities, axis=-1) - probabilities  # mass of better tokens
        keep = ops.logical_or(before < self.p, ops.arange(vocabulary) == 0)
        # The lowest kept score is the threshold.
        threshold = ops.min(ops.where(keep, ordered, float("inf")), axis=-1, keepdims=True)
        return _forbid(scores, scores < threshold)


def apply_processors(processors, scores, tokens, index):
    """Run ``processors`` in order."""
    for processor in processors:
        scores = processor(scores, tokens, index)
    return scores


def decoding_processors(config, limits, end_id, prefix=None):
    """The controls of a ``DecodingConfig``: repetition penalty on logits,
    log-softmax, then min length (at most each row's limit - 1), no-repeat
    n-grams and the forced END at each row's limit (``limits``: ``(rows,)``);
    with a ``prefix`` (``(rows, prefix_length)``) those masks go inside
    ``ForcePrefix``."""
    processors = []
    if config.repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(config.repetition_penalty))
    processors.append(LogSoftmax())
    masks = _masks(config, limits, end_id)
    if prefix is not None:
        return processors + [ForcePrefix(prefix, masks)]
    return processors + masks


def _masks(config, limits, end_id):
    processors = []
    if config.min_length > 0:
        # A row's length limit wins over min_length (its END is forced there).
        limits = ops.cast(limits, "int32")
        processors.append(MinLength(ops.minimum(limits - 1, config.min_length), end_id))
    if config.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNgram(config.no_repeat_ngram_size))
    processors.append(ForceEndAtLimit(limits, end_id))
    return processors


def sampling_warpers(config):
    """Temperature, top-k and top-p of a ``DecodingConfig`` (those switched on)."""
    warpers = []
    if config.temperature != 1.0:
        warpers.append(Temperature(config.temperature))
    if config.top_k > 0:
        warpers.append(TopK(config.top_k))
    if config.top_p < 1.0:
        warpers.append(TopP(config.top_p))
    return warpers
