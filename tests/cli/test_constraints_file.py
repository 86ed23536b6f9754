"""translate --constraints: each output contains its line's phrases."""

from click.testing import CliRunner

from cli.main import main

TEXTS = ["5 apr 1917", "march 3, 2001", "twelfth of june 1985", "1 jan 2020"]


def _invoke(model, tmp_path, lines, *options):
    source, constraints = tmp_path / "in.txt", tmp_path / "terms.txt"
    source.write_text("".join(t + "\n" for t in TEXTS))
    constraints.write_text("".join(line + "\n" for line in lines))
    return CliRunner().invoke(main, ["translate", "--model", model, "--input", str(source),
                                     "--constraints", str(constraints), *options])


def test_outputs_contain_the_phrases(trained_date_model, tmp_path):
    _, folder = trained_date_model
    lines = ["-12-", "", "-07- ||| 19", "31"]
    result = _invoke(folder, tmp_path, lines, "--beam-size", "8")
    assert result.exit_code == 0, result.output
    outputs = result.stdout.splitlines()
    assert len(outputs) == len(TEXTS)
    for output, line in zip(outputs, lines):
        assert all(phrase.strip() in output for phrase in line.split("|||") if line), output
    free = CliRunner().invoke(main, ["translate", "--model", folder, "--input",
                                     str(tmp_path / "in.txt"), "--beam-size", "8"])
    free = free.stdout.splitlines()
    assert outputs[1] == free[1]  # no constraints: the beam search output
    assert all("-12-" not in f and "31" not in f for f in free)


def test_bad_constraints_are_one_line_errors(trained_date_model, date_export, tmp_path):
    _, folder = trained_date_model
    result = _invoke(folder, tmp_path, ["19", "2"])
    assert result.exit_code == 2 and "--constraints has 2 lines for 4 inputs" in result.output
    result = _invoke(folder, tmp_path, ["19 |||", "", "", ""])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: constraint line 1 has an empty phrase; separate "
                                     "phrases with '|||' and leave none empty.")
    result = _invoke(folder, tmp_path, [""] * 4, "--strategy", "greedy")
    assert result.exit_code == 1 and "constraints need beam search, not greedy" in result.output
    _, export = date_export
    result = _invoke(export, tmp_path, [""] * 4)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "--constraints: '" in result.output and "use the trained model folder" in result.output
