"""Names and values shared across the package and the CLI, in one place.

Pure Python (no TensorFlow, no Keras), so ``cli`` imports it for its
``click.Choice`` lists and file checks without slowing ``--help`` down.
The modules that act on these values import them from here.
"""

# Reserved tokens and their ids: every vocabulary starts with these four.
PAD, START, END, UNK = "[PAD]", "[START]", "[END]", "[UNK]"
RESERVED_TOKENS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = range(len(RESERVED_TOKENS))

# Files of a trained model folder and of the exports.
METADATA_FILE = "keras_attention.json"  # task, versions, decoding: in every model folder
MODEL_FILE = "model.keras"  # the Keras model of a trained model folder
SAVED_MODEL_FILE = "saved_model.pb"  # marks a SavedModel (version) folder
TFLITE_MODEL_FILE = "model.tflite"
CTRANSLATE2_MODEL_FILE = "model.bin"
# Files of a training run folder.
CONFIG_FILE = "config.yaml"  # the run's config, as train read it
TRAINING_METADATA_FILE = "training_metadata.json"  # the finished epochs, for resuming

# Choices.
TASKS = ("translation", "summarization")
TOKENIZER_TYPES = ("sentencepiece", "wordpiece", "word", "char")
NORMALIZATION_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
SUBWORD_MODEL_TYPES = ("unigram", "bpe")  # SentencePiece's --model_type
CORPUS_FORMATS = ("aligned", "tsv", "jsonl", "dates")
HOLDOUT_SPLITS = ("train", "validation", "test")
TOO_LONG_POLICIES = ("drop", "truncate")
POSITION_ENCODINGS = ("sinusoidal", "learned")
SCHEDULES = ("noam", "cosine", "constant")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DISTRIBUTIONS = ("default", "mirrored", "multi_worker")
STRATEGIES = ("greedy", "beam", "sample")  # decoding strategies
BEAM_STOPPINGS = ("early", "exact")
EXPORT_FORMATS = ("saved_model", "tflite", "ctranslate2")
TFLITE_QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
TFLITE_IO = ("text", "ids")
# CTranslate2's --quantization values ("none": the float32 weights).
CTRANSLATE2_QUANTIZATIONS = ("none", "int8", "int8_float32", "int16", "float16", "bfloat16")
ATTENTION_KINDS = ("cross", "self", "encoder")
METRICS = ("bleu", "chrf", "rouge", "exact")
# sacreBLEU tokenizers that need no extra package or download.
BLEU_TOKENIZERS = ("13a", "intl", "zh", "char", "none")
