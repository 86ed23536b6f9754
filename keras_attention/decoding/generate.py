"""Sequence generation for encoder-decoder models: one entry point over the
strategies (greedy, beam search, sampling) and the decoding controls.

``generate(model, source_ids, config)`` encodes once, builds the key/value
cache and runs the chosen strategy over ``model.decode_step``.
``TextGenerator`` does the same for Python strings with the model's
tokenizers (batched, order preserved).
"""

import dataclasses

from keras import ops

from keras_attention.data.tokenizers import END_ID, PAD_ID, START_ID
from keras_attention.decoding.greedy import greedy_search

STRATEGIES = ("greedy", "beam", "sample")


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
    """How to decode.

    Args:
        strategy: ``greedy``, ``beam`` or ``sample``.
        beam_size: beams per sentence (``beam``).
        length_penalty: GNMT alpha, score = log P / ((5 + length) / 6) ** alpha.
        n_best: hypotheses returned per sentence (``beam``: <= beam_size;
            ``sample``: independent samples).
        temperature, top_k, top_p: sampling controls (``top_k=0`` and
            ``top_p=1.0`` switch them off).
        max_length: most generated tokens (END included); ``None`` = the
            model's ``max_sequence_length - 1``.
        max_length_ratio, max_length_offset: per-sentence limit
            ``ceil(ratio * source_tokens) + offset`` (``None`` = off); the
            smaller of both limits applies.
        min_length: END is forbidden before this many tokens.
        no_repeat_ngram_size: forbid repeating any n-gram of this size (0 = off).
        repetition_penalty: CTRL-style penalty > 1 for tokens already generated.
        seed: sampling seed (``None`` = random).
    """

    strategy: str = "greedy"
    beam_size: int = 4
    length_penalty: float = 0.6
    n_best: int = 1
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_length: int | None = None
    max_length_ratio: float | None = None
    max_length_offset: int = 10
    min_length: int = 0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}.")

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Generation:
    """Output of ``generate``.

    ``ids``: ``(batch, n_best, length)`` int32 generated tokens (START not
    included), END included, PAD after; ``scores``: ``(batch, n_best)``
    float32, best first (sum of token log-probabilities; beam search: with
    the length penalty applied).
    """

    ids: object
    scores: object


def output_length(model, config):
    """Generated tokens allowed by ``config`` and the model (START excluded)."""
    limit = model.config.max_sequence_length - 1
    if config.max_length is not None and config.max_length > limit:
        raise ValueError(
            f"max_length={config.max_length} exceeds what the model can decode "
            f"({limit} = max_sequence_length - 1); lower --max-length."
        )
    return config.max_length or limit


def generate(model, source_ids, config=DecodingConfig()):
    """Decode ``source_ids`` ``(batch, source_length)`` (PAD = 0) with ``model``."""
    if config.strategy != "greedy":
        raise NotImplementedError(f"strategy {config.strategy!r}")
    length = output_length(model, config)
    encoder_output, padding_mask = model.encode(source_ids)
    cache = model.init_cache(encoder_output, padding_mask, length + 1)
    start = ops.full((ops.shape(source_ids)[0],), START_ID, dtype="int32")
    tokens = greedy_search(model.decode_step, start, cache, length + 1, END_ID, PAD_ID)
    ids = tokens[:, 1:]
    return Generation(ids=ops.expand_dims(ids, 1), scores=None)
