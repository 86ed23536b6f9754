"""``train(config)``: a ``TrainConfig`` in, a trained model folder out.

The run directory (``config.output.directory``) is laid out as
``keras_attention.training.run_layout`` says (``RunLayout``): config.yaml,
vocab/, checkpoints/, backup/, logs/ and model/, the final ``TrainedModel``
folder (the best weights with a validation set, else the last).

``training.max_steps`` / ``training.time_limit_minutes`` end the run early, at
the end of a step; the layout is the same (the stopped epoch is validated and
checkpointed, ``model/`` written) and ``TrainResult.stop_reason`` says why.

Nothing is written before the whole run is checked: config, data,
vocabulary, batches per epoch and the learning-rate schedule over them.

Running ``train`` again with the same config on a run that was killed resumes
it from the last finished epoch (``RunBackup``) and ends with the same
weights as an uninterrupted run: epoch ``e``'s batch order and dropout masks
depend on the seeds and ``e`` alone (``make_training_dataset(...,
epochs=...)``, ``EpochSeeds``). A folder whose run never finished an epoch
takes any config; ``run_directory`` says what else is refused.
"""

import dataclasses
import itertools
import json
import os
import sys
import time

import keras
import tensorflow as tf

from keras_attention.atomic import atomic_directory
from keras_attention.data.batching import make_training_dataset
from keras_attention.data.tokenizer_files import (
    TOKENIZER_TYPES,
    load_tokenizer,
    save_tokenizer,
)
from keras_attention.decoding.text import TextGenerator
from keras_attention.evaluation.attention_plots import attention_figure, figure_to_image
from keras_attention.evaluation.scoring import VALIDATION_METRICS, score_task
from keras_attention.models.saving import TrainedModel, save_trained_model
from keras_attention.models.transformer import Transformer
from keras_attention.training.callbacks import (
    PROGRESS_INTERVAL,
    BestCheckpoint,
    EpochCheckpoints,
    EpochProgress,
    EpochSeeds,
    EpochSummary,
    HistoryFile,
    LoraRestart,
    ResumableEarlyStopping,
    RunBackup,
    TrainingBudget,
    ValidationScores,
)
from keras_attention.training.distribution import (
    make_strategy,
    prepare_for_fit,
    worker_directory,
)
from keras_attention.training.init_from import init_tokenizers, initial_model
from keras_attention.training.losses import SequenceCrossEntropy
from keras_attention.training.metrics import MaskedAccuracy, Perplexity
from keras_attention.training.provenance import vocabulary_provenance, write_provenance
from keras_attention.training.run_directory import (
    RunStart,
    check_vocabulary,
    inspect_run,
    start_run,
)
from keras_attention.training.run_layout import RunLayout
from keras_attention.training.schedules import learning_rate_schedule


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What ``train`` did.

    Attributes:
        output_directory: the run directory.
        model_directory: the ``TrainedModel`` folder (``load_trained_model``).
        history: ``{metric: [value per epoch]}`` over the whole run (epochs
            before a restart included).
        epochs: epochs trained in all.
        steps: optimizer updates in all (``optimizer.iterations``).
        steps_per_epoch: batches per epoch.
        tokens_per_second: real (non-PAD) source + target tokens per second
            of training in this process.
        best: ``{"monitor", "value", "epoch"}`` of the best checkpoint, or
            ``None`` without validation.
        stop_reason: ``"max_steps"``, ``"time_limit"`` or
            ``"early_stopping"`` when the run ended before its last epoch,
            else ``None``.
        train_seconds: wall seconds of ``fit`` in this process (validation
            decoding included).
    """

    output_directory: str
    model_directory: str
    history: dict
    epochs: int
    steps: int
    steps_per_epoch: int
    tokens_per_second: float
    best: dict | None = None
    stop_reason: str | None = None
    train_seconds: float = 0.0


def train(config, verbose="auto", print_fn=print, progress_interval=PROGRESS_INTERVAL):
    """Train as ``config`` (a ``TrainConfig``) says; returns a ``TrainResult``.

    ``print_fn`` gets the one-line messages: what is trained, ``resuming at
    epoch N of M``, one summary per epoch. ``verbose``: progress within an
    epoch on stdout (``EpochProgress``; Keras' own is off): ``"auto"`` a bar
    on a terminal and a line every ``progress_interval`` seconds otherwise,
    1 the bar, 2 the lines, 0 none.
    """
    config = config.with_absolute_paths()
    strategy = make_strategy(config.training.distribution)
    layout = RunLayout(worker_directory(config.output.directory, strategy))
    start = inspect_run(layout, config)
    keras.utils.set_random_seed(config.training.seed)
    data = _prepare_data(layout, config, start, print_fn)
    run = _Run(config, layout, start, data, _compiled_model(config, data, strategy))
    _write_run_directory(run, print_fn)
    callbacks = _callbacks(run, print_fn,
                           _progress(data.tokens_per_epoch, verbose, progress_interval))
    train_seconds = _fit(run, callbacks, print_fn)
    return _save_final(run, callbacks, train_seconds)


@dataclasses.dataclass(frozen=True)
class _Data:
    """What a run trains and validates on (``_prepare_data``).

    Attributes:
        corpus: the training ``PairSource`` (``fit`` runs in its
            ``clean_errors()``).
        source_tokenizer, target_tokenizer: reused from ``vocab/`` or built.
        provenance: what they were built from, to save next to them; ``None``
            when they were reused.
        dataset: the training batches from the epoch the run starts at.
        steps_per_epoch: batches per epoch.
        tokens_per_epoch: real (non-PAD) tokens per epoch (``count_tokens``).
        validation_data: batches for Keras' validation loss, or ``None``.
        validation_pairs: the ``(source, reference)`` pairs to decode, or ``None``.
    """

    corpus: object
    source_tokenizer: object
    target_tokenizer: object
    provenance: dict | None
    dataset: tf.data.Dataset
    steps_per_epoch: int
    tokens_per_epoch: int
    validation_data: tf.data.Dataset | None
    validation_pairs: list | None


@dataclasses.dataclass(frozen=True)
class _Run:
    """A checked run: its config (absolute paths), directory, start, data and
    compiled model."""

    config: object
    layout: RunLayout
    start: RunStart
    data: _Data
    model: keras.Model


@dataclasses.dataclass(frozen=True)
class _RunCallbacks:
    """The callbacks of ``fit`` in their order (``all``), and those whose
    state ``train`` reads afterwards."""

    all: list
    budget: TrainingBudget
    summary: EpochSummary
    history: HistoryFile
    best: BestCheckpoint | None
    early_stopping: ResumableEarlyStopping | None

    @property
    def stop_reason(self):
        """Why the run ended before its last epoch (``TrainResult.stop_reason``)."""
        if self.budget.stop_reason is not None:
            return self.budget.stop_reason
        if self.early_stopping is not None and self.early_stopping.stopped_epoch:
            return "early_stopping"
        return None

    @property
    def best_state(self):
        """``{"monitor", "value", "epoch"}`` of the best checkpoint, or ``None``."""
        if self.best is None or self.best.best is None:
            return None
        return {"monitor": self.best.monitor, "value": self.best.best,
                "epoch": self.best.best_epoch}


def _prepare_data(layout, config, start, print_fn):
    """The run's ``_Data``; reads the corpora and builds or loads the
    tokenizers, writes nothing."""
    corpus = config.data.train.pairs()
    stats = corpus.scan()  # clean one-line reading errors before TensorFlow
    source, target, provenance = _tokenizers(layout, config, start, corpus, print_fn)
    print_fn(
        f"training pairs: {stats.pairs} ({corpus.name}); vocabularies: "
        f"{source.vocabulary_size} source, {target.vocabulary_size} target tokens"
    )
    epochs = config.training.epochs
    # A killed run that finished its last epoch resumes with nothing to train.
    first_epoch = min(start.initial_epoch, epochs - 1)
    with corpus.clean_errors():
        dataset = make_training_dataset(corpus.dataset(), source, target, config.batching,
                                        epochs=epochs, initial_epoch=first_epoch)
        steps_per_epoch = int(dataset.cardinality()) // (epochs - first_epoch)
        tokens_per_epoch = count_tokens(dataset.take(steps_per_epoch))
    return _Data(corpus, source, target, provenance, dataset, steps_per_epoch,
                 tokens_per_epoch, *_validation(config, source, target))


def _compiled_model(config, data, strategy):
    """The compiled ``Transformer``, its optimizer built, in ``strategy``'s
    scope. Raises ``ValueError`` for a schedule that does not fit the run
    (``training_steps``)."""
    total_steps = training_steps(config, data.steps_per_epoch)
    with strategy.scope():
        model = build_model(config, data.source_tokenizer, data.target_tokenizer)
        if config.training.lora_rank is not None:
            model.enable_lora(config.training.lora_rank)
        model.compile(
            optimizer=make_optimizer(config, total_steps),
            loss=SequenceCrossEntropy(config.training.label_smoothing),
            metrics=[MaskedAccuracy(), Perplexity()],
            jit_compile=config.training.jit_compile,
        )
        # Built here, not in the first step: a tf.function that creates
        # variables is traced twice (seconds of tracing at every start).
        model.optimizer.build(model.trainable_variables)
        prepare_for_fit(model, strategy)
    return model


def _write_run_directory(run, print_fn):
    """Everything is checked: now the run directory is written
    (``start_run``, and ``vocab/`` when the tokenizers are new)."""
    config, layout, start, data = run.config, run.layout, run.start, run.data
    if start.replaced:
        print_fn(f"output directory '{layout.directory}' held an attempt with another config "
                 f"that finished no epoch ({start.replaced}); starting over")
    start_run(layout, config, start)
    if data.provenance is not None:
        _save_tokenizers(layout, data.source_tokenizer, data.target_tokenizer, data.provenance)
    print_fn(
        f"model: preset '{config.model.preset}', {run.model.count_params():,} parameters, "
        f"{config.training.precision}; {data.steps_per_epoch} steps per epoch"
    )


def _callbacks(run, print_fn, progress):
    """The run's ``_RunCallbacks``; ``progress`` is an ``EpochProgress`` or ``None``."""
    config, layout = run.config, run.layout
    training = config.training
    budget = TrainingBudget(training.max_steps, None if training.time_limit_minutes is None
                            else 60.0 * training.time_limit_minutes)
    summary = EpochSummary(run.data.tokens_per_epoch, print_fn=print_fn)
    history = HistoryFile(layout.history)
    validation = _validation_scores(run) if run.data.validation_pairs else None
    best = None if validation is None else BestCheckpoint(layout.best, config.monitor, mode="max")
    early_stopping = None
    if training.early_stopping_patience is not None:
        early_stopping = ResumableEarlyStopping(history, monitor=config.monitor, mode="max",
                                                patience=training.early_stopping_patience)
    ordered = [
        budget,  # first: the callbacks after it see a stop
        EpochSeeds(),
        validation,
        progress,  # after validation: the bar stays up while it decodes
        summary,
        EpochCheckpoints(layout.checkpoints, config.output.keep_checkpoints),
        best,
        history,
        keras.callbacks.TerminateOnNaN(),
        early_stopping,
        keras.callbacks.TensorBoard(layout.logs, profile_batch=0)
        if config.output.tensorboard else None,
        # Last, so the saved state includes everything the epoch's callbacks did.
        RunBackup(layout.backup),
        LoraRestart(training.seed) if training.lora_rank is not None else None,
    ]
    return _RunCallbacks([c for c in ordered if c is not None], budget, summary, history,
                         best, early_stopping)


def _validation_scores(run):
    """The ``ValidationScores`` callback over ``run.data.validation_pairs``."""
    config, data, model = run.config, run.data, run.model
    evaluation = config.evaluation
    sources, references = zip(*data.validation_pairs)
    return ValidationScores(
        TextGenerator(model, data.source_tokenizer, data.target_tokenizer,
                      config=evaluation.decoding, truncate=True),
        sources, references, _validation_scorer(config.task),
        every_n_epochs=evaluation.every_n_epochs,
        batch_size=evaluation.batch_size,
        log_dir=run.layout.validation_logs if config.output.tensorboard else None,
        examples=evaluation.examples,
        attention_image=_attention_image(model, data.source_tokenizer, data.target_tokenizer,
                                         config.task),
        attention_images=evaluation.attention_images,
    )


def _fit(run, callbacks, print_fn):
    """``model.fit`` from the epoch the run starts at; returns its wall seconds."""
    epochs, initial_epoch = run.config.training.epochs, run.start.initial_epoch
    if initial_epoch >= epochs:
        print_fn(f"all {epochs} epochs had finished; writing the model")
    elif initial_epoch:
        print_fn(f"resuming at epoch {initial_epoch + 1} of {epochs}")
    started = time.perf_counter()
    with run.data.corpus.clean_errors():
        # initial_epoch comes from backup/training_metadata.json, whose
        # weights RunBackup restores.
        run.model.fit(run.data.dataset, epochs=epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=run.data.steps_per_epoch,
                      validation_data=run.data.validation_data,
                      callbacks=callbacks.all, verbose=0, shuffle=False)
    seconds = time.perf_counter() - started
    if callbacks.stop_reason is not None:
        print_fn(f"stopped early ({callbacks.stop_reason}) after "
                 f"{len(callbacks.history.epochs)} epoch(s)")
    return seconds


def _save_final(run, callbacks, train_seconds):
    """``model/``: the best weights (with validation) or the last; returns
    the ``TrainResult``."""
    config, model, data = run.config, run.model, run.data
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    best = callbacks.best_state
    if best is not None:
        model.load_weights(run.layout.best)  # (optimizer state too: steps are counted above)
    training = {"epochs": len(callbacks.history.epochs), "steps": steps,
                "steps_per_epoch": data.steps_per_epoch, "best": best,
                "stop_reason": callbacks.stop_reason}
    # An uncompiled copy: the folder holds the model for inference, without
    # optimizer state or training-only classes a loader would have to import.
    final = Transformer(model.config, dtype=config.training.precision)
    if config.training.lora_rank is None:
        final.set_weights(model.get_weights())
    else:
        _merge_lora_into(final, model, run.layout)
    trained = TrainedModel(final, data.source_tokenizer, data.target_tokenizer, task=config.task)
    save_trained_model(trained, run.layout.model, extra={
        # translate / summarize / evaluate start from the recipe's decoding.
        "decoding": config.evaluation.decoding.changes(),
        "training": dict(training, config=config.to_dict()),
    })
    return TrainResult(output_directory=run.layout.directory,
                       model_directory=run.layout.model, history=callbacks.history.history,
                       tokens_per_second=callbacks.summary.tokens_per_second,
                       train_seconds=train_seconds, **training)


def _merge_lora_into(final, model, layout):
    """``final`` (a plain ``Transformer``) with ``model``'s weights, its LoRA
    adapters merged into the kernels (Keras merges them when it saves)."""
    path = os.path.join(layout.directory, "lora_merged.weights.h5")
    try:
        model.save_weights(path)
        final.load_weights(path)
    finally:
        if os.path.exists(path):
            os.remove(path)


def count_tokens(dataset):
    """Real (non-PAD) positions of ``encoder_tokens`` plus labels over one
    epoch of a ``make_training_dataset`` dataset."""

    def count(inputs, labels):
        return tf.math.count_nonzero(inputs["encoder_tokens"]) + tf.math.count_nonzero(labels)

    return int(dataset.map(count).reduce(tf.constant(0, tf.int64), lambda a, b: a + b))


def _tokenizers(layout, config, start, corpus, print_fn):
    """``(source, target, provenance)``: the tokenizers in ``vocab/`` when
    they fit the data (``check_vocabulary``; ``provenance`` is then
    ``None``), else built in memory from ``corpus`` with the provenance to
    save next to them."""
    reuse, note = check_vocabulary(layout, config, start)
    if note:
        print_fn(note)
    if reuse:
        return load_tokenizer(layout.vocab, "source"), load_tokenizer(layout.vocab, "target"), None
    provenance = vocabulary_provenance(config)  # the files as they are before reading them
    if config.model.init_from is not None:
        return (*init_tokenizers(config.model.init_from), provenance)
    return (*build_tokenizers(config.vocabulary, corpus), provenance)


def _validation(config, source_tokenizer, target_tokenizer):
    """``(validation_data, validation_pairs)``: batches for Keras' validation
    loss and the first ``evaluation.max_sentences`` pairs to decode; both
    ``None`` without ``data.validation``."""
    if config.data.validation is None:
        return None, None
    corpus = config.data.validation.pairs()
    corpus.scan()
    pairs = list(itertools.islice(corpus, config.evaluation.max_sentences))
    with corpus.clean_errors():
        data = make_training_dataset(
            corpus.dataset(), source_tokenizer, target_tokenizer,
            dataclasses.replace(config.batching, shuffle_buffer=0),
        )
    return data, pairs


def _save_tokenizers(layout, source, target, provenance):
    """``vocab/``: both tokenizers and what they were built from, replacing
    what was there in one step."""
    with atomic_directory(layout.vocab) as directory:
        save_tokenizer(source, directory, "source")
        save_tokenizer(target, directory, "target")
        write_provenance(directory, provenance)


def build_tokenizers(vocabulary, corpus):
    """Source and target tokenizers as a ``VocabularyConfig`` says, learned
    from ``corpus`` (a ``PairSource``) unless it names prebuilt files."""
    v = vocabulary
    cls = TOKENIZER_TYPES[v.type]
    options = {"lowercase": v.lowercase}
    if v.type in ("sentencepiece", "wordpiece"):
        options["normalization"] = v.normalization
    if v.source_file is not None:
        source = cls.load(v.source_file, **options)
        target = cls.load(v.target_file, **options) if v.target_file else source
        return source, target
    if v.type in ("sentencepiece", "wordpiece"):
        options["vocabulary_size"] = v.size
    if v.type == "sentencepiece":
        options["model_type"] = v.model_type
    if v.type == "word":
        options["max_size"] = v.size

    def texts(side):
        for pair in corpus:
            yield from (pair if side is None else (pair[side],))

    if v.shared:
        shared = cls.build(texts(None), **options)
        return shared, shared
    return cls.build(texts(0), **options), cls.build(texts(1), **options)


def training_steps(config, steps_per_epoch):
    """The batches the run trains (what the learning-rate schedule counts):
    ``training.epochs`` epochs, or fewer with ``training.max_steps``. Raises
    ``ValueError`` when the cosine schedule's warmup would not end before
    them."""
    total = steps_per_epoch * config.training.epochs
    bound = f"{config.training.epochs} epoch(s) of {steps_per_epoch} steps"
    if config.training.max_steps is not None:
        # The schedules count batches; max_steps counts optimizer updates.
        accumulation = config.optimizer.gradient_accumulation_steps or 1
        if config.training.max_steps * accumulation < total:
            total = config.training.max_steps * accumulation
            bound = f"training.max_steps={config.training.max_steps}"
            if accumulation > 1:
                bound += f" updates of {accumulation} batches"
    warmup = config.optimizer.warmup_steps
    if config.optimizer.schedule == "cosine" and warmup >= total:
        raise ValueError(
            f"optimizer.warmup_steps={warmup} is not below the {total} steps this run trains "
            f"({bound}); lower optimizer.warmup_steps or train for more steps."
        )
    return total


def build_model(config, source_tokenizer, target_tokenizer):
    """The ``Transformer`` of ``config.model`` for these tokenizers, in
    ``config.training.precision`` (passed to the model, so the global Keras
    dtype policy is left alone); with ``model.init_from`` the weights of that
    folder (``init_from.initial_model``)."""
    transformer_config = config.model.transformer_config(
        source_tokenizer.vocabulary_size, target_tokenizer.vocabulary_size
    )
    if config.model.init_from is not None:
        return initial_model(transformer_config, config.model.init_from,
                             dtype=config.training.precision)
    return Transformer(transformer_config, dtype=config.training.precision)


def make_optimizer(config, total_steps):
    """Adam with ``config.optimizer``'s schedule, clipping and gradient
    accumulation; wrapped in a ``LossScaleOptimizer`` for ``mixed_float16``."""
    c = config.optimizer
    optimizer = keras.optimizers.Adam(
        learning_rate=learning_rate_schedule(c, total_steps),
        beta_1=c.beta_1,
        beta_2=c.beta_2,
        epsilon=c.epsilon,
        clipnorm=c.clipnorm,
        # Keras takes None for "no accumulation" and refuses 1.
        gradient_accumulation_steps=(c.gradient_accumulation_steps
                                     if (c.gradient_accumulation_steps or 1) > 1 else None),
    )
    if config.training.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _progress(tokens_per_epoch, verbose, interval):
    """The ``EpochProgress`` callback ``verbose`` asks for (see ``train``), or ``None``."""
    if verbose == 0:
        return None
    in_place = sys.stdout.isatty() if verbose == "auto" else verbose == 1
    return EpochProgress(tokens_per_epoch, in_place=in_place, interval=interval)


def _validation_scorer(task):
    """``scorer(hypotheses, references) -> {name: score}`` of ``task``'s
    validation metrics (``VALIDATION_METRICS``: BLEU for translation,
    ROUGE-1/2/L/Lsum for summarization), for ``ValidationScores``."""
    metrics = VALIDATION_METRICS[task]

    def scorer(hypotheses, references):
        results = score_task(task, hypotheses, references, metrics)
        return {name: result.score for name, result in results.items()}

    return scorer


def _attention_image(model, source_tokenizer, target_tokenizer, task):
    """``image(source_text)``: the last decoder layer's cross-attention heads
    over the model's greedy output, as an RGBA array."""
    trained = TrainedModel(model, source_tokenizer, target_tokenizer, task=task)
    last_layer = model.config.num_decoder_layers - 1

    def image(source_text):
        return figure_to_image(attention_figure(trained, source_text, layer=last_layer))

    return image


def result_summary(result):
    """A JSON-ready dict of a ``TrainResult``."""
    return json.loads(json.dumps(dataclasses.asdict(result)))
