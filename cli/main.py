"""The ``keras-attention`` command line: parse, call the library, print."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out

import click  # noqa: E402

from cli.data import data, vocab  # noqa: E402
from cli.demo import demo  # noqa: E402
from cli.translate import translate  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="keras-attention")
def main(debug):
    """Attention-based sequence-to-sequence models on TensorFlow/Keras.

    \b
    Examples:
      keras-attention demo
      keras-attention vocab --tsv ../shared/data/spa-eng/spa.txt.gz --size 8000 --output spa.model
      keras-attention data inspect --tsv ../shared/data/spa-eng/spa.txt.gz --source-vocab spa.model
      echo "the first of june nineteen ninety" | keras-attention translate --model saved_models/demo
    """


main.add_command(data)
main.add_command(demo)
main.add_command(translate)
main.add_command(vocab)
