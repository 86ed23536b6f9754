"""Text -> ``tf.data`` pipelines: corpus readers, the generated demo task,
tokenizers, batching. Names import their module on first use, so the
TensorFlow-free ``buckets`` imports without TensorFlow (the reserved ids
are ``keras_attention.constants``'s, importable from here too)."""

from keras_attention.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "keras_attention.data.batching": (
        "BatchingConfig", "make_training_dataset", "padding_efficiency", "teacher_forcing",
        "tokenize_batches"),
    "keras_attention.data.readers": (
        "CorpusStats", "PairSource", "aligned_pairs", "jsonl_pairs", "memory_pairs",
        "tfds_pairs", "tsv_pairs"),
    "keras_attention.constants": (
        "END_ID", "PAD_ID", "RESERVED_TOKENS", "START_ID", "UNK_ID"),
    "keras_attention.data.subword": ("SentencePieceTokenizer", "WordPieceTokenizer"),
    "keras_attention.data.synthetic": ("date_pairs",),
    "keras_attention.data.tokenizer_files": ("load_tokenizer", "save_tokenizer"),
    "keras_attention.data.tokenizers": (
        "CharacterTokenizer", "Tokenizer", "VocabularyTokenizer", "WordTokenizer"),
})
