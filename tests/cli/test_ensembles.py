"""translate --model A --model B: an ensemble of trained model folders."""

from click.testing import CliRunner

from cli.main import main
from keras_attention.data import WordTokenizer
from keras_attention.models import TrainedModel, Transformer, save_trained_model

TEXTS = ["5 apr 1917", "march 3, 2001", "12/11/1999"]


def _translate(tmp_path, *models):
    source = tmp_path / "in.txt"
    source.write_text("".join(t + "\n" for t in TEXTS))
    arguments = ["translate", "--input", str(source), "--beam-size", "3"]
    for model in models:
        arguments += ["--model", model]
    return CliRunner().invoke(main, arguments)


def test_a_model_with_itself_translates_as_the_model(trained_date_model, tmp_path):
    _, folder = trained_date_model
    alone = _translate(tmp_path, folder)
    twice = _translate(tmp_path, folder, folder)
    assert twice.exit_code == 0, twice.output
    assert twice.stdout.splitlines() == alone.stdout.splitlines()
    assert len(twice.stdout.splitlines()) == len(TEXTS)


def test_other_vocabularies_or_an_export_are_one_line_errors(trained_date_model, date_export,
                                                             tmp_path):
    trained, folder = trained_date_model
    tokenizer = WordTokenizer.build(["some other words entirely"])
    model = Transformer.from_preset("tiny", encoder_vocabulary_size=tokenizer.vocabulary_size,
                                    decoder_vocabulary_size=tokenizer.vocabulary_size,
                                    max_sequence_length=32)
    other = save_trained_model(TrainedModel(model, tokenizer, tokenizer), str(tmp_path / "other"))
    result = _translate(tmp_path, folder, other)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert f"'{other}' has another source vocabulary than '{folder}'" in result.output
    _, export = date_export
    result = _translate(tmp_path, folder, export)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "an ensemble (--model given more than once) decodes trained model folders" in \
        result.output
