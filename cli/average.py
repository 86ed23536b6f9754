"""``keras-attention average``: average a run's last epoch checkpoints."""

import os

import click

from cli.errors import user_errors


@click.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder written by 'keras-attention train' (has model/ and checkpoints/).")
@click.option("--last", default=5, show_default=True, type=click.IntRange(min=1),
              help="How many of the latest checkpoints/epoch-*.weights.h5 to average.")
@click.option("--output", "output_dir", default=None, type=click.Path(file_okay=False),
              help="Model folder to write  [default: RUN/averaged].")
@click.option("--overwrite", is_flag=True,
              help="Replace OUTPUT if it exists (atomically); without it an existing "
                   "folder is an error.")
@user_errors
def average(run_dir, last, output_dir, overwrite):
    """Average the weights of the last epochs of a training run.

    The element-wise mean of the last --last epoch checkpoints, with the
    architecture, tokenizers and task of RUN/model, is written as a new
    model folder (its keras_attention.json lists the averaged files). An
    existing folder there (an earlier average, or RUN/model itself) is never
    replaced without --overwrite.

    \b
    Example:
      keras-attention average --run runs/multi30k --last 5
      keras-attention average --run runs/multi30k --last 3 --output runs/multi30k/avg3
    """
    from keras_attention.training.averaging import average_last

    output, averaged = average_last(run_dir, last=last, output=output_dir, overwrite=overwrite)
    names = ", ".join(os.path.basename(path) for path in averaged)
    click.echo(f"averaged {len(averaged)} checkpoint(s) ({names}) -> {output}")
