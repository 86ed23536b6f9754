"""What a training run needs: one frozen ``TrainConfig`` of sections.

A config file (``keras_attention.training.config_loader.load_config``) is a
mapping of sections (every key is optional except ``data.train``)::

    task: translation               # or summarization
    data:
      train: {format: aligned, source: train.en.gz, target: train.de.gz}
      validation: {format: aligned, source: val.en.gz, target: val.de.gz}
      test: {format: aligned, source: test.en.gz, target: test.de.gz}
    vocabulary: {type: sentencepiece, size: 8000, shared: false}
    model: {preset: small, changes: {dropout: 0.2}}
    batching: {batch_tokens: 4096, max_source_tokens: 128, max_target_tokens: 128}
    optimizer: {learning_rate: 5.0e-4, schedule: noam, warmup_steps: 4000}
    training: {epochs: 10, label_smoothing: 0.1, precision: float32, max_steps: null,
               time_limit_minutes: null}
    evaluation: {every_n_epochs: 1, max_sentences: 500, decoding: {strategy: greedy}}
    output: {directory: runs/multi30k, keep_checkpoints: 3}

Each section is a frozen dataclass below (``batching`` is
``keras_attention.data.BatchingConfig``, ``evaluation.decoding`` is
``keras_attention.decoding.DecodingConfig``) that checks its values in
``__post_init__``. The loader makes a section that has a ``default_factory``
by calling that factory with the file's keys, so a section given in part
and one left out get the same defaults (``training_batching``).
"""

import dataclasses
import os

from keras_attention import validation
from keras_attention.constants import (
    CORPUS_FORMATS,
    DISTRIBUTIONS,
    HOLDOUT_SPLITS,
    NORMALIZATION_FORMS,
    PRECISIONS,
    SCHEDULES,
    SUBWORD_MODEL_TYPES,
    TASKS,
    TOKENIZER_TYPES,
)
from keras_attention.data.batching import BatchingConfig
from keras_attention.data.readers import (
    aligned_pairs,
    check_holdout,
    jsonl_pairs,
    memory_pairs,
    split_pairs,
    tsv_pairs,
)
from keras_attention.data.synthetic import date_pairs
from keras_attention.decoding.generate import DecodingConfig
from keras_attention.models.presets import get_preset

# The training pipeline's batching when the config names neither batch key.
DEFAULT_BATCH_TOKENS = 4096


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """One corpus, read with ``keras_attention.data.readers``.

    ``format``: ``aligned`` (``source`` + ``target`` line-aligned files),
    ``tsv`` (``path``, ``source_column``, ``target_column``, ``skip_header``),
    ``jsonl`` (``path``, ``source_field``, ``target_field``) or ``dates``
    (``size`` generated date pairs from ``seed``, nothing read).
    ``limit``: read at most this many records (of the split, with ``split``).

    ``split``: ``train``, ``validation`` or ``test`` reads one part of a fixed
    hash holdout of the file (``keras_attention.data.readers.split_pairs``): a
    pair is in ``test`` when ``crc32(normalized source) % 100 <
    test_percent``, in ``validation`` for the next ``validation_percent``
    buckets, else in ``train``. One source sentence is never in two splits.
    Corpora of a ``data`` section that read the same file with a ``split``
    must use different splits and the same percentages.
    """

    format: str = "aligned"
    source: str | None = None
    target: str | None = None
    path: str | None = None
    source_column: int = 0
    target_column: int = 1
    skip_header: bool = False
    source_field: str | None = None
    target_field: str | None = None
    limit: int | None = None
    size: int = 1000
    seed: int = 0
    split: str | None = None
    test_percent: int = 2
    validation_percent: int = 2

    def __post_init__(self):
        validation.check_choice("format", self.format, CORPUS_FORMATS)
        needed = {
            "aligned": ("source", "target"),
            "tsv": ("path",),
            "jsonl": ("path", "source_field", "target_field"),
            "dates": (),
        }[self.format]
        for name in needed:
            if getattr(self, name) is None:
                raise ValueError(f"{name} is missing; format {self.format} needs {', '.join(needed)}.")
        for name in ("source", "target", "path"):
            path = getattr(self, name)
            if name in needed and not os.path.exists(path):
                raise FileNotFoundError(f"{name}: file '{path}' not found; check the path.")
        validation.check_positive_int("limit", self.limit, optional=True)
        validation.check_positive_int("size", self.size)
        if self.split is not None:
            check_holdout(self.split, self.test_percent, self.validation_percent)

    def pairs(self):
        """The corpus (its ``split``, if set) as a ``PairSource``."""
        if self.split is None:
            return self._reader(self.limit)
        return split_pairs(self._reader(None), self.split, self.test_percent,
                           self.validation_percent, limit=self.limit)

    def _reader(self, limit):
        if self.format == "aligned":
            return aligned_pairs(self.source, self.target, limit=limit)
        if self.format == "tsv":
            return tsv_pairs(self.path, self.source_column, self.target_column,
                             skip_header=self.skip_header, limit=limit)
        if self.format == "jsonl":
            return jsonl_pairs(self.path, self.source_field, self.target_field, limit=limit)
        pairs = date_pairs(self.size, seed=self.seed)[:limit]
        return memory_pairs(pairs, name=f"dates(size={self.size}, seed={self.seed})")

    @property
    def paths(self):
        """The files the corpus reads (none for ``dates``)."""
        if self.format == "dates":
            return ()
        return (self.source, self.target) if self.format == "aligned" else (self.path,)

    @property
    def files(self):
        """What the corpus reads: same ``files``, same pairs before ``split``."""
        if self.format == "dates":
            return ("dates", self.size, self.seed)
        return (self.format, *(os.path.abspath(p) for p in self.paths))


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The training corpus, an optional validation corpus (early stopping,
    best checkpoint) and an optional test corpus (``evaluate_test_set``,
    ``benchmarks/quality.py``; never read by ``train``)."""

    train: CorpusConfig | None = None
    validation: CorpusConfig | None = None
    test: CorpusConfig | None = None

    def __post_init__(self):
        if self.train is None:
            raise ValueError(
                "train is missing; name the training corpus, e.g. "
                "train: {format: tsv, path: pairs.tsv}."
            )
        _check_holdouts({name: getattr(self, name) for name in HOLDOUT_SPLITS})


def _check_holdouts(corpora):
    """Corpora that read the same file with a ``split`` must take different
    splits of one holdout, so no pair is in two of them."""
    named = [(name, corpus) for name, corpus in corpora.items() if corpus is not None]
    for i, (name, corpus) in enumerate(named):
        for other_name, other in named[:i]:
            if corpus.files != other.files or (corpus.split is None and other.split is None):
                continue
            if corpus.split is None or other.split is None:
                missing = name if corpus.split is None else other_name
                raise ValueError(
                    f"{missing} reads the same file as "
                    f"data.{other_name if missing == name else name} but has no split; set "
                    f"data.{missing}.split so no pair is in both."
                )
            if corpus.split == other.split:
                raise ValueError(
                    f"{name} and data.{other_name} both read split {corpus.split} of the "
                    f"same file; give data.{name} another split."
                )
            for percent in ("test_percent", "validation_percent"):
                if getattr(corpus, percent) != getattr(other, percent):
                    raise ValueError(
                        f"{name}.{percent}={getattr(corpus, percent)} differs from "
                        f"data.{other_name}.{percent}={getattr(other, percent)} on the same "
                        "file; use one holdout for both."
                    )


@dataclasses.dataclass(frozen=True)
class VocabularyConfig:
    """Tokenizers: built from the training corpus, or read from files.

    ``type``: ``sentencepiece``, ``wordpiece``, ``word`` or ``char``.
    ``size``: vocabulary size, reserved tokens included (subwords; most
    frequent words for ``word``; ignored for ``char``). ``shared``: one
    vocabulary learned from both sides. ``source_file`` / ``target_file``:
    prebuilt vocabularies of ``type`` (``keras-attention vocab``) instead of
    building; with ``shared``, ``source_file`` alone serves both sides.
    """

    type: str = "sentencepiece"
    size: int = 8000
    shared: bool = False
    lowercase: bool = False
    normalization: str | None = None
    model_type: str = "unigram"
    source_file: str | None = None
    target_file: str | None = None

    def __post_init__(self):
        validation.check_choice("type", self.type, TOKENIZER_TYPES)
        validation.check_positive_int("size", self.size)
        if self.normalization is not None:
            validation.check_choice("normalization", self.normalization, NORMALIZATION_FORMS)
            if self.type in ("word", "char"):
                raise ValueError(
                    f"normalization is only available for the subword types; remove it "
                    f"or use type sentencepiece/wordpiece (got type {self.type})."
                )
        validation.check_choice("model_type", self.model_type, SUBWORD_MODEL_TYPES)
        if self.target_file is not None and self.source_file is None:
            raise ValueError("source_file is missing; target_file needs a source_file too.")
        if self.source_file is not None and self.target_file is None and not self.shared:
            raise ValueError(
                "target_file is missing; give both files, or set shared: true to use "
                "source_file for both sides."
            )
        for name in ("source_file", "target_file"):
            path = getattr(self, name)
            if path is not None and not os.path.exists(path):
                raise FileNotFoundError(
                    f"{name}: file '{path}' not found; build one with 'keras-attention vocab'."
                )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A ``Transformer`` preset and ``changes`` to its ``TransformerConfig``
    (vocabulary sizes come from the tokenizers). ``init_from``: a trained
    model folder to start from (fine-tuning, ``keras_attention.training.init_from``:
    its vocabulary and weights; the preset and changes must give its shape)."""

    preset: str = "small"
    changes: dict = dataclasses.field(default_factory=dict)
    init_from: str | None = None

    def __post_init__(self):
        if self.init_from is not None and (not isinstance(self.init_from, str)
                                           or not self.init_from):
            raise ValueError(
                f"init_from must be a model folder path or null, got {self.init_from!r}."
            )
        for name in ("encoder_vocabulary_size", "decoder_vocabulary_size"):
            if name in self.changes:
                raise ValueError(
                    f"changes.{name} is set by the tokenizers; remove it and set "
                    "vocabulary.size instead."
                )
        self.transformer_config(8000, 8000)  # validates preset and changes

    def transformer_config(self, encoder_vocabulary_size, decoder_vocabulary_size):
        """The ``TransformerConfig`` for these vocabulary sizes."""
        try:
            return get_preset(
                self.preset,
                encoder_vocabulary_size=encoder_vocabulary_size,
                decoder_vocabulary_size=decoder_vocabulary_size,
                **self.changes,
            )
        except (ValueError, TypeError) as error:
            field = "preset" if "preset" in str(error) else "changes"
            raise ValueError(f"{field}: {error}") from None


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Adam with a learning-rate schedule.

    ``schedule``: ``noam`` (linear warmup to ``learning_rate`` over
    ``warmup_steps``, then ``learning_rate * sqrt(warmup_steps / step)``),
    ``cosine`` (linear warmup, then cosine decay to 0 at the last step) or
    ``constant``. ``clipnorm``: clip each gradient to this norm.
    ``gradient_accumulation_steps``: apply the summed gradients of this many
    batches at once (a larger effective batch; ``null`` or 1: every batch).
    ``optimizer.iterations`` then counts updates, while the schedules count
    batches.
    """

    learning_rate: float = 5e-4
    schedule: str = "noam"
    warmup_steps: int = 4000
    beta_1: float = 0.9
    beta_2: float = 0.98
    epsilon: float = 1e-9
    clipnorm: float | None = None
    gradient_accumulation_steps: int | None = None

    def __post_init__(self):
        validation.check_positive_number("learning_rate", self.learning_rate, what="positive")
        validation.check_choice("schedule", self.schedule, SCHEDULES)
        validation.check_non_negative_int("warmup_steps", self.warmup_steps)
        if self.schedule == "noam" and self.warmup_steps == 0:
            raise ValueError(
                "warmup_steps must be at least 1 for the noam schedule, got 0; use schedule "
                "cosine or constant for no warmup."
            )
        for name in ("beta_1", "beta_2"):
            validation.check_rate(name, getattr(self, name), what="in [0, 1)")
        validation.check_positive_number("epsilon", self.epsilon, what="positive")
        validation.check_positive_number("clipnorm", self.clipnorm, optional=True,
                                         what="positive or null")
        validation.check_positive_int("gradient_accumulation_steps",
                                      self.gradient_accumulation_steps, optional=True)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How ``model.fit`` runs.

    ``precision``: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``
    (with loss scaling). ``jit_compile``: compile the train step with XLA.
    ``distribution``: ``default`` (one device), ``mirrored`` (all local
    GPUs) or ``multi_worker``. ``early_stopping_patience``: stop after this
    many evaluations without a better validation score (needs
    ``data.validation``; ``null``: never stop early).

    Bounds (``null``: none): ``max_steps`` stops after this many optimizer
    steps (``optimizer.iterations``, what ``TrainResult.steps`` counts:
    batches, or updates with gradient accumulation; a resumed run counts its
    earlier steps), ``time_limit_minutes`` after the first step that ends
    past this many minutes of ``fit`` in this process. Either stops at the
    end of a step; that (partial) epoch is then validated and checkpointed
    and the model folder written as after a full run. With ``max_steps`` the
    learning-rate schedule (cosine decay) ends there, unless the epochs end
    first.
    """

    epochs: int = 10
    label_smoothing: float = 0.1
    precision: str = "float32"
    jit_compile: bool = False
    seed: int = 0
    distribution: str = "default"
    early_stopping_patience: int | None = None
    max_steps: int | None = None
    time_limit_minutes: float | None = None
    lora_rank: int | None = None

    def __post_init__(self):
        validation.check_positive_int("epochs", self.epochs)
        validation.check_positive_int("lora_rank", self.lora_rank, optional=True)
        validation.check_positive_int("max_steps", self.max_steps, optional=True)
        validation.check_positive_number("time_limit_minutes", self.time_limit_minutes,
                                         optional=True, what="positive or null")
        if self.time_limit_minutes is not None and self.distribution == "multi_worker":
            raise ValueError(
                "time_limit_minutes cannot bound a multi_worker run (each worker's clock "
                "would stop it at another step); use max_steps instead."
            )
        validation.check_rate("label_smoothing", self.label_smoothing, what="in [0, 1)")
        validation.check_choice("precision", self.precision, PRECISIONS)
        validation.check_choice("distribution", self.distribution, DISTRIBUTIONS)
        validation.check_positive_int("early_stopping_patience", self.early_stopping_patience,
                                      optional=True)


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Validation decoding during training (needs ``data.validation``).

    Every ``every_n_epochs`` epochs the first ``max_sentences`` validation
    sources are decoded (``decoding``; ``batch_size`` sentences at a time) and
    scored: BLEU for translation (``val_bleu``), ROUGE-1/2/L/Lsum for
    summarization (``val_rouge1``, ``val_rouge2``, ``val_rougeL``,
    ``val_rougeLsum``; the best
    checkpoint follows ``val_rougeL``). ``examples`` source/reference/hypothesis
    triples and ``attention_images`` attention heatmaps go to TensorBoard.
    """

    every_n_epochs: int = 1
    max_sentences: int = 500
    batch_size: int = 64
    examples: int = 3
    attention_images: int = 1
    decoding: DecodingConfig = dataclasses.field(default_factory=DecodingConfig)

    def __post_init__(self):
        for name in ("every_n_epochs", "max_sentences", "batch_size"):
            validation.check_positive_int(name, getattr(self, name))
        for name in ("examples", "attention_images"):
            validation.check_non_negative_int(name, getattr(self, name))


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """Where the run goes (see ``keras_attention.training.train`` for the
    layout); ``keep_checkpoints``: how many epoch checkpoints to keep."""

    directory: str = "runs/run"
    tensorboard: bool = True
    keep_checkpoints: int = 3

    def __post_init__(self):
        if not isinstance(self.directory, str) or not self.directory:
            raise ValueError(f"directory must be a folder path, got {self.directory!r}.")
        validation.check_positive_int("keep_checkpoints", self.keep_checkpoints)


def training_batching(**fields):
    """The ``BatchingConfig`` of ``fields``, with ``batch_tokens=DEFAULT_BATCH_TOKENS``
    when they name neither ``batch_tokens`` nor ``batch_size``."""
    if fields.get("batch_tokens") is None and fields.get("batch_size") is None:
        fields.setdefault("batch_tokens", DEFAULT_BATCH_TOKENS)
    return BatchingConfig(**fields)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything ``train`` needs; see the module docstring for the file form."""

    data: DataConfig | None = None
    task: str = "translation"
    vocabulary: VocabularyConfig = dataclasses.field(default_factory=VocabularyConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    batching: BatchingConfig = dataclasses.field(default_factory=training_batching)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)

    def __post_init__(self):
        if self.data is None:
            raise ValueError(
                "data.train is missing; name the training corpus, e.g. "
                "data: {train: {format: tsv, path: pairs.tsv}}."
            )
        validation.check_choice("task", self.task, TASKS)
        if self.training.lora_rank is not None and self.model.init_from is None:
            raise ValueError(
                "training.lora_rank trains LoRA adapters on a trained model; set "
                "model.init_from (train --init-from MODEL_DIR) too."
            )
        transformer = self.model.transformer_config(8000, 8000)
        if transformer.share_embeddings and not self.vocabulary.shared and (
            self.vocabulary.source_file is None and self.model.init_from is None
        ):
            raise ValueError(
                f"model preset '{self.model.preset}' shares one embedding between source "
                "and target (share_embeddings), so it needs one vocabulary; set "
                "vocabulary.shared: true."
            )
        max_length = transformer.max_sequence_length
        if max_length < self.batching.max_length:
            raise ValueError(
                f"model.changes.max_sequence_length must be at least {self.batching.max_length} "
                f"(max(batching.max_source_tokens, batching.max_target_tokens + 1)), got "
                f"{max_length}; raise it or lower the batching limits."
            )
        decoding_length = self.evaluation.decoding.max_length
        if decoding_length is not None and decoding_length > max_length - 1:
            raise ValueError(
                f"evaluation.decoding.max_length={decoding_length} exceeds what the model can "
                f"decode ({max_length - 1} = model.changes.max_sequence_length - 1); lower it or "
                "raise max_sequence_length."
            )
        if self.training.early_stopping_patience is not None and self.data.validation is None:
            raise ValueError(
                "training.early_stopping_patience needs data.validation; add a validation "
                "corpus or remove early_stopping_patience."
            )

    @property
    def monitor(self):
        """The validation score that picks the best checkpoint."""
        return "val_bleu" if self.task == "translation" else "val_rougeL"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Plain dicts/lists/scalars (what ``save_config`` writes)."""
        return _plain(dataclasses.asdict(self))

    def with_absolute_paths(self):
        """This config with every file and folder path absolute and
        normalized (``os.path.abspath``: from the current folder, no trailing
        slash), so two spellings of one path compare equal."""
        data = self.data
        corpora = {name: _absolute(getattr(data, name), ("source", "target", "path"))
                   for name in ("train", "validation", "test")}
        return self.replace(
            data=dataclasses.replace(data, **corpora),
            vocabulary=_absolute(self.vocabulary, ("source_file", "target_file")),
            batching=_absolute(self.batching, ("cache_file",)),
            model=_absolute(self.model, ("init_from",)),
            output=_absolute(self.output, ("directory",)),
        )


def _absolute(section, names):
    """``section`` (a config dataclass or ``None``) with the paths in its
    fields ``names`` absolute; unset (``None``, ``""``) ones stay unset."""
    if section is None:
        return None
    paths = {name: os.path.abspath(getattr(section, name)) for name in names
             if getattr(section, name)}
    return dataclasses.replace(section, **paths)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
