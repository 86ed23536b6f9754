"""Fine-tuning: ``model.init_from`` (``train --init-from``) and ``training.lora_rank``."""

import os

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from training.run_configs import TINY, quiet, write_config

from cli.main import main
from keras_attention.models import Transformer, load_trained_model
from keras_attention.training import load_config, train
from keras_attention.training.init_from import initial_model

# The fine-tuning runs read other dates, with a config asking for a word
# vocabulary: the trained model's character vocabulary is what they use.
OTHER_DATA = {"data": {"train": {"format": "dates", "size": 128, "seed": 7},
                       "validation": {"format": "dates", "size": 16, "seed": 8}},
              "vocabulary": {"type": "word"}}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A trained run (``TINY``, 2 epochs): ``(result, model folder)``."""
    tmp = tmp_path_factory.mktemp("base")
    keras.utils.set_random_seed(0)
    result = train(load_config(write_config(tmp / "run.yaml", tmp / "out")), print_fn=quiet)
    return result, result.model_directory


def _weights(model):
    """``{path without the model's name: value}``."""
    return {v.path.split("/", 1)[1]: np.asarray(keras.ops.convert_to_numpy(v))
            for v in model.weights}


def _fine_tune(tmp_path, base_folder, training=None, model=None):
    changes = dict(OTHER_DATA, training=dict({"epochs": 1}, **(training or {})))
    if model is not None:
        changes["model"] = model
    config = load_config(write_config(tmp_path / "tune.yaml", tmp_path / "tuned", changes),
                         [f"model.init_from={base_folder}"])
    return train(config, print_fn=quiet)


def test_the_run_starts_from_the_trained_weights_and_vocabulary(base, tmp_path):
    base_result, folder = base
    trained = load_trained_model(folder)
    config = load_config(write_config(tmp_path / "a.yaml", tmp_path / "a", OTHER_DATA),
                         [f"model.init_from={folder}"])
    model = initial_model(config.model.transformer_config(
        trained.source_tokenizer.vocabulary_size, trained.target_tokenizer.vocabulary_size),
        folder)
    expected = trained.model.get_weights()
    assert len(model.get_weights()) == len(expected)
    for value, want in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(value, want)

    result = _fine_tune(tmp_path, folder)
    for name in ("source.json", "source.vocab", "target.json", "target.vocab"):
        with open(os.path.join(folder, name), "rb") as a, \
                open(os.path.join(result.output_directory, "vocab", name), "rb") as b:
            assert a.read() == b.read(), name
    # Its first epoch starts where the trained run ended, not from scratch.
    first, last = base_result.history["loss"][0], base_result.history["loss"][-1]
    assert result.history["loss"][0] < (first + last) / 2


def test_lora_trains_only_query_and_value_and_the_folder_holds_them_merged(base, tmp_path):
    _, folder = base
    before = _weights(load_trained_model(folder).model)
    result = _fine_tune(tmp_path, folder, training={"lora_rank": 2},
                        model={"changes": {**_base_changes(), "dropout": 0.0}})
    tuned = load_trained_model(result.model_directory).model
    after = _weights(tuned)
    assert after.keys() == before.keys()  # plain layers: no adapters left
    changed = sorted(p for p in before if not np.array_equal(before[p], after[p]))
    assert changed and all(p.rsplit("/", 2)[-2] in ("query", "value") for p in changed), changed
    assert any(p.endswith("query/kernel") for p in changed)
    assert tuned.count_params() == load_trained_model(folder).model.count_params()


def _base_changes():
    return dict(TINY["model"]["changes"])


def test_a_model_of_another_shape_is_refused_before_anything_is_written(base, tmp_path):
    _, folder = base
    with pytest.raises(ValueError, match=(
            rf"model.init_from '{folder}' has hidden_dim=32, intermediate_dim=64 but this "
            r"config asks hidden_dim=64, intermediate_dim=128; set model.preset/model.changes")):
        _fine_tune(tmp_path, folder, model={"changes": {
            **_base_changes(), "hidden_dim": 64, "intermediate_dim": 128}})
    assert not os.path.exists(tmp_path / "tuned")


def test_the_command_line_option_and_its_errors(base, tmp_path):
    _, folder = base
    config = write_config(tmp_path / "run.yaml", tmp_path / "out", OTHER_DATA)
    result = CliRunner().invoke(main, ["train", "--config", config, "--init-from", folder,
                                       "--set", "training.epochs=1", "--set",
                                       "training.lora_rank=2"])
    assert result.exit_code == 0, result.output
    assert load_config(str(tmp_path / "out" / "config.yaml")).model.init_from == folder
    missing = str(tmp_path / "nowhere")
    for args, message in [
        (["--init-from", missing], f"Error: model.init_from '{missing}' not found; point it to "
                                   "a trained model folder (RUN/model, written by "
                                   "'keras-attention train')."),
        (["--set", "training.lora_rank=2"], "Error: training.lora_rank trains LoRA adapters on "
                                            "a trained model; set model.init_from (train "
                                            "--init-from MODEL_DIR) too."),
    ]:
        result = CliRunner().invoke(main, ["train", "--config", config, "--output",
                                           str(tmp_path / "x"), *args])
        assert result.exit_code == 1 and result.output.strip() == message, result.output


def test_a_restored_lora_model_gets_adapters_that_train_again(tmp_path):
    """Weight files hold LoRA layers merged and loading zeroes A and B (no
    gradient for either): ``LoraRestart`` draws A anew, outputs unchanged."""
    from keras_attention.training.callbacks import LoraRestart
    from keras_attention.training.losses import SequenceCrossEntropy

    keras.utils.set_random_seed(0)
    model = Transformer.from_preset("tiny", encoder_vocabulary_size=20,
                                    decoder_vocabulary_size=20, max_sequence_length=12,
                                    num_encoder_layers=1, num_decoder_layers=1)
    model.enable_lora(2)
    inputs = {"encoder_tokens": np.array([[5, 6, 7, 0]]), "decoder_tokens": np.array([[1, 8, 9]])}
    labels = np.array([[8, 9, 2]])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SequenceCrossEntropy(0.0))
    model.fit(inputs, labels, epochs=2, verbose=0)
    expected = np.asarray(model(inputs))
    model.save_weights(tmp_path / "w.weights.h5")
    model.load_weights(tmp_path / "w.weights.h5")
    adapters = [v for v in model.trainable_variables if "lora_kernel" in v.path]
    assert not any(np.any(np.asarray(v)) for v in adapters)  # what Keras' loading leaves
    np.testing.assert_allclose(np.asarray(model(inputs)), expected, atol=1e-5)
    restart = LoraRestart(seed=1)
    restart.set_model(model)
    restart.on_train_begin()
    a = [v for v in adapters if v.path.endswith("lora_kernel_a")]
    assert a and all(np.any(np.asarray(v)) for v in a)
    np.testing.assert_allclose(np.asarray(model(inputs)), expected, atol=1e-5)
    before = [np.asarray(v).copy() for v in adapters]
    model.fit(inputs, labels, epochs=1, verbose=0)
    b = [i for i, v in enumerate(adapters) if v.path.endswith("lora_kernel_b")]
    assert all(not np.array_equal(np.asarray(adapters[i]), before[i]) for i in b)


def test_a_pruned_folder_gives_its_head_counts_to_the_run(base, tmp_path):
    import dataclasses

    from keras_attention.models import save_trained_model
    from keras_attention.models.pruning import prune_heads

    _, folder = base
    trained = load_trained_model(folder)
    pruned = prune_heads(trained.model, {"encoder_block_0/self_attention": [0]})
    pruned_folder = save_trained_model(dataclasses.replace(trained, model=pruned),
                                       tmp_path / "pruned")
    config = load_config(write_config(tmp_path / "a.yaml", tmp_path / "a", OTHER_DATA),
                         [f"model.init_from={pruned_folder}"])
    model = initial_model(config.model.transformer_config(
        trained.source_tokenizer.vocabulary_size, trained.target_tokenizer.vocabulary_size),
        pruned_folder)
    assert model.config.attention_heads == {"encoder_block_0/self_attention": 1}
    for value, want in zip(model.get_weights(), pruned.get_weights()):
        np.testing.assert_array_equal(value, want)
