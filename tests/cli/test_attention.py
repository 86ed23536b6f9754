"""``keras-attention attention``: writes the heatmap; every error is one line."""

import matplotlib.image
import numpy as np
from click.testing import CliRunner

from cli.main import main
from keras_attention.evaluation.attention_plots import attention_figure

TEXT = "the twenty third of march nineteen ninety four"


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_writes_the_png_of_the_chosen_kind_and_layer(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    out = tmp_path / "att.png"
    result = invoke("attention", "--model", folder, "--text", TEXT, "--target", "1994-03-23",
                    "--out", str(out), "--kind", "self", "--layer", "1")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {out} (self attention of {TEXT!r})"
    image = matplotlib.image.imread(str(out))
    figure = attention_figure(trained, TEXT, "1994-03-23", kind="self", layer=1)
    width, height = figure.get_size_inches() * figure.dpi
    assert image.shape == (round(height), round(width), 4)
    assert len(np.unique(image.reshape(-1, 4), axis=0)) > 200


def one_line_error(result):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    return lines[0]


def test_saved_model_is_rejected(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    result = invoke("attention", "--model", str(tmp_path), "--text", TEXT, "--out", "a.png")
    assert one_line_error(result) == (
        f"Error: '{tmp_path}' is an exported SavedModel, which keeps no attention weights; "
        "plot with the trained model folder (with model.keras).")


def test_missing_model_folder(tmp_path):
    missing = str(tmp_path / "none")
    result = invoke("attention", "--model", missing, "--text", TEXT, "--out", "a.png")
    assert one_line_error(result) == (
        f"Error: model folder '{missing}' not found; train one with 'keras-attention train'.")


def test_layer_out_of_range(trained_date_model, tmp_path):
    _, folder = trained_date_model
    result = invoke("attention", "--model", folder, "--text", TEXT, "--target", "1994",
                    "--out", str(tmp_path / "a.png"), "--layer", "7")
    assert one_line_error(result) == (
        "Error: layer 7 is out of range: the model has 2 layers for cross-attention; "
        "use 0 to 1.")
    assert not (tmp_path / "a.png").exists()


def test_bad_extension_and_empty_text(trained_date_model, tmp_path):
    _, folder = trained_date_model
    result = invoke("attention", "--model", folder, "--text", TEXT, "--out",
                    str(tmp_path / "a.bmpx"))
    assert one_line_error(result).startswith(
        f"Error: cannot write a plot as '{tmp_path / 'a.bmpx'}'; end the file name with one of ")
    result = invoke("attention", "--model", folder, "--text", " ", "--out",
                    str(tmp_path / "a.png"))
    assert one_line_error(result) == "Error: the source text is empty; give a sentence to plot."
