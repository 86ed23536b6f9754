"""``keras-attention translate`` and ``summarize``: decode text with a trained
model folder (any decoding strategy) or an exported SavedModel (greedy,
built into the graph).

Both commands are made by ``generation_command``; they differ only in the
task named in their help and checked against the model's.
"""

import functools
import math

import click

from cli.errors import user_errors
from cli.inputs import FIELD_HELP, read_inputs, read_text_file
from cli.outputs import check_output_path, output_lines
from keras_attention.app.decoder import Decoder, is_trained_folder, with_implied_strategy
from keras_attention.constants import BEAM_STOPPINGS, STRATEGIES
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
    """``with_implied_strategy``, with flags of another strategy a usage
    error (before any work)."""
    try:
        return with_implied_strategy(decoding)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def check_lengths(decoder, lines):
    """``decoder.check_lengths``, said on stderr: how many inputs are cut
    (``--truncate``), or a warning when the model cannot count them."""
    cut = decoder.check_lengths(lines)
    if cut is None:
        click.echo(f"warning: '{decoder.model_path}' was exported without the source_lengths "
                   "signature, so inputs longer than its limit are cut without notice; "
                   "export it again to have them checked.", err=True)
    elif cut:
        click.echo(f"truncated {cut} of {len(lines)} inputs to the model's limit of "
                   f"{decoder.max_source_length} tokens (--truncate).", err=True)


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


def decoded_batches(decoder, lines, batch_size, progress_label=None, controls=None):
    """``decoder.stream(lines)``, with progress on stderr when
    ``progress_label`` is given: ``(label, unit)``, e.g. ``("translating",
    "sentences")``; ``controls``: ``read_controls``' keyword arguments."""
    controls = controls or {}
    if progress_label is None:
        yield from decoder.stream(lines, batch_size, **controls)
        return
    with progress(len(lines), *progress_label) as bar:
        yield from decoder.stream(lines, batch_size, on_batch=bar.update, **controls)


def parse_constraints(line):
    """The phrases of a ``--constraints`` line: ``|||``-separated, surrounding
    spaces dropped; an empty line has none (an empty phrase is left for
    ``TextGenerator.tokenize_constraints`` to refuse with its line)."""
    return [phrase.strip() for phrase in line.split("|||")] if line.strip() else []


def read_controls(prefix_file, constraints_file, inputs):
    """``{"prefixes": [...], "constraints": [[...], ...]}`` from the files
    given (one line per input each); a usage error when a file's lines do
    not match the inputs."""
    controls = {}
    for option, path, name, parse in (
            ("--prefix-file", prefix_file, "prefixes", str),
            ("--constraints", constraints_file, "constraints", parse_constraints)):
        if path is None:
            continue
        lines = read_text_file(path, option)
        if len(lines) != inputs:
            raise click.UsageError(f"{option} has {len(lines)} lines for {inputs} inputs; "
                                   "give one per input line (an empty line for none).")
        controls[name] = [parse(line) for line in lines]
    return controls


def warn_on_task(decoder, task):
    if decoder.task is not None and decoder.task != task:
        other = "summarize" if decoder.task == "summarization" else "translate"
        click.echo(f"warning: the model was trained for {decoder.task}, not {task}; "
                   f"'keras-attention {other}' is the matching command.", err=True)


def _output_text(index, hypotheses, n_best, alignments=None):
    """An input's output lines: its best text, or with ``n_best`` one
    ``index ||| text ||| score`` line per hypothesis; with ``alignments``
    (one ``i-j`` string per hypothesis) a last ``||| i-j ...`` field."""
    links = [""] * len(hypotheses) if alignments is None else [f" ||| {a}" for a in alignments]
    if not n_best:
        return hypotheses[0][0] + links[0] + "\n"
    return "".join(f"{index} ||| {text} ||| {score:.4f}{link}\n"
                   for (text, score), link in zip(hypotheses, links))


def _batch_alignments(decoder, lines, batch, layer):
    """Pharaoh ``i-j`` strings of each hypothesis of ``batch`` (outputs of ``lines``)."""
    from keras_attention.decoding.alignment import pharaoh

    sources = [line for line, hypotheses in zip(lines, batch) for _ in hypotheses]
    outputs = [text for hypotheses in batch for text, _ in hypotheses]
    flat = iter(pharaoh(pairs) for pairs in decoder.alignments(sources, outputs, layer))
    return [[next(flat) for _ in hypotheses] for hypotheses in batch]


def generation_command(name, task, summary, example):
    """The ``translate`` / ``summarize`` command (same options, other task)."""

    @click.command(name=name, help=f"{summary}\n\n{SAVED_DECODING_HELP}\n\n{example}")
    @click.option("--model", "model_paths", required=True, multiple=True, type=click.Path(),
                  help="Trained model folder (with model.keras; a training run's is "
                       "RUN/model), exported SavedModel or CTranslate2 export (a version "
                       "folder or its parent: the latest version is used); not TFLite "
                       "exports. Given more than once (trained model folders with the same "
                       "vocabularies): an ensemble, their log-probabilities averaged at "
                       "each step; the first one's stored decoding applies.")
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
    @click.option("--alignments", "show_alignments", is_flag=True,
                  help="Append ' ||| i-j ...' to each output: source token i aligned to "
                       "output token j (0-based tokens as the tokenizers cut them; from the "
                       "cross-attention, averaged over heads; trained model folders and "
                       "SavedModels).")
    @click.option("--alignment-layer", default=-1, show_default=True, type=int,
                  help="Decoder layer whose cross-attention gives --alignments (-1: the last).")
    @click.option("--prefix-file", default=None, type=click.Path(dir_okay=False),
                  help="Target prefixes, one per input line (an empty line: none): each "
                       "output starts with its prefix and the model continues it (trained "
                       "model folders and SavedModels).")
    @click.option("--constraints", "constraints_file", default=None,
                  type=click.Path(dir_okay=False),
                  help="Terminology constraints, one line per input: phrases separated by "
                       "'|||' (an empty line: none) that its output must contain, e.g. "
                       "'Hund ||| roten Ball' (beam search with dynamic beam allocation; "
                       "implies --strategy beam; trained model folders).")
    @decoding_options
    @user_errors
    def command(model_paths, input_path, output_path, input_field, batch_size, truncate, xla,
                show_alignments, alignment_layer, prefix_file, constraints_file, decoding):
        check_output_path(output_path, "--output")  # before any work
        if constraints_file is not None and "strategy" not in decoding and is_trained_folder(
                model_paths[0]):
            decoding = dict(decoding, strategy="beam")  # what constraints are searched with
        from_stdin = input_path == "-"
        lines = read_inputs(read_text_file(input_path, "--input"),
                            "stdin" if from_stdin else input_path, input_field)
        controls = read_controls(prefix_file, constraints_file, len(lines))
        decoder = Decoder(model_paths[0], decoding, truncate=truncate, jit_compile=xla,
                          ensemble=model_paths[1:])
        decoder.check_controls(**controls)  # before decoding
        if show_alignments:
            decoder.check_alignments(alignment_layer)
        warn_on_task(decoder, task)
        check_lengths(decoder, lines)
        # No progress for stdin: typed or piped text gets its outputs alone.
        batches = decoded_batches(decoder, lines, batch_size,
                                  None if from_stdin else _PROGRESS[task], controls)
        with output_lines(output_path, len(lines)) as write:
            index = 0
            for batch in batches:
                links = [None] * len(batch)
                if show_alignments:
                    links = _batch_alignments(decoder, lines[index:index + len(batch)], batch,
                                              alignment_layer)
                write([_output_text(index + i, hypotheses, "n_best" in decoding, links[i])
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
    "  keras-attention translate --model ct2/de-en --input test.de --beam-size 4\n"
    "  keras-attention translate --model runs/de-en/model --input test.de --prefix-file typed.en\n"
    "  keras-attention translate --model runs/de-en/model --input test.de --alignments\n"
    "  keras-attention translate --model runs/de-en/model --input test.de --constraints terms.txt\n"
    "  keras-attention translate --model runs/a/model --model runs/b/model --input test.de",
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
