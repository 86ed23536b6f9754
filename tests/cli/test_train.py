"""keras-attention train: a run from a config file, and its one-line errors."""

import os

from click.testing import CliRunner

from cli.main import main
from training.run_configs import write_config


def test_train_command_writes_a_run_and_prints_the_summary(tmp_path):
    config = write_config(tmp_path / "run.yaml", tmp_path / "ignored", {
        "data": {"validation": None}})
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "train", "--config", config, "--set", "training.epochs=2",
        "--set", "output.keep_checkpoints=1", "--output", str(out), "--tensorboard"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"watch it with: tensorboard --logdir {out}/logs"
    assert any(line.startswith("epoch 2/2: ") for line in lines)
    assert lines[-1].startswith("trained 2 epoch(s), 6 steps, ")
    assert lines[-1].endswith(f"model: {out}/model")
    assert sorted(os.listdir(out / "checkpoints")) == ["epoch-0002.weights.h5"]
    assert os.path.exists(out / "model" / "model.keras")
    assert not os.path.exists(tmp_path / "ignored")


def run(args):
    result = CliRunner().invoke(main, ["train", *args])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    return result.output.strip()


def test_errors_are_one_line(tmp_path):
    config = write_config(tmp_path / "run.yaml", tmp_path / "out")
    assert run(["--config", config, "--set", "training.epoch=3"]) == (
        f"Error: unknown key 'training.epoch' in {config}; did you mean 'training.epochs'?")
    assert run(["--config", config, "--set", "training.epochs=three"]) == (
        "Error: training.epochs must be an integer, got 'three'.")
    assert run(["--config", config, "--set", "epochs"]) == (
        "Error: --set 'epochs': expected KEY=VALUE, e.g. training.epochs=3.")
    missing = str(tmp_path / "absent.yaml")
    assert run(["--config", missing]) == (
        f"Error: config file '{missing}' not found; write one (see recipes/dates.yaml).")
    assert run(["--config", config, "--set", "data.train.format=tsv",
                "--set", f"data.train.path={tmp_path}/x.tsv"]) == (
        f"Error: data.train.path: file '{tmp_path}/x.tsv' not found; check the path.")


def test_help_has_examples():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    assert "keras-attention train --config recipes/dates.yaml" in result.output
    assert "train" in CliRunner().invoke(main, ["--help"]).output
