"""translate --alignments: one i-j pair per output token, from the
cross-attention; and the library call behind it."""

from click.testing import CliRunner

from cli.main import main
from keras_attention.data import date_pairs
from keras_attention.decoding.alignment import alignments, target_tokens
from keras_attention.decoding.text import TextGenerator, source_ids

TEXTS = [source for source, _ in date_pairs(6, seed=61)]


def _input(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(t + "\n" for t in TEXTS))
    return str(path)


def test_one_pair_per_output_token_within_the_source(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    result = CliRunner().invoke(main, ["translate", "--model", folder, "--input",
                                       _input(tmp_path), "--alignments"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(TEXTS)
    for text, line in zip(TEXTS, lines):
        output, links = line.split(" ||| ")
        pairs = [tuple(map(int, link.split("-"))) for link in links.split()]
        target = source_ids(trained.target_tokenizer, [output])[0]
        source = source_ids(trained.source_tokenizer, [text])[0]
        assert [j for _, j in pairs] == list(range(len(target)))
        assert all(0 <= i < len(source) for i, _ in pairs)
    # n-best lines carry them as a fourth field, one set per hypothesis.
    result = CliRunner().invoke(main, ["translate", "--model", folder, "--input",
                                       _input(tmp_path), "--alignments", "--n-best", "2",
                                       "--alignment-layer", "0"])
    assert result.exit_code == 0, result.output
    rows = [line.split(" ||| ") for line in result.stdout.splitlines()]
    assert len(rows) == 2 * len(TEXTS) and all(len(r) == 4 for r in rows)


def test_the_year_aligns_to_the_year(trained_date_model):
    """'5 apr 1917' -> '1917-04-05': the output's year digits attend to the
    source's year digits, the month to 'apr', the day to '5' (most of them)."""
    trained, _ = trained_date_model
    text, output = "5 apr 1917", "1917-04-05"
    source = source_ids(trained.source_tokenizer, [text])[0]
    target = source_ids(trained.target_tokenizer, [output])[0]
    assert len(source) == 6 and len(target) == 10  # 5, apr, 1, 9, 1, 7 / characters
    pairs = dict((j, i) for i, j in alignments(trained.model, [source], [target])[0])
    year = sum(pairs[j] >= 2 for j in range(4))
    month = sum(pairs[j] == 1 for j in (5, 6))
    assert year >= 3 and month >= 1, pairs
    assert target_tokens([5, 6, 2, 0, 7]) == [5, 6]


def test_bad_layers_are_one_line_errors(trained_date_model, tmp_path):
    # Exports: tests/cli/test_export_controls.py.
    _, folder = trained_date_model
    for model, args, message in [
        (folder, ["--alignment-layer", "7"], "the model has decoder layers 0..1"),
    ]:
        result = CliRunner().invoke(main, ["translate", "--model", model, "--input",
                                           _input(tmp_path), "--alignments", *args])
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
        assert message in result.output, result.output
    generator = TextGenerator(trained_date_model[0])
    assert generator.alignments(["5 apr 1917"], [""]) == [[]]
