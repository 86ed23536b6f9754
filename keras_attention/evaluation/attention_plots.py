"""Attention heatmaps of one sentence, with the subword tokens on the axes.

``attention_weights`` runs the model on a source text and a target text (or
the model's own greedy output) and returns every layer's attention
probabilities; ``attention_figure`` draws one kind of them as a grid of
heatmaps (rows: layers, columns: heads); ``figure_to_image`` turns a figure
into an RGBA array for TensorBoard's ``tf.summary.image``.

Axes: decoder rows are the tokens being *produced* at each position (the
target pieces, then ``[END]``); cross-attention columns are the source
pieces; decoder self-attention columns are the decoder's input tokens
(``[START]`` and the target pieces).

Figures are made with matplotlib's Agg canvas directly (no pyplot, no
display, no global state).
"""

import dataclasses
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_attention import validation
from keras_attention.constants import ATTENTION_KINDS, END_ID, RESERVED_TOKENS, START_ID
from keras_attention.decoding.generate import DecodingConfig, generate

_TITLES = {"cross": "cross-attention", "self": "decoder self-attention",
           "encoder": "encoder self-attention"}


@dataclasses.dataclass(frozen=True)
class AttentionWeights:
    """Attention probabilities of one sentence pair.

    ``encoder``: ``(layers, heads, source, source)``; ``decoder``:
    ``(layers, heads, target, target)``; ``cross``: ``(layers, heads,
    target, source)``; float32 numpy arrays (a pruned model's layers with
    fewer heads have NaN for the missing ones). Token lists label the axes.
    """

    source_tokens: list
    decoder_input_tokens: list
    output_tokens: list
    encoder: np.ndarray
    decoder: np.ndarray
    cross: np.ndarray

    def axes(self, kind):
        """``(matrices (layers, heads, rows, columns), row tokens, column tokens)``."""
        _check_kind(kind)
        if kind == "cross":
            return self.cross, self.output_tokens, self.source_tokens
        if kind == "self":
            return self.decoder, self.output_tokens, self.decoder_input_tokens
        return self.encoder, self.source_tokens, self.source_tokens


def _check_kind(kind):
    if kind not in ATTENTION_KINDS:
        raise ValueError(
            f"unknown attention kind {kind!r}; use one of {', '.join(ATTENTION_KINDS)}."
        )


def _pieces(tokenizer, ids):
    vocabulary = tokenizer.vocabulary
    return [vocabulary[i] if 0 <= i < len(vocabulary) else RESERVED_TOKENS[3] for i in ids]


def _one_line_ids(tokenizer, text, what):
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"the {what} text is empty; give a sentence to plot.")
    return tokenizer.tokenize([text]).numpy()[0].tolist()


def attention_weights(trained, source_text, target_text=None):
    """Every layer's attention on ``source_text`` -> ``target_text``.

    Args:
        trained: a ``models.TrainedModel``.
        source_text: one input sentence.
        target_text: the output to force; ``None`` = the model's greedy output.

    Returns:
        an ``AttentionWeights``.
    """
    model = trained.model
    limit = model.config.max_sequence_length
    source_ids = _one_line_ids(trained.source_tokenizer, source_text, "source")
    if not source_ids or len(source_ids) > limit:
        raise ValueError(
            f"the source text has {len(source_ids)} tokens; plots need 1 to {limit} "
            "(the model's limit), so shorten it."
        )
    source = np.asarray([source_ids], dtype=np.int32)
    if target_text is None:
        generated = np.asarray(generate(model, source, DecodingConfig()).ids)[0, 0].tolist()
        if END_ID in generated:
            generated = generated[: generated.index(END_ID) + 1]
    else:
        generated = _one_line_ids(trained.target_tokenizer, target_text, "target") + [END_ID]
        if len(generated) > limit:
            raise ValueError(
                f"the target text has {len(generated) - 1} tokens; plots need at most "
                f"{limit - 1} (the model's limit minus [END]), so shorten it."
            )
    decoder_ids = [START_ID] + generated[:-1]
    scores = model.attention_scores(source, np.asarray([decoder_ids], dtype=np.int32))
    stacked = {kind: _stack_layers([np.asarray(s)[0] for s in layers])
               for kind, layers in scores.items()}
    return AttentionWeights(
        source_tokens=_pieces(trained.source_tokenizer, source_ids),
        decoder_input_tokens=_pieces(trained.target_tokenizer, decoder_ids),
        output_tokens=_pieces(trained.target_tokenizer, generated),
        encoder=stacked["encoder"],
        decoder=stacked["decoder"],
        cross=stacked["cross"],
    )


def _stack_layers(layers):
    """``(layers, heads, rows, columns)`` float32 of per-layer ``(heads, rows,
    columns)`` arrays; a pruned layer's missing heads are NaN (heads past
    its count: ``TransformerConfig.attention_heads``)."""
    heads = max(layer.shape[0] for layer in layers)
    stacked = np.full((len(layers), heads) + layers[0].shape[1:], np.nan, dtype=np.float32)
    for index, layer in enumerate(layers):
        stacked[index, : layer.shape[0]] = layer
    return stacked


def _label(token):
    # Make whitespace pieces (character tokenizers) visible on the axes.
    return {" ": "␣", "\n": "\\n", "\t": "\\t"}.get(token, token)


def attention_figure(trained, source_text, target_text=None, kind="cross", layer=None):
    """A matplotlib ``Figure`` of ``kind`` attention (``cross``, ``self`` =
    decoder self-attention, ``encoder``): one heatmap per layer and head, or
    only the heads of ``layer`` (0-based)."""
    _check_kind(kind)
    weights = attention_weights(trained, source_text, target_text)
    matrices, rows, columns = weights.axes(kind)
    layers = matrices.shape[0]
    if layer is not None:
        if not validation.is_int(layer) or not 0 <= layer < layers:
            raise ValueError(
                f"layer {layer!r} is out of range: the model has {layers} layers for "
                f"{_TITLES[kind]}; use 0 to {layers - 1}."
            )
        chosen = [layer]
    else:
        chosen = list(range(layers))
    heads = matrices.shape[1]
    cell = 0.22  # inches per token
    # Room for the rotated column labels under each heatmap and the row labels beside it.
    width = max(2.5, 0.8 + cell * len(columns) + 0.07 * max(len(t) for t in rows))
    height = max(2.5, 0.8 + cell * len(rows) + 0.07 * max(len(t) for t in columns))
    figure = Figure(figsize=(width * heads, height * len(chosen)), dpi=100,
                    layout="constrained")
    # The default padding clips the last character of rotated tick labels.
    figure.get_layout_engine().set(h_pad=0.12, w_pad=0.08)
    FigureCanvasAgg(figure)
    grid = figure.subplots(len(chosen), heads, squeeze=False)
    image = None
    for r, index in enumerate(chosen):
        for head in range(heads):
            axis = grid[r][head]
            if np.isnan(matrices[index, head]).all():  # a head pruned from this layer
                axis.set_title(f"layer {index}: pruned", fontsize=8)
                axis.axis("off")
                continue
            image = axis.imshow(matrices[index, head], vmin=0.0, vmax=1.0, cmap="viridis",
                                aspect="auto", interpolation="nearest")
            axis.set_xticks(range(len(columns)), [_label(t) for t in columns], rotation=90,
                            fontsize=7)
            axis.set_yticks(range(len(rows)), [_label(t) for t in rows], fontsize=7)
            axis.set_title(f"layer {index} head {head}", fontsize=8)
    figure.colorbar(image, ax=grid, shrink=0.6, label="attention weight")
    figure.suptitle(f"{_TITLES[kind]}: {source_text!r}", fontsize=9)
    return figure


def save_attention_plot(trained, source_text, path, target_text=None, kind="cross",
                        layer=None, dpi=100):
    """Draw ``attention_figure`` and write it to ``path`` (format from the
    extension: .png, .svg, .pdf ...). Returns ``path``."""
    supported = FigureCanvasAgg.get_supported_filetypes()
    extension = os.path.splitext(path)[1].lstrip(".").lower()
    if extension not in supported:
        raise ValueError(
            f"cannot write a plot as '{path}'; end the file name with one of "
            f"{', '.join('.' + e for e in sorted(supported))}."
        )
    figure = attention_figure(trained, source_text, target_text, kind=kind, layer=layer)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


def figure_to_image(figure):
    """The rendered ``figure`` as an ``(height, width, 4)`` uint8 RGBA array
    (add a batch axis for ``tf.summary.image``)."""
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)
