"""A small untrained text-to-text module shared by the export tests.

Untrained weights give arbitrary but deterministic outputs, which is all the
export tests need: they compare the export with the model in memory.
"""

import keras
import pytest

from keras_attention.data import CharacterTokenizer, WordTokenizer, date_pairs
from keras_attention.export import TextToTextModule
from keras_attention.models import Transformer

SENTENCES = [
    "the twenty third of march nineteen ninety four",
    "5 apr 1917",
    "june first two thousand and five",
    "twelve december",
]


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
