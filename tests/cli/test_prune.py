"""keras-attention prune: head importance, a pruned model folder that
translates, and its one-line errors."""

import os

import numpy as np
from click.testing import CliRunner

from cli.main import main
from keras_attention.data import date_pairs
from keras_attention.decoding.text import TextGenerator
from keras_attention.models import load_trained_model

PAIRS = date_pairs(64, seed=11)


def _files(tmp_path):
    source, references = tmp_path / "src.txt", tmp_path / "ref.txt"
    source.write_text("".join(s + "\n" for s, _ in PAIRS))
    references.write_text("".join(t + "\n" for _, t in PAIRS))
    return ["--source", str(source), "--references", str(references)]


def test_importance_table_then_a_pruned_folder_that_translates(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    result = CliRunner().invoke(main, ["prune", "--model", folder, *_files(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("head importance on 64 pairs of '")
    names = trained.model.config.attention_layer_names()
    assert [line.split()[0] for line in lines[1:]] == names
    for line in lines[1:]:
        scores = np.array([float(x) for x in line.split()[1:]])
        assert len(scores) == trained.model.config.num_heads
        assert abs(np.linalg.norm(scores) - 1.0) < 2e-3  # printed to 3 decimals

    out = tmp_path / "pruned"
    result = CliRunner().invoke(main, ["prune", "--model", folder, "--heads", "3",
                                       "--output", str(out), *_files(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("pruned 3 head(s) (")
    pruned = load_trained_model(str(out))
    heads = pruned.model.config.attention_heads
    assert sum(trained.model.config.num_heads - n for n in heads.values()) == 3
    assert pruned.model.count_params() < trained.model.count_params()
    assert pruned.metadata["pruning"]["heads"]
    # It still translates dates, mostly as the original does.
    sources = [s for s, _ in PAIRS[:32]]
    original = TextGenerator(trained).best(sources)
    after = TextGenerator(pruned).best(sources)
    assert sum(a == b for a, b in zip(original, after)) >= 16
    # An existing folder is kept without --overwrite.
    again = CliRunner().invoke(main, ["prune", "--model", folder, "--heads", "1",
                                      "--output", str(out), *_files(tmp_path)])
    assert again.exit_code == 1 and len(again.output.strip().splitlines()) == 1, again.output
    assert load_trained_model(str(out)).model.config.attention_heads == heads


def test_errors_are_one_line(trained_date_model, tmp_path):
    _, folder = trained_date_model
    for args, message in [
        (["--heads", "2"], "--heads writes a model folder: add --output DIR."),
        (["--output", str(tmp_path / "x")], "--output needs --heads N"),
        (["--source", str(tmp_path / "a.txt")], "--source and --references go together."),
        ([], "no pairs to score the heads on: no run config"),
        (["--heads", "99", "--output", str(tmp_path / "y"), *_files(tmp_path)],
         "cannot prune 99 heads: the model has"),
    ]:
        result = CliRunner().invoke(main, ["prune", "--model", folder, *args])
        assert result.exit_code != 0, (args, result.output)
        assert "Traceback" not in result.output
        assert message in result.output, (args, result.output)
        assert not os.path.exists(tmp_path / "y")


def test_help_has_examples():
    result = CliRunner().invoke(main, ["prune", "--help"])
    assert result.exit_code == 0
    assert "keras-attention prune --model runs/multi30k/model --heads 12" in result.output
