"""The SavedModel's translation controls: the ``prefix`` signature (outputs
continue given target prefixes) and ``alignments`` (source-target token
alignments of given outputs), equal to the trained model's in memory, also
through ``keras-attention translate``."""

import pytest
import tensorflow as tf
from click.testing import CliRunner

from cli.main import main
from keras_attention.decoding import DecodingConfig
from keras_attention.decoding.alignment import pharaoh
from keras_attention.decoding.text import TextGenerator

TEXTS = ["5 apr 1917", "march 3, 2001", "twelfth of june 1985", "1 jan 2020"]
PREFIXES = ["19", "", "1985-1", "2"]


@pytest.fixture(scope="module")
def export(date_export):
    module, folder = date_export
    return module, folder, tf.saved_model.load(f"{folder}/1")


def _strings(values):
    return [value.decode("utf-8") for value in values.numpy()]


def test_the_prefix_signature_continues_each_prefix_as_in_memory(export, trained_date_model):
    _, _, loaded = export
    trained, _ = trained_date_model
    result = loaded.signatures["prefix"](inputs=tf.constant(TEXTS),
                                         prefixes=tf.constant(PREFIXES))
    outputs = _strings(result["outputs"])
    assert all(output.startswith(prefix) for output, prefix in zip(outputs, PREFIXES))
    assert outputs == TextGenerator(trained, config=DecodingConfig()).best(TEXTS,
                                                                           prefixes=PREFIXES)
    free = _strings(loaded.signatures["serving_default"](inputs=tf.constant(TEXTS))["outputs"])
    assert outputs[1] == free[1]  # an empty prefix: the free output
    with pytest.raises(tf.errors.InvalidArgumentError, match="one prefix per input"):
        loaded.signatures["prefix"](inputs=tf.constant(TEXTS), prefixes=tf.constant(["1"]))


def test_the_alignments_signature_equals_the_trained_model(export, trained_date_model):
    _, _, loaded = export
    trained, _ = trained_date_model
    generator = TextGenerator(trained)
    outputs = generator.best(TEXTS) + ["1999-12-12"]  # any output, not only the model's
    texts = TEXTS + ["12/12/1999"]
    result = loaded.signatures["alignments"](inputs=tf.constant(texts),
                                             outputs=tf.constant(outputs))
    expected = [pharaoh(pairs) for pairs in generator.alignments(texts, outputs)]
    assert _strings(result["alignments"]) == expected
    assert [len(a.split()) for a in expected] == [len(o) for o in outputs]  # one per character


def _translate(model, tmp_path, *options):
    source = tmp_path / "in.txt"
    source.write_text("".join(t + "\n" for t in TEXTS))
    return CliRunner().invoke(main, ["translate", "--model", model, "--input", str(source),
                                     *options])


def test_translate_with_an_export_gives_the_trained_folders_prefixes_and_alignments(
        export, trained_date_model, tmp_path):
    _, folder, _ = export
    _, trained_folder = trained_date_model
    prefixes = tmp_path / "prefixes.txt"
    prefixes.write_text("".join(p + "\n" for p in PREFIXES))
    options = ["--prefix-file", str(prefixes), "--alignments"]
    exported = _translate(folder, tmp_path, *options)
    assert exported.exit_code == 0, exported.output
    trained = _translate(trained_folder, tmp_path, *options)
    assert exported.stdout.splitlines() == trained.stdout.splitlines()
    lines = [line.split(" ||| ") for line in exported.stdout.splitlines()]
    assert len(lines) == len(TEXTS) and all(len(fields) == 2 for fields in lines)
    assert all(text.startswith(prefix) for (text, _), prefix in zip(lines, PREFIXES))
    result = _translate(folder, tmp_path, "--alignments", "--alignment-layer", "0")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "exported with the alignments of decoder layer 1" in result.output


def test_older_exports_without_the_signatures_say_so_in_one_line(export, tmp_path):
    module, _, _ = export
    older = {name: function for name, function in module.signatures().items()
             if name not in ("prefix", "alignments")}
    tf.saved_model.save(module, str(tmp_path / "old" / "1"), signatures=older)
    prefixes = tmp_path / "prefixes.txt"
    prefixes.write_text("".join(p + "\n" for p in PREFIXES))
    for options, name in ((["--prefix-file", str(prefixes)], "prefix"),
                          (["--alignments"], "alignments")):
        result = _translate(str(tmp_path / "old"), tmp_path, *options)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
        assert f"was exported without the {name} signature" in result.output
        assert "export it again" in result.output
    constraints = tmp_path / "terms.txt"
    constraints.write_text("19\n" * len(TEXTS))
    result = _translate(str(tmp_path / "old"), tmp_path, "--constraints", str(constraints))
    assert result.exit_code == 1 and "--constraints: '" in result.output
    assert "use the trained model folder" in result.output
