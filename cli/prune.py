"""``keras-attention prune``: attention-head importance, and a model folder
without the least important heads."""

import click

from cli.errors import user_errors
from cli.inputs import read_text_file


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Trained model folder (with model.keras).")
@click.option("--heads", type=click.IntRange(min=0), default=None,
              help="Prune this many of the least important heads (over all layers; each "
                   "layer keeps one).")
@click.option("--head-importance", "show_importance", is_flag=True,
              help="Print each attention layer's head importance (the default without --heads).")
@click.option("--output", "output_dir", default=None, type=click.Path(file_okay=False),
              help="Model folder for the pruned model (with --heads).")
@click.option("--overwrite", is_flag=True,
              help="Replace OUTPUT if it exists (atomically).")
@click.option("--source", default=None, type=click.Path(dir_okay=False),
              help="Source sentences to score the heads on (one per line) "
                   "[default: the run's validation, else training, data].")
@click.option("--references", default=None, type=click.Path(dir_okay=False),
              help="Their references, line by line (with --source).")
@click.option("--max-sentences", default=500, show_default=True, type=click.IntRange(min=1),
              help="Pairs to score the heads on.")
@user_errors
def prune(model_path, heads, show_importance, output_dir, overwrite, source, references,
          max_sentences):
    """Score attention heads and prune the least important ones.

    A head's importance is the gradient of the loss with respect to a gate
    on its output (Michel et al., 2019), summed over the pairs and
    normalized per layer. With --heads N the N least important heads go:
    their slices of the query, key, value and output projections are
    removed, so the model folder written to --output is smaller and faster,
    and decodes as the original with those heads' outputs zeroed. Fine-tune
    it after with 'keras-attention train --init-from OUTPUT'.

    \b
    Examples:
      keras-attention prune --model runs/multi30k/model --head-importance
      keras-attention prune --model runs/multi30k/model --heads 12 --output runs/pruned12
    """
    if heads is not None and output_dir is None:
        raise click.UsageError("--heads writes a model folder: add --output DIR.")
    if heads is None and output_dir is not None:
        raise click.UsageError("--output needs --heads N (how many heads to prune).")
    if (source is None) != (references is None):
        raise click.UsageError("--source and --references go together.")
    pairs, where = _pairs(model_path, source, references, max_sentences)

    from keras_attention.models import load_trained_model
    from keras_attention.models.pruning import (
        head_importance,
        least_important,
        pair_batches,
        prune_heads,
    )

    trained = load_trained_model(model_path)
    importance = head_importance(trained.model, pair_batches(trained, pairs))
    if show_importance or heads is None:
        click.echo(f"head importance on {len(pairs)} pairs of {where} (L2 per layer):")
        for name, scores in importance.items():
            click.echo(f"  {name:34s} " + " ".join(f"{s:.3f}" for s in scores))
    if heads is None:
        return
    dropped = least_important(importance, heads)
    pruned = prune_heads(trained.model, dropped)
    _save(trained, pruned, output_dir, overwrite, model_path, dropped)
    before, after = trained.model.count_params(), pruned.count_params()
    layers = "; ".join(f"{name} {h}" for name, h in dropped.items()) or "none"
    click.echo(f"pruned {heads} head(s) ({layers}); parameters {before:,} -> {after:,}; "
               f"model: {output_dir}")


def _pairs(model_path, source, references, limit):
    if source is not None:
        sources = read_text_file(source, "--source")
        targets = read_text_file(references, "--references")
        if len(sources) != len(targets):
            raise click.UsageError(f"--source has {len(sources)} lines but --references "
                                   f"{len(targets)}; give one reference per source line.")
        return list(zip(sources, targets))[:limit], f"'{source}'"
    from keras_attention.app.run_data import run_pairs

    pairs, where = run_pairs(model_path, limit)
    if not pairs:
        raise click.UsageError(f"no pairs to score the heads on: {where}; pass --source and "
                               "--references.")
    return pairs, where


def _save(trained, pruned, output_dir, overwrite, model_path, dropped):
    import dataclasses

    from keras_attention.models import save_trained_model

    # The stored decoding carries over; the training record is the original's.
    metadata = {"decoding": trained.metadata["decoding"]} if "decoding" in trained.metadata else {}
    pruned_model = dataclasses.replace(trained, model=pruned, metadata=metadata)
    save_trained_model(pruned_model, output_dir, overwrite=overwrite,
                       extra={"pruning": {"from": model_path, "heads": dropped}})
