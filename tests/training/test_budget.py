"""Bounded training: training.max_steps and training.time_limit_minutes stop
at the end of a step and still write the usual run directory."""

import json
import os

import keras
import numpy as np
import pytest
from training.run_configs import quiet, write_config

from keras_attention.models import Transformer, load_trained_model
from keras_attention.training import load_config, train
from keras_attention.training.callbacks import EpochSummary, TrainingBudget, ValidationScores


def test_max_steps_stops_mid_epoch_and_validates_the_stopped_epoch(tmp_path):
    # 192 pairs / 64 = 3 steps per epoch; step 4 is the first of epoch 2.
    path = write_config(tmp_path / "run.yaml", tmp_path / "out", {
        "training": {"epochs": 3, "max_steps": 4},
        "evaluation": {"every_n_epochs": 5}})
    lines = []
    result = train(load_config(path), verbose=0, print_fn=lines.append)
    assert (result.steps, result.epochs, result.steps_per_epoch) == (4, 2, 3)
    assert result.stop_reason == "max_steps"
    assert "stopped early (max_steps) after 2 epoch(s)" in lines
    # Epoch 1 is not due (every 5 epochs); the stopped epoch 2 is decoded.
    assert len(result.history["loss"]) == 2 and len(result.history["val_bleu"]) == 1
    assert result.best["epoch"] == 2 and result.best["value"] == result.history["val_bleu"][0]
    out = result.output_directory
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == [
        "best.weights.h5", "best.weights.h5.json", "epoch-0001.weights.h5",
        "epoch-0002.weights.h5"]
    assert not os.path.exists(os.path.join(out, "backup"))
    trained = load_trained_model(result.model_directory)
    assert trained.metadata["training"]["steps"] == 4
    assert trained.metadata["training"]["stop_reason"] == "max_steps"
    best = Transformer(trained.model.config)
    best.load_weights(os.path.join(out, "checkpoints", "best.weights.h5"))
    for mine, theirs in zip(trained.model.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    # A partial epoch counts a third of the epoch's tokens: the mean rate stays
    # the per-epoch rates' token-weighted mean, not inflated by the short epoch.
    assert result.tokens_per_second > 0
    assert "tokens_per_second" in json.load(open(os.path.join(out, "logs", "history.json")))[
        "epochs"][1]


def test_time_limit_stops_after_the_first_step_and_writes_the_last_weights(tmp_path):
    path = write_config(tmp_path / "run.yaml", tmp_path / "out", {
        "training": {"epochs": 2, "time_limit_minutes": 1e-6},
        "data": {"train": {"format": "dates", "size": 192}, "validation": None}})
    result = train(load_config(path), verbose=0, print_fn=quiet)
    assert (result.steps, result.epochs, result.stop_reason) == (1, 1, "time_limit")
    assert result.best is None and result.train_seconds > 0
    trained = load_trained_model(result.model_directory)
    last = Transformer(trained.model.config)
    last.load_weights(os.path.join(result.output_directory, "checkpoints",
                                   "epoch-0001.weights.h5"))
    for mine, theirs in zip(trained.model.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def _tiny_fit(callback, epochs=5, batches=4):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((batches * 2, 3), "float32")
    history = model.fit(x, np.zeros((batches * 2, 1)), batch_size=2, epochs=epochs, verbose=0,
                        callbacks=[callback])
    return model, history


def test_training_budget_time_limit_with_a_fake_clock():
    ticks = iter(range(1000))  # on_train_begin reads 0, the k-th step's end reads k
    budget = TrainingBudget(time_limit_seconds=5, clock=lambda: next(ticks))
    model, history = _tiny_fit(budget)
    assert int(model.optimizer.iterations) == 5  # 4 in epoch 1, 1 in epoch 2
    assert budget.stop_reason == "time_limit" and len(history.history["loss"]) == 2


def test_training_budget_max_steps():
    budget = TrainingBudget(max_steps=6)
    model, history = _tiny_fit(budget)
    assert int(model.optimizer.iterations) == 6 and budget.stop_reason == "max_steps"
    assert len(history.history["loss"]) == 2


def test_training_budget_not_reached_runs_every_epoch():
    budget = TrainingBudget(max_steps=100, time_limit_seconds=3600)
    model, history = _tiny_fit(budget)
    assert int(model.optimizer.iterations) == 20 and budget.stop_reason is None
    assert len(history.history["loss"]) == 5


@pytest.mark.parametrize("arguments, message", [
    ({"max_steps": 0}, "max_steps must be a positive integer or None, got 0."),
    ({"max_steps": True}, "max_steps must be a positive integer or None, got True."),
    ({"time_limit_seconds": 0}, "time_limit_seconds must be positive or None, got 0."),
])
def test_training_budget_errors(arguments, message):
    with pytest.raises(ValueError) as error:
        TrainingBudget(**arguments)
    assert str(error.value) == message


def test_epoch_summary_counts_the_share_of_a_stopped_epoch():
    summary = EpochSummary(tokens_per_epoch=1000, print_fn=quiet)
    summary.set_params({"epochs": 2, "steps": 4})
    summary.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    summary.model.compile(optimizer="sgd", loss="mse")
    for batches in (4, 1):  # a full epoch, then one stopped after 1 of 4 batches
        summary.on_epoch_begin(0)
        for batch in range(batches):
            summary.on_train_batch_end(batch)
        logs = {}
        summary.on_epoch_end(0, logs)
    assert summary.tokens == 1250
    assert summary.tokens_per_second == pytest.approx(1250 / summary.seconds)


def test_validation_is_due_after_an_epoch_stopped_early():
    scores = ValidationScores(generator=None, sources=["a"], references=["b"],
                              scorer=None, every_n_epochs=3)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    scores.set_model(model)
    scores.set_params({"epochs": 10})
    model.stop_training = False
    assert [scores.due(epoch) for epoch in range(4)] == [False, False, True, False]
    model.stop_training = True
    assert scores.due(0) and scores.due(3)
