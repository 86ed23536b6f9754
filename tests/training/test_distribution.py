"""Strategies for data-parallel ``model.fit``: two replicas on logical CPUs,
two worker processes on localhost, and the ``TF_CONFIG`` errors.

The training runs live in subprocesses (this file run as a script): the CPU
split must happen before TensorFlow initializes its devices, and each worker
of a cluster is its own process.
"""

import json
import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAIRS = 160
BATCH_SIZE = 32
EPOCHS = 2


# ---------------------------------------------------------------------------
# The subprocess side.
# ---------------------------------------------------------------------------


def _data(bucketing):
    import numpy as np
    import tensorflow as tf

    from keras_attention.data import (
        BatchingConfig,
        CharacterTokenizer,
        WordTokenizer,
        date_pairs,
        make_training_dataset,
        memory_pairs,
    )

    pairs = date_pairs(PAIRS, seed=0)
    source = WordTokenizer.build([s for s, _ in pairs])
    target = CharacterTokenizer.build([t for _, t in pairs])
    config = BatchingConfig(
        batch_size=BATCH_SIZE,
        max_source_tokens=32,
        max_target_tokens=31,
        bucket_boundaries=None if bucketing else (),
        seed=0,
    )
    dataset = make_training_dataset(memory_pairs(pairs).dataset(), source, target, config)
    # Fixed batches, so that every run sees exactly the same ones.
    batches = [
        ({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in dataset
    ]
    spec = tf.TensorSpec((None, None), tf.int32)

    def fixed():
        return tf.data.Dataset.from_generator(
            lambda: iter(batches),
            output_signature=({"encoder_tokens": spec, "decoder_tokens": spec}, spec),
        ).apply(tf.data.experimental.assert_cardinality(len(batches)))

    assert all(np.count_nonzero(y) == y.size for _, y in batches) or bucketing
    return fixed, source.vocabulary_size, target.vocabulary_size


def _model(strategy, source_size, target_size):
    import keras

    from keras_attention.models import Transformer
    from keras_attention.training import sequence_loss
    from keras_attention.training.distribution import prepare_for_fit

    with strategy.scope():
        model = Transformer.from_preset(
            "tiny",
            encoder_vocabulary_size=source_size,
            decoder_vocabulary_size=target_size,
            max_sequence_length=32,
        )
        model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=sequence_loss())
        prepare_for_fit(model, strategy)
    return model


def _mirrored_worker():
    """Same initial weights and batches, trained on one device and mirrored
    over two logical CPUs; prints losses and the largest weight difference."""
    from keras_attention.training.distribution import make_strategy, split_cpu

    devices = split_cpu(2)
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    # Every label row has 11 tokens (ISO date + [END]) and batches are full:
    # each replica's mean loss covers as many tokens as the other's.
    dataset, source_size, target_size = _data(bucketing=False)
    results = {"devices": len(devices)}
    weights = {}
    initial = None
    for name in ("default", "mirrored"):
        strategy = make_strategy(name)
        model = _model(strategy, source_size, target_size)
        if initial is None:
            initial = model.get_weights()
        model.set_weights(initial)
        history = model.fit(dataset(), epochs=EPOCHS, verbose=0, shuffle=False)
        results[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "loss": history.history["loss"],
        }
        weights[name] = model.get_weights()
    results["max_weight_difference"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(weights["default"], weights["mirrored"])
    )
    results["max_weight_change"] = max(
        float(np.max(np.abs(a - b))) for a, b in zip(initial, weights["mirrored"])
    )
    print(json.dumps(results))


def _multi_worker(output_dir):
    """One worker of the TF_CONFIG cluster: trains, the chief saves a checkpoint,
    every worker saves its final weights as .npz."""
    import keras
    import numpy as np

    from keras_attention.training.distribution import (
        is_chief,
        make_strategy,
        worker_directory,
    )

    strategy = make_strategy("multi_worker")
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    keras.utils.set_random_seed(0)
    dataset, source_size, target_size = _data(bucketing=True)
    model = _model(strategy, source_size, target_size)
    history = model.fit(dataset(), epochs=EPOCHS, verbose=0, shuffle=False)
    directory = worker_directory(output_dir, strategy)
    os.makedirs(os.path.join(directory, "checkpoints"), exist_ok=True)
    model.save_weights(os.path.join(directory, "checkpoints", "epoch-0002.weights.h5"))
    np.savez(os.path.join(output_dir, f"weights-{index}.npz"), *model.get_weights())
    print(json.dumps({
        "index": index,
        "chief": is_chief(strategy),
        "directory": directory,
        "replicas": strategy.num_replicas_in_sync,
        "vocabulary_sizes": [source_size, target_size],
        "loss": history.history["loss"],
    }))


# ---------------------------------------------------------------------------
# The tests.
# ---------------------------------------------------------------------------


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_BACKEND="tensorflow",
        PYTHONPATH=os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]),
        **extra,
    )
    return env


def _last_json_line(output):
    return json.loads(output.strip().splitlines()[-1])


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_mirrored_over_two_cpus_trains_like_one_device():
    result = subprocess.run(
        [sys.executable, __file__, "mirrored"],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = _last_json_line(result.stdout)
    assert report["devices"] == 2
    assert report["default"]["replicas"] == 1
    assert report["mirrored"]["replicas"] == 2
    losses = report["mirrored"]["loss"]
    assert losses[-1] < losses[0] * 0.9
    # Same global batches: two replicas of 16 rows give the one-device update.
    assert report["max_weight_change"] > 1e-3
    assert report["max_weight_difference"] < 1e-4, report
    for one, two in zip(report["default"]["loss"], report["mirrored"]["loss"]):
        assert abs(one - two) < 1e-4


def test_two_workers_on_localhost_train_identical_weights(tmp_path):
    import numpy as np

    from keras_attention.models import Transformer

    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "multi_worker", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            )),
        )
        for index in range(2)
    ]
    reports = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err[-3000:]
            reports.append(_last_json_line(out))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    chief, other = reports
    assert (chief["chief"], other["chief"]) == (True, False)
    assert chief["directory"] == str(tmp_path)
    assert other["directory"] == os.path.join(str(tmp_path), ".worker-1")
    assert chief["replicas"] == other["replicas"] == 2
    assert chief["loss"] == other["loss"]  # logs are reduced across workers
    assert chief["loss"][-1] < chief["loss"][0] * 0.9

    weights = [np.load(tmp_path / f"weights-{i}.npz") for i in range(2)]
    arrays = [[w[f"arr_{i}"] for i in range(len(w.files))] for w in weights]
    assert len(arrays[0]) == len(arrays[1]) > 0
    for a, b in zip(*arrays):
        np.testing.assert_array_equal(a, b)

    checkpoint = tmp_path / "checkpoints" / "epoch-0002.weights.h5"
    assert checkpoint.exists()
    source_size, target_size = chief["vocabulary_sizes"]
    model = Transformer.from_preset(
        "tiny",
        encoder_vocabulary_size=source_size,
        decoder_vocabulary_size=target_size,
        max_sequence_length=32,
    )
    model.load_weights(str(checkpoint))
    for a, b in zip(model.get_weights(), arrays[0]):
        np.testing.assert_array_equal(a, b)


def test_make_strategy_default_and_unknown_name():
    import pytest
    import tensorflow as tf

    from keras_attention.training.distribution import is_chief, make_strategy

    strategy = make_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert is_chief(strategy)
    with pytest.raises(ValueError, match=r"unknown distribution strategy 'tpu'; choose one of"):
        make_strategy("tpu")


def test_multi_worker_needs_a_valid_tf_config(monkeypatch):
    import pytest

    from keras_attention.training.distribution import make_strategy, read_tf_config

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable; set it"):
        make_strategy("multi_worker")
    cases = {
        "{not json": "TF_CONFIG is not valid JSON",
        '{"task": {"type": "worker", "index": 0}}': "has no cluster with a 'worker' list",
        '{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}':
            "must be a list of 'host:port' strings",
        '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "ps", "index": 0}}':
            "must name a job of the cluster",
        '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}':
            r"task index 2 is not in 0..1 for the 2 'worker' address\(es\)",
    }
    for raw, message in cases.items():
        monkeypatch.setenv("TF_CONFIG", raw)
        with pytest.raises(ValueError, match=message) as error:
            read_tf_config()
        assert "\n" not in str(error.value)
    good = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(good))
    assert read_tf_config() == good


def test_split_cpu_rejects_a_bad_count():
    import pytest

    from keras_attention.training.distribution import split_cpu

    with pytest.raises(ValueError, match="count must be a positive integer, got 0"):
        split_cpu(0)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        _mirrored_worker()
    else:
        _multi_worker(sys.argv[2])
