"""Transformer.attention_scores, attention_weights and the heatmap figures."""

import matplotlib.image
import numpy as np
import pytest

from keras_attention.decoding.text import TextGenerator
from keras_attention.evaluation.attention_plots import (
    attention_figure,
    attention_weights,
    figure_to_image,
    save_attention_plot,
)
from keras_attention.models import Transformer

SOURCE = "the twenty third of march nineteen ninety four"


# --- Transformer.attention_scores (a small untrained model) ---

@pytest.fixture(scope="module")
def small_model():
    return Transformer.from_preset("tiny", encoder_vocabulary_size=20,
                                   decoder_vocabulary_size=15, max_sequence_length=16)


def test_attention_scores_are_distributions_with_masks(small_model):
    source = np.array([[5, 6, 7, 8, 0, 0], [9, 4, 5, 6, 7, 8]], "int32")
    target = np.array([[1, 4, 5, 6], [1, 7, 8, 9]], "int32")
    scores = small_model.attention_scores(source, target)
    layers, heads = 2, 4
    assert {k: len(v) for k, v in scores.items()} == {"encoder": layers, "decoder": layers,
                                                      "cross": layers}
    for layer in range(layers):
        encoder = np.asarray(scores["encoder"][layer])
        decoder = np.asarray(scores["decoder"][layer])
        cross = np.asarray(scores["cross"][layer])
        assert encoder.shape == (2, heads, 6, 6)
        assert decoder.shape == (2, heads, 4, 4)
        assert cross.shape == (2, heads, 4, 6)
        for weights in (encoder, decoder, cross):
            np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        # Padded source positions get no weight; the decoder never looks ahead.
        assert np.abs(encoder[0, :, :, 4:]).max() < 1e-6
        assert np.abs(cross[0, :, :, 4:]).max() < 1e-6
        assert np.abs(np.triu(decoder, k=1)).max() < 1e-6


def test_attention_scores_ignore_padding(small_model):
    """A sentence padded inside a batch has the same weights as alone."""
    alone = small_model.attention_scores(np.array([[5, 6, 7, 8]], "int32"),
                                         np.array([[1, 4, 5]], "int32"))
    padded = small_model.attention_scores(np.array([[5, 6, 7, 8, 0, 0]], "int32"),
                                          np.array([[1, 4, 5]], "int32"))
    for kind in ("cross", "decoder"):
        for a, b in zip(alone[kind], padded[kind]):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b)[..., :4], atol=1e-5)


# --- attention_weights and figures on the trained date model ---

def test_weights_of_the_greedy_output(trained_date_model):
    trained, _ = trained_date_model
    weights = attention_weights(trained, SOURCE)
    output = TextGenerator(trained).best([SOURCE])[0]
    # Axis labels are the tokenizers' pieces.
    ids = trained.source_tokenizer.tokenize([SOURCE]).numpy()[0]
    assert weights.source_tokens == [trained.source_tokenizer.vocabulary[i] for i in ids]
    assert weights.source_tokens == SOURCE.split()
    assert weights.output_tokens == list(output) + ["[END]"]
    assert weights.decoder_input_tokens == ["[START]"] + list(output)
    source_length, target_length = len(weights.source_tokens), len(weights.output_tokens)
    assert weights.encoder.shape == (2, 4, source_length, source_length)
    assert weights.decoder.shape == (2, 4, target_length, target_length)
    assert weights.cross.shape == (2, 4, target_length, source_length)
    for kind in ("cross", "self", "encoder"):
        matrices, rows, columns = weights.axes(kind)
        assert matrices.shape[2:] == (len(rows), len(columns))
        np.testing.assert_allclose(matrices.sum(-1), 1.0, atol=1e-5)


def test_forced_target_and_its_limits(trained_date_model):
    trained, _ = trained_date_model
    weights = attention_weights(trained, SOURCE, target_text="1994-03-23")
    assert weights.output_tokens == list("1994-03-23") + ["[END]"]
    np.testing.assert_allclose(weights.cross.sum(-1), 1.0, atol=1e-5)
    limit = trained.model.config.max_sequence_length
    with pytest.raises(ValueError) as error:
        attention_weights(trained, SOURCE, target_text="9" * limit)
    assert str(error.value) == (
        f"the target text has {limit} tokens; plots need at most {limit - 1} (the model's "
        "limit minus [END]), so shorten it.")
    with pytest.raises(ValueError) as error:
        attention_weights(trained, " ".join(["may"] * (limit + 1)))
    assert str(error.value) == (
        f"the source text has {limit + 1} tokens; plots need 1 to {limit} (the model's "
        "limit), so shorten it.")
    with pytest.raises(ValueError, match="the source text is empty; give a sentence to plot."):
        attention_weights(trained, "  ")


def test_figure_has_one_heatmap_per_layer_and_head_with_token_labels(trained_date_model):
    trained, _ = trained_date_model
    figure = attention_figure(trained, SOURCE, target_text="1994-03-23", kind="cross")
    heatmaps = [axis for axis in figure.axes if axis.get_title().startswith("layer")]
    assert [axis.get_title() for axis in heatmaps] == [
        f"layer {layer} head {head}" for layer in range(2) for head in range(4)]
    first = heatmaps[0]
    assert [t.get_text() for t in first.get_xticklabels()] == SOURCE.split()
    assert [t.get_text() for t in first.get_yticklabels()] == list("1994-03-23") + ["[END]"]
    weights = attention_weights(trained, SOURCE, target_text="1994-03-23")
    np.testing.assert_allclose(heatmaps[5].get_images()[0].get_array(), weights.cross[1, 1])

    only = attention_figure(trained, SOURCE, target_text="1994", kind="encoder", layer=1)
    titles = [axis.get_title() for axis in only.axes if axis.get_title().startswith("layer")]
    assert titles == [f"layer 1 head {head}" for head in range(4)]


def test_figure_argument_errors(trained_date_model):
    trained, _ = trained_date_model
    with pytest.raises(ValueError) as error:
        attention_figure(trained, SOURCE, target_text="1994", kind="self", layer=2)
    assert str(error.value) == (
        "layer 2 is out of range: the model has 2 layers for decoder self-attention; "
        "use 0 to 1.")
    with pytest.raises(ValueError) as error:
        attention_figure(trained, SOURCE, kind="decoder")
    assert str(error.value) == "unknown attention kind 'decoder'; use one of cross, self, encoder."


def test_png_is_written_with_the_figure_size(trained_date_model, tmp_path):
    trained, _ = trained_date_model
    path = str(tmp_path / "plots" / "cross.png")
    assert save_attention_plot(trained, SOURCE, path, target_text="1994-03-23", layer=0,
                               dpi=80) == path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    figure = attention_figure(trained, SOURCE, target_text="1994-03-23", layer=0)
    width, height = figure.get_size_inches() * 80
    assert image.shape == (round(height), round(width), 4)
    # A real heatmap, not a blank canvas: many distinct colours.
    assert len(np.unique(image.reshape(-1, 4), axis=0)) > 200


def test_bad_extension_is_a_one_line_error(trained_date_model, tmp_path):
    trained, _ = trained_date_model
    with pytest.raises(ValueError) as error:
        save_attention_plot(trained, SOURCE, str(tmp_path / "plot.txt"))
    message = str(error.value)
    assert message.startswith(f"cannot write a plot as '{tmp_path / 'plot.txt'}'; end the file "
                              "name with one of ")
    assert ".png" in message and "\n" not in message


def test_figure_to_image_is_rgba_uint8_of_the_canvas_size(trained_date_model):
    trained, _ = trained_date_model
    figure = attention_figure(trained, SOURCE, target_text="1994-03-23", kind="self", layer=0)
    image = figure_to_image(figure)
    width, height = figure.get_size_inches() * figure.dpi
    assert image.dtype == np.uint8
    assert image.shape == (round(height), round(width), 4)
    assert (image[..., 3] == 255).all() and image[..., :3].std() > 10


def test_a_pruned_model_plots_its_remaining_heads(trained_date_model, tmp_path):
    import dataclasses

    from keras_attention.models.pruning import prune_heads

    trained, _ = trained_date_model
    pruned = dataclasses.replace(trained, model=prune_heads(
        trained.model, {"decoder_block_1/cross_attention": [0, 2]}))
    weights = attention_weights(pruned, SOURCE)
    heads = trained.model.config.num_heads
    assert weights.cross.shape[:2] == (2, heads)
    assert np.isnan(weights.cross[1, heads - 2:]).all()
    assert not np.isnan(weights.cross[1, : heads - 2]).any()
    np.testing.assert_allclose(weights.cross[1, : heads - 2].sum(-1), 1.0, atol=1e-5)
    path = save_attention_plot(pruned, SOURCE, str(tmp_path / "pruned.png"))
    assert matplotlib.image.imread(path).shape[0] > 100
