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


def _vocab_error(tmp_path, sources, *options):
    """The one ``Error:`` line of ``vocab`` on the pairs (s, s) of ``sources``."""
    paths = [tmp_path / "src.txt", tmp_path / "tgt.txt"]
    for path in paths:
        path.write_text("".join(f"{text}\n" for text in sources))
    output = tmp_path / "v.model"
    result = invoke("vocab", "--aligned", *map(str, paths), *options, "--output", str(output))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not output.exists()
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    return errors[0], f"{paths[0]} + {paths[1]}"


def test_vocab_on_a_corpus_of_empty_lines_names_it(tmp_path):
    line, corpus = _vocab_error(tmp_path, ["", "  ", "\t"])
    assert line == (f"Error: {corpus}: no pairs left: all 3 records have an empty source or "
                    "target; check the column or field arguments.")


def test_vocab_on_lines_too_long_for_sentencepiece_names_the_corpus_and_the_fix(tmp_path):
    line, corpus = _vocab_error(tmp_path, ["ab " * 1500, "ba " * 1500])  # 4500 bytes each
    assert line == (
        f"Error: {corpus} (--side both): cannot build a SentencePiece vocabulary: all 4 texts "
        "are longer than 4192 bytes, the most SentencePiece learns from; split them into "
        "shorter texts (e.g. sentences), or build a WordPiece vocabulary (--type wordpiece).")


def test_vocab_size_too_small_for_the_characters_names_the_corpus_and_size(tmp_path):
    texts = ["".join(chr(ord("a") + (i * 7 + j) % 26) for j in range(8)) for i in range(40)]
    line, corpus = _vocab_error(tmp_path, texts, "--size", "20")
    assert line.startswith(f"Error: {corpus} (--side both): vocabulary_size=20 is too small "
                           "for this corpus")
    assert line.endswith("use vocabulary_size >= 31 (--size 31), or a lower character_coverage.")
    line, _ = _vocab_error(tmp_path, texts, "--size", "20", "--type", "wordpiece")
    assert "its 27 distinct characters need 57 tokens" in line
    assert "use vocabulary_size >= 57 (--size 57), or lowercase=True" in line


def test_vocab_debug_keeps_the_traceback(tmp_path):
    paths = [tmp_path / "src.txt", tmp_path / "tgt.txt"]
    for path in paths:
        path.write_text("ab " * 1500 + "\n")
    result = invoke("vocab", "--aligned", *map(str, paths), "--output",
                    str(tmp_path / "v.model"), "--debug")
    assert isinstance(result.exception, ValueError)
    assert "longer than 4192 bytes" in str(result.exception)


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
