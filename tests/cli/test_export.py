"""``keras-attention export``: trained model folder -> versioned SavedModel."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from cli.main import main
from keras_attention.data import date_pairs
from keras_attention.decoding import DecodingConfig
from keras_attention.decoding.text import TextGenerator
from export.conftest import sentencepiece_date_model  # noqa: F401

TEXTS = [source for source, _ in date_pairs(4, seed=78)]


def invoke(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def test_help_shows_the_options_and_an_example():
    result = invoke("export", "--help")
    assert result.exit_code == 0
    for text in ("--model", "--output", "--version", "--format", "--beam-size",
                 "--length-penalty", "--n-best", "--max-length", "--max-batch-size",
                 "--probe", "saved_model", "keras-attention export --model runs/dates/model",
                 "--overwrite", "--debug", "--xla", "--xla_cpu_compilation_enabled=true",
                 "--warmup-input", "batching_parameters.txt"):
        assert text in result.output
    text = " ".join(result.output.split())
    assert "An existing OUTPUT/VERSION is never replaced without --overwrite." in text
    assert "--overwrite Replace OUTPUT/VERSION if it exists (atomically)" in text
    assert "keras-attention export" in invoke("--help").output


def test_export_beam_search_checks_in_a_fresh_process_and_serves(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    output = str(tmp_path / "dates")
    os.makedirs(os.path.join(output, "1"))  # without --version: the next number, 2
    result = invoke("export", "--model", folder, "--output", output, "--beam-size", "3",
                    "--n-best", "2", "--max-length", "12", "--max-batch-size", "8",
                    "--probe", TEXTS[0], "--probe", TEXTS[1])
    assert result.exit_code == 0, result.output
    path = os.path.join(output, "2")
    assert f"exported beam search (translation) to {path}" in result.output
    assert "reloaded in a fresh process: same outputs on 2 probe(s)" in result.output
    assert f"run --dir {path} --tag_set serve --signature_def serving_default" in result.output
    with open(os.path.join(path, "keras_attention.json")) as f:
        info = json.load(f)
    config = DecodingConfig(strategy="beam", beam_size=3, n_best=2, max_length=12)
    assert info["decoding"] == dict(config.__dict__)
    assert info["task"] == "translation" and info["format"] == "saved_model"
    assert info["max_batch_size"] == 8 and info["max_input_length"] == 32
    assert set(info["versions"]) == {"tensorflow", "tensorflow_text", "keras"}
    expected = TextGenerator(trained, config=config).generate(TEXTS)
    n_best = tf.saved_model.load(path).signatures["n_best"](inputs=tf.constant(TEXTS))
    assert [[t.decode() for t in row] for row in n_best["outputs"].numpy()] == [
        [h.text for h in hs] for hs in expected]
    np.testing.assert_allclose(n_best["scores"].numpy(), [[h.score for h in hs] for hs in expected],
                               atol=1e-4)
    # translate runs the export (the latest version with a saved_model.pb).
    translated = invoke("translate", "--model", output, input="\n".join(TEXTS) + "\n")
    assert translated.exit_code == 0, translated.output
    assert translated.stdout.splitlines() == [hs[0].text for hs in expected]


def test_export_with_xla_compiles_the_search_in_the_graph(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    output = str(tmp_path / "dates")
    result = invoke("export", "--model", folder, "--output", output, "--xla",
                    "--max-batch-size", "4", "--probe", TEXTS[0], "--probe", TEXTS[1])
    assert result.exit_code == 0, result.output
    path = os.path.join(output, "1")
    assert f"exported greedy search compiled with XLA (translation) to {path}" in result.output
    assert "reloaded in a fresh process: same outputs on 2 probe(s)" in result.output
    with open(os.path.join(path, "keras_attention.json")) as f:
        assert json.load(f)["xla"] is True
    expected = TextGenerator(trained).best(TEXTS)
    translated = invoke("translate", "--model", output, input="\n".join(TEXTS) + "\n")
    assert translated.exit_code == 0, translated.output
    assert translated.stdout.splitlines() == expected
    # --xla at translate time cannot change an export's graph: the error says how.
    again = invoke("translate", "--model", output, "--xla", input=TEXTS[0] + "\n")
    assert again.exit_code == 1 and "export it with 'keras-attention export --xla'" in again.output


def test_export_starts_from_the_decoding_saved_with_the_model(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    metadata = json.loads((copy / "keras_attention.json").read_text())
    metadata["decoding"] = {"max_length": 4, "no_repeat_ngram_size": 1}
    (copy / "keras_attention.json").write_text(json.dumps(metadata))
    output = str(tmp_path / "dates")
    os.makedirs(os.path.join(output, "1"))
    open(os.path.join(output, "1", "old-marker"), "w").close()
    result = invoke("export", "--model", str(copy), "--output", output, "--beam-size", "2",
                    "--version", "1", "--overwrite")  # replaces version 1
    assert result.exit_code == 0, result.output
    assert not os.path.exists(os.path.join(output, "1", "old-marker"))
    with open(os.path.join(output, "1", "keras_attention.json")) as f:
        info = json.load(f)
    config = DecodingConfig(strategy="beam", beam_size=2, max_length=4, no_repeat_ngram_size=1)
    assert info["decoding"] == dict(config.__dict__)
    expected = TextGenerator(trained, config=config).best(TEXTS)
    assert expected != TextGenerator(trained, config=DecodingConfig(
        strategy="beam", beam_size=2)).best(TEXTS)
    served = tf.saved_model.load(os.path.join(output, "1")).signatures["serving_default"](
        inputs=tf.constant(TEXTS))
    assert [t.decode() for t in served["outputs"].numpy()] == expected


@pytest.mark.parametrize("args, code, message", [
    (["--model", "{missing}"], 1, "model folder '{missing}' not found; train one with"),
    (["--strategy", "sample"], 1,
     "strategy 'sample' cannot be exported: exports must be deterministic"),
    (["--version", "0"], 2, "Invalid value for '--version': 0 is not in the range x>=1."),
    (["--max-length", "40"], 1, "max_length=40 exceeds what the model can decode"),
    (["--n-best", "3", "--beam-size", "2"], 1, "n_best=3 exceeds beam_size=2"),
    (["--strategy", "greedy", "--beam-size", "3"], 2, "--beam-size applies to --strategy beam"),
    (["--format", "onnx"], 2, "'onnx' is not one of 'saved_model', 'tflite'"),
    (["--quantize", "dynamic"], 2, "--quantize applies to --format tflite"),
    (["--format", "tflite", "--n-best", "2"], 2,
     "--format tflite returns one output per input; drop --n-best"),
    (["--format", "tflite", "--strategy", "sample"], 1,
     "strategy 'sample' cannot be exported: exports must be deterministic"),
    (["--format", "tflite", "--version", "0"], 2,
     "Invalid value for '--version': 0 is not in the range x>=1."),
    (["--io", "text"], 2, "--io applies to --format tflite"),
    (["--format", "tflite", "--io", "text"], 1,
     "the source tokenizer is a WordTokenizer: no TFLite kernel can run it, so there is no "
     "string -> string TFLite model; export the ids -> ids model (--io ids) and tokenize in "
     "the app with the folder's source.json tokenizer."),
    (["--format", "tflite", "--quantize", "int16"], 2,
     "--quantize int16 is not a tflite quantization; choose one of none, float16, dynamic, "
     "int8."),
    (["--format", "ctranslate2", "--quantize", "dynamic"], 2,
     "--quantize dynamic is not a ctranslate2 quantization; choose one of none, int8, "
     "int8_float32, int16, float16, bfloat16."),
    (["--format", "ctranslate2", "--max-batch-size", "8"], 2,
     "--max-batch-size applies to SavedModels"),
    (["--format", "ctranslate2", "--max-batch-size", "64"], 2,
     "--max-batch-size applies to SavedModels"),
    (["--format", "ctranslate2", "--io", "ids"], 2, "--io applies to --format tflite"),
    (["--format", "ctranslate2", "--beam-stopping", "exact"], 2,
     "--beam-stopping exact applies to --format saved_model or tflite; CTranslate2 stops "
     "beam search early."),
    (["--format", "tflite", "--xla"], 2, "--xla applies to --format saved_model; --format "
     "tflite has its own runtime. Drop --xla."),
    (["--format", "ctranslate2", "--xla"], 2, "--xla applies to --format saved_model"),
    (["--format", "tflite", "--warmup-input", "5 apr 1917"], 2,
     "--warmup-input applies to --format saved_model (TF Serving's warmup records); drop it "
     "for --format tflite."),
    (["--format", "tflite", "--max-length", "40"], 1,
     "max_length=40 exceeds what the model can decode (31 = max_sequence_length - 1)"),
])
def test_errors_are_one_line(trained_date_model, tmp_path, args, code, message):
    _, folder = trained_date_model
    missing = str(tmp_path / "nope")
    args = [a.format(missing=missing) for a in args]
    base = ["export", "--model", folder, "--output", str(tmp_path / "out")]
    result = invoke(*base, *args)
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and message.format(missing=missing) in lines[0], result.output
    assert not os.path.exists(tmp_path / "out" / "1")


@pytest.mark.parametrize("export_format", ["saved_model", "tflite"])
def test_an_existing_version_is_refused_without_overwrite(trained_date_model, tmp_path,
                                                          export_format):
    _, folder = trained_date_model
    output = tmp_path / "out"
    os.makedirs(output / "3")
    (output / "3" / "saved_model.pb").write_bytes(b"old")
    result = invoke("export", "--model", folder, "--output", str(output), "--format",
                    export_format, "--version", "3")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: export version '{output}/3' already exists; pass --overwrite (overwrite=True) "
        "to replace it, or choose another --version."]
    assert os.listdir(output) == ["3"] and os.listdir(output / "3") == ["saved_model.pb"]
    assert (output / "3" / "saved_model.pb").read_bytes() == b"old"


def test_export_tflite_folder_runs_and_matches_the_model(trained_date_model, tmp_path):
    from keras_attention.data import load_tokenizer
    from keras_attention.export.tflite import TFLiteDecoder

    trained, folder = trained_date_model
    output = str(tmp_path / "lite")
    result = invoke("export", "--model", folder, "--output", output, "--format", "tflite",
                    "--max-length", "12", "--probe", TEXTS[0], "--probe", TEXTS[1])
    assert result.exit_code == 0, result.output
    path = os.path.join(output, "1", "model.tflite")
    assert "exported ids -> ids greedy search (translation, quantize none, " in result.output
    # The word/character tokenizers have no TFLite kernel: ids -> ids by default.
    assert ("no string -> string TFLite model: the source tokenizer is a WordTokenizer"
            in result.output)
    assert path in result.output
    assert "same outputs as the in-memory model on 2 of 2 probe(s)" in result.output
    with open(os.path.join(output, "1", "keras_attention.json")) as f:
        info = json.load(f)
    assert (info["format"], info["io"], info["quantize"], info["max_source_length"],
            info["max_output_length"]) == ("tflite", "ids", "none", 32, 12)
    # A client needs only the folder: its tokenizers, the .tflite file.
    source = load_tokenizer(os.path.join(output, "1"), "source")
    target = load_tokenizer(os.path.join(output, "1"), "target")
    ids = TFLiteDecoder(path)(source.tokenize(tf.constant(TEXTS)).to_tensor().numpy())
    texts = [t.decode() for t in target.detokenize(ids).numpy()]
    config = DecodingConfig(max_length=12)
    expected = TextGenerator(trained, config=config).best(TEXTS)
    assert texts == expected
    for probe, text in zip(TEXTS[:2], texts):
        assert f"  {probe!r} -> {text!r}" in result.output



def test_export_tflite_beam_search_folder(trained_date_model, tmp_path):
    from keras_attention.export.tflite import TFLiteDecoder

    trained, folder = trained_date_model
    output = str(tmp_path / "lite")
    os.makedirs(os.path.join(output, "1"))
    open(os.path.join(output, "1", "old-marker"), "w").close()
    result = invoke("export", "--model", folder, "--output", output, "--format", "tflite",
                    "--beam-size", "3", "--length-penalty", "1.0", "--max-length", "12",
                    "--probe", TEXTS[0], "--probe", TEXTS[1], "--version", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert not os.path.exists(os.path.join(output, "1", "old-marker"))
    assert "exported ids -> ids beam search (translation, quantize none, " in result.output
    assert "same outputs as the in-memory model on 2 of 2 probe(s)" in result.output
    with open(os.path.join(output, "1", "keras_attention.json")) as f:
        info = json.load(f)
    assert info["decoding"] == {"strategy": "beam", "beam_size": 3, "length_penalty": 1.0,
                                "max_length": 12}
    config = DecodingConfig(strategy="beam", beam_size=3, length_penalty=1.0, max_length=12)
    ids = TFLiteDecoder(os.path.join(output, "1", "model.tflite"))(
        trained.source_tokenizer.tokenize(tf.constant(TEXTS)).to_tensor().numpy())
    texts = [t.decode() for t in trained.target_tokenizer.detokenize(ids).numpy()]
    assert texts == TextGenerator(trained, config=config).best(TEXTS)


def test_export_tflite_string_model_by_default_for_sentencepiece(sentencepiece_date_model,
                                                                 tmp_path):
    from keras_attention.export.tflite import TFLiteText

    trained, folder = sentencepiece_date_model
    output = str(tmp_path / "lite")
    result = invoke("export", "--model", folder, "--output", output, "--format", "tflite",
                    "--max-length", "12", "--probe", TEXTS[0], "--probe", TEXTS[1])
    assert result.exit_code == 0, result.output
    path = os.path.join(output, "1", "model.tflite")
    assert "exported string -> string greedy search (translation, quantize none, " in result.output
    assert "same outputs as the in-memory model on 2 of 2 probe(s)" in result.output
    with open(os.path.join(output, "1", "keras_attention.json")) as f:
        info = json.load(f)
    assert (info["io"], info["custom_ops"], sorted(info["inputs"]), sorted(info["outputs"])) == (
        "text", "tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS", ["inputs"],
        ["ids", "outputs"])
    texts = TFLiteText(path)(TEXTS)
    assert texts == TextGenerator(trained, config=DecodingConfig(max_length=12)).best(TEXTS)
    for probe, text in zip(TEXTS[:2], texts):
        assert f"  {probe!r} -> {text!r}" in result.output


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_length_penalty_must_be_finite(tmp_path, value):
    result = CliRunner().invoke(main, ["export", "--model", str(tmp_path), "--output",
                                       str(tmp_path / "out"), "--length-penalty", value])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"Error: Invalid value for '--length-penalty': {value} is not a finite number.")


def test_export_ctranslate2_then_translate_and_evaluate_with_it(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    output = str(tmp_path / "ct2")
    result = invoke("export", "--model", folder, "--output", output, "--format", "ctranslate2",
                    "--beam-size", "3", "--probe", TEXTS[0], "--probe", TEXTS[1])
    assert result.exit_code == 0, result.output
    path = os.path.join(output, "1")
    assert (f"exported CTranslate2 model (translation, quantize none; decoding beam stored, "
            f"flags of translate override it) to {path}") in result.output
    assert "CTranslate2: same outputs as the in-memory model on 2 of 2 probe(s)" in result.output
    with open(os.path.join(path, "keras_attention.json")) as f:
        assert json.load(f)["decoding"] == {"strategy": "beam", "beam_size": 3}

    sources = [source for source, _ in date_pairs(40, seed=79)]
    source_file = tmp_path / "src.txt"
    source_file.write_text("\n".join(sources) + "\n")
    for flags, config in (([], DecodingConfig(strategy="beam", beam_size=3)),
                          (["--strategy", "greedy"], DecodingConfig())):
        translated = invoke("translate", "--model", output, "--input", str(source_file), *flags)
        assert translated.exit_code == 0, translated.output
        assert translated.stdout.splitlines() == TextGenerator(trained, config=config).best(
            sources)
    references = tmp_path / "ref.txt"
    references.write_text("\n".join(TextGenerator(trained).best(sources)) + "\n")
    scored = invoke("evaluate", "--model", output, "--strategy", "greedy", "--source",
                    str(source_file), "--references", str(references), "--metric", "exact")
    assert scored.exit_code == 0, scored.output
    assert "exact match = 100.00" in scored.stdout
    refused = invoke("translate", "--model", output, "--xla", input="x\n")
    assert refused.exit_code == 1
    assert refused.output.strip() == (f"Error: --xla: '{output}' is a CTranslate2 export, "
                                      "which TensorFlow does not run; drop --xla.")


def test_export_warms_up_with_the_runs_data_and_writes_batching_parameters(trained_date_model,
                                                                           tmp_path):
    from keras_attention.export.warmup import pick_warmup_texts, read_warmup_requests
    from keras_attention.training import config_from_dict, save_config

    _, folder = trained_date_model
    run = tmp_path / "run"  # a run folder: config.yaml beside model/
    os.makedirs(run)
    os.symlink(folder, run / "model")
    save_config(config_from_dict({"data": {"train": {"format": "dates", "size": 50,
                                                     "seed": 1}}}), str(run / "config.yaml"))
    output = tmp_path / "out"
    result = invoke("export", "--model", str(run / "model"), "--output", str(output),
                    "--max-batch-size", "8")
    assert result.exit_code == 0, result.output
    assert (f"warmup records from the run's training data ({run / 'config.yaml'}); batching "
            f"parameters in {output / 'batching_parameters.txt'}") in result.output
    requests = read_warmup_requests(str(output / "1"))
    texts = pick_warmup_texts([source for source, _ in date_pairs(50, seed=1)])
    assert requests[0] == ("serving_default", requests[0][1])
    assert [t.decode() for t in requests[1][1]["inputs"][:4]] == texts
    assert (output / "batching_parameters.txt").read_text().startswith(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 1000 }\n")


def test_warmup_texts_given_else_generic(tmp_path):
    from cli.export import _warmup_texts

    assert _warmup_texts(str(tmp_path / "model"), ("a b", "c")) == (
        ["a b", "c"], "2 --warmup-input text(s)")
    assert _warmup_texts(str(tmp_path / "model"), ()) == (
        None, "generic texts (no run data found; see --warmup-input)")
    (tmp_path / "config.yaml").write_text("data: {train: {format: tsv, path: gone.tsv}}\n")
    assert _warmup_texts(str(tmp_path / "model"), ())[0] is None  # data moved: generic
