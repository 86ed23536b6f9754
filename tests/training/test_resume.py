"""A run killed with SIGKILL mid-epoch resumes and ends like an uninterrupted
one: same epochs, steps and weights."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from training.run_configs import TINY, write_config

from keras_attention.models import load_trained_model
from keras_attention.training import load_config, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCHS = 3
# 32 steps an epoch: long enough for the kill to land inside epoch 2 (the
# test polls every 50 ms), short enough for three runs in seconds.
PAIRS = 1024


def command(config):
    return [sys.executable, "-m", "cli", "train", "--config", config]


def test_killed_run_resumes_to_the_same_epochs_steps_and_weights(tmp_path):
    out = tmp_path / "out"
    changes = {
        "data": {"train": {"format": "dates", "size": PAIRS}, "validation": None},
        # Dropout and shuffling: their random state must carry over the kill.
        "model": {"preset": "tiny", "changes": dict(TINY["model"]["changes"], dropout=0.1)},
        "batching": {"batch_size": 32, "shuffle_buffer": 1000},
        "training": {"epochs": EPOCHS},
        "output": {"tensorboard": False, "keep_checkpoints": EPOCHS},
    }
    config = write_config(tmp_path / "run.yaml", out, changes)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command(config), cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backup = out / "backup" / "training_metadata.json"
    deadline = time.time() + 120
    try:
        while not backup.exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert backup.exists(), "the first epoch never finished"
        os.kill(process.pid, signal.SIGKILL)  # now inside epoch 2
    finally:
        process.wait()
    assert json.loads(backup.read_text())["epoch"] == 1
    checkpoints = out / "checkpoints"
    assert not (checkpoints / "epoch-0002.weights.h5").exists(), "killed too late"
    assert not (out / "model").exists()

    resumed = subprocess.run(command(config), cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # Only epochs 2 and 3 ran again.
    assert "resuming at epoch 2 of 3" in resumed.stdout.splitlines()
    assert "epoch 1/3:" not in resumed.stdout
    assert "epoch 2/3:" in resumed.stdout and "epoch 3/3:" in resumed.stdout
    assert sorted(os.listdir(checkpoints)) == [
        f"epoch-{epoch:04d}.weights.h5" for epoch in range(1, EPOCHS + 1)]
    training = load_trained_model(str(out / "model")).metadata["training"]
    steps_per_epoch = PAIRS // 32
    assert training["steps_per_epoch"] == steps_per_epoch
    assert training["epochs"] == EPOCHS
    assert training["steps"] == EPOCHS * steps_per_epoch  # what an uninterrupted run does
    history = json.loads((out / "logs" / "history.json").read_text())
    assert [entry["epoch"] for entry in history["epochs"]] == [1, 2, 3]
    assert not (out / "backup").exists()

    whole = train(load_config(write_config(tmp_path / "whole.yaml", tmp_path / "whole", changes)),
                  verbose=0, print_fn=lambda line: None)
    assert whole.history["loss"] == history_losses(history)
    uninterrupted = load_trained_model(whole.model_directory).model.get_weights()
    weights = load_trained_model(str(out / "model")).model.get_weights()
    assert len(weights) == len(uninterrupted)
    for resumed_weight, whole_weight in zip(weights, uninterrupted, strict=True):
        np.testing.assert_array_equal(resumed_weight, whole_weight)


def history_losses(history):
    return [entry["loss"] for entry in history["epochs"]]
