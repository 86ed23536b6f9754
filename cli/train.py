"""``keras-attention train``: a config file in, a run directory out."""

import os

import click

from cli.errors import user_errors


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Run config (YAML or JSON); see recipes/dates.yaml.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set training.epochs=3 (repeatable).")
@click.option("--output", default=None, type=click.Path(file_okay=False),
              help="Run directory (overrides output.directory).")
@click.option("--init-from", default=None, type=click.Path(file_okay=False),
              help="Fine-tune: start from this trained model folder (its vocabulary and "
                   "weights; the config's model must have its shape). Sets model.init_from; "
                   "add --set training.lora_rank=8 to train LoRA adapters only.")
@click.option("--tensorboard", is_flag=True,
              help="Print the command that shows this run in TensorBoard.")
@user_errors
def train(config_path, overrides, output, init_from, tensorboard):
    """Train a model as a config file says; rerun to resume a killed run.

    Writes the run directory: config.yaml, vocab/, checkpoints/, logs/
    (TensorBoard) and model/, the trained model folder that translate,
    evaluate and export read. Nothing is written before the config, the data
    and the schedule over its steps are checked. A resumed run ends as an
    uninterrupted one; a folder whose run finished no epoch takes a new config.
    Progress: a bar on a terminal, else a line every 30 s; a line per epoch.

    \b
    Examples:
      keras-attention train --config recipes/dates.yaml
      keras-attention train --config run.yaml --set training.epochs=3 --output runs/x
      keras-attention train --config recipes/aeslc.yaml --init-from runs/samsum/model
      keras-attention train --config run.yaml --init-from runs/x/model --set training.lora_rank=8
    """
    from keras_attention.training import load_config
    from keras_attention.training import train as run_training

    if output is not None:
        overrides = (*overrides, f"output.directory={output}")
    if init_from is not None:
        overrides = (*overrides, f"model.init_from={init_from}")
    config = load_config(config_path, overrides)
    if tensorboard:
        logs = os.path.join(os.path.normpath(config.output.directory), "logs")
        click.echo(f"watch it with: tensorboard --logdir {logs}")
    result = run_training(config, print_fn=click.echo)
    best = ""
    if result.best:
        best = f", best {result.best['monitor']} {result.best['value']:.2f} (epoch {result.best['epoch']})"
    click.echo(
        f"trained {result.epochs} epoch(s), {result.steps} steps, "
        f"{result.tokens_per_second:,.0f} tokens/s{best}; model: {result.model_directory}"
    )
