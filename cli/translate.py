"""``keras-attention translate``: run an exported text-to-text SavedModel."""

import sys

import click

from cli.errors import user_errors


def _read_lines(stream, name):
    lines = stream.read().splitlines()
    empty = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if empty:
        raise ValueError(
            f"{name}: line {empty[0]} is empty ({len(empty)} empty line(s)); "
            "remove empty lines, one sentence per line."
        )
    return lines


@click.command()
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(),
    help="Exported SavedModel: a version folder or its parent (latest version is used).",
)
@click.option("--input", "input_file", type=click.File("r", encoding="utf-8"), default="-",
              show_default=True, help="Text file, one sentence per line ('-' = stdin).")
@click.option("--output", "output_file", type=click.File("w", encoding="utf-8"), default="-",
              show_default=True, help="Where to write one output per line ('-' = stdout).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
              help="Sentences per call of the model.")
@user_errors
def translate(model_path, input_file, output_file, batch_size):
    """Translate sentences with an exported model (greedy decoding in the graph).

    \b
    Example:
      echo "march fourth two thousand and one" | \\
        keras-attention translate --model saved_models/demo
    """
    from keras_attention.export import SavedModelTranslator

    name = "stdin" if input_file is sys.stdin or input_file.name == "<stdin>" else input_file.name
    lines = _read_lines(input_file, name)
    translator = SavedModelTranslator(model_path)
    for output in translator(lines, batch_size=batch_size):
        output_file.write(output + "\n")
