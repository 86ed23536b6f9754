"""The command line as a user runs it: help, errors, demo, translate."""

import json
import os
import subprocess
import sys
import traceback

import click
import pytest
from click.testing import CliRunner

from cli.demo import _replaces_output
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


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_shows_debug_in_its_help():
    names = list(_commands(main))
    assert ("data", "inspect") in names and ("translate",) in names
    for path in [(), *names]:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "--debug  " in result.output and "Show full tracebacks" in result.output, path


@pytest.mark.parametrize("args", [
    ["--debug", "average", "--run", "{missing}"],
    ["average", "--run", "{missing}", "--debug"],
    ["--debug", "data", "inspect", "--tsv", "{missing}"],
    ["data", "inspect", "--tsv", "{missing}", "--debug"],
    ["data", "--debug", "inspect", "--tsv", "{missing}"],
])
def test_debug_before_or_after_the_command_shows_the_traceback(tmp_path, args):
    missing = str(tmp_path / "missing")
    args = [a.format(missing=missing) for a in args]
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, FileNotFoundError), result.output
    assert missing in str(result.exception) and "Error:" not in result.output
    shown = "".join(traceback.format_exception(*result.exc_info))
    assert shown.startswith("Traceback (most recent call last):")
    # Without --debug: the same error in one line.
    plain = CliRunner().invoke(main, [a for a in args if a != "--debug"])
    assert plain.exit_code == 1
    assert plain.output.strip().splitlines() == [f"Error: {result.exception}"]


# Usage errors in a fresh interpreter: each one's exit code, last line and
# whether TensorFlow was imported by then.
_USAGE_SCRIPT = """
import json, sys
from click.testing import CliRunner
from cli.demo import _replaces_output
from cli.main import main
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args)
    print(json.dumps([result.exit_code, result.output.strip().splitlines()[-1],
                      "tensorflow" in sys.modules]))
"""


def test_usage_errors_come_before_tensorflow_is_imported(tmp_path):
    exported = tmp_path / "export"
    exported.mkdir()
    (exported / "saved_model.pb").write_bytes(b"")
    cases = {
        ("data", "inspect"): (2, "Error: name exactly one corpus with --aligned SOURCE TARGET, "
                                 "--tsv FILE or --jsonl FILE (got none)."),
        ("data", "inspect", "--jsonl", "x.jsonl", "--debug"):
            (2, "Error: --jsonl needs --fields SOURCE_FIELD TARGET_FIELD."),
        ("data", "inspect", "--tsv", "x.tsv", "--target-vocab", "t.model"):
            (2, "Error: --target-vocab needs --source-vocab FILE; for a shared vocabulary give "
                "--source-vocab alone."),
        ("data", "inspect", "--tsv", "x.tsv", "--source-vocab", "v.txt", "--type", "char",
         "--normalization", "NFC"): (1, "Error: --normalization is not available for --type char."),
        ("vocab", "--aligned", "a", "b", "--tsv", "c", "--output", "v.model"):
            (2, "Error: name exactly one corpus with --aligned SOURCE TARGET, --tsv FILE or "
                "--jsonl FILE (got --aligned, --tsv)."),
        ("vocab", "--tsv", "x.tsv", "--type", "word", "--normalization", "NFKC", "--output",
         "v.txt"): (1, "Error: --normalization is not available for --type word."),
        ("export", "--model", "m", "--output", "o", "--quantize", "dynamic"):
            (2, "Error: --quantize applies to --format tflite or ctranslate2; drop it or add "
                "--format tflite / --format ctranslate2."),
        ("export", "--model", "m", "--output", "o", "--format", "tflite", "--n-best", "2"):
            (2, "Error: --format tflite returns one output per input; drop --n-best or use "
                "--format saved_model (its n_best signature)."),
        ("export", "--model", "m", "--output", "o", "--strategy", "greedy", "--beam-size", "3"):
            (2, "Error: --beam-size applies to --strategy beam, not greedy; drop it or choose "
                "--strategy beam."),
        ("export", "--model", "m", "--output", "o", "--version", "0"):
            (2, "Error: Invalid value for '--version': 0 is not in the range x>=1."),
        ("attention", "--model", str(exported), "--text", "x", "--out", "a.png"):
            (1, f"Error: '{exported}' is an exported SavedModel, which keeps no attention "
                "weights; plot with the trained model folder (with model.keras)."),
        ("average", "--run", "r", "--last", "0"):
            (2, "Error: Invalid value for '--last': 0 is not in the range x>=1."),
    }
    result = subprocess.run(
        [sys.executable, "-c", _USAGE_SCRIPT, json.dumps([list(args) for args in cases])],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert got == [[code, line, False] for code, line in cases.values()]


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

    # The demo reloaded its export in a fresh process; translate it here.
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("the twenty third of march nineteen ninety four\n12 dec 1999\n")
    result = CliRunner().invoke(main, ["translate", "--model", export, "--input", str(source),
                                       "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text().splitlines() == ["1994-03-23", "1999-12-12"]

    result = CliRunner().invoke(main, ["translate", "--model", export],
                                input="june first two thousand and five\n")
    assert result.stdout.splitlines() == ["2005-06-01"]
    # Its export is one a second demo run replaces (make demo runs again).
    assert _replaces_output(export, overwrite=False) is True


def test_demo_replaces_only_an_earlier_demo_export(tmp_path):
    output = tmp_path / "demo"
    assert _replaces_output(str(output), overwrite=False) is False  # nothing to replace
    os.makedirs(output / "1")
    (output / "1" / "keras_attention.json").write_text('{"task": "translation"}')
    message = (f"folder not written by the demo '{output / '1'}' already exists; pass "
               "--overwrite (overwrite=True) to replace it, or choose another --output.")
    with pytest.raises(FileExistsError) as error:
        _replaces_output(str(output), overwrite=False)
    assert str(error.value) == message
    assert _replaces_output(str(output), overwrite=True) is True
    # The command refuses before training, in one line.
    result = CliRunner().invoke(main, ["demo", "--output", str(output)])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [f"Error: {message}"]
    assert os.listdir(output / "1") == ["keras_attention.json"]
    (output / "1" / "keras_attention.json").write_text('{"task": "dates"}')  # an earlier demo's
    assert _replaces_output(str(output), overwrite=False) is True


def test_demo_fails_clearly_below_min_accuracy(tmp_path):
    earlier = tmp_path / "demo" / "1"  # an earlier demo's export: left as it was
    os.makedirs(earlier)
    (earlier / "keras_attention.json").write_text('{"task": "dates"}')
    result = run_cli(
        "demo", "--train-size", "100", "--test-size", "10", "--epochs", "1",
        "--output", str(tmp_path / "demo"), "--min-accuracy", "1.0",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert os.listdir(tmp_path / "demo") == ["1"]
    assert os.listdir(earlier) == ["keras_attention.json"]
    assert (earlier / "keras_attention.json").read_text() == '{"task": "dates"}'
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: held-out exact match") and "--min-accuracy 100%, so " \
        "nothing was exported; train longer (--epochs)" in last
    assert "Traceback" not in result.stderr
