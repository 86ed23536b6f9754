"""The command line as a user runs it: help, errors, demo, translate."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args, stdin=None, timeout=600):
    """``python -m cli ARGS`` in a fresh process, as the console script runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=timeout,
    )


def test_help_lists_only_working_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1].split()
    assert [c for c in commands if c in ("demo", "translate")] == ["demo", "translate"]
    for command in ("demo", "translate"):
        sub = CliRunner().invoke(main, [command, "--help"])
        assert sub.exit_code == 0 and "Example" in sub.output


def test_translate_missing_model_is_a_one_line_error(tmp_path):
    missing = str(tmp_path / "no-such-model")
    result = CliRunner().invoke(main, ["translate", "--model", missing], input="hello\n")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: model '{missing}' not found; export one with 'keras-attention demo' "
        "or keras_attention.export.export_saved_model."
    )


def test_translate_folder_without_saved_model_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["translate", "--model", str(tmp_path)], input="x\n")
    assert result.exit_code == 1
    assert "holds no SavedModel" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_translate_rejects_empty_lines_naming_the_line(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("one\n\nthree\n")
    result = CliRunner().invoke(
        main, ["translate", "--model", str(tmp_path), "--input", str(source)]
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {source}: line 2 is empty (1 empty input(s)); remove empty lines, "
        "one input per line."
    )


def test_bad_option_values_are_rejected():
    result = CliRunner().invoke(main, ["demo", "--epochs", "0"])
    assert result.exit_code == 2
    assert "--epochs" in result.output


def test_demo_trains_exports_and_translate_reads_files(tmp_path):
    """The main job end to end, at reduced size: train, export, reload, translate."""
    export = str(tmp_path / "demo")
    result = run_cli(
        "demo", "--train-size", "4000", "--test-size", "200", "--epochs", "3",
        "--output", export, "--min-accuracy", "0.9",
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "reloaded export gives identical outputs on 200/200" in result.stdout
    accuracy = float(result.stdout.split("held-out exact match: ")[1].split("%")[0])
    assert accuracy >= 90.0

    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("the twenty third of march nineteen ninety four\n12 dec 1999\n")
    result = run_cli("translate", "--model", export, "--input", str(source),
                     "--output", str(target))
    assert result.returncode == 0, result.stderr[-3000:]
    assert target.read_text().splitlines() == ["1994-03-23", "1999-12-12"]

    result = run_cli("translate", "--model", export, stdin="june first two thousand and five\n")
    assert result.stdout.splitlines() == ["2005-06-01"]


def test_demo_fails_clearly_below_min_accuracy(tmp_path):
    result = run_cli(
        "demo", "--train-size", "100", "--test-size", "10", "--epochs", "1",
        "--output", str(tmp_path / "demo"), "--min-accuracy", "1.0",
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: held-out exact match") and "--min-accuracy" in last
    assert "Traceback" not in result.stderr
