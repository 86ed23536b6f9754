"""Modules shared by the export tests.

``text_module``: a small untrained greedy module; untrained weights give
arbitrary but deterministic outputs, enough to compare an export with the
model in memory. ``trained_date_model`` (``tests/decoding/conftest.py``,
trained once per session) backs the comparisons with ``TextGenerator``.
"""

import keras
import pytest
from shared_models import shared_trained_model

from decoding.conftest import trained_date_model  # noqa: F401
from keras_attention.data import CharacterTokenizer, WordTokenizer, date_pairs
from keras_attention.decoding import DecodingConfig
from keras_attention.export import TextToTextModule
from keras_attention.models import Transformer

SENTENCES = [
    "the twenty third of march nineteen ninety four",
    "5 apr 1917",
    "june first two thousand and five",
    "twelve december",
]
# Greedy and beam search as exported by the tests; the beam config keeps 3
# hypotheses so the n-best signature has something to show.
CONFIGS = {
    "greedy": DecodingConfig(strategy="greedy", max_length=12),
    "beam": DecodingConfig(strategy="beam", beam_size=3, n_best=3, length_penalty=0.6,
                           max_length=12),
}


@pytest.fixture(scope="module")
def text_module():
    keras.utils.set_random_seed(7)
    pairs = date_pairs(300, seed=3)
    source = WordTokenizer.build([s for s, _ in pairs])
    target = CharacterTokenizer.build([t for _, t in pairs])
    model = Transformer.from_preset(
        "tiny",
        encoder_vocabulary_size=source.vocabulary_size,
        decoder_vocabulary_size=target.vocabulary_size,
        num_encoder_layers=1,
        num_decoder_layers=1,
        max_sequence_length=16,
    )
    return TextToTextModule(model, source, target, max_output_length=12)


SMALL_BATCH = 8


@pytest.fixture(scope="session")
def trained_modules(trained_date_model):
    """``{"greedy" | "beam": TextToTextModule}`` of the trained date model,
    ``max_batch_size=SMALL_BATCH`` (shared, so each is traced once)."""
    trained, _ = trained_date_model
    return {
        name: TextToTextModule(trained.model, trained.source_tokenizer,
                               trained.target_tokenizer, config=config,
                               max_batch_size=SMALL_BATCH)
        for name, config in CONFIGS.items()
    }


def build_sentencepiece_date_model(directory):
    """The tiny preset trained a few seconds on generated dates with
    SentencePiece unigram tokenizers on both sides (the kind the string ->
    string TFLite model supports), saved to ``directory``."""
    import numpy as np

    from keras_attention.data import END_ID, START_ID, SentencePieceTokenizer
    from keras_attention.models import TrainedModel, save_trained_model
    from keras_attention.training import sequence_loss

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    pairs = date_pairs(3000, seed=0)
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    source = SentencePieceTokenizer.build(sources[:600], vocabulary_size=120)
    target = SentencePieceTokenizer.build(targets[:600], vocabulary_size=30)
    source_ids = source.tokenize(sources).to_tensor(shape=[None, 24]).numpy()
    target_ids = target.tokenize(targets).to_tensor(shape=[None, 12]).numpy()
    assert source.tokenize(sources).bounding_shape()[1] <= 24
    assert target.tokenize(targets).bounding_shape()[1] <= 11
    decoder_ids = np.concatenate(
        [np.full((len(pairs), 1), START_ID, "int32"), target_ids[:, :-1]], axis=1)
    labels = target_ids.copy()
    labels[np.arange(len(pairs)), (target_ids != 0).sum(axis=1)] = END_ID
    model = Transformer.from_preset(
        "tiny", encoder_vocabulary_size=source.vocabulary_size,
        decoder_vocabulary_size=target.vocabulary_size, max_sequence_length=24)
    steps = 3 * (len(pairs) // 64)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps, warmup_target=3e-3, warmup_steps=steps // 5)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=sequence_loss())
    model.fit({"encoder_tokens": source_ids, "decoder_tokens": decoder_ids}, labels,
              batch_size=64, epochs=3, verbose=0, shuffle=True)
    trained = TrainedModel(model, source, target, task="translation")
    save_trained_model(trained, directory)
    return trained


@pytest.fixture(scope="session")
def sentencepiece_date_model(tmp_path_factory):
    """``(TrainedModel, folder)`` of ``build_sentencepiece_date_model``, trained
    once per test run (``shared_models``)."""
    return shared_trained_model(tmp_path_factory, "sp_date_model",
                                build_sentencepiece_date_model)
