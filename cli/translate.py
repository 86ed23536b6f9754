"""``keras-attention translate`` and ``summarize``: decode text with a trained
model folder (any decoding strategy) or an exported SavedModel (greedy,
built into the graph).

Both commands are made by ``generation_command``; they differ only in the
task named in their help and checked against the model's.
"""

import dataclasses
import functools
import math
import os

import click

from cli.errors import user_errors
from cli.inputs import FIELD_HELP, read_inputs, read_text_file
from cli.outputs import check_output_path, output_lines
from keras_attention.constants import (
    BEAM_STOPPINGS,
    CONFIG_FILE,
    MODEL_FILE,
    SAVED_MODEL_FILE,
    STRATEGIES,
    TASKS,
    TFLITE_MODEL_FILE,
)
from keras_attention.progress import ProgressLog

# Shown in --help without importing TensorFlow; tests/cli/test_translate.py
# checks them against keras_attention.decoding.generate.DecodingConfig().
DECODING_DEFAULTS = {
    "strategy": "greedy",
    "beam_size": 4,
    "length_penalty": 0.6,
    "beam_stopping": "early",
    "n_best": 1,
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "max_length": None,
    "max_length_ratio": None,
    "max_length_offset": 10,
    "min_length": 0,
    "no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0,
    "seed": None,
}
_STRATEGY_OF_FLAG = {"beam_size": "beam", "length_penalty": "beam", "beam_stopping": "beam",
                     "temperature": "sample",
                     "top_k": "sample", "top_p": "sample", "seed": "sample"}
SAVED_DECODING_HELP = ("Decoding options left unset take the values stored with a trained "
                       "model folder or CTranslate2 export (its recipe's evaluation.decoding, "
                       "listed in its keras_attention.json), else the defaults shown.")
PROGRESS_INTERVAL = 10  # seconds between progress lines when stderr is not a terminal
XLA_HELP = ("Compile decoding with XLA (trained model folders): a few seconds per "
            "input length bucket, then 1.3-5x faster on CPU, most at batch size 1.")
# Progress on stderr: what is being done, and what is counted.
_PROGRESS = {"translation": ("translating", "sentences"),
             "summarization": ("summarizing", "texts")}


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that refuses ``nan`` and ``inf`` too (FloatRange
    lets ``nan`` through any range, and ``inf`` through an open one)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number.", param, ctx)
        return number


_DECODING_OPTIONS = (
    ("--strategy", click.Choice(STRATEGIES), "Decoding strategy."),
    ("--beam-size", click.IntRange(min=1), "Beams per input (beam)."),
    ("--length-penalty", FiniteFloatRange(min=0.0), "GNMT length penalty alpha (beam)."),
    ("--beam-stopping", click.Choice(BEAM_STOPPINGS),
     "Beam search stops once no alive beam beats the n-best finished ones at its "
     "current length (early, as Hugging Face; about half the steps) or at any length "
     "(exact; never misses a better one)."),
    ("--n-best", click.IntRange(min=1),
     "Outputs per input, written as 'index ||| text ||| score' lines."),
    ("--temperature", FiniteFloatRange(min=0.0, min_open=True), "Sampling temperature."),
    ("--top-k", click.IntRange(min=0), "Sample from the k most likely tokens (0 = off)."),
    ("--top-p", FiniteFloatRange(0.0, 1.0, min_open=True),
     "Nucleus sampling probability mass (1.0 = off)."),
    ("--seed", int, "Sampling seed (default: random)."),
    ("--max-length", click.IntRange(min=1),
     "Most generated tokens (default: the model's limit)."),
    ("--max-length-ratio", FiniteFloatRange(min=0.0, min_open=True),
     "Per-input limit: ratio * source tokens + --max-length-offset (default: off)."),
    ("--max-length-offset", click.IntRange(min=0), "Offset of --max-length-ratio."),
    ("--min-length", click.IntRange(min=0), "No [END] before this many tokens."),
    ("--no-repeat-ngram-size", click.IntRange(min=0),
     "Never repeat an n-gram of this size (0 = off)."),
    ("--repetition-penalty", FiniteFloatRange(min=0.0, min_open=True),
     "Penalty > 1 for tokens already generated (1.0 = off)."),
)


def _parameter(flag):
    return flag[2:].replace("-", "_")


def decoding_options(command):
    """Add the decoding flags; the command gets ``decoding``: a dict of the
    ``DecodingConfig`` fields the user set (unset flags keep the defaults;
    ``decoding_config`` turns it into a config)."""

    @functools.wraps(command)
    def wrapper(**kwargs):
        decoding = {}
        for flag, _, _ in _DECODING_OPTIONS:
            value = kwargs.pop(_parameter(flag))
            if value is not None:
                decoding[_parameter(flag)] = value
        _with_strategy(decoding)  # flags of two strategies: a usage error before any work
        return command(decoding=decoding, **kwargs)

    for flag, kind, text in reversed(_DECODING_OPTIONS):
        default = DECODING_DEFAULTS[_parameter(flag)]
        shown = f"{text} [default: {default}]" if default is not None else text
        wrapper = click.option(flag, type=kind, default=None, help=shown)(wrapper)
    return wrapper


def _with_strategy(decoding):
    """Beam flags alone mean ``--strategy beam``, sampling flags alone
    ``--strategy sample``, ``--n-best`` above 1 alone means beam; flags of
    another strategy are a usage error."""
    used = {name: owner for name, owner in _STRATEGY_OF_FLAG.items() if name in decoding}
    strategy = decoding.get("strategy")
    if strategy is None:
        implied = sorted(set(used.values()))
        if len(implied) > 1:
            raise click.UsageError(
                f"{_flags(used)} belong to different strategies ({', '.join(implied)}); "
                "choose one with --strategy."
            )
        if implied:
            return dict(decoding, strategy=implied[0])
        if decoding.get("n_best", 1) > 1:
            # An n-best list alone asks for beam search (greedy has one output).
            return dict(decoding, strategy="beam")
        return decoding
    wrong = [name for name, owner in used.items() if owner != strategy]
    if wrong:
        owner = used[wrong[0]]
        raise click.UsageError(
            f"{_flags(wrong)} appl{'ies' if len(wrong) == 1 else 'y'} to --strategy "
            f"{owner}, not {strategy}; drop {'it' if len(wrong) == 1 else 'them'} or "
            f"choose --strategy {owner}."
        )
    return decoding


def decoding_config(decoding, saved=None):
    """The ``DecodingConfig`` of the flags in ``decoding`` (strategy implied
    by beam or sampling flags) over ``saved``, the decoding a trained model
    folder stores (its recipe's ``evaluation.decoding``, e.g. SAMSum's length
    limit and n-gram blocking): flags win, and ``n_best`` and ``seed`` come
    from the flags alone."""
    from keras_attention.decoding.generate import DecodingConfig

    kept = {f.name for f in dataclasses.fields(DecodingConfig)} - {"n_best", "seed"}
    base = {name: value for name, value in (saved or {}).items() if name in kept}
    flags = _with_strategy(decoding)
    try:
        return DecodingConfig(**{**base, **flags})
    except ValueError as error:
        stored = {name: value for name, value in base.items() if name not in flags}
        if not stored:
            raise
        listed = ", ".join(f"{name}={value}" for name, value in stored.items())
        raise ValueError(f"{error} (stored with the model: {listed}; flags override "
                         "them)") from None


def _flags(decoding):
    return ", ".join("--" + name.replace("_", "-") for name in decoding)


_TFLITE_FIX = ("pass the trained model folder it was exported from, or a SavedModel "
               "exported from that (keras-attention export --format saved_model); run "
               "TFLite models with keras_attention.export.TFLiteText or TFLiteDecoder.")


def _undecodable(path):
    """A one-line error saying what ``path`` is and what to pass instead, when
    it exists but is neither a trained model folder nor a SavedModel export
    (checked by name, before anything is loaded); else ``None``."""
    def has(*parts):
        return os.path.exists(os.path.join(path, *parts))

    if os.path.isfile(path):
        if path.endswith(".tflite"):
            return ValueError(f"'{path}' is a TFLite model, which translate cannot run; "
                              + _TFLITE_FIX)
        if os.path.basename(path) == MODEL_FILE:
            folder = os.path.dirname(path) or "."
            return ValueError(f"'{path}' is the Keras file of a trained model folder; pass "
                              f"the folder: --model {folder}")
        return ValueError(f"'{path}' is a file, not a model; pass a trained model folder "
                          "(with model.keras) or an exported SavedModel folder.")
    if not os.path.isdir(path) or has(MODEL_FILE) or has(SAVED_MODEL_FILE):
        return None
    versions = [name for name in os.listdir(path) if name.isdigit()]
    if has(TFLITE_MODEL_FILE) or any(has(v, TFLITE_MODEL_FILE) for v in versions):
        return ValueError(f"'{path}' is a TFLite export folder, which translate cannot "
                          "decode; " + _TFLITE_FIX)
    if has(CONFIG_FILE) or has("checkpoints"):
        model = os.path.join(path, "model")
        if has("model", MODEL_FILE):
            return ValueError(f"'{path}' is a training run folder; pass its model folder: "
                              f"--model {model}")
        return ValueError(f"'{path}' is a training run folder without a model yet (no "
                          f"{model}: training has not finished); resume it with "
                          "'keras-attention train --config ...' and pass RUN/model.")
    return None


class Decoder:
    """Text -> n-best hypotheses with a trained model folder, a SavedModel or
    a CTranslate2 export.

    Args:
        model_path: a trained model folder (with ``model.keras``), an
            exported SavedModel or CTranslate2 folder (a version folder or
            its parent).
        decoding: ``DecodingConfig`` fields set by flags (trained folders
            and CTranslate2 exports), over the decoding stored in the folder.
        truncate: cut inputs longer than the model's limit instead of
            failing (``check_lengths``; SavedModels cut them in the graph).
        jit_compile: compile the decoding with XLA (trained folders only).
    """

    def __init__(self, model_path, decoding=None, truncate=False, jit_compile=False):
        decoding = decoding or {}
        error = _undecodable(model_path)
        if error is not None:
            raise error
        self.model_path = model_path
        self.truncate = truncate
        self._generator = self._translator = None
        from keras_attention.export.ctranslate2 import ctranslate2_folder

        folder = ctranslate2_folder(model_path)
        if folder is not None:
            if jit_compile:
                raise ValueError(f"--xla: '{model_path}' is a CTranslate2 export, which "
                                 "TensorFlow does not run; drop --xla.")
            from keras_attention.export.ctranslate2 import CTranslate2Translator, read_metadata

            config = decoding_config(decoding, read_metadata(folder).get("decoding"))
            self._generator = CTranslate2Translator(folder, config=config, truncate=truncate)
            self.task = self._generator.task if self._generator.task in TASKS else None
            self.max_source_length = self._generator.max_source_length
            return
        if os.path.exists(os.path.join(model_path, "model.keras")):
            from keras_attention.decoding.text import TextGenerator
            from keras_attention.models import load_trained_model

            trained = load_trained_model(model_path)
            config = decoding_config(decoding, trained.metadata.get("decoding"))
            self.task = trained.task
            self._generator = TextGenerator(trained, config=config, truncate=truncate,
                                            jit_compile=jit_compile)
            self.max_source_length = self._generator.max_source_length
            return
        from keras_attention.export import SavedModelTranslator, resolve_version

        resolve_version(model_path)  # a clear error first when there is no model at all
        if decoding:
            raise ValueError(
                f"{_flags(decoding)}: '{model_path}' is an exported SavedModel whose "
                "decoding (greedy or beam search, chosen at export) is built into the "
                "graph; use a trained model folder "
                "(with model.keras) for decoding options."
            )
        if jit_compile:
            raise ValueError(
                f"--xla: '{model_path}' is an exported SavedModel, whose decoding graph is "
                "fixed at export; export it with 'keras-attention export --xla', or use a "
                "trained model folder (with model.keras) for --xla."
            )
        self._translator = SavedModelTranslator(model_path)
        # The task and the limit its keras_attention.json records (None: not recorded).
        self.task = self._translator.task if self._translator.task in TASKS else None
        self.max_source_length = self._translator.max_input_length

    def check_lengths(self, lines):
        """Inputs longer than the model's limit: an error naming the first,
        unless ``truncate``; then stderr says how many are cut. A SavedModel
        too old to count source tokens gets a warning instead."""
        from keras_attention.decoding.text import check_source_lengths

        model = self._generator or self._translator
        lengths = model.source_lengths(lines)
        limit = self.max_source_length
        if lengths is None or limit is None:
            click.echo(f"warning: '{self.model_path}' was exported without the source_lengths "
                       "signature, so inputs longer than its limit are cut without notice; "
                       "export it again to have them checked.", err=True)
            return
        cut = check_source_lengths(lengths, limit, self.truncate, "--truncate")
        if cut:
            click.echo(f"truncated {cut} of {len(lines)} inputs to the model's limit of "
                       f"{limit} tokens (--truncate).", err=True)

    def stream(self, lines, batch_size=64, on_batch=None):
        """The n-best lists of ``(text, score)`` of ``lines`` in input order,
        as they are decoded: lists that follow on from each other (see
        ``TextGenerator.stream``); SavedModel outputs have no score (NaN)."""
        if self._generator is not None:
            for ready in self._generator.stream(lines, batch_size, on_batch):
                yield [[(h.text, h.score) for h in hypotheses] for hypotheses in ready]
            return
        for start in range(0, len(lines), batch_size):
            chunk = lines[start : start + batch_size]
            outputs = [[(text, math.nan)] for text in self._translator(chunk, batch_size)]
            if on_batch is not None:
                on_batch(len(chunk))
            yield outputs


def progress(total, label, unit):
    """A context manager with ``update(count)`` that shows progress on
    stderr: a bar on a terminal, else (logs, CI) a line every
    ``PROGRESS_INTERVAL`` seconds and one at the end
    (``keras_attention.progress.ProgressLog``)."""
    stderr = click.get_text_stream("stderr")
    if stderr.isatty():
        return click.progressbar(length=total, label=label, file=stderr)
    return ProgressLog(total, label, unit=unit, interval=PROGRESS_INTERVAL,
                       write=lambda line: click.echo(line, err=True))


def decoded_batches(decoder, lines, batch_size, progress_label=None):
    """``decoder.stream(lines)``, with progress on stderr when
    ``progress_label`` is given: ``(label, unit)``, e.g. ``("translating",
    "sentences")``."""
    if progress_label is None:
        yield from decoder.stream(lines, batch_size)
        return
    with progress(len(lines), *progress_label) as bar:
        yield from decoder.stream(lines, batch_size, on_batch=bar.update)


def warn_on_task(decoder, task):
    if decoder.task is not None and decoder.task != task:
        other = "summarize" if decoder.task == "summarization" else "translate"
        click.echo(f"warning: the model was trained for {decoder.task}, not {task}; "
                   f"'keras-attention {other}' is the matching command.", err=True)


def _output_text(index, hypotheses, n_best):
    """An input's output lines: its best text, or with ``n_best`` one
    ``index ||| text ||| score`` line per hypothesis."""
    if not n_best:
        return hypotheses[0][0] + "\n"
    return "".join(f"{index} ||| {text} ||| {score:.4f}\n" for text, score in hypotheses)


def generation_command(name, task, summary, example):
    """The ``translate`` / ``summarize`` command (same options, other task)."""

    @click.command(name=name, help=f"{summary}\n\n{SAVED_DECODING_HELP}\n\n{example}")
    @click.option("--model", "model_path", required=True, type=click.Path(),
                  help="Trained model folder (with model.keras; a training run's is "
                       "RUN/model), exported SavedModel or CTranslate2 export (a version "
                       "folder or its parent: the latest version is used); not TFLite "
                       "exports.")
    @click.option("--input", "input_path", type=click.Path(dir_okay=False, allow_dash=True),
                  default="-", show_default=True,
                  help="Text file, one input per line ('-' = stdin; .gz ok).")
    @click.option("--output", "output_path", type=click.Path(dir_okay=False, allow_dash=True),
                  default="-", show_default=True,
                  help="Where to write one output per line ('-' = stdout), batch by batch: "
                       "a file is written as FILE.partial, renamed to FILE at the end; an "
                       "interrupted job keeps the outputs done there.")
    @click.option("--input-field", default=None, help=FIELD_HELP)
    @click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
                  help="Inputs decoded together.")
    @click.option("--truncate", is_flag=True,
                  help="Cut inputs longer than the model's limit instead of failing "
                       "(stderr says how many).")
    @click.option("--xla", is_flag=True, help=XLA_HELP)
    @decoding_options
    @user_errors
    def command(model_path, input_path, output_path, input_field, batch_size, truncate, xla,
                decoding):
        check_output_path(output_path, "--output")  # before any work
        from_stdin = input_path == "-"
        lines = read_inputs(read_text_file(input_path, "--input"),
                            "stdin" if from_stdin else input_path, input_field)
        decoder = Decoder(model_path, decoding, truncate=truncate, jit_compile=xla)
        warn_on_task(decoder, task)
        decoder.check_lengths(lines)
        # No progress for stdin: typed or piped text gets its outputs alone.
        batches = decoded_batches(decoder, lines, batch_size,
                                  None if from_stdin else _PROGRESS[task])
        with output_lines(output_path, len(lines)) as write:
            index = 0
            for batch in batches:
                write([_output_text(index + i, hypotheses, "n_best" in decoding)
                       for i, hypotheses in enumerate(batch)])
                index += len(batch)

    return command


translate = generation_command(
    "translate",
    "translation",
    "Translate sentences with a trained model folder or a CTranslate2 export (greedy, "
    "beam search or sampling) or an exported SavedModel (the decoding built into its "
    "graph).",
    "\b\nExamples:\n"
    "  echo \"march fourth two thousand and one\" | \\\n"
    "    keras-attention translate --model saved_models/demo\n"
    "  keras-attention translate --model runs/de-en/model --input test.de --output test.en \\\n"
    "    --strategy beam --beam-size 5 --length-penalty 0.6\n"
    "  keras-attention translate --model ct2/de-en --input test.de --beam-size 4",
)

summarize = generation_command(
    "summarize",
    "summarization",
    "Summarize texts with a trained summarization model folder (or an exported "
    "SavedModel); same options as translate.",
    "\b\nExample:\n"
    "  keras-attention summarize --model runs/samsum/model --beam-size 4 \\\n"
    "    --input dialogues.jsonl --input-field dialogue --output summaries.txt\n"
    "  (recipes/samsum.yaml stores its length limits, n-gram blocking and length\n"
    "  penalty with the model; flags override them)",
)
