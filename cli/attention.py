"""``keras-attention attention``: plot one sentence's attention weights."""

import os

import click

from cli.errors import user_errors
from keras_attention.constants import ATTENTION_KINDS, MODEL_FILE, SAVED_MODEL_FILE


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Trained model folder (with model.keras).")
@click.option("--text", required=True, help="The source sentence.")
@click.option("--target", default=None,
              help="Target sentence to force (default: the model's greedy output).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Image to write (.png, .svg, .pdf ...).")
@click.option("--kind", type=click.Choice(ATTENTION_KINDS), default="cross", show_default=True,
              help="cross-attention, decoder self-attention or encoder self-attention.")
@click.option("--layer", type=click.IntRange(min=0), default=None,
              help="Only this layer (0-based; default: all layers).")
@user_errors
def attention(model_path, text, target, out_path, kind, layer):
    """Draw attention heatmaps (one per layer and head) with the tokens on the axes.

    Rows are the tokens the decoder produces (encoder: the source tokens),
    columns the tokens attended to.

    \b
    Example:
      keras-attention attention --model runs/dates/model \\
        --text "the twenty third of march nineteen ninety four" --out attention.png
    """
    if not os.path.exists(os.path.join(model_path, MODEL_FILE)) and os.path.exists(
        os.path.join(model_path, SAVED_MODEL_FILE)
    ):
        raise ValueError(
            f"'{model_path}' is an exported SavedModel, which keeps no attention weights; "
            "plot with the trained model folder (with model.keras)."
        )
    from keras_attention.models import load_trained_model

    trained = load_trained_model(model_path)
    from keras_attention.evaluation.attention_plots import save_attention_plot

    save_attention_plot(trained, text, out_path, target_text=target, kind=kind, layer=layer)
    click.echo(f"wrote {out_path} ({kind} attention of {text!r})")
