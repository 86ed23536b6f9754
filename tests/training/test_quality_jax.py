"""benchmarks/quality_jax.py: prepare -> train (in a process that never
imports TensorFlow's data or export code) -> finish. Its fixed-shape buckets
are keras_attention.data.buckets (tests/data/test_buckets.py)."""

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
    # The script's folder first on sys.path, as `python SCRIPT` puts it; the
    # numpy buckets are the one part of keras_attention.data it may import.
    check = ("import os, runpy, sys; sys.argv = sys.argv[1:]; "
             "sys.path.insert(0, os.path.dirname(sys.argv[0])); "
             "runpy.run_path(sys.argv[0], run_name='__main__'); "
             "bad = [m for m in sys.modules if m.startswith('keras_attention.') and "
             "m.split('.')[1] in ('data', 'export', 'decoding') and m not in "
             "('keras_attention.data', 'keras_attention.data.buckets')]; "
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
