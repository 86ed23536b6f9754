"""Text -> ``tf.data`` pipelines: the generated demo task, tokenizers, batching."""

from keras_attention.data.batching import teacher_forcing, text_pair_dataset, tokenize_pairs
from keras_attention.data.synthetic import date_pairs
from keras_attention.data.tokenizers import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
    CharacterTokenizer,
    VocabularyTokenizer,
    WordTokenizer,
)

__all__ = [
    "END_ID",
    "PAD_ID",
    "RESERVED_TOKENS",
    "START_ID",
    "UNK_ID",
    "CharacterTokenizer",
    "VocabularyTokenizer",
    "WordTokenizer",
    "date_pairs",
    "teacher_forcing",
    "text_pair_dataset",
    "tokenize_pairs",
]
