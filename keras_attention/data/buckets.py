"""Length buckets and token-budget batches in numpy, without TensorFlow.

The rules the ``tf.data`` pipeline (``batching``), decoding batches
(``decoding.text``) and training without TensorFlow
(``benchmarks/quality_jax.py``, Keras on JAX) share:

- a pair's padded length is ``max(source, target + 1)`` (``decoder_tokens``
  and labels are one longer than the target);
- a batch of rows padded to ``length`` holds ``batch_tokens // length``
  rows, at least one (``rows_per_batch``);
- each bucket gives full batches and one partial one (``batch_count``).

Fixed-shape buckets (``bucket_shapes``, ``plan_batches``, ``IdPairs``) pad
every batch to one of a few ``(source, target)`` widths, so a compiled
training step (XLA) compiles once per shape.
"""

import numpy as np

from keras_attention.constants import END_ID, PAD_ID, START_ID


def round_up(value, multiple):
    """``value`` rounded up to a multiple of ``multiple`` (positive integers)."""
    return -(-value // multiple) * multiple


def padded_ids(rows, width, batch_rows=None):
    """An int32 ``(batch_rows, width)`` array of the id lists ``rows``, each
    followed by PAD; rows past ``len(rows)`` are all PAD (``batch_rows``
    ``None``: one row each)."""
    batch = np.full((len(rows) if batch_rows is None else batch_rows, width), PAD_ID,
                    dtype=np.int32)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    return batch


def bucket_lengths(boundaries, max_length):
    """The longest padded length each bucket of ``boundaries`` holds (a
    bucket holds ``[previous boundary, boundary)``, the last one up to
    ``max_length``)."""
    return [min(b - 1, max_length) for b in boundaries] + [max_length]


def rows_per_batch(batch_tokens, length):
    """Rows of a batch padded to ``length`` within ``batch_tokens`` positions, at least one."""
    return max(1, batch_tokens // length)


def batch_count(bucket_sizes, batch_rows):
    """Batches of buckets of ``bucket_sizes`` pairs, ``batch_rows`` a batch
    in each (the last batch of a bucket partial)."""
    return sum(-(-size // rows) for size, rows in zip(bucket_sizes, batch_rows, strict=True))


# ---------------------------------------------------------------------------
# Fixed-shape buckets.
# ---------------------------------------------------------------------------

def bucket_shapes(max_source_tokens, max_target_tokens, boundaries):
    """``(source_width, target_width)`` of each bucket: the ``boundaries``,
    capped at the length limits (rounded up to 8); the decoder width counts
    START."""
    source_cap = round_up(max_source_tokens, 8)
    target_cap = round_up(max_target_tokens + 1, 8)
    shapes = []
    for boundary in boundaries:
        shape = (min(boundary, source_cap), min(boundary, target_cap))
        if shape not in shapes:
            shapes.append(shape)
        if boundary >= max(source_cap, target_cap):
            break
    return shapes


def assign_buckets(source_lengths, target_lengths, shapes):
    """Index of the first bucket each pair fits (decoder length = target + 1)."""
    fits = np.stack([
        (source_lengths <= s) & (target_lengths + 1 <= t) for s, t in shapes
    ], axis=1)
    if not fits.any(axis=1).all():
        raise ValueError("a pair is longer than the largest bucket; check the length limits.")
    return fits.argmax(axis=1)


class IdPairs:
    """Token ids of (source, target) pairs, unpadded: ``flat`` ids and
    per-pair lengths (no START/END)."""

    def __init__(self, source_flat, source_lengths, target_flat, target_lengths):
        self.source_lengths = np.asarray(source_lengths, np.int64)
        self.target_lengths = np.asarray(target_lengths, np.int64)
        self.source_offsets = np.concatenate([[0], np.cumsum(self.source_lengths)])
        self.target_offsets = np.concatenate([[0], np.cumsum(self.target_lengths)])
        self.source_flat = np.asarray(source_flat, np.int32)
        self.target_flat = np.asarray(target_flat, np.int32)

    def __len__(self):
        return len(self.source_lengths)

    def padded_batch(self, rows, source_width, target_width, batch_rows):
        """``({"encoder_tokens", "decoder_tokens"}, labels)`` of ``rows``,
        padded to the bucket widths and to ``batch_rows`` rows (all-PAD rows
        carry no loss): teacher forcing, as ``batching.teacher_forcing``."""
        sources = [self.source_flat[self.source_offsets[row]:self.source_offsets[row + 1]]
                   for row in rows]
        targets = [self.target_flat[self.target_offsets[row]:self.target_offsets[row + 1]].tolist()
                   for row in rows]
        encoder = padded_ids(sources, source_width, batch_rows)
        decoder = padded_ids([[START_ID, *target] for target in targets], target_width, batch_rows)
        labels = padded_ids([[*target, END_ID] for target in targets], target_width, batch_rows)
        return {"encoder_tokens": encoder, "decoder_tokens": decoder}, labels


def plan_batches(pairs, shapes, batch_tokens, rng=None):
    """Batches of ``pairs`` (``IdPairs``) as ``(bucket, rows)``: rows of one
    bucket, at most ``rows_per_batch(batch_tokens, max(widths))`` a batch;
    shuffled when ``rng`` (a numpy ``Generator``) is given."""
    buckets = assign_buckets(pairs.source_lengths, pairs.target_lengths, shapes)
    batches = []
    for bucket, shape in enumerate(shapes):
        rows = np.flatnonzero(buckets == bucket)
        if rng is not None:
            rows = rng.permutation(rows)
        per_batch = rows_per_batch(batch_tokens, max(shape))
        batches += [(bucket, rows[i:i + per_batch]) for i in range(0, len(rows), per_batch)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
