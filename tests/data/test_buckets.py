"""keras_attention.data.buckets: numpy length buckets and token-budget batches."""

import subprocess
import sys

import numpy as np
import pytest
from benchmark_scripts import ROOT

from keras_attention.data import buckets
from keras_attention.data.batching import automatic_bucket_boundaries


def id_pairs(source_lengths, target_lengths):
    sources = [np.arange(10, 10 + n) for n in source_lengths]
    targets = [np.arange(50, 50 + n) for n in target_lengths]
    return buckets.IdPairs(np.concatenate(sources), source_lengths,
                           np.concatenate(targets), target_lengths)


def test_the_module_imports_without_tensorflow():
    check = ("import sys; import keras_attention.data.buckets; "
             "assert 'tensorflow' not in sys.modules, 'tensorflow'; "
             "assert 'keras_attention.data.batching' not in sys.modules")
    subprocess.run([sys.executable, "-c", check], check=True, cwd=ROOT)


def test_token_budget_rules():
    assert buckets.round_up(17, 8) == 24 and buckets.round_up(16, 8) == 16
    assert buckets.bucket_lengths((4, 8), 10) == [3, 7, 10]
    assert buckets.bucket_lengths((4, 12), 10) == [3, 10, 10]
    assert [buckets.rows_per_batch(100, n) for n in (3, 7, 100, 200)] == [33, 14, 1, 1]
    assert buckets.batch_count([10, 0, 5], [3, 4, 5]) == 4 + 0 + 1
    lengths = buckets.bucket_lengths(automatic_bucket_boundaries(30), 30)
    assert lengths[:3] == [1, 2, 3] and lengths[-1] == 30


def test_padded_ids_pad_after_each_row_and_below_the_last():
    batch = buckets.padded_ids([[5, 6], [7]], 3, batch_rows=3)
    assert batch.dtype == np.int32
    assert batch.tolist() == [[5, 6, 0], [7, 0, 0], [0, 0, 0]]
    assert buckets.padded_ids([[5]], 2).tolist() == [[5, 0]]


def test_bucket_shapes_are_capped_at_the_length_limits():
    assert buckets.bucket_shapes(100, 100, (16, 32, 64, 128)) == [
        (16, 16), (32, 32), (64, 64), (104, 104)]
    # Long sources, short summaries: the decoder width stops at the target cap.
    assert buckets.bucket_shapes(800, 96, (128, 256, 512, 1024)) == [
        (128, 104), (256, 104), (512, 104), (800, 104)]


def test_every_pair_is_in_exactly_one_batch_that_fits_it():
    rng = np.random.default_rng(0)
    sources, targets = rng.integers(1, 100, 500), rng.integers(1, 60, 500)
    data = id_pairs(sources, targets)
    shapes = buckets.bucket_shapes(100, 60, (16, 32, 64, 128))
    batches = buckets.plan_batches(data, shapes, batch_tokens=1024, rng=rng)
    rows = np.concatenate([rows for _, rows in batches])
    assert sorted(rows.tolist()) == list(range(500))
    for bucket, rows in batches:
        width = max(shapes[bucket])
        assert len(rows) * width <= 1024
        assert (sources[rows] <= shapes[bucket][0]).all()
        assert (targets[rows] + 1 <= shapes[bucket][1]).all()
        # The smallest bucket that fits: not also the one before.
        if bucket:
            before = shapes[bucket - 1]
            assert not ((sources[rows] <= before[0]) & (targets[rows] + 1 <= before[1])).any()


def test_padded_batch_is_teacher_forcing_with_pad_rows():
    data = id_pairs([3, 1], [2, 4])
    inputs, labels = data.padded_batch(np.array([1, 0]), 4, 8, batch_rows=3)
    assert inputs["encoder_tokens"].tolist() == [[10, 0, 0, 0], [10, 11, 12, 0], [0, 0, 0, 0]]
    assert inputs["decoder_tokens"].tolist() == [
        [1, 50, 51, 52, 53, 0, 0, 0], [1, 50, 51, 0, 0, 0, 0, 0], [0] * 8]
    assert labels.tolist() == [
        [50, 51, 52, 53, 2, 0, 0, 0], [50, 51, 2, 0, 0, 0, 0, 0], [0] * 8]


def test_a_pair_longer_than_every_bucket_is_an_error():
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        buckets.assign_buckets(np.array([200]), np.array([5]), [(16, 16), (128, 128)])
