"""``keras-attention demo``: the main job on the embedded default task.

Generated dates -> the training app (``keras_attention.training.train``) ->
greedy translation -> SavedModel export -> reload in a fresh process and
compare.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import click

from cli.errors import user_errors

DEMO_TASK = "dates"  # the "task" an export's keras_attention.json gets from the demo
VERSION = 1
MAX_OUTPUT_LENGTH = 16  # target tokens with START: an ISO date and END fit


def _step(message):
    click.echo(click.style("==> ", fg="cyan", bold=True) + message)


def _translate_in_fresh_process(export_path, texts):
    """Outputs of ``keras-attention translate`` run in a new Python process."""
    result = subprocess.run(
        [sys.executable, "-m", "cli", "translate", "--model", export_path],
        input="\n".join(texts) + "\n",
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if result.returncode != 0:
        raise click.ClickException(
            "reloading the export failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
        )
    return result.stdout.splitlines()


def _replaces_output(output_dir, overwrite):
    """Whether the export replaces OUTPUT/1: an earlier demo's export there
    is replaced, a missing one is not (nor one made meanwhile), anything else
    is a ``FileExistsError`` unless ``overwrite``."""
    from keras_attention.atomic import refuse_existing

    path = os.path.join(output_dir, str(VERSION))
    if overwrite or not os.path.lexists(path):
        return overwrite
    try:
        with open(os.path.join(path, "keras_attention.json"), encoding="utf-8") as f:
            earlier_demo = json.load(f).get("task") == DEMO_TASK
    except (OSError, ValueError, AttributeError):
        earlier_demo = False
    if not earlier_demo:
        refuse_existing(path, "folder not written by the demo", "--output")
    return True


def _training_config(train_size, epochs, batch_size, seed, directory):
    """The demo's run for the training app: recipes/dates.yaml's model,
    vocabularies and peak learning rate on ``train_size`` generated pairs
    (the first of ``date_pairs(..., seed)``), without label smoothing,
    validation or TensorBoard, into ``directory``."""
    from keras_attention.training import config_from_dict

    steps = epochs * -(-train_size // batch_size)  # one bucket: every date is short
    return config_from_dict({
        "data": {"train": {"format": "dates", "size": train_size, "seed": seed}},
        "vocabulary": {"type": "char"},
        "model": {"preset": "tiny", "changes": {"max_sequence_length": 64}},
        "batching": {"batch_size": batch_size, "max_source_tokens": 60, "max_target_tokens": 12,
                     "bucket_boundaries": [], "seed": seed},
        "optimizer": {"learning_rate": 0.008, "schedule": "cosine",
                      "warmup_steps": min(60, steps // 4)},
        "training": {"epochs": epochs, "seed": seed, "label_smoothing": 0.0},
        "output": {"directory": directory, "tensorboard": False, "keep_checkpoints": 1},
    }, source="the demo")


@click.command()
@click.option("--train-size", default=10000, show_default=True, type=click.IntRange(min=100),
              help="Generated training pairs.")
@click.option("--test-size", default=1000, show_default=True, type=click.IntRange(min=10),
              help="Generated held-out pairs (never seen in training).")
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--output", "output_dir", default="saved_models/demo", show_default=True,
              type=click.Path(file_okay=False),
              help="Export folder: version 1 is written, replacing an earlier demo's export.")
@click.option("--overwrite", is_flag=True,
              help="Replace OUTPUT/1 even when it is not an earlier demo's export.")
@click.option("--min-accuracy", default=0.95, show_default=True,
              type=click.FloatRange(0.0, 1.0),
              help="Fail, exporting nothing, if held-out exact match is lower.")
@user_errors
def demo(train_size, test_size, epochs, batch_size, seed, output_dir, overwrite, min_accuracy):
    """Train a tiny Transformer on generated dates, translate, export, check.

    The task maps spelled-out dates to ISO form ("the twenty third of march
    nineteen ninety four" -> "1994-03-23"); the data is generated, nothing is
    downloaded. The exported SavedModel is reloaded in a fresh process and
    must give the same outputs as the model in memory. It writes OUTPUT/1,
    replacing the export of an earlier demo run (so it can run again); any
    other folder there is left alone unless --overwrite is given.

    \b
    Example:
      keras-attention demo --epochs 3 --output saved_models/demo
    """
    started = time.time()
    overwrite = _replaces_output(output_dir, overwrite)  # before training, not after
    from keras_attention.data import date_pairs
    from keras_attention.evaluation import exact_match
    from keras_attention.export import TextToTextModule, export_saved_model
    from keras_attention.models import load_trained_model
    from keras_attention.training import train

    pairs = date_pairs(train_size + test_size, seed=seed)  # training reads the first ones
    held_out = pairs[train_size:]
    _step(f"generated {train_size} training and {len(held_out)} held-out date pairs "
          f"(seed {seed}), e.g. {pairs[0][0]!r} -> {pairs[0][1]!r}")
    _step(f"training the 'tiny' Transformer for {epochs} epoch(s) (keras_attention.training."
          "train; character vocabularies)")
    with tempfile.TemporaryDirectory(prefix="keras-attention-demo-") as scratch:
        config = _training_config(train_size, epochs, batch_size, seed,
                                  os.path.join(scratch, "run"))
        result = train(config, print_fn=lambda line: click.echo("    " + line))
        trained = load_trained_model(result.model_directory)
    model = trained.model

    translator = TextToTextModule(model, trained.source_tokenizer, trained.target_tokenizer,
                                  max_output_length=MAX_OUTPUT_LENGTH)
    sources = [source for source, _ in held_out]
    references = [target for _, target in held_out]
    hypotheses = [
        t.decode("utf-8")
        for i in range(0, len(sources), translator.max_batch_size)  # the export's cap
        for t in translator.serve(sources[i : i + translator.max_batch_size])["outputs"].numpy()
    ]
    accuracy = exact_match(hypotheses, references)
    _step("translations of held-out dates:")
    for source, hypothesis in list(zip(sources, hypotheses))[:5]:
        click.echo(f"    {source!r:55} -> {hypothesis}")
    _step(f"held-out exact match: {accuracy:.2%} ({round(accuracy * len(references))}"
          f"/{len(references)})")

    if accuracy < min_accuracy:  # before exporting: an earlier export stays as it was
        raise click.ClickException(
            f"held-out exact match {accuracy:.2%} is below --min-accuracy {min_accuracy:.0%}, so "
            "nothing was exported; train longer (--epochs) or on more data (--train-size)."
        )
    export_path = export_saved_model(
        translator,
        output_dir,
        version=VERSION,
        metadata={"task": DEMO_TASK, "model": model.config.to_dict()},
        overwrite=overwrite,
        warmup_inputs=sources,
    )
    _step(f"exported SavedModel to {export_path}; reloading it in a fresh process")
    checked = sources[:200]
    reloaded = _translate_in_fresh_process(export_path, checked)
    same = sum(a == b for a, b in zip(reloaded, hypotheses[: len(checked)]))
    if len(reloaded) != len(checked) or same != len(checked):
        raise click.ClickException(
            f"exported model disagrees with the in-memory model on "
            f"{len(checked) - same} of {len(checked)} sentences."
        )
    _step(f"reloaded export gives identical outputs on {same}/{len(checked)} sentences")
    _step(f"done in {time.time() - started:.0f}s. Try: echo 'the first of may two thousand "
          f"and nine' | keras-attention translate --model {output_dir}")
