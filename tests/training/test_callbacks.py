"""Checkpoint, history, progress and validation callbacks, driven directly."""

import io
import json
import os

import keras
import numpy as np
import pytest

from keras_attention.training import (
    BestCheckpoint,
    EpochCheckpoints,
    EpochProgress,
    HistoryFile,
    ResumableEarlyStopping,
    RunBackup,
    ValidationScores,
)
from keras_attention.training import callbacks as callbacks_module
from keras_attention.training.callbacks import examples_markdown


def small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_epoch_checkpoints_keep_the_newest(tmp_path):
    callback = EpochCheckpoints(str(tmp_path), keep=2)
    callback.set_model(small_model())
    for epoch in range(4):
        callback.on_epoch_end(epoch)
    assert sorted(os.listdir(tmp_path)) == ["epoch-0003.weights.h5", "epoch-0004.weights.h5"]


def test_best_checkpoint_survives_a_restart(tmp_path):
    path = str(tmp_path / "best.weights.h5")
    model = small_model()
    callback = BestCheckpoint(path, "val_bleu")
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_bleu": 10.0})
    callback.on_epoch_end(1, {"loss": 1.0})  # not evaluated: skipped
    callback.on_epoch_end(2, {"val_bleu": 8.0})
    assert json.load(open(path + ".json")) == {"monitor": "val_bleu", "value": 10.0, "epoch": 1}
    restarted = BestCheckpoint(path, "val_bleu")
    restarted.set_model(model)
    assert restarted.best == 10.0
    restarted.on_epoch_end(3, {"val_bleu": 9.0})
    assert restarted.best_epoch == 1
    restarted.on_epoch_end(4, {"val_bleu": 12.0})
    assert json.load(open(path + ".json"))["epoch"] == 5


def test_history_file_continues_after_a_restart(tmp_path):
    path = str(tmp_path / "logs" / "history.json")
    first = HistoryFile(path)
    first.on_epoch_end(0, {"loss": 3.0})
    first.on_epoch_end(1, {"loss": 2.0})
    again = HistoryFile(path)
    again.on_epoch_end(1, {"loss": 1.5})  # epoch 2 rerun replaces the old one
    again.on_epoch_end(2, {"loss": 1.0})
    assert again.history == {"loss": [3.0, 1.5, 1.0]}


def test_early_stopping_counts_the_epochs_before_a_restart(tmp_path):
    # A killed run's history: best val_bleu at epoch 2, then 2 epochs without
    # improvement (epoch 4 was never validated: not counted).
    path = str(tmp_path / "history.json")
    first = HistoryFile(path)
    for epoch, bleu in enumerate([10.0, 12.0, 11.0, None, 11.5]):
        first.on_epoch_end(epoch, {"loss": 1.0} if bleu is None else {"val_bleu": bleu})
    history = HistoryFile(path)
    callback = ResumableEarlyStopping(history, monitor="val_bleu", mode="max", patience=3)
    model = small_model()
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(5)  # the resumed run starts at epoch 6
    assert (callback.best, callback.best_epoch, callback.wait) == (12.0, 1, 2)
    assert not model.stop_training
    callback.on_epoch_end(5, {"val_bleu": 11.9})  # third epoch without improvement
    assert model.stop_training and callback.stopped_epoch == 5
    # Keras' own callback would have started afresh and gone on.
    plain = keras.callbacks.EarlyStopping(monitor="val_bleu", mode="max", patience=3)
    plain.set_model(small_model())
    plain.on_train_begin()
    plain.on_epoch_end(5, {"val_bleu": 11.9})
    assert not plain.model.stop_training


def test_early_stopping_replays_only_epochs_before_the_start(tmp_path):
    path = str(tmp_path / "history.json")
    first = HistoryFile(path)
    for epoch, bleu in enumerate([10.0, 9.0, 20.0]):
        first.on_epoch_end(epoch, {"val_bleu": bleu})
    callback = ResumableEarlyStopping(HistoryFile(path), monitor="val_bleu", mode="max",
                                      patience=2)
    callback.set_model(small_model())
    callback.on_train_begin()
    callback.on_epoch_begin(2)  # epoch 3 reruns: its old value is not replayed
    assert (callback.best, callback.wait) == (10.0, 1)
    callback.on_epoch_end(2, {"val_bleu": 9.5})
    assert callback.model.stop_training
    callback.on_epoch_begin(3)  # replays once per fit
    assert callback.wait == 2


class FixedOutputs:
    """A generator whose outputs are fixed: the callback's scoring is what is tested."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = 0

    def best(self, texts, batch_size):
        self.calls += 1
        return self.outputs[: len(texts)]


def exact(hypotheses, references):
    return {"exact": 100.0 * np.mean([h == r for h, r in zip(hypotheses, references)])}


def test_validation_scores_every_n_epochs_and_last(tmp_path):
    generator = FixedOutputs(["a", "x", "c"])
    callback = ValidationScores(generator, ["1", "2", "3"], ["a", "b", "c"], exact,
                                every_n_epochs=2, log_dir=str(tmp_path), examples=2)
    callback.set_model(small_model())
    callback.set_params({"epochs": 3})
    logs = [{} for _ in range(3)]
    for epoch in range(3):
        callback.on_epoch_end(epoch, logs[epoch])
    assert logs[0] == {} and generator.calls == 2
    assert logs[1]["val_exact"] == pytest.approx(200 / 3) and "val_exact" in logs[2]
    callback.on_train_end()
    assert os.listdir(tmp_path)
    with pytest.raises(ValueError, match="^got 1 validation sources for 2 references"):
        ValidationScores(generator, ["1"], ["a", "b"], exact)


def test_examples_markdown_escapes_pipes():
    assert examples_markdown(["a|b"], ["c"], ["d\ne"]) == (
        "| source | reference | hypothesis |\n|---|---|---|\n| a\\|b | c | d e |")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_epochs(callback, clock, step_seconds, steps, epochs=1):
    """Drive ``callback`` through ``epochs`` epochs of ``steps`` steps of
    ``step_seconds`` each; the loss falls by 0.01 a step."""
    callback.set_params({"epochs": epochs, "steps": steps})
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        for batch in range(steps):
            clock.now += step_seconds
            callback.on_train_batch_end(batch, {"loss": 2.0 - 0.01 * batch})
        callback.on_epoch_end(epoch, {})


def test_progress_is_a_line_every_interval_when_not_on_a_terminal():
    clock, stream = FakeClock(), io.StringIO()
    callback = EpochProgress(100_000, stream=stream, interval=30.0, clock=clock)
    run_epochs(callback, clock, step_seconds=7.0, steps=10, epochs=2)
    # 35 s after the epoch began, then 35 s later (30 s had not passed at 63 s).
    assert stream.getvalue().splitlines() == [
        "epoch 1/2: step 5/10 - loss 1.96 - 1,429 tokens/s - ETA 35s",
        "epoch 1/2: step 10/10 - loss 1.91 - 1,429 tokens/s - ETA 0s",
        "epoch 2/2: step 5/10 - loss 1.96 - 1,429 tokens/s - ETA 35s",
        "epoch 2/2: step 10/10 - loss 1.91 - 1,429 tokens/s - ETA 0s",
    ]


def test_no_progress_line_before_the_interval_has_passed():
    clock, stream = FakeClock(), io.StringIO()
    callback = EpochProgress(100_000, stream=stream, interval=30.0, clock=clock)
    run_epochs(callback, clock, step_seconds=2.9, steps=10, epochs=3)  # 29 s epochs
    assert stream.getvalue() == ""


def test_progress_on_a_terminal_is_a_bar_redrawn_in_place_and_erased():
    clock, stream = FakeClock(), io.StringIO()
    callback = EpochProgress(3_600, stream=stream, in_place=True, refresh=0.5, clock=clock)
    run_epochs(callback, clock, step_seconds=0.3, steps=4, epochs=1)
    first = "epoch 1/1 [============............] step 2/4 - loss 1.99 - 3,000 tokens/s - ETA 1s"
    last = "epoch 1/1 [========================] step 4/4 - loss 1.97 - 3,000 tokens/s - ETA 0s"
    assert stream.getvalue() == f"\r{first}\r{last}\r{' ' * len(last)}\r"


def test_progress_of_long_epochs_shows_hours():
    callback = EpochProgress(10_000_000)
    callback.set_params({"epochs": 20, "steps": 10_000})
    callback.on_epoch_begin(2)
    assert callback.progress(100, 3.14159, 60.0) == (
        "epoch 3/20: step 100/10000 - loss 3.142 - 1,667 tokens/s - ETA 1h39m")


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def built_model():
    """``small_model`` with its optimizer state built, as in a run after a step."""
    model = small_model()
    model.optimizer.build(model.trainable_variables)
    return model


def test_run_backup_restores_the_last_finished_epoch(tmp_path):
    model = built_model()
    backup = RunBackup(str(tmp_path / "backup"))
    backup.set_model(model)
    backup.on_epoch_end(0)
    first = _weights(model)
    model.set_weights([w + 1.0 for w in first])
    backup.on_epoch_end(1)
    second = _weights(model)
    assert sorted(os.listdir(tmp_path / "backup")) == [
        "epoch-0002.weights.h5", "training_metadata.json"]

    fresh = built_model()
    restored = RunBackup(str(tmp_path / "backup"))
    restored.set_model(fresh)
    restored.on_train_begin()
    for got, want in zip(_weights(fresh), second):
        np.testing.assert_array_equal(got, want)
    restored.on_train_end()
    assert not (tmp_path / "backup").exists()


def test_run_backup_killed_between_weights_and_metadata_resumes_consistently(
        tmp_path, monkeypatch):
    """Keras' BackupAndRestore overwrote latest.weights.h5 before the
    metadata: a kill between the two resumed epoch 2 on epoch 2's weights."""
    model = built_model()
    backup = RunBackup(str(tmp_path / "backup"))
    backup.set_model(model)
    backup.on_epoch_end(0)
    first = _weights(model)
    model.set_weights([w + 1.0 for w in first])

    def killed(path, data):
        raise KeyboardInterrupt("killed while writing the metadata")

    monkeypatch.setattr(callbacks_module, "write_atomically", killed)
    with pytest.raises(KeyboardInterrupt):
        backup.on_epoch_end(1)
    monkeypatch.undo()

    metadata = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert metadata["epoch"] == 1
    fresh = built_model()
    restored = RunBackup(str(tmp_path / "backup"))
    restored.set_model(fresh)
    restored.on_train_begin()
    for got, want in zip(_weights(fresh), first):  # epoch 1's, as the metadata says
        np.testing.assert_array_equal(got, want)


def test_run_backup_reads_a_folder_keras_backup_and_restore_wrote(tmp_path):
    model = built_model()
    keras_backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    keras_backup.set_model(model)
    keras_backup.on_epoch_end(0)
    saved = _weights(model)
    fresh = built_model()
    restored = RunBackup(str(tmp_path / "backup"))
    restored.set_model(fresh)
    restored.on_train_begin()
    for got, want in zip(_weights(fresh), saved):
        np.testing.assert_array_equal(got, want)
