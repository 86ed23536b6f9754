"""What a training run needs, as one frozen ``TrainConfig`` read from YAML/JSON.

    config = load_config("run.yaml", overrides=["training.epochs=3"])
    save_config(config, "runs/x/config.yaml")

A config file is a mapping of sections (every key is optional except
``data.train``)::

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
``keras_attention.decoding.DecodingConfig``). Errors are one line naming the
key: ``unknown key 'training.epoch' in run.yaml; did you mean
'training.epochs'?``, ``training.epochs must be an integer, got 'three'``.
"""

import dataclasses
import difflib
import os
import types
import typing

import yaml

from keras_attention.data.batching import BatchingConfig
from keras_attention.data.readers import (
    HOLDOUT_SPLITS,
    aligned_pairs,
    check_holdout,
    jsonl_pairs,
    memory_pairs,
    split_pairs,
    tsv_pairs,
)
from keras_attention.data.synthetic import date_pairs
from keras_attention.data.tokenizer_files import TOKENIZER_TYPES
from keras_attention.atomic import write_atomically
from keras_attention.decoding.generate import DecodingConfig
from keras_attention.models.presets import get_preset
from keras_attention.models.saving import TASKS

CORPUS_FORMATS = ("aligned", "tsv", "jsonl", "dates")
SCHEDULES = ("noam", "cosine", "constant")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DISTRIBUTIONS = ("default", "mirrored", "multi_worker")
NORMALIZATION_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
MODEL_TYPES = ("unigram", "bpe")
# The training pipeline's batching when the config names neither batch key.
DEFAULT_BATCH_TOKENS = 4096


def _positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")


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
        _choice("format", self.format, CORPUS_FORMATS)
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
        _positive_int("limit", self.limit, allow_none=True)
        _positive_int("size", self.size)
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
        _choice("type", self.type, tuple(TOKENIZER_TYPES))
        _positive_int("size", self.size)
        if self.normalization is not None:
            _choice("normalization", self.normalization, NORMALIZATION_FORMS)
            if self.type in ("word", "char"):
                raise ValueError(
                    f"normalization is only available for the subword types; remove it "
                    f"or use type sentencepiece/wordpiece (got type {self.type})."
                )
        _choice("model_type", self.model_type, MODEL_TYPES)
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
    (vocabulary sizes come from the tokenizers)."""

    preset: str = "small"
    changes: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
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
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}.")
        _choice("schedule", self.schedule, SCHEDULES)
        if isinstance(self.warmup_steps, bool) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}.")
        if self.schedule == "noam" and self.warmup_steps == 0:
            raise ValueError(
                "warmup_steps must be at least 1 for the noam schedule, got 0; use schedule "
                "cosine or constant for no warmup."
            )
        for name in ("beta_1", "beta_2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}.")
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {self.epsilon!r}.")
        if self.clipnorm is not None and not self.clipnorm > 0:
            raise ValueError(f"clipnorm must be positive or null, got {self.clipnorm!r}.")
        _positive_int("gradient_accumulation_steps", self.gradient_accumulation_steps,
                      allow_none=True)


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

    def __post_init__(self):
        _positive_int("epochs", self.epochs)
        _positive_int("max_steps", self.max_steps, allow_none=True)
        if self.time_limit_minutes is not None and not self.time_limit_minutes > 0:
            raise ValueError(
                f"time_limit_minutes must be positive or null, got {self.time_limit_minutes!r}."
            )
        if self.time_limit_minutes is not None and self.distribution == "multi_worker":
            raise ValueError(
                "time_limit_minutes cannot bound a multi_worker run (each worker's clock "
                "would stop it at another step); use max_steps instead."
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}.")
        _choice("precision", self.precision, PRECISIONS)
        _choice("distribution", self.distribution, DISTRIBUTIONS)
        _positive_int("early_stopping_patience", self.early_stopping_patience, allow_none=True)


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
            _positive_int(name, getattr(self, name))
        for name in ("examples", "attention_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}.")


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
        _positive_int("keep_checkpoints", self.keep_checkpoints)


def _default_batching():
    return BatchingConfig(batch_tokens=DEFAULT_BATCH_TOKENS)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything ``train`` needs; see the module docstring for the file form."""

    data: DataConfig | None = None
    task: str = "translation"
    vocabulary: VocabularyConfig = dataclasses.field(default_factory=VocabularyConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    batching: BatchingConfig = dataclasses.field(default_factory=_default_batching)
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
        _choice("task", self.task, TASKS)
        transformer = self.model.transformer_config(8000, 8000)
        if transformer.share_embeddings and not self.vocabulary.shared and (
            self.vocabulary.source_file is None
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


def first_difference(old, new, prefix=""):
    """The first key (in sorted order, nested keys joined with dots) whose
    value differs between the dicts ``old`` and ``new``, as ``"key: old
    there, new now"``; ``None`` when they are equal."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key}: {a!r} there, {b!r} now"
    return None


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_config(config, path):
    """Write ``config`` as YAML to ``path`` (atomically); returns ``path``."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
    write_atomically(path, text.encode("utf-8"))
    return path


# ---------------------------------------------------------------------------
# Loading: mapping -> sections, with one-line errors naming the key.
# ---------------------------------------------------------------------------


def load_config(path, overrides=()):
    """The ``TrainConfig`` in the YAML or JSON file ``path``, with
    ``overrides`` (``"training.epochs=3"``; values parsed as YAML scalars)
    applied in order."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"config file '{path}' not found; write one (see recipes/dates.yaml)."
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise ValueError(f"{path}: invalid YAML{where} ({problem}); fix the syntax.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} must hold a mapping of sections (task, data, model, ...), "
            f"got {_describe(data)}."
        )
    for override in overrides:
        _apply_override(data, override)
    return config_from_dict(data, source=path)


def config_from_dict(data, source="the config"):
    """A ``TrainConfig`` from nested dicts (``load_config`` without the file);
    ``source`` names where unknown keys came from."""
    return _build(TrainConfig, data, "", source)


def _apply_override(data, override):
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(
            f"--set {override!r}: expected KEY=VALUE, e.g. training.epochs=3."
        )
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            section = ".".join(parts[: depth + 1])
            raise ValueError(f"cannot set '{key}': '{section}' is a value, not a section.")
        node = child
    node[parts[-1]] = value


def _build(cls, data, prefix, source):
    where = prefix.rstrip(".") or "the config"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of keys, got {_describe(data)}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        if key not in names:
            raise ValueError(_unknown_key(f"{prefix}{key}", [f"{prefix}{n}" for n in names], source))
        values[key] = _convert(value, hints[key], f"{prefix}{key}", source)
    if cls is BatchingConfig and values.get("batch_tokens") is None and values.get(
        "batch_size"
    ) is None:
        values.setdefault("batch_tokens", DEFAULT_BATCH_TOKENS)
    try:
        return cls(**values)
    except TypeError as error:  # a required field is missing
        raise ValueError(f"{where}: {error}") from None
    except (ValueError, FileNotFoundError) as error:
        message = str(error)
        if not prefix:
            raise
        if message.split(" ")[0].split(":")[0].split(".")[0] in names:
            message = f"{prefix}{message}"
        else:
            message = f"{where}: {message}"
        raise type(error)(message) from None


def _unknown_key(key, known, source):
    prefix, _, name = key.rpartition(".")
    close = difflib.get_close_matches(name, [k.rpartition(".")[2] for k in known], n=1)
    if close:
        hint = f"did you mean '{prefix + '.' if prefix else ''}{close[0]}'?"
    else:
        hint = f"known keys: {', '.join(known)}."
    return f"unknown key '{key}' in {source}; {hint}"


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               dict: "a mapping"}


def _convert(value, hint, key, source):
    """``value`` checked against the type ``hint`` (and converted: lists to
    tuples, ints to floats, mappings to sections)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    optional = type(None) in options
    options = [o for o in options if o is not type(None)]
    if value is None:
        if optional:
            return None
        raise ValueError(f"{key} must be {_expected(options)}, got null.")
    for option in options:
        if dataclasses.is_dataclass(option):
            if isinstance(value, dict):
                return _build(option, value, f"{key}.", source)
            continue
        origin = typing.get_origin(option)
        if origin is tuple and isinstance(value, (list, tuple)):
            item = typing.get_args(option)[0]
            if all(_is(v, item) for v in value):
                return tuple(value)
            continue
        if _is(value, option):
            return float(value) if option is float else value
    raise ValueError(f"{key} must be {_expected(options, optional)}, got {_describe(value)}.")


def _is(value, kind):
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _expected(options, optional=False):
    names = []
    for option in options:
        if dataclasses.is_dataclass(option):
            names.append("a mapping")
        elif typing.get_origin(option) is tuple:
            names.append(f"a list of {_TYPE_NAMES[typing.get_args(option)[0]].split(' ', 1)[1]}s")
        else:
            names.append(_TYPE_NAMES.get(option, option.__name__))
    if optional:
        names.append("null")
    return " or ".join(names)


def _describe(value):
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list {value!r}"
    return repr(value)
