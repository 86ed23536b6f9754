"""Token statistics of a corpus under given tokenizers (for ``data inspect``)."""

import dataclasses

import numpy as np

from keras_attention.constants import UNK_ID
from keras_attention.data.tokenizers import text_batches


@dataclasses.dataclass(frozen=True)
class SideStatistics:
    """Token counts of one side (source or target) of a corpus.

    Attributes:
        tokens: tokens in all texts.
        unknown: tokens that are ``[UNK]`` (out of vocabulary).
        max_length, mean_length: tokens per text.
        percentiles: length at the 50th, 90th, 99th percentile.
        histogram: ``((low, high), count)`` for lengths ``low <= n < high``.
    """

    tokens: int
    unknown: int
    max_length: int
    mean_length: float
    percentiles: dict
    histogram: tuple

    @property
    def unknown_rate(self):
        return self.unknown / self.tokens if self.tokens else 0.0


def side_statistics(texts, tokenizer, bin_edges=(0, 8, 16, 32, 64, 128, 256, 512)):
    """Tokenize ``texts`` (any iterable of strings) in batches and count."""
    lengths, unknown = [], 0
    for batch in text_batches(texts):
        ids = tokenizer.tokenize(batch)
        lengths.append(ids.row_lengths().numpy())
        unknown += int((ids.flat_values == UNK_ID).numpy().sum())
    if not lengths:
        raise ValueError("no texts to inspect: the corpus is empty.")
    lengths = np.concatenate(lengths)
    edges = list(bin_edges) + [max(int(lengths.max()) + 1, bin_edges[-1] + 1)]
    counts, _ = np.histogram(lengths, bins=edges)
    return SideStatistics(
        tokens=int(lengths.sum()),
        unknown=unknown,
        max_length=int(lengths.max()),
        mean_length=float(lengths.mean()),
        percentiles={p: int(np.percentile(lengths, p)) for p in (50, 90, 99)},
        histogram=tuple(
            ((edges[i], edges[i + 1]), int(c))
            for i, c in enumerate(counts)
            if edges[i] <= lengths.max()
        ),
    )
