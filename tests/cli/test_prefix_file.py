"""translate --prefix-file: each output starts with its line's prefix."""

from click.testing import CliRunner

from cli.main import main
from keras_attention.data import date_pairs

TEXTS = [source for source, _ in date_pairs(5, seed=51)]


def _invoke(model, tmp_path, prefixes):
    source, prefix_file = tmp_path / "in.txt", tmp_path / "prefixes.txt"
    source.write_text("".join(t + "\n" for t in TEXTS))
    prefix_file.write_text("".join(p + "\n" for p in prefixes))
    return CliRunner().invoke(main, ["translate", "--model", model, "--input", str(source),
                                     "--prefix-file", str(prefix_file)])


def test_outputs_start_with_the_prefixes(trained_date_model, tmp_path):
    _, folder = trained_date_model
    prefixes = ["19", "", "2", "1850-1", ""]
    result = _invoke(folder, tmp_path, prefixes)
    assert result.exit_code == 0, result.output
    outputs = result.stdout.splitlines()  # progress goes to stderr
    assert len(outputs) == len(TEXTS)
    assert all(o.startswith(p) for o, p in zip(outputs, prefixes))
    free = CliRunner().invoke(main, ["translate", "--model", folder,
                                     "--input", str(tmp_path / "in.txt")]).stdout.splitlines()
    assert [outputs[1], outputs[4]] == [free[1], free[4]]


def test_a_wrong_count_is_a_usage_error(trained_date_model, tmp_path):
    # Exports: tests/cli/test_export_controls.py.
    _, folder = trained_date_model
    result = _invoke(folder, tmp_path, ["19", "2"])
    assert result.exit_code == 2 and "--prefix-file has 2 lines for 5 inputs" in result.output
