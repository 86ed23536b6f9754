"""Callbacks of a training run: progress within an epoch and a summary
after it, validation decoding and scores, atomic weight checkpoints, a
history that survives a restart, dropout seeds that do too, and a step/time
budget."""

import json
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_attention.atomic import write_atomically
from keras_attention.constants import TRAINING_METADATA_FILE
from keras_attention.data.batching import epoch_seed
from keras_attention.progress import format_duration
from keras_attention.training.run_layout import (
    epoch_checkpoint_name,
    epoch_checkpoints,
)


def current_learning_rate(optimizer):
    """The optimizer's learning rate at its current step, as a float."""
    return float(ops.convert_to_numpy(optimizer.learning_rate))


class EpochSummary(keras.callbacks.Callback):
    """Prints one line per epoch: the epoch's metrics, learning rate and
    real (non-PAD) tokens per second of training (validation excluded), and
    adds ``tokens_per_second`` to the epoch ``logs``. An epoch stopped early
    (``TrainingBudget``) counts its share of ``tokens_per_epoch``, in
    proportion to the batches it ran.

    Args:
        tokens_per_epoch: non-PAD tokens in one epoch (source + target
            positions, ``count_tokens``).
        print_fn: where the line goes.
    """

    def __init__(self, tokens_per_epoch, print_fn=print):
        super().__init__()
        self.tokens_per_epoch = int(tokens_per_epoch)
        self.print_fn = print_fn
        self.seconds = 0.0
        self.tokens = 0.0
        self.epochs_done = 0
        self._started = self._last_batch = None
        self._batches = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = self._last_batch = time.perf_counter()
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch = time.perf_counter()
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds = max(self._last_batch - self._started, 1e-9)
        steps = (self.params or {}).get("steps")
        share = min(1.0, self._batches / steps) if steps else 1.0
        self.seconds += seconds
        self.tokens += self.tokens_per_epoch * share
        self.epochs_done += 1
        rate = self.tokens_per_epoch * share / seconds
        logs["tokens_per_second"] = rate
        shown = " - ".join(
            f"{name} {value:.4g}" for name, value in logs.items()
            if name not in ("tokens_per_second", "learning_rate") and _is_number(value)
        )
        learning_rate = current_learning_rate(self.model.optimizer)
        epochs = self.params.get("epochs", "?") if self.params else "?"
        self.print_fn(
            f"epoch {epoch + 1}/{epochs}: {shown} - lr {learning_rate:.3g} - "
            f"{rate:,.0f} tokens/s ({seconds:.1f} s)"
        )

    @property
    def tokens_per_second(self):
        """Mean training speed over the epochs run so far (0 before any)."""
        return self.tokens / self.seconds if self.seconds else 0.0


# Seconds between two progress lines when the output is not a terminal.
PROGRESS_INTERVAL = 30.0
# Seconds between two redraws of the progress bar on a terminal.
BAR_REFRESH = 0.1
BAR_WIDTH = 24


class EpochProgress(keras.callbacks.Callback):
    """Progress within each epoch: steps done of the epoch's steps, the
    epoch's loss so far, tokens per second and the time left (ETA).

    On a terminal (``in_place``) it is a bar redrawn on one line (at most
    every ``refresh`` seconds) and erased at the end of the epoch, where
    ``EpochSummary`` prints the epoch's line; elsewhere (a log file, a pipe)
    a line every ``interval`` seconds, none when the epoch is shorter.
    Tokens count ``tokens_per_epoch`` in proportion to the steps done.

    Args:
        tokens_per_epoch: non-PAD tokens in one epoch (``count_tokens``).
        stream: where it writes (``sys.stdout`` when ``None``).
        in_place: redraw a bar (a terminal) instead of writing lines.
        interval: seconds between lines (not ``in_place``).
        refresh: seconds between redraws (``in_place``).
        clock: ``clock() -> seconds``.
    """

    def __init__(self, tokens_per_epoch, stream=None, in_place=False,
                 interval=PROGRESS_INTERVAL, refresh=BAR_REFRESH, clock=time.monotonic):
        super().__init__()
        for name, value in (("interval", interval), ("refresh", refresh)):
            if not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}.")
        self.tokens_per_epoch = int(tokens_per_epoch)
        self.stream = stream
        self.in_place = in_place
        self.every = refresh if in_place else interval
        self.clock = clock
        self._epoch = 0
        self._started = self._shown = None
        self._width = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._started = self._shown = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        if now - self._shown < self.every:
            return
        self._shown = now
        text = self.progress(batch + 1, (logs or {}).get("loss"), now - self._started)
        if self.in_place:
            self._write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self._write(text + "\n")

    def on_epoch_end(self, epoch, logs=None):
        if self.in_place and self._width:
            self._write("\r" + " " * self._width + "\r")
            self._width = 0

    def progress(self, done, loss, seconds):
        """The progress text after ``done`` steps and ``seconds`` of the epoch."""
        params = self.params or {}
        total, epochs = params.get("steps"), params.get("epochs", "?")
        head = f"epoch {self._epoch + 1}/{epochs}"
        if total:
            filled = min(BAR_WIDTH, BAR_WIDTH * done // total)
            bar = f" [{'=' * filled}{'.' * (BAR_WIDTH - filled)}]" if self.in_place else ":"
            parts = [f"{head}{bar} step {done}/{total}"]
        else:
            parts = [f"{head}: step {done}"]
        if loss is not None and _is_number(loss):
            parts.append(f"loss {float(loss):.4g}")
        if total and seconds > 0:
            parts.append(f"{self.tokens_per_epoch * done / total / seconds:,.0f} tokens/s")
            parts.append(f"ETA {format_duration(seconds * (total - done) / done)}")
        return " - ".join(parts)

    def _write(self, text):
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(text)
        stream.flush()


class EpochSeeds(keras.callbacks.Callback):
    """At the start of each epoch sets the state of every
    ``keras.random.SeedGenerator`` of the model (dropout masks) to one that
    depends on its state when training began and the epoch alone
    (``epoch_seed``), so an epoch draws the same masks whether the run
    started at epoch 0 or was resumed at that epoch in a new process:
    ``model.save_weights``, and so ``RunBackup``, does not save these
    states."""

    def on_train_begin(self, logs=None):
        self._states = [v for v in self.model.variables if v.name == "seed_generator_state"]
        self._initial = [ops.convert_to_numpy(v) for v in self._states]

    def on_epoch_begin(self, epoch, logs=None):
        for state, initial in zip(self._states, self._initial, strict=True):
            seed = epoch_seed(int(initial[0]), epoch)
            state.assign(np.array([seed, 0], dtype=initial.dtype))


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


class ValidationScores(keras.callbacks.Callback):
    """Every ``every_n_epochs`` epochs (and after the last one) decodes the
    validation ``sources`` and adds their scores to the epoch ``logs`` as
    ``val_<name>`` (so ``EarlyStopping`` and ``BestCheckpoint`` can monitor
    ``val_bleu``); with ``log_dir`` also writes them to TensorBoard with the
    learning rate, ``examples`` source/reference/hypothesis triples as text and
    attention heatmaps of the first ``attention_images`` sources.

    Args:
        generator: has ``best(texts, batch_size) -> list[str]``
            (a ``decoding.text.TextGenerator`` over the model being trained).
        sources, references: validation texts, aligned.
        scorer: ``scorer(hypotheses, references) -> {name: score}``.
        every_n_epochs: how often to decode.
        batch_size: sentences decoded together.
        log_dir: TensorBoard folder, or ``None``.
        examples: triples shown as text.
        attention_image: ``attention_image(source_text) -> (H, W, 4) uint8``
            image, or ``None`` for no images.
        attention_images: how many sources get an image.
    """

    def __init__(self, generator, sources, references, scorer, every_n_epochs=1,
                 batch_size=64, log_dir=None, examples=3, attention_image=None,
                 attention_images=1):
        super().__init__()
        if len(sources) != len(references) or not sources:
            raise ValueError(
                f"got {len(sources)} validation sources for {len(references)} references; "
                "they must be aligned and not empty."
            )
        self.generator = generator
        self.sources = list(sources)
        self.references = list(references)
        self.scorer = scorer
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.log_dir = log_dir
        self.examples = examples
        self.attention_image = attention_image
        self.attention_images = attention_images
        self.last_scores = {}
        self.last_hypotheses = []
        self._writer = None

    def due(self, epoch):
        """Whether the callback decodes after (0-based) ``epoch``: every
        ``every_n_epochs``, after the last epoch, and after an epoch a
        callback has stopped early (``model.stop_training``, e.g.
        ``TrainingBudget``), so the run's last weights are scored too."""
        last = self.params.get("epochs") if self.params else None
        stopping = self.model is not None and bool(getattr(self.model, "stop_training", False))
        return (epoch + 1) % self.every_n_epochs == 0 or epoch + 1 == last or stopping

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        hypotheses = self.generator.best(self.sources, batch_size=self.batch_size)
        scores = {name: float(value) for name, value in
                  self.scorer(hypotheses, self.references).items()}
        self.last_scores, self.last_hypotheses = scores, hypotheses
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in scores.items()})
        if self.log_dir is not None:
            self._write_summaries(epoch, scores, hypotheses)

    def _write_summaries(self, epoch, scores, hypotheses):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default(step=epoch):
            for name, value in scores.items():
                tf.summary.scalar(f"validation/{name}", value)
            tf.summary.scalar("validation/learning_rate",
                              current_learning_rate(self.model.optimizer))
            if self.examples:
                tf.summary.text("validation/examples", examples_markdown(
                    self.sources[: self.examples], self.references[: self.examples],
                    hypotheses[: self.examples]))
            if self.attention_image is not None and self.attention_images:
                images = [self.attention_image(text)
                          for text in self.sources[: self.attention_images]]
                for index, image in enumerate(images):
                    tf.summary.image(f"validation/attention_{index}",
                                     np.asarray(image, np.uint8)[None])
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TrainingBudget(keras.callbacks.Callback):
    """Stops training at the end of the first step that reaches
    ``max_steps`` (``optimizer.iterations``, so a resumed run counts its
    earlier steps) or ends ``time_limit_seconds`` or more after training
    began in this process; ``None`` switches a bound off. Keras then finishes
    the epoch as usual (validation, ``on_epoch_end`` callbacks) and ends
    ``fit``. ``stop_reason`` says which bound stopped it (``"max_steps"``,
    ``"time_limit"``) or is ``None``.

    Put it before callbacks that should see the stop at the epoch's end
    (``ValidationScores`` decodes after a stopped epoch).
    """

    def __init__(self, max_steps=None, time_limit_seconds=None, clock=time.monotonic):
        super().__init__()
        if max_steps is not None and (isinstance(max_steps, bool)
                                      or not isinstance(max_steps, int) or max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}.")
        if time_limit_seconds is not None and not time_limit_seconds > 0:
            raise ValueError(
                f"time_limit_seconds must be positive or None, got {time_limit_seconds!r}."
            )
        self.max_steps = max_steps
        self.time_limit_seconds = time_limit_seconds
        self.clock = clock
        self.stop_reason = None
        self._started = None

    def on_train_begin(self, logs=None):
        self._started = self.clock()
        self.stop_reason = None

    def _steps(self):
        return int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        if self.max_steps is not None and self._steps() >= self.max_steps:
            self.stop_reason = "max_steps"
        elif (self.time_limit_seconds is not None
              and self.clock() - self._started >= self.time_limit_seconds):
            self.stop_reason = "time_limit"
        if self.stop_reason is not None:
            self.model.stop_training = True


def examples_markdown(sources, references, hypotheses):
    """A Markdown table of source/reference/hypothesis triples (TensorBoard
    renders ``tf.summary.text`` as Markdown)."""

    def cell(text):
        return text.replace("|", "\\|").replace("\n", " ")

    rows = ["| source | reference | hypothesis |", "|---|---|---|"]
    rows += [f"| {cell(s)} | {cell(r)} | {cell(h)} |"
             for s, r, h in zip(sources, references, hypotheses)]
    return "\n".join(rows)


def save_weights_atomically(model, path):
    """``model.save_weights(path)`` through a temporary file in the same
    folder, so a crash never leaves a half-written checkpoint."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{name}")
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


class RunBackup(keras.callbacks.Callback):
    """The training state (model and optimizer weights) after each epoch in
    ``directory``, restored when training begins again; a kill at any
    moment leaves a state that resumes correctly.

    ``keras.callbacks.BackupAndRestore`` overwrites ``latest.weights.h5`` and
    then ``training_metadata.json`` in place: a kill inside the first write
    leaves an unreadable file, and one between the two resumes an epoch on
    top of the next epoch's weights. Here each epoch's weights go to a new
    file ``epoch-N.weights.h5`` (atomically), then the metadata
    (``{"epoch": N, "weights": "epoch-N.weights.h5"}``, atomically) points
    to it, then older weight files go. A folder ``BackupAndRestore`` wrote
    (metadata without ``weights``) is read as it wrote it. The folder is
    removed when training ends, as ``BackupAndRestore`` does; ``model.fit``
    gets the epoch to start at from the same metadata (``initial_epoch``).
    """

    KERAS_WEIGHTS = "latest.weights.h5"  # what BackupAndRestore wrote

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    @property
    def metadata_path(self):
        return os.path.join(self.directory, TRAINING_METADATA_FILE)

    def on_train_begin(self, logs=None):
        if not os.path.exists(self.metadata_path):
            return
        with open(self.metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(
            os.path.join(self.directory, metadata.get("weights", self.KERAS_WEIGHTS)))

    def on_epoch_end(self, epoch, logs=None):
        name = epoch_checkpoint_name(epoch + 1)
        save_weights_atomically(self.model, os.path.join(self.directory, name))
        metadata = {"epoch": epoch + 1, "batch": 0, "weights": name}
        write_atomically(self.metadata_path, json.dumps(metadata).encode("utf-8"))
        for other in os.listdir(self.directory):
            if other.endswith(".weights.h5") and other != name:
                os.remove(os.path.join(self.directory, other))

    def on_train_end(self, logs=None):
        shutil.rmtree(self.directory, ignore_errors=True)


class LoraRestart(keras.callbacks.Callback):
    """New LoRA adapters after ``RunBackup`` restored a LoRA run.

    Weight files hold LoRA layers merged (``kernel + A @ B``) and loading one
    zeroes both ``A`` and ``B``: the function is kept, but with both zero
    neither gets a gradient again. This draws ``A`` anew where it is all
    zero (``B`` stays zero, so the outputs do not change), as
    ``enable_lora`` does. Goes after ``RunBackup``.
    """

    def __init__(self, seed=0):
        super().__init__()
        self.seed = seed

    def on_train_begin(self, logs=None):
        for index, layer in enumerate(self.model._flatten_layers(include_self=False)):
            if not getattr(layer, "lora_enabled", False):
                continue
            a = layer.lora_kernel_a
            if not np.any(keras.ops.convert_to_numpy(a)):
                initializer = keras.initializers.HeUniform(seed=self.seed + index)
                a.assign(initializer(a.shape, a.dtype))


class EpochCheckpoints(keras.callbacks.Callback):
    """Saves the weights after every epoch as
    ``directory/epoch-0001.weights.h5`` (1-based, atomically) and keeps the
    newest ``keep`` of them."""

    def __init__(self, directory, keep=3):
        super().__init__()
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive integer, got {keep!r}.")
        self.directory = directory
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        path = os.path.join(self.directory, epoch_checkpoint_name(epoch + 1))
        save_weights_atomically(self.model, path)
        checkpoints = epoch_checkpoints(self.directory)
        for old in list(checkpoints)[: -self.keep]:
            os.remove(checkpoints[old])


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the weights (atomically) to ``path`` whenever ``monitor`` in the
    epoch logs beats the best so far (``mode`` ``"max"`` or ``"min"``); the
    best value and its epoch are kept in ``path`` + ``.json``, so a resumed run
    compares with the best from before the restart. Epochs without
    ``monitor`` in their logs are skipped."""

    def __init__(self, path, monitor, mode="max"):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}.")
        self.path = path
        self.monitor = monitor
        self.mode = mode
        self.best = self.best_epoch = None
        state = self.state_path
        if os.path.exists(state) and os.path.exists(path):
            with open(state, encoding="utf-8") as f:
                saved = json.load(f)
            if saved.get("monitor") == monitor:
                self.best, self.best_epoch = saved["value"], saved["epoch"]

    @property
    def state_path(self):
        return self.path + ".json"

    def _better(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not self._better(float(value)):
            return
        self.best, self.best_epoch = float(value), epoch + 1
        save_weights_atomically(self.model, self.path)
        state = {"monitor": self.monitor, "value": self.best, "epoch": self.best_epoch}
        write_atomically(self.state_path, json.dumps(state).encode("utf-8"))


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``keras.callbacks.EarlyStopping`` that counts a resumed run's earlier
    epochs: at the first epoch of ``fit`` it replays the monitor values that
    ``history`` (a ``HistoryFile``) holds for the epochs before it, so the
    best value and the epochs without improvement carry over a restart and
    the run stops at the same epoch as an uninterrupted one (Keras' own
    callback starts counting afresh in every ``fit``)."""

    def __init__(self, history, **kwargs):
        super().__init__(**kwargs)
        self.history_file = history
        self._replayed = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._replayed = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._replayed:
            return
        self._replayed = True
        epochs = self.history_file.epochs
        earlier = sorted(number for number in epochs
                         if number <= epoch and self.monitor in epochs[number])
        for number in earlier:  # epoch numbers count from 1, fit's from 0
            super().on_epoch_end(number - 1, epochs[number])


class HistoryFile(keras.callbacks.Callback):
    """Keeps every epoch's logs in a JSON file (``{"epochs": [{"epoch": 1,
    ...}, ...]}``, rewritten atomically each epoch), continuing the file a
    killed run left: ``history`` is then the whole run's, not just the part
    since the restart. Epochs repeated after a restart replace the old ones."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.epochs = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.epochs = {e["epoch"]: e for e in json.load(f)["epochs"]}

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1}
        entry.update({k: float(v) for k, v in (logs or {}).items() if _is_number(v)})
        self.epochs = {e: v for e, v in self.epochs.items() if e <= epoch}
        self.epochs[epoch + 1] = entry
        data = {"epochs": [self.epochs[e] for e in sorted(self.epochs)]}
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        write_atomically(self.path, json.dumps(data, indent=1).encode("utf-8"))

    @property
    def history(self):
        """``{metric: [value per epoch]}`` like ``keras.callbacks.History``."""
        history = {}
        for epoch in sorted(self.epochs):
            for name, value in self.epochs[epoch].items():
                if name != "epoch":
                    history.setdefault(name, []).append(value)
        return history
