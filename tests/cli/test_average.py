"""``keras-attention average``: round trip over a run folder, and its errors."""

import json
import os

import numpy as np
from click.testing import CliRunner

from cli.main import main
from keras_attention.models import load_trained_model
from tests.training.test_averaging import make_run


def test_average_round_trip(tmp_path):
    run = tmp_path / "run"
    saved = make_run(str(run), epochs=[1, 2, 3])
    result = CliRunner().invoke(main, ["average", "--run", str(run), "--last", "2"])
    assert result.exit_code == 0, result.output
    output = str(run / "averaged")
    assert result.output.strip() == (
        f"averaged 2 checkpoint(s) (epoch-0002.weights.h5, epoch-0003.weights.h5) -> {output}"
    )
    trained = load_trained_model(output)
    for got, a, b in zip(trained.model.get_weights(), saved[2], saved[3]):
        expected = ((a.astype(np.float64) + b) / 2).astype(np.float32)
        np.testing.assert_array_equal(got, expected)
    with open(os.path.join(output, "keras_attention.json"), encoding="utf-8") as f:
        assert len(json.load(f)["averaged_checkpoints"]) == 2

    custom = tmp_path / "avg3"
    result = CliRunner().invoke(
        main, ["average", "--run", str(run), "--last", "3", "--output", str(custom)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"-> {custom}")
    got = load_trained_model(str(custom)).model.get_weights()[0]
    parts = np.stack([saved[e][0] for e in (1, 2, 3)]).astype(np.float64)
    np.testing.assert_array_equal(got, np.mean(parts, axis=0).astype(np.float32))


def _one_line_error(result):
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    return lines[0]


def test_average_errors_are_one_line(tmp_path):
    missing = str(tmp_path / "no-run")
    line = _one_line_error(CliRunner().invoke(main, ["average", "--run", missing]))
    assert line == (
        f"Error: run folder '{missing}' not found; pass the output folder of "
        "'keras-attention train'."
    )
    run = tmp_path / "run"
    make_run(str(run), epochs=[1, 2])
    line = _one_line_error(CliRunner().invoke(main, ["average", "--run", str(run)]))
    assert "has 2 epoch checkpoint(s)" in line and "fewer than the 5 to average" in line
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "checkpoints").mkdir()
    for epoch in (1, 2):
        os.link(run / "checkpoints" / f"epoch-000{epoch}.weights.h5",
                tmp_path / "empty" / "checkpoints" / f"epoch-000{epoch}.weights.h5")
    line = _one_line_error(
        CliRunner().invoke(main, ["average", "--run", str(tmp_path / "empty"), "--last", "2"])
    )
    assert "model folder" in line and "not found" in line


def test_average_refuses_to_replace_a_model_folder_without_overwrite(tmp_path):
    run = tmp_path / "run"
    saved = make_run(str(run), epochs=[1, 2])
    model = str(run / "model")
    trained = load_trained_model(model).model.get_weights()
    result = CliRunner().invoke(main, ["average", "--run", str(run), "--last", "2",
                                       "--output", model])
    assert _one_line_error(result) == (
        f"Error: model folder '{model}' already exists; pass --overwrite (overwrite=True) to "
        "replace it, or choose another --output.")
    for got, want in zip(load_trained_model(model).model.get_weights(), trained):
        np.testing.assert_array_equal(got, want)  # still the trained model
    # The default output, RUN/averaged, too: a second average is refused ...
    args = ["average", "--run", str(run), "--last", "1"]
    assert CliRunner().invoke(main, args).exit_code == 0
    line = _one_line_error(CliRunner().invoke(main, [*args[:-1], "2"]))
    assert f"model folder '{run / 'averaged'}' already exists; pass --overwrite" in line
    # ... unless --overwrite: then RUN/model is replaced by the mean of epochs 1 and 2.
    result = CliRunner().invoke(main, [*args[:-1], "2", "--output", model, "--overwrite"])
    assert result.exit_code == 0, result.output
    for got, a, b in zip(load_trained_model(model).model.get_weights(), saved[1], saved[2]):
        np.testing.assert_array_equal(got, ((a.astype(np.float64) + b) / 2).astype(np.float32))


def test_average_rejects_a_bad_last():
    result = CliRunner().invoke(main, ["average", "--run", ".", "--last", "0"])
    assert result.exit_code == 2
    assert "Invalid value for '--last'" in result.output


def test_average_help_has_an_example_and_says_what_overwrite_does():
    result = CliRunner().invoke(main, ["average", "--help"])
    assert result.exit_code == 0
    assert "keras-attention average --run runs/multi30k --last 5" in result.output
    text = " ".join(result.output.split())
    assert "is never replaced without --overwrite" in text
    assert "--overwrite Replace OUTPUT if it exists (atomically)" in text
