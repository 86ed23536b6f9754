"""train(config): the run directory, the model folder, precision, reruns."""

import contextlib
import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from training.run_configs import quiet, write_config

from keras_attention.decoding.text import TextGenerator
from keras_attention.models import Transformer, load_trained_model
from keras_attention.training import load_config, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    config = load_config(write_config(tmp / "run.yaml", tmp / "out"))
    lines, stdout = [], io.StringIO()  # stdout: not a terminal, as in a log file
    with contextlib.redirect_stdout(stdout):
        result = train(config, print_fn=lines.append, progress_interval=3600.0)
    return config, result, lines, stdout.getvalue()


def event_tags(directory):
    tags = set()
    for name in os.listdir(directory):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_run_directory_layout(run):
    config, result, _, _ = run
    out = result.output_directory
    assert out == os.path.abspath(config.output.directory)
    assert load_config(os.path.join(out, "config.yaml")) == config
    assert sorted(os.listdir(os.path.join(out, "vocab"))) == [
        "provenance.json", "source.json", "source.vocab", "target.json", "target.vocab"]
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == [
        "best.weights.h5", "best.weights.h5.json", "epoch-0001.weights.h5",
        "epoch-0002.weights.h5"]
    assert not os.path.exists(os.path.join(out, "backup"))  # removed after a finished run
    assert result.model_directory == os.path.join(out, "model")
    assert "epoch_loss" in event_tags(os.path.join(out, "logs", "train"))
    validation_tags = event_tags(os.path.join(out, "logs", "validation"))
    assert {"validation/bleu", "validation/learning_rate", "validation/examples",
            "validation/attention_0", "epoch_loss"} <= validation_tags


def test_result_history_and_steps(run):
    _, result, lines, stdout = run
    assert result.epochs == 2
    assert result.steps == 2 * result.steps_per_epoch == 2 * 3  # 192 pairs / 64
    assert len(result.history["loss"]) == 2 and len(result.history["val_bleu"]) == 2
    assert result.history["loss"][1] < result.history["loss"][0]
    assert result.tokens_per_second > 0
    best = result.best
    assert best["monitor"] == "val_bleu"
    assert best["value"] == max(result.history["val_bleu"])
    assert result.history["val_bleu"][best["epoch"] - 1] == best["value"]
    summaries = [line for line in lines if line.startswith("epoch ")]
    assert len(summaries) == 2 and summaries[1].startswith("epoch 2/2: ")
    # One summary per epoch: Keras' own progress lines are off (and no
    # progress line is due before progress_interval).
    assert stdout == ""
    assert "val_bleu" in summaries[0] and summaries[0].endswith(" s)")
    assert " tokens/s (" in summaries[0]


def test_model_folder_holds_the_best_weights_and_decodes(run, tmp_path):
    _, result, _, _ = run
    trained = load_trained_model(result.model_directory)
    assert trained.task == "translation"
    assert trained.metadata["training"]["steps"] == result.steps
    # The recipe's decoding travels with the model (translate starts from it).
    assert trained.metadata["decoding"] == {"max_length": 12}
    best = Transformer(trained.model.config)
    best.load_weights(os.path.join(result.output_directory, "checkpoints", "best.weights.h5"))
    tokens = {"encoder_tokens": np.array([[5, 6, 7, 8]], "int32"),
              "decoder_tokens": np.array([[1, 4, 5]], "int32")}
    np.testing.assert_allclose(trained.model(tokens), best(tokens), rtol=1e-6)
    outputs = TextGenerator(trained).best(["the first of may two thousand and nine"] * 2)
    assert len(outputs) == 2 and outputs[0] == outputs[1]


def test_rerun_of_a_finished_run_or_another_config_is_refused(run):
    config, _, _, _ = run
    with pytest.raises(FileExistsError) as error:
        train(config, verbose=0, print_fn=quiet)
    out = os.path.abspath(config.output.directory)
    assert str(error.value) == (
        f"output directory '{out}' holds a finished run (model/); use another "
        "output.directory (--output) or delete it.")
    other = config.replace(training=config.training.__class__(epochs=3))
    with pytest.raises(ValueError) as error:
        train(other, verbose=0, print_fn=quiet)
    assert str(error.value) == (
        f"output directory '{out}' holds a run with another config (training.epochs: 2 there, "
        "3 now); use another output.directory (--output) or delete it.")


def test_mixed_bfloat16_trains_without_changing_the_global_policy(tmp_path):
    path = write_config(tmp_path / "run.yaml", tmp_path / "out", {
        "training": {"epochs": 1, "precision": "mixed_bfloat16", "label_smoothing": 0.0},
        "data": {"train": {"format": "dates", "size": 128}, "validation": None},
        "optimizer": {"schedule": "cosine", "warmup_steps": 0, "clipnorm": 1.0,
                      "gradient_accumulation_steps": 2}})
    result = train(load_config(path), verbose=0, print_fn=quiet)
    assert keras.config.dtype_policy().name == "float32"
    assert np.isfinite(result.history["loss"][0]) and result.best is None
    assert result.steps_per_epoch == 2 and result.steps == 1  # 2 batches per update
    trained = load_trained_model(result.model_directory)
    assert trained.model.dtype_policy.name == "mixed_bfloat16"
    assert trained.model.compute_dtype == "bfloat16"
    assert json.load(open(os.path.join(result.model_directory, "keras_attention.json")))[
        "training"]["config"]["training"]["precision"] == "mixed_bfloat16"
    # No validation: the final model is the last epoch's weights.
    last = Transformer(trained.model.config, dtype="mixed_bfloat16")
    last.load_weights(os.path.join(result.output_directory, "checkpoints",
                                   "epoch-0001.weights.h5"))
    tokens = {"encoder_tokens": np.array([[5, 6, 7]], "int32"),
              "decoder_tokens": np.array([[1, 4]], "int32")}
    np.testing.assert_array_equal(trained.model(tokens), last(tokens))


def test_early_stopping_ends_the_run_after_patience_epochs_without_improvement(tmp_path):
    # A learning rate of 1e-9 leaves the model untrained: its validation BLEU
    # never beats epoch 1's, so patience 2 stops it after epoch 3 of 6.
    config = load_config(write_config(tmp_path / "run.yaml", tmp_path / "out", {
        "optimizer": {"learning_rate": 1e-9, "schedule": "constant"},
        "training": {"epochs": 6, "early_stopping_patience": 2},
        "evaluation": {"max_sentences": 4, "batch_size": 4, "decoding": {"max_length": 4}},
        "output": {"tensorboard": False}}))
    lines = []
    result = train(config, verbose=0, print_fn=lines.append)
    assert result.stop_reason == "early_stopping" and result.epochs == 3
    assert len(result.history["val_bleu"]) == 3
    assert result.best["epoch"] == 1
    assert "stopped early (early_stopping) after 3 epoch(s)" in lines
