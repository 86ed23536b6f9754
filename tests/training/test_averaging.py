"""Checkpoint averaging: golden means, the run layout, and its errors."""

import json
import os

import numpy as np
import pytest

from keras_attention.data import CharacterTokenizer, WordTokenizer
from keras_attention.models import (
    TrainedModel,
    Transformer,
    load_trained_model,
    save_trained_model,
)
from keras_attention.training.averaging import average_checkpoints, average_last
from keras_attention.training.run_layout import RunLayout

SOURCES = ["the first of may", "the second of june", "march third"]
TARGETS = ["05-01", "06-02", "03-03"]


def tiny_model(source_size, target_size, **changes):
    sizes = dict(hidden_dim=16, intermediate_dim=32, num_encoder_layers=1, num_decoder_layers=1)
    return Transformer.from_preset(
        "tiny",
        encoder_vocabulary_size=source_size,
        decoder_vocabulary_size=target_size,
        max_sequence_length=16,
        **dict(sizes, **changes),
    )


def random_weights(model, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()]


def save_weights_file(model, weights, path):
    model.set_weights(weights)
    model.save_weights(str(path))
    return weights


def make_run(run_dir, epochs):
    """A run folder as 'keras-attention train' writes it: model/ (final model,
    tokenizers) and checkpoints/epoch-NNNN.weights.h5 for ``epochs`` (each with
    different weights) plus best.weights.h5. Returns {epoch: weights}."""
    source = WordTokenizer.build(SOURCES)
    target = CharacterTokenizer.build(TARGETS)
    model = tiny_model(source.vocabulary_size, target.vocabulary_size)
    checkpoints = os.path.join(run_dir, "checkpoints")
    os.makedirs(checkpoints)
    saved = {}
    for epoch in epochs:
        path = os.path.join(checkpoints, f"epoch-{epoch:04d}.weights.h5")
        saved[epoch] = save_weights_file(model, random_weights(model, epoch), path)
    best = os.path.join(checkpoints, "best.weights.h5")
    save_weights_file(model, random_weights(model, 999), best)
    save_trained_model(
        TrainedModel(model, source, target, task="translation", metadata={"epochs": len(epochs)}),
        os.path.join(run_dir, "model"),
    )
    return saved


def test_average_of_three_files_is_the_numpy_mean(tmp_path):
    model = tiny_model(11, 7)
    files = [tmp_path / f"{i}.weights.h5" for i in range(3)]
    sets = [save_weights_file(model, random_weights(model, i), f) for i, f in enumerate(files)]
    model.set_weights(random_weights(model, 42))  # the current weights play no part
    assert average_checkpoints(model, [str(f) for f in files]) is model
    averaged = model.get_weights()
    assert len(averaged) == len(sets[0]) > 10
    for got, *parts in zip(averaged, *sets):
        assert got.dtype == np.float32
        expected = np.mean(np.stack(parts).astype(np.float64), axis=0).astype(np.float32)
        np.testing.assert_array_equal(got, expected)
    # Golden: one value by hand.
    first = averaged[0].ravel()[0]
    assert first == np.float32((float(sets[0][0].ravel()[0]) + float(sets[1][0].ravel()[0])
                                + float(sets[2][0].ravel()[0])) / 3)


def test_average_of_one_file_is_that_file(tmp_path):
    model = tiny_model(11, 7)
    weights = save_weights_file(model, random_weights(model, 5), tmp_path / "a.weights.h5")
    model.set_weights(random_weights(model, 6))
    average_checkpoints(model, [str(tmp_path / "a.weights.h5")])
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)


def test_average_last_writes_a_model_folder_of_the_last_epochs(tmp_path):
    run = tmp_path / "run"
    saved = make_run(str(run), epochs=[1, 2, 3, 10])
    assert [os.path.basename(p) for p in RunLayout(str(run)).epoch_checkpoints().values()] == [
        "epoch-0001.weights.h5", "epoch-0002.weights.h5", "epoch-0003.weights.h5",
        "epoch-0010.weights.h5",
    ]
    output, averaged = average_last(str(run), last=3)
    assert output == str(run / "averaged")
    assert [os.path.basename(p) for p in averaged] == [
        "epoch-0002.weights.h5", "epoch-0003.weights.h5", "epoch-0010.weights.h5",
    ]
    trained = load_trained_model(output)
    for got, *parts in zip(trained.model.get_weights(), saved[2], saved[3], saved[10]):
        expected = np.mean(np.stack(parts).astype(np.float64), axis=0).astype(np.float32)
        np.testing.assert_array_equal(got, expected)
    original = load_trained_model(str(run / "model"))
    assert trained.source_tokenizer.vocabulary == original.source_tokenizer.vocabulary
    assert trained.target_tokenizer.vocabulary == original.target_tokenizer.vocabulary
    assert trained.task == "translation"
    assert trained.metadata["epochs"] == 4
    with open(os.path.join(output, "keras_attention.json"), encoding="utf-8") as f:
        assert json.load(f)["averaged_checkpoints"] == [
            "checkpoints/epoch-0002.weights.h5",
            "checkpoints/epoch-0003.weights.h5",
            "checkpoints/epoch-0010.weights.h5",
        ]


def test_average_last_to_a_chosen_output(tmp_path):
    saved = make_run(str(tmp_path / "run"), epochs=[1, 2])
    output, _ = average_last(str(tmp_path / "run"), last=1, output=str(tmp_path / "out"))
    assert output == str(tmp_path / "out")
    for got, want in zip(load_trained_model(output).model.get_weights(), saved[2]):
        np.testing.assert_array_equal(got, want)


def _weights(folder):
    return load_trained_model(str(folder)).model.get_weights()


def test_average_last_never_replaces_a_folder_unless_asked(tmp_path):
    run = tmp_path / "run"
    saved = make_run(str(run), epochs=[1, 2])
    trained = _weights(run / "model")
    for output, default in ((run / "model", False), (run / "averaged", True)):
        if default:
            average_last(str(run), last=1)  # an earlier average in RUN/averaged
        before = _weights(output)
        with pytest.raises(FileExistsError) as error:
            average_last(str(run), last=2, output=None if default else str(output))
        assert str(error.value) == (
            f"model folder '{output}' already exists; pass --overwrite (overwrite=True) to "
            "replace it, or choose another --output.")
        for got, want in zip(_weights(output), before):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(_weights(run / "model"), trained):  # the trained model is intact
        np.testing.assert_array_equal(got, want)
    # overwrite=True replaces it (atomically): the mean of epochs 1 and 2.
    output, _ = average_last(str(run), last=2, overwrite=True)
    assert sorted(os.listdir(run)) == ["averaged", "checkpoints", "model"]
    for got, a, b in zip(_weights(output), saved[1], saved[2]):
        np.testing.assert_array_equal(got, ((a.astype(np.float64) + b) / 2).astype(np.float32))


def test_average_last_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="run folder '.*nowhere' not found; pass the"):
        average_last(str(tmp_path / "nowhere"), last=2)
    make_run(str(tmp_path / "run"), epochs=[1, 2, 3])
    with pytest.raises(ValueError, match=r"has 3 epoch checkpoint\(s\) in checkpoints/ .*fewer "
                       "than the 5 to average; average fewer or train more epochs"):
        average_last(str(tmp_path / "run"), last=5)
    with pytest.raises(ValueError, match="last must be a positive number of checkpoints, got 0"):
        average_last(str(tmp_path / "run"), last=0)


def test_a_checkpoint_of_another_architecture_is_rejected(tmp_path):
    model = tiny_model(11, 7)
    good = tmp_path / "good.weights.h5"
    save_weights_file(model, random_weights(model, 1), good)
    other_vocabulary = tiny_model(12, 7)
    other_vocabulary.save_weights(str(tmp_path / "vocabulary.weights.h5"))
    deeper = tiny_model(11, 7, num_decoder_layers=2)  # a superset Keras would load silently
    deeper.save_weights(str(tmp_path / "deeper.weights.h5"))
    with pytest.raises(ValueError, match=r"vocabulary.weights.h5' does not match the model's "
                       r"architecture \(its weight shapes differ from the model's\); average only"):
        average_checkpoints(model, [str(good), str(tmp_path / "vocabulary.weights.h5")])
    with pytest.raises(ValueError, match=r"deeper.weights.h5' does not match the model's "
                       r"architecture \(it holds \d+ weights, the model has \d+\)"):
        average_checkpoints(model, [str(good), str(tmp_path / "deeper.weights.h5")])
    (tmp_path / "junk.weights.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="junk.weights.h5' is not a readable .weights.h5 file"):
        average_checkpoints(model, [str(tmp_path / "junk.weights.h5")])
    with pytest.raises(FileNotFoundError, match="missing.weights.h5' not found"):
        average_checkpoints(model, [str(tmp_path / "missing.weights.h5")])
    with pytest.raises(ValueError, match="no checkpoints to average"):
        average_checkpoints(model, [])


def test_a_run_with_a_foreign_checkpoint_fails_in_one_line(tmp_path):
    run = tmp_path / "run"
    make_run(str(run), epochs=[1, 2])
    tiny_model(5, 5).save_weights(str(run / "checkpoints" / "epoch-0003.weights.h5"))
    with pytest.raises(ValueError, match="epoch-0003.weights.h5' does not match") as error:
        average_last(str(run), last=2)
    assert "\n" not in str(error.value)


def test_checkpoints_of_a_compiled_model_average_only_the_model_weights(tmp_path):
    """Epoch checkpoints written during training also hold the optimizer's
    state; averaging reads the model weights and ignores it."""
    import keras

    model = tiny_model(12, 9)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    inputs = {"encoder_tokens": np.array([[4, 5, 6]]), "decoder_tokens": np.array([[1, 4, 5]])}
    model.train_on_batch(inputs, np.array([[4, 5, 2]]))
    paths, expected = [], []
    for seed in (1, 2):
        expected.append(save_weights_file(model, random_weights(model, seed), tmp_path / f"{seed}.weights.h5"))
        paths.append(str(tmp_path / f"{seed}.weights.h5"))

    fresh = tiny_model(12, 9)
    average_checkpoints(fresh, paths)
    for got, first, second in zip(fresh.get_weights(), *expected):
        np.testing.assert_allclose(got, (first.astype("float64") + second) / 2, rtol=1e-6)
