"""Text -> ``tf.data`` pipelines: corpus readers, the generated demo task,
tokenizers, batching."""

from keras_attention.data.batching import (
    BatchingConfig,
    make_training_dataset,
    padding_efficiency,
    teacher_forcing,
    tokenize_batches,
)
from keras_attention.data.readers import (
    CorpusStats,
    PairSource,
    aligned_pairs,
    jsonl_pairs,
    memory_pairs,
    tfds_pairs,
    tsv_pairs,
)
from keras_attention.data.subword import SentencePieceTokenizer, WordPieceTokenizer
from keras_attention.data.synthetic import date_pairs
from keras_attention.data.tokenizer_files import load_tokenizer, save_tokenizer
from keras_attention.data.tokenizers import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
    CharacterTokenizer,
    Tokenizer,
    VocabularyTokenizer,
    WordTokenizer,
)

__all__ = [
    "BatchingConfig",
    "SentencePieceTokenizer",
    "Tokenizer",
    "WordPieceTokenizer",
    "make_training_dataset",
    "padding_efficiency",
    "CorpusStats",
    "PairSource",
    "aligned_pairs",
    "jsonl_pairs",
    "memory_pairs",
    "tfds_pairs",
    "tsv_pairs",
    "END_ID",
    "PAD_ID",
    "RESERVED_TOKENS",
    "START_ID",
    "UNK_ID",
    "CharacterTokenizer",
    "VocabularyTokenizer",
    "WordTokenizer",
    "date_pairs",
    "load_tokenizer",
    "save_tokenizer",
    "teacher_forcing",
    "tokenize_batches",
]
