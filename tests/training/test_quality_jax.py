"""benchmarks/quality_jax.py: fixed-shape buckets, and prepare -> train (in a
process that never imports TensorFlow's data or export code) -> finish."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from benchmark_scripts import ROOT, load_benchmark
from training.run_configs import write_config

from keras_attention.models import load_trained_model

SCRIPT = os.path.join(ROOT, "benchmarks", "quality_jax.py")
q = load_benchmark("quality_jax")


def corpus(source_lengths, target_lengths):
    sources = [np.arange(10, 10 + n) for n in source_lengths]
    targets = [np.arange(50, 50 + n) for n in target_lengths]
    return q.Corpus(np.concatenate(sources), source_lengths,
                    np.concatenate(targets), target_lengths)


def test_bucket_shapes_are_capped_at_the_length_limits():
    assert q.bucket_shapes(100, 100, (16, 32, 64, 128)) == [
        (16, 16), (32, 32), (64, 64), (104, 104)]
    # Long sources, short summaries: the decoder width stops at the target cap.
    assert q.bucket_shapes(800, 96, (128, 256, 512, 1024)) == [
        (128, 104), (256, 104), (512, 104), (800, 104)]


def test_every_pair_is_in_exactly_one_batch_that_fits_it():
    rng = np.random.default_rng(0)
    sources, targets = rng.integers(1, 100, 500), rng.integers(1, 60, 500)
    data = corpus(sources, targets)
    shapes = q.bucket_shapes(100, 60, (16, 32, 64, 128))
    batches = q.plan_batches(data, shapes, batch_tokens=1024, rng=rng)
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
    data = corpus([3, 1], [2, 4])
    inputs, labels = data.padded_batch(np.array([1, 0]), 4, 8, batch_rows=3)
    assert inputs["encoder_tokens"].tolist() == [[10, 0, 0, 0], [10, 11, 12, 0], [0, 0, 0, 0]]
    assert inputs["decoder_tokens"].tolist() == [
        [1, 50, 51, 52, 53, 0, 0, 0], [1, 50, 51, 0, 0, 0, 0, 0], [0] * 8]
    assert labels.tolist() == [
        [50, 51, 52, 53, 2, 0, 0, 0], [50, 51, 2, 0, 0, 0, 0, 0], [0] * 8]


def test_a_pair_longer_than_every_bucket_is_an_error():
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        q.assign_buckets(np.array([200]), np.array([5]), [(16, 16), (128, 128)])


def test_prepare_train_finish(tmp_path):
    recipe = write_config(tmp_path / "tiny.yaml", tmp_path / "unused", {
        "data": {"test": {"format": "dates", "size": 8, "seed": 2}}})
    job, weights, output = tmp_path / "job", tmp_path / "w.npz", tmp_path / "run"
    q.main(["prepare", "--recipe", recipe, "--job", str(job), "--batch-tokens", "512",
            "--max-epochs", "2", "--average-last", "2", "--boundaries", "64"])
    description = json.load(open(job / "job.json"))
    assert description["model"]["hidden_dim"] == 32 and description["max_epochs"] == 2

    # The accelerator step runs where TensorFlow is missing: a process of its
    # own that imports only keras and the model modules (here with the
    # TensorFlow backend, the pinned stack having no JAX; one bucket, since
    # Keras' TensorFlow adapter fixes a PyDataset's shapes at its first batch).
    check = ("import runpy, sys; sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__'); "
             "bad = [m for m in sys.modules if m.startswith('keras_attention.') and "
             "m.split('.')[1] in ('data', 'export', 'decoding')]; "
             "assert not bad, bad")
    subprocess.run([sys.executable, "-c", check, SCRIPT, "train", "--job", str(job),
                    "--minutes", "5", "--output", str(weights), "--shard-mb", "0.02"],
                   check=True, cwd=str(tmp_path), env=dict(os.environ, KERAS_BACKEND="tensorflow"))
    # 20 KiB shards: the weights come in several files, each under the limit
    # but for a single larger array.
    summary, shipped = q.read_weights(str(weights))
    shards = q.shard_paths(str(weights), summary["weight_shards"])
    assert len(shards) > 2 and sorted(f for f in os.listdir(tmp_path) if f.startswith("w.")) \
        == sorted(os.path.basename(p) for p in shards)  # no .partial files left
    arrays = [np.load(p) for p in shards]
    assert sum(len([k for k in a.files if k.startswith("w")]) for a in arrays) == len(shipped)
    assert all(sum(a[k].nbytes for k in a.files if k.startswith("w")) <= 0.02 * 2**20
               or len(a.files) <= 2 for a in arrays)
    assert summary["epochs"] == 2 and summary["backend"] == "tensorflow"
    assert set(summary["validation_loss"]) == {
        "last 2 averaged", "best epoch (%d)" % summary["history"][
            int(np.argmin([e["val_loss"] for e in summary["history"]]))]["epoch"],
        "last epoch (2)", f"{summary['chosen']}, float16"}

    q.main(["finish", "--job", str(job), "--weights", str(weights), "--output", str(output),
            "--beam-size", "2", "--test-limit", "5"])
    report = json.load(open(output / "quality.json"))
    assert report["sentences"] == 5 and set(report["metric"]) == {"bleu", "chrf"}
    assert report["decoding"]["strategy"] == "beam" and report["decoding"]["beam_size"] == 2
    trained = load_trained_model(str(output / "model"))
    assert len(shipped) == len(trained.model.weights)
    for got, expected in zip(trained.model.get_weights(), shipped, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert len(open(output / "test_hypotheses.txt").read().splitlines()) == 5
    assert os.listdir(output / "logs" / "train") and os.listdir(output / "logs" / "validation")

    os.remove(shards[-1])
    with pytest.raises(SystemExit, match=f"{os.path.basename(shards[-1])} is missing"):
        q.read_weights(str(weights))
