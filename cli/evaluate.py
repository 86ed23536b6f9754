"""``keras-attention evaluate``: score outputs (BLEU, chrF, ROUGE, exact match)
against references, from a file of hypotheses or by decoding a source file."""

import contextlib
import json

import click

from cli.errors import user_errors
from cli.inputs import FIELD_HELP, read_inputs, read_text_file
from cli.outputs import check_output_path, output_lines
from cli.translate import XLA_HELP, check_lengths, decoded_batches, decoding_options
from keras_attention.app.decoder import Decoder
from keras_attention.constants import BLEU_TOKENIZERS, METRICS

DEFAULT_METRICS = {"translation": "bleu,chrf", "summarization": "rouge"}


def _metric_list(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'} in --metric; use a "
            f"comma-separated list of {', '.join(METRICS)}."
        )
    return names


def _check_counts(hypotheses, hypotheses_name, references, references_path):
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{hypotheses_name} has {len(hypotheses)} lines but --references "
            f"'{references_path}' has {len(references)}; they must be aligned line by line."
        )


def _decode(decoder, inputs, batch_size, output_path):
    """The best output of each input, also written to ``output_path``
    (batch by batch) when given."""
    outputs = []
    batches = decoded_batches(decoder, inputs, batch_size, ("decoding", "inputs"))
    with (output_lines(output_path, len(inputs)) if output_path
          else contextlib.nullcontext(None)) as write:
        for batch in batches:
            texts = [hypotheses[0][0] for hypotheses in batch]
            outputs.extend(texts)
            if write is not None:
                write([text + "\n" for text in texts])
    return outputs


@click.command()
@click.option("--hypotheses", type=click.Path(dir_okay=False), default=None,
              help="Model outputs, one per line (.gz ok).")
@click.option("--model", "model_path", type=click.Path(), default=None,
              help="Instead of --hypotheses: decode --source with this trained model folder, "
                   "SavedModel or CTranslate2 export.")
@click.option("--source", type=click.Path(dir_okay=False), default=None,
              help="Inputs to decode with --model, one per line (.gz ok).")
@click.option("--source-field", default=None, help="--source: " + FIELD_HELP)
@click.option("--references", required=True, type=click.Path(dir_okay=False),
              help="References, one per line, aligned with the hypotheses (.gz ok).")
@click.option("--reference-field", default=None,
              help="--references: read JSON Lines and take this field of each record "
                   "(e.g. 'summary').")
@click.option("--metric", "metrics", default=None,
              help="Comma-separated metrics: bleu, chrf, rouge (ROUGE-1/2/L/Lsum F1), exact. "
                   "[default: the model's task: bleu,chrf for translation, rouge for "
                   "summarization; bleu,chrf with --hypotheses]")
@click.option("--tokenize", type=click.Choice(BLEU_TOKENIZERS), default="13a", show_default=True,
              help="sacreBLEU tokenizer for BLEU (zh/char for Chinese, Japanese ...).")
@click.option("--output", "output_path", type=click.Path(dir_okay=False), default=None,
              help="With --model: also write the decoded outputs here, batch by batch "
                   "(as translate --output: FILE.partial until the end).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
              help="With --model: inputs decoded together.")
@click.option("--truncate", is_flag=True,
              help="With --model: cut inputs longer than the model's limit instead of "
                   "failing (stderr says how many).")
@click.option("--xla", is_flag=True, help="With --model: " + XLA_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@decoding_options
@user_errors
def evaluate(hypotheses, model_path, source, source_field, references, reference_field,
             metrics, tokenize, output_path, batch_size, truncate, xla, as_json, decoding):
    """Score outputs against references with sacreBLEU (BLEU, chrF) and ROUGE.

    Give the outputs with --hypotheses, or decode --source with --model (any
    decoding option of translate applies; options left unset take the
    decoding stored with the model folder, as in translate). Scores are
    corpus-level, 0-100, printed with the sacreBLEU signature.

    \b
    Examples:
      keras-attention evaluate --hypotheses test.hyp.de \\
        --references ../shared/data/multi30k/test_2016_flickr.de.gz --metric bleu,chrf
      keras-attention evaluate --model runs/en-de/model \\
        --source ../shared/data/multi30k/test_2016_flickr.en.gz \\
        --references ../shared/data/multi30k/test_2016_flickr.de.gz --beam-size 4 --json
      keras-attention evaluate --model runs/samsum/model --beam-size 4 \\
        --source ../shared/data/samsum/test.jsonl.gz --source-field dialogue \\
        --references ../shared/data/samsum/test.jsonl.gz --reference-field summary
    """
    from keras_attention.evaluation import score

    if bool(hypotheses) == bool(model_path):
        raise click.UsageError(
            "give either --hypotheses FILE or --model PATH with --source FILE, not "
            f"{'both' if hypotheses else 'neither'}."
        )
    if model_path and not source:
        raise click.UsageError("--model needs --source FILE (the inputs to decode).")
    if hypotheses and (source or source_field or output_path or decoding or truncate or xla):
        raise click.UsageError(
            "--source, --source-field, --output, --truncate, --xla and decoding options "
            "need --model; with --hypotheses the outputs are already decoded."
        )
    if output_path:
        check_output_path(output_path, "--output")  # before any work
    reference_lines = read_text_file(references, "--references")
    if reference_field is not None:
        reference_lines = read_inputs(reference_lines, f"--references '{references}'",
                                      reference_field)
    task = None
    if hypotheses:
        outputs = read_text_file(hypotheses, "--hypotheses")
        _check_counts(outputs, f"--hypotheses '{hypotheses}'", reference_lines, references)
    else:
        inputs = read_inputs(read_text_file(source, "--source"), f"--source '{source}'",
                             source_field)
        _check_counts(inputs, f"--source '{source}'", reference_lines, references)
        decoder = Decoder(model_path, decoding, truncate=truncate, jit_compile=xla)
        task = decoder.task
        check_lengths(decoder, inputs)
        outputs = _decode(decoder, inputs, batch_size, output_path)
    names = _metric_list(metrics or DEFAULT_METRICS.get(task, "bleu,chrf"))
    results = score(outputs, reference_lines, metrics=names, tokenize=tokenize)
    if as_json:
        click.echo(json.dumps({"lines": len(outputs),
                               "metrics": [r.to_dict() for r in results]}, indent=2))
        return
    for result in results:
        click.echo(result.details or f"{result.name} = {result.score:.2f}")
        click.echo(f"  signature: {result.signature}")
