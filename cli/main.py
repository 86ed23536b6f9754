"""The ``keras-attention`` command line: parse, call the library, print."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out

import click  # noqa: E402

from cli.quiet_start import quiet_tensorflow_start  # noqa: E402

quiet_tensorflow_start()  # and the absl lines that ignore TF_CPP_MIN_LOG_LEVEL

from cli.attention import attention  # noqa: E402
from cli.average import average  # noqa: E402
from cli.data import data, vocab  # noqa: E402
from cli.demo import demo  # noqa: E402
from cli.errors import add_debug_option  # noqa: E402
from cli.evaluate import evaluate  # noqa: E402
from cli.export import export  # noqa: E402
from cli.prune import prune  # noqa: E402
from cli.serve import serve  # noqa: E402
from cli.train import train  # noqa: E402
from cli.translate import summarize, translate  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keras-attention")
def main():
    """Attention-based sequence-to-sequence models on TensorFlow/Keras.

    \b
    Examples:
      keras-attention demo
      keras-attention train --config recipes/dates.yaml --output runs/dates
      keras-attention average --run runs/dates --last 3
      keras-attention vocab --tsv ../shared/data/spa-eng/spa.txt.gz --size 8000 --output spa.model
      keras-attention data inspect --tsv ../shared/data/spa-eng/spa.txt.gz --source-vocab spa.model
      echo "the first of june nineteen ninety" | keras-attention translate --model saved_models/demo
      keras-attention serve saved_models/demo --port 8501
      keras-attention translate --model runs/dates/model --input dates.txt --beam-size 4
      keras-attention evaluate --hypotheses hyp.txt --references ref.txt --metric bleu,chrf
      keras-attention export --model runs/dates/model --output saved_models/dates --beam-size 4
      keras-attention attention --model runs/dates/model --text "may first two thousand" --out att.png
    """


main.add_command(attention)
main.add_command(average)
main.add_command(data)
main.add_command(demo)
main.add_command(evaluate)
main.add_command(export)
main.add_command(prune)
main.add_command(serve)
main.add_command(summarize)
main.add_command(train)
main.add_command(translate)
main.add_command(vocab)
add_debug_option(main)  # every command takes --debug, after its name too
