"""``keras-attention evaluate``: scores equal the libraries'; every error is one line."""

import gzip
import json

import pytest
import sacrebleu
from click.testing import CliRunner

from fake_decoders import interrupt, stopping_decoder
from text_files import INNER_BREAKS
from cli import evaluate as evaluate_module
from cli.main import main
from keras_attention.data import date_pairs
from keras_attention.decoding.text import TextGenerator
from keras_attention.evaluation import exact_match, rouge

HYPOTHESES = ["The cat sat on the mat.", "A man is riding a horses in the field", "two dogs play"]
REFERENCES = ["The cat sat on a mat.", "A man rides a horse in a field.",
              "Two dogs are playing in the snow."]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def files(tmp_path):
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt.gz"
    hyp.write_text("\n".join(HYPOTHESES) + "\n", encoding="utf-8")
    with gzip.open(ref, "wt", encoding="utf-8") as f:  # .gz references are read too
        f.write("\n".join(REFERENCES) + "\n")
    return str(hyp), str(ref)


def test_text_output_has_scores_and_signatures(files):
    result = invoke("evaluate", "--hypotheses", files[0], "--references", files[1])
    assert result.exit_code == 0, result.output
    bleu = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    chrf = sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES])
    assert result.output.splitlines() == [
        bleu.format(),
        "  signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
        chrf.format(),
        "  signature: nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
    ]


def test_json_output_with_chosen_metrics(files):
    result = invoke("evaluate", "--hypotheses", files[0], "--references", files[1],
                    "--metric", "rouge,exact,bleu", "--tokenize", "char", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["lines"] == 3
    names = [m["name"] for m in report["metrics"]]
    assert names == ["ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum", "exact match", "BLEU"]
    expected_rouge = rouge(HYPOTHESES, REFERENCES)
    for got, expected in zip(report["metrics"][:4], expected_rouge):
        assert got["score"] == pytest.approx(expected.score)
    assert report["metrics"][4]["score"] == 0.0
    char_bleu = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES], tokenize="char")
    assert report["metrics"][5]["score"] == pytest.approx(char_bleu.score)
    assert "tok:char" in report["metrics"][5]["signature"]


def test_decode_and_score_in_one_go(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    pairs = date_pairs(8, seed=5)
    source, reference, output = tmp_path / "src.txt", tmp_path / "ref.txt", tmp_path / "hyp.txt"
    source.write_text("\n".join(s for s, _ in pairs) + "\n")
    reference.write_text("\n".join(t for _, t in pairs) + "\n")
    result = invoke("evaluate", "--model", folder, "--source", str(source), "--references",
                    str(reference), "--metric", "exact,chrf", "--output", str(output), "--json")
    assert result.exit_code == 0, result.output
    hypotheses = TextGenerator(trained).best([s for s, _ in pairs])
    assert output.read_text().splitlines() == hypotheses
    report = json.loads(result.stdout)
    assert report["metrics"][0]["score"] == pytest.approx(
        100 * exact_match(hypotheses, [t for _, t in pairs]))
    assert report["metrics"][1]["score"] == pytest.approx(
        sacrebleu.corpus_chrf(hypotheses, [[t for _, t in pairs]]).score)
    assert "decoding" in result.stderr  # progress bar


def test_json_lines_fields_with_line_breaks(trained_date_model, tmp_path):
    # Dialogues keep their line breaks in JSON Lines; a text file cannot.
    trained, folder = trained_date_model
    pairs = date_pairs(4, seed=6)
    sources = [s.replace(" ", "\n", 1) for s, _ in pairs]
    data = tmp_path / "test.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": i, "text": s, "date": t}) + "\n"
                     for i, (s, (_, t)) in enumerate(zip(sources, pairs)))
    output = tmp_path / "hyp.txt"
    result = invoke("evaluate", "--model", folder, "--source", str(data), "--source-field",
                    "text", "--references", str(data), "--reference-field", "date",
                    "--metric", "exact", "--output", str(output), "--json")
    assert result.exit_code == 0, result.output
    hypotheses = TextGenerator(trained).best(sources)
    assert output.read_text().splitlines() == hypotheses
    assert json.loads(result.stdout)["metrics"][0]["score"] == pytest.approx(
        100 * exact_match(hypotheses, [t for _, t in pairs]))
    result = invoke("evaluate", "--model", folder, "--source", str(data), "--source-field",
                    "dialogue", "--references", str(data), "--reference-field", "date")
    assert one_line_error(result) == (
        f"Error: --source '{data}': line 1 has no field 'dialogue' (fields: id, text, date); "
        "name one of them.")


def test_model_task_picks_the_default_metrics(trained_date_model, tmp_path):
    _, folder = trained_date_model
    source, reference = tmp_path / "src.txt", tmp_path / "ref.txt"
    source.write_text("may first two thousand\n")
    reference.write_text("2000-05-01\n")
    result = invoke("evaluate", "--model", folder, "--source", str(source), "--references",
                    str(reference))
    assert result.exit_code == 0, result.output
    assert [line.split(" = ")[0] for line in result.stdout.splitlines()
            if not line.startswith("  ")] == ["BLEU", "chrF2"]  # a translation model


def one_line_error(result):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_lines_end_at_newline_only(tmp_path):
    # Characters str.splitlines() breaks at stay inside their line.
    texts = [f"a{mark}b" for mark in INNER_BREAKS]
    hypotheses, references = tmp_path / "hyp.txt", tmp_path / "ref.txt.gz"
    hypotheses.write_text("\n".join(texts) + "\n", encoding="utf-8", newline="")
    references.write_bytes(gzip.compress(("\r\n".join(texts) + "\r\n").encode("utf-8")))
    result = invoke("evaluate", "--hypotheses", str(hypotheses), "--references",
                    str(references), "--metric", "exact", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["lines"] == len(texts) and report["metrics"][0]["score"] == 100.0


@pytest.mark.parametrize("option", ["--hypotheses", "--references", "--source"])
def test_unreadable_files_name_the_file_and_line(option, files, bad_files, tmp_path):
    for path, message in bad_files.values():
        given = {"--hypotheses": files[0], "--references": files[1], option: path}
        if option == "--source":
            given["--model"] = str(tmp_path)
            del given["--hypotheses"]
        result = invoke("evaluate", *[word for pair in given.items() for word in pair])
        assert one_line_error(result) == f"Error: {message}"


def test_missing_file(files, tmp_path):
    missing = str(tmp_path / "nope.txt")
    result = invoke("evaluate", "--hypotheses", missing, "--references", files[1])
    assert one_line_error(result) == (
        f"Error: --hypotheses file '{missing}' not found; check the path.")


def test_different_line_counts_name_both(files, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("one line\n")
    result = invoke("evaluate", "--hypotheses", str(short), "--references", files[1])
    assert one_line_error(result) == (
        f"Error: --hypotheses '{short}' has 1 lines but --references '{files[1]}' has 3; "
        "they must be aligned line by line.")
    result = invoke("evaluate", "--model", str(tmp_path), "--source", str(short),
                    "--references", files[1])
    assert one_line_error(result) == (
        f"Error: --source '{short}' has 1 lines but --references '{files[1]}' has 3; "
        "they must be aligned line by line.")


def test_empty_file(files, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = invoke("evaluate", "--hypotheses", files[0], "--references", str(empty))
    assert one_line_error(result) == (
        f"Error: --references file '{empty}' is empty; give one line per sentence.")


def test_empty_source_line(files, tmp_path):
    source = tmp_path / "src.txt"
    source.write_text("a\n\nc\n")
    result = invoke("evaluate", "--model", str(tmp_path), "--source", str(source),
                    "--references", files[1])
    assert one_line_error(result) == (
        f"Error: --source '{source}': line 2 is empty (1 empty input(s)); remove empty lines, "
        "one input per line.")


def test_unknown_metric(files):
    result = invoke("evaluate", "--hypotheses", files[0], "--references", files[1],
                    "--metric", "bleu,meteor")
    assert one_line_error(result) == (
        "Error: unknown metric(s) meteor in --metric; use a comma-separated list of bleu, "
        "chrf, rouge, exact.")


@pytest.mark.parametrize("args, message", [
    ([], "Error: give either --hypotheses FILE or --model PATH with --source FILE, not neither."),
    (["--hypotheses", "h", "--model", "m"],
     "Error: give either --hypotheses FILE or --model PATH with --source FILE, not both."),
    (["--model", "m"], "Error: --model needs --source FILE (the inputs to decode)."),
    (["--hypotheses", "h", "--beam-size", "4"],
     "Error: --source, --source-field, --output, --truncate, --xla and decoding options "
     "need --model; with --hypotheses the outputs are already decoded."),
])
def test_option_combinations_are_usage_errors(args, message):
    result = invoke("evaluate", "--references", "r", *args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == message


def test_output_is_checked_before_decoding_and_kept_when_interrupted(files, tmp_path,
                                                                    monkeypatch):
    source = tmp_path / "src.txt"
    source.write_text("a\nb\nc\n")
    missing = tmp_path / "missing" / "hyp.txt"
    result = invoke("evaluate", "--model", str(tmp_path / "no-model"), "--source", str(source),
                    "--references", files[1], "--output", str(missing))
    assert one_line_error(result) == (f"Error: --output '{missing}': folder '{missing.parent}' "
                                      "does not exist; create it first or choose another path.")

    monkeypatch.setattr(evaluate_module, "Decoder", stopping_decoder(1, interrupt))
    output = tmp_path / "out.txt"
    result = invoke("evaluate", "--model", "m", "--source", str(source), "--references",
                    files[1], "--output", str(output), "--batch-size", "2")
    assert result.exit_code == 1
    assert f"interrupted: 2 of 3 outputs kept in {output}.partial" in result.stderr
    assert (tmp_path / "out.txt.partial").read_text() == "A\nB\n" and not output.exists()


def test_too_long_sources_fail_or_are_counted_with_truncate(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    limit = trained.model.config.max_sequence_length
    source, reference = tmp_path / "src.txt", tmp_path / "ref.txt"
    source.write_text("may first\n" + " ".join(["may"] * (limit + 1)) + "\n")
    reference.write_text("2000-05-01\n2000-05-01\n")
    args = ["evaluate", "--model", folder, "--source", str(source), "--references",
            str(reference), "--metric", "exact"]
    assert one_line_error(invoke(*args)) == (
        f"Error: line 2 has {limit + 1} tokens, more than the model's limit of {limit} "
        "(1 input(s) too long); split it or truncate it (--truncate).")
    result = invoke(*args, "--truncate")
    assert result.exit_code == 0, result.output
    assert (f"truncated 1 of 2 inputs to the model's limit of {limit} tokens (--truncate)."
            in result.stderr.splitlines())
