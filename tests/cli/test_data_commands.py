"""``keras-attention vocab`` and ``keras-attention data inspect`` as a user runs them."""

import gzip
import json
import pathlib

from click.testing import CliRunner

from cli.main import main

DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"
MULTI30K = [str(DATA / "multi30k" / "train.en.gz"), str(DATA / "multi30k" / "train.de.gz")]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_help_lists_the_data_commands():
    commands = invoke("--help").output.split("Commands:")[1].split()
    assert {"data", "vocab"} <= set(commands)
    assert "Example" in invoke("data", "inspect", "--help").output
    assert "Example" in invoke("vocab", "--help").output


def test_vocab_then_inspect_on_a_multi30k_slice(tmp_path):
    vocabulary = str(tmp_path / "shared.model")
    result = invoke("vocab", "--aligned", *MULTI30K, "--limit", "300", "--size", "400",
                    "--output", vocabulary)
    assert result.exit_code == 0, result.output
    assert f"wrote {vocabulary}: 400 tokens (sentencepiece) learned from 600 texts" in result.output

    result = invoke("data", "inspect", "--aligned", *MULTI30K, "--limit", "300",
                    "--source-vocab", vocabulary, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["pairs"] == 300
    for side in ("source_tokens", "target_tokens"):
        assert report[side]["oov_rate"] == 0.0  # built on the same texts
        assert sum(b["count"] for b in report[side]["histogram"]) == 300
        assert report[side]["max"] >= report[side]["percentiles"]["99"]


def test_inspect_text_output_and_wordpiece_vocab(tmp_path):
    vocabulary = str(tmp_path / "en.txt")
    result = invoke("vocab", "--aligned", *MULTI30K, "--limit", "100", "--side", "source",
                    "--type", "wordpiece", "--size", "300", "--output", vocabulary)
    assert result.exit_code == 0, result.output
    result = invoke("data", "inspect", "--aligned", *MULTI30K, "--limit", "100",
                    "--source-vocab", vocabulary, "--type", "wordpiece")
    assert result.exit_code == 0, result.output
    assert "100 pairs (0 empty dropped)" in result.output
    assert "source tokens:" in result.output and "OOV rate 0.0000%" in result.output


def test_corpus_must_be_named_exactly_once(tmp_path):
    result = invoke("data", "inspect")
    assert result.exit_code == 2 and "name exactly one corpus" in result.output
    result = invoke("data", "inspect", "--tsv", "a.tsv", "--jsonl", "b.jsonl")
    assert result.exit_code == 2 and "got --tsv, --jsonl" in result.output


def test_jsonl_needs_fields(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": "x", "b": "y"}\n')
    result = invoke("data", "inspect", "--jsonl", str(path))
    assert result.exit_code == 2 and "--jsonl needs --fields" in result.output


def test_missing_file_is_one_line(tmp_path):
    missing = str(tmp_path / "nope.tsv")
    result = invoke("vocab", "--tsv", missing, "--output", str(tmp_path / "v.model"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "nope.tsv" in lines[0]


def test_bad_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"d": "hi", "s": "yo"}\n{not json}\n')
    result = invoke("data", "inspect", "--jsonl", str(path), "--fields", "d", "s")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}:2: invalid JSON")
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_field_is_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"dialogue": "hi", "summary": "yo"}\n')
    result = invoke("data", "inspect", "--jsonl", str(path), "--fields", "dialogue", "abstract")
    assert result.exit_code == 1 and "abstract" in result.output


def test_missing_vocabulary_says_how_to_build_one(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("hi\thola\n")
    result = invoke("data", "inspect", "--tsv", str(path), "--source-vocab",
                    str(tmp_path / "none.model"))
    assert result.exit_code == 1 and "none.model" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_normalization_rejected_for_word_vocab(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("hi\thola\n")
    result = invoke("vocab", "--tsv", str(path), "--type", "word", "--normalization", "NFKC",
                    "--output", str(tmp_path / "v.txt"))
    assert result.exit_code == 1
    assert "--normalization is not available for --type word" in result.output


def test_cli_normalization_choices_match_the_tokenizers():
    from cli.data import NORMALIZATION_FORMS
    from keras_attention.data import subword

    assert NORMALIZATION_FORMS == subword.NORMALIZATION_FORMS
