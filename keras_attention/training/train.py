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
from keras_attention.training.losses import SequenceCrossEntropy
from keras_attention.training.metrics import MaskedAccuracy, Perplexity
from keras_attention.training.provenance import vocabulary_provenance, write_provenance
from keras_attention.training.run_directory import (
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
    epochs = config.training.epochs
    keras.utils.set_random_seed(config.training.seed)

    train_corpus = config.data.train.pairs()
    stats = train_corpus.scan()  # clean one-line reading errors before TensorFlow
    source_tokenizer, target_tokenizer, provenance = _tokenizers(
        layout, config, start, train_corpus, print_fn)
    print_fn(
        f"training pairs: {stats.pairs} ({train_corpus.name}); vocabularies: "
        f"{source_tokenizer.vocabulary_size} source, {target_tokenizer.vocabulary_size} "
        "target tokens"
    )
    # A killed run that finished its last epoch resumes with nothing to train.
    first_epoch = min(start.initial_epoch, epochs - 1)
    with train_corpus.clean_errors():
        dataset = make_training_dataset(
            train_corpus.dataset(), source_tokenizer, target_tokenizer, config.batching,
            epochs=epochs, initial_epoch=first_epoch,
        )
        steps_per_epoch = int(dataset.cardinality()) // (epochs - first_epoch)
        tokens_per_epoch = count_tokens(dataset.take(steps_per_epoch))
    validation_data, validation_pairs = _validation(config, source_tokenizer, target_tokenizer)

    total_steps = training_steps(config, steps_per_epoch)
    with strategy.scope():
        model = build_model(config, source_tokenizer, target_tokenizer)
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

    # Everything is checked: now the run directory is written.
    if start.replaced:
        print_fn(f"output directory '{layout.directory}' held an attempt with another config "
                 f"that finished no epoch ({start.replaced}); starting over")
    start_run(layout, config, start)
    if provenance is not None:
        _save_tokenizers(layout, source_tokenizer, target_tokenizer, provenance)
    print_fn(
        f"model: preset '{config.model.preset}', {model.count_params():,} parameters, "
        f"{config.training.precision}; {steps_per_epoch} steps per epoch"
    )

    summary = EpochSummary(tokens_per_epoch, print_fn=print_fn)
    history = HistoryFile(layout.history)
    budget = TrainingBudget(
        config.training.max_steps,
        None if config.training.time_limit_minutes is None
        else 60.0 * config.training.time_limit_minutes,
    )
    callbacks = [budget, EpochSeeds()]  # budget first: the callbacks after it see a stop
    best = None
    if validation_pairs:
        sources, references = zip(*validation_pairs)
        callbacks.append(ValidationScores(
            TextGenerator(model, source_tokenizer, target_tokenizer,
                          config=config.evaluation.decoding, truncate=True),
            sources, references, _validation_scorer(config.task),
            every_n_epochs=config.evaluation.every_n_epochs,
            batch_size=config.evaluation.batch_size,
            log_dir=layout.validation_logs if config.output.tensorboard else None,
            examples=config.evaluation.examples,
            attention_image=_attention_image(model, source_tokenizer, target_tokenizer,
                                             config.task),
            attention_images=config.evaluation.attention_images,
        ))
        best = BestCheckpoint(layout.best, config.monitor, mode="max")
    progress = _progress(tokens_per_epoch, verbose, progress_interval)
    if progress is not None:
        callbacks.append(progress)  # after validation: the bar stays up while it decodes
    callbacks += [summary, EpochCheckpoints(layout.checkpoints, config.output.keep_checkpoints)]
    if best is not None:
        callbacks.append(best)
    callbacks += [history, keras.callbacks.TerminateOnNaN()]
    early_stopping = None
    if config.training.early_stopping_patience is not None:
        early_stopping = ResumableEarlyStopping(
            history, monitor=config.monitor, mode="max",
            patience=config.training.early_stopping_patience)
        callbacks.append(early_stopping)
    if config.output.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(layout.logs, profile_batch=0))
    # Last, so the saved state includes everything the epoch's callbacks did.
    callbacks.append(RunBackup(layout.backup))

    if start.initial_epoch >= epochs:
        print_fn(f"all {epochs} epochs had finished; writing the model")
    elif start.initial_epoch:
        print_fn(f"resuming at epoch {start.initial_epoch + 1} of {epochs}")
    started = time.perf_counter()
    with train_corpus.clean_errors():
        # start.initial_epoch comes from backup/training_metadata.json, whose
        # weights RunBackup restores.
        model.fit(dataset, epochs=epochs, initial_epoch=start.initial_epoch,
                  steps_per_epoch=steps_per_epoch, validation_data=validation_data,
                  callbacks=callbacks, verbose=0, shuffle=False)
    train_seconds = time.perf_counter() - started
    stop_reason = budget.stop_reason
    if stop_reason is None and early_stopping is not None and early_stopping.stopped_epoch:
        stop_reason = "early_stopping"
    if stop_reason is not None:
        print_fn(f"stopped early ({stop_reason}) after {len(history.epochs)} epoch(s)")

    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    best_state = None
    if best is not None and best.best is not None:
        best_state = {"monitor": best.monitor, "value": best.best, "epoch": best.best_epoch}
        model.load_weights(layout.best)  # (optimizer state too: steps are counted above)
    epochs = len(history.epochs)
    # An uncompiled copy: the folder holds the model for inference, without
    # optimizer state or training-only classes a loader would have to import.
    final = Transformer(model.config, dtype=config.training.precision)
    final.set_weights(model.get_weights())
    trained = TrainedModel(final, source_tokenizer, target_tokenizer, task=config.task)
    save_trained_model(trained, layout.model, extra={
        # translate / summarize / evaluate start from the recipe's decoding.
        "decoding": config.evaluation.decoding.changes(),
        "training": {"epochs": epochs, "steps": steps, "steps_per_epoch": steps_per_epoch,
                     "best": best_state, "stop_reason": stop_reason,
                     "config": config.to_dict()},
    })
    return TrainResult(
        output_directory=layout.directory,
        model_directory=layout.model,
        history=history.history,
        epochs=epochs,
        steps=steps,
        steps_per_epoch=steps_per_epoch,
        tokens_per_second=summary.tokens_per_second,
        best=best_state,
        stop_reason=stop_reason,
        train_seconds=train_seconds,
    )


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
    dtype policy is left alone)."""
    transformer_config = config.model.transformer_config(
        source_tokenizer.vocabulary_size, target_tokenizer.vocabulary_size
    )
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
