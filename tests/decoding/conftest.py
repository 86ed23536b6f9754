"""A tiny Transformer trained for a few seconds on the generated date task,
saved as a trained model folder; shared by the decoding, evaluation and CLI
tests (``tests/cli/conftest.py`` and ``tests/evaluation/conftest.py`` reuse
``trained_date_model``)."""

import keras
import pytest
from shared_models import shared_trained_model

TRAIN_PAIRS = 3000
EPOCHS = 3
MAX_LENGTH = 32

_CACHE = {}


def build_date_model(directory):
    """Train the tiny preset on generated dates and save it to ``directory``.

    The pairs are padded to one fixed shape (dates are short), so the train
    step is traced once: seconds instead of a retrace per bucket shape.
    """
    import numpy as np

    from keras_attention.data import (
        END_ID,
        START_ID,
        CharacterTokenizer,
        WordTokenizer,
        date_pairs,
    )
    from keras_attention.models import TrainedModel, Transformer, save_trained_model
    from keras_attention.training import sequence_loss

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    pairs = date_pairs(TRAIN_PAIRS, seed=0)
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    source_tokenizer = WordTokenizer.build(sources)
    target_tokenizer = CharacterTokenizer.build(targets)
    source_ids = source_tokenizer.tokenize(sources).to_tensor(shape=[None, 16]).numpy()
    target_ids = target_tokenizer.tokenize(targets).to_tensor(shape=[None, 11]).numpy()
    # to_tensor cuts longer rows: check nothing was cut.
    assert source_tokenizer.tokenize(sources).bounding_shape()[1] <= 16
    assert target_tokenizer.tokenize(targets).bounding_shape()[1] <= 10
    start = np.full((len(pairs), 1), START_ID, "int32")
    decoder_ids = np.concatenate([start, target_ids[:, :-1]], axis=1)
    lengths = (target_ids != 0).sum(axis=1)
    labels = target_ids.copy()
    labels[np.arange(len(pairs)), lengths] = END_ID
    model = Transformer.from_preset(
        "tiny",
        encoder_vocabulary_size=source_tokenizer.vocabulary_size,
        decoder_vocabulary_size=target_tokenizer.vocabulary_size,
        max_sequence_length=MAX_LENGTH,
    )
    steps = EPOCHS * (len(pairs) // 64)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps, warmup_target=3e-3, warmup_steps=steps // 5
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=sequence_loss())
    model.fit({"encoder_tokens": source_ids, "decoder_tokens": decoder_ids}, labels,
              batch_size=64, epochs=EPOCHS, verbose=0, shuffle=True)
    trained = TrainedModel(model, source_tokenizer, target_tokenizer, task="translation")
    save_trained_model(trained, directory)
    return trained


@pytest.fixture(scope="session")
def trained_date_model(tmp_path_factory):
    """``(TrainedModel, folder)``: trained once per test run (``shared_models``)."""
    if "model" not in _CACHE:
        _CACHE["model"] = shared_trained_model(tmp_path_factory, "date_model", build_date_model)
    return _CACHE["model"]
