"""Modules shared by the export tests.

``text_module``: a small untrained greedy module; untrained weights give
arbitrary but deterministic outputs, enough to compare an export with the
model in memory. ``trained_date_model`` (``tests/decoding/conftest.py``,
trained once per session) backs the comparisons with ``TextGenerator``.
"""

import keras
import pytest

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
