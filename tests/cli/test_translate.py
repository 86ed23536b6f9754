"""``keras-attention translate`` / ``summarize`` with a trained model folder."""

import dataclasses
import functools
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli import translate as translate_module
from fake_decoders import FakeDecoder, interrupt, stopping_decoder
from keras_attention.app.decoder import decoding_config
from text_files import INNER_BREAKS
from cli.main import main
from keras_attention.data import date_pairs
from keras_attention.decoding import text as text_module
from keras_attention.decoding.generate import DecodingConfig
from keras_attention.decoding.text import TextGenerator
from keras_attention.progress import ProgressLog

TEXTS = [source for source, _ in date_pairs(6, seed=77)]


def invoke(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def test_help_defaults_are_the_decoding_config_defaults():
    defaults = {f.name: f.default for f in dataclasses.fields(DecodingConfig)}
    assert translate_module.DECODING_DEFAULTS == defaults
    from keras_attention.decoding.beam import STOPPINGS

    assert translate_module.BEAM_STOPPINGS == STOPPINGS
    result = invoke("translate", "--help")
    assert result.exit_code == 0
    for flag in ("--strategy", "--beam-size", "--length-penalty", "--beam-stopping", "--n-best",
                 "--temperature",
                 "--top-k", "--top-p", "--seed", "--max-length", "--max-length-ratio",
                 "--min-length", "--no-repeat-ngram-size", "--repetition-penalty", "--truncate"):
        assert flag in result.output
    summarize = invoke("summarize", "--help")
    assert summarize.exit_code == 0 and "Example" in summarize.output


def test_stdin_to_stdout_equals_the_library(trained_date_model):
    trained, folder = trained_date_model
    result = invoke("translate", "--model", folder, input="\n".join(TEXTS) + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == TextGenerator(trained).best(TEXTS)
    assert result.stderr == ""  # no progress bar for stdin


def test_lines_end_at_newline_only(trained_date_model, tmp_path):
    # Each input holds a character str.splitlines() breaks at: still one input per line.
    trained, folder = trained_date_model
    texts = [source.replace(" ", mark, 1)
             for (source, _), mark in zip(date_pairs(len(INNER_BREAKS), seed=78), INNER_BREAKS)]
    expected = TextGenerator(trained).best(texts)
    result = invoke("translate", "--model", folder, input="\r\n".join(texts) + "\r\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n") == expected + [""]
    source = tmp_path / "in.txt.gz"
    source.write_bytes(gzip.compress("\n".join(texts).encode("utf-8")))
    result = invoke("summarize", "--model", folder, "--input", str(source))
    assert result.stdout.split("\n") == expected + [""]


@pytest.mark.parametrize("command", ["translate", "summarize"])
def test_unreadable_input_names_the_file_and_line(command, bad_files, tmp_path):
    for path, message in bad_files.values():
        result = invoke(command, "--model", str(tmp_path), "--input", path)
        assert result.exit_code == 1
        assert result.output == f"Error: {message}\n"
    result = invoke(command, "--model", str(tmp_path), input=b"may first\ncaf\xe9\n")
    assert result.output == (
        "Error: stdin:2: invalid UTF-8 byte 0xe9 at offset 3 of the line (offset 13 in the "
        "input); re-encode the input as UTF-8, e.g. with 'iconv -f latin1 -t utf-8'.\n")


def test_empty_stdin_is_an_error_like_an_empty_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = invoke("translate", "--model", str(tmp_path), "--input", str(empty))
    assert result.exit_code == 1
    assert result.output == f"Error: --input file '{empty}' is empty; give one line per sentence.\n"
    result = invoke("translate", "--model", str(tmp_path), input="")
    assert result.exit_code == 1
    assert result.output == "Error: --input stdin is empty; give one line per sentence.\n"


def test_input_field_reads_json_lines(trained_date_model):
    trained, folder = trained_date_model
    texts = [text.replace(" ", "\n", 1) for text in TEXTS]  # line breaks inside inputs
    records = "".join(json.dumps({"dialogue": text, "n": 1}) + "\n" for text in texts)
    result = invoke("summarize", "--model", folder, "--input-field", "dialogue", input=records)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == TextGenerator(trained).best(texts)
    result = invoke("translate", "--model", folder, "--input-field", "n", input=records)
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: stdin: line 1: field 'n' is int, not text; "
                                     "name a text field.")


def test_input_file_may_be_gzipped_and_must_exist(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    data = tmp_path / "in.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": text}) + "\n" for text in TEXTS)
    result = invoke("translate", "--model", folder, "--input", str(data), "--input-field",
                    "text")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == TextGenerator(trained).best(TEXTS)
    result = invoke("translate", "--model", folder, "--input", str(tmp_path / "nope.txt"))
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: --input file '{tmp_path / 'nope.txt'}' not "
                                     "found; check the path.")


def test_files_with_progress_and_beam_n_best(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("\n".join(TEXTS[:3]) + "\n", encoding="utf-8")
    result = invoke("translate", "--model", folder, "--input", str(source), "--output",
                    str(target), "--beam-size", "2", "--n-best", "2", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "translating" in result.stderr  # progress bar label on stderr
    expected = TextGenerator(trained, config=DecodingConfig(strategy="beam", beam_size=2,
                                                            n_best=2)).generate(TEXTS[:3])
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6
    for line, (index, hypothesis) in zip(
            lines, [(i, h) for i, hs in enumerate(expected) for h in hs]):
        number, text, score = line.split(" ||| ")
        assert int(number) == index and text == hypothesis.text
        assert float(score) == pytest.approx(hypothesis.score, abs=1e-3)


@pytest.mark.parametrize("flags, expected", [
    ([], {}),
    (["--beam-size", "5"], {"beam_size": 5}),
    (["--top-k", "3", "--seed", "1"], {"top_k": 3, "seed": 1}),
    (["--strategy", "beam", "--length-penalty", "1.0", "--n-best", "2"],
     {"strategy": "beam", "length_penalty": 1.0, "n_best": 2}),
    (["--max-length", "12", "--max-length-ratio", "1.5", "--max-length-offset", "3",
      "--min-length", "2", "--no-repeat-ngram-size", "3", "--repetition-penalty", "1.2"],
     {"max_length": 12, "max_length_ratio": 1.5, "max_length_offset": 3, "min_length": 2,
      "no_repeat_ngram_size": 3, "repetition_penalty": 1.2}),
    (["--strategy", "sample", "--temperature", "0.7", "--top-p", "0.9"],
     {"strategy": "sample", "temperature": 0.7, "top_p": 0.9}),
    (["--n-best", "3"], {"n_best": 3}),
    (["--strategy", "beam", "--beam-stopping", "exact"],
     {"strategy": "beam", "beam_stopping": "exact"}),
])
def test_flags_reach_the_decoding_config(monkeypatch, tmp_path, flags, expected):
    seen = {}

    class RecordingDecoder(FakeDecoder):
        def __init__(self, model_path, decoding=None, truncate=False, jit_compile=False,
                     ensemble=()):
            seen.update(decoding=decoding, truncate=truncate, jit_compile=jit_compile,
                        config=decoding_config(decoding))

    monkeypatch.setattr(translate_module, "Decoder", RecordingDecoder)
    result = invoke("translate", "--model", str(tmp_path), "--truncate", *flags, input="a b\n")
    assert result.exit_code == 0, result.output
    assert seen["decoding"] == expected and seen["truncate"] is True
    assert seen["jit_compile"] is False  # only --xla compiles
    # Beam flags alone mean beam search, sampling flags alone sampling.
    # An n-best list alone means beam search too.
    strategy = expected.get("strategy") or (
        "beam" if "beam_size" in expected or "n_best" in expected
        else "sample" if "top_k" in expected else "greedy")
    assert seen["config"] == DecodingConfig(**dict(expected, strategy=strategy))


def test_flags_override_the_decoding_saved_with_the_model():
    saved = {"length_penalty": 1.5, "max_length": 96, "min_length": 10,
             "no_repeat_ngram_size": 3, "n_best": 4, "seed": 3, "a_later_field": 1}
    # n_best and seed are per call; unknown fields (a newer version's) are ignored.
    assert decoding_config({}, saved) == DecodingConfig(
        length_penalty=1.5, max_length=96, min_length=10, no_repeat_ngram_size=3)
    assert decoding_config({"beam_size": 4, "max_length": 40}, saved) == \
        DecodingConfig(strategy="beam", beam_size=4, length_penalty=1.5, max_length=40,
                       min_length=10, no_repeat_ngram_size=3)
    saved_beam = {"strategy": "beam", "beam_size": 2}
    assert decoding_config({"temperature": 0.5}, saved_beam) == \
        DecodingConfig(strategy="sample", beam_size=2, temperature=0.5)
    # A clash with a stored value says where that value comes from.
    with pytest.raises(ValueError) as error:
        decoding_config({"max_length": 5}, saved)
    assert str(error.value) == (
        "min_length=10 leaves no room for END within max_length=5; make min_length < "
        "max_length. (stored with the model: length_penalty=1.5, min_length=10, "
        "no_repeat_ngram_size=3; flags override them)")


def test_translate_starts_from_the_decoding_saved_with_the_model(trained_date_model, tmp_path):
    trained, folder = trained_date_model
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    metadata_file = copy / "keras_attention.json"
    metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
    metadata["decoding"] = {"strategy": "beam", "beam_size": 2, "max_length": 3}
    metadata_file.write_text(json.dumps(metadata), encoding="utf-8")
    text = "\n".join(TEXTS) + "\n"

    def library(**fields):
        return TextGenerator(trained, config=DecodingConfig(**fields)).best(TEXTS)

    saved = library(strategy="beam", beam_size=2, max_length=3)
    assert saved != library()  # three tokens cut every date short
    result = invoke("translate", "--model", str(copy), input=text)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == saved
    result = invoke("translate", "--model", str(copy), "--max-length", "6", input=text)
    assert result.stdout.splitlines() == library(strategy="beam", beam_size=2, max_length=6)
    result = invoke("translate", "--model", str(copy), "--strategy", "greedy", input=text)
    assert result.stdout.splitlines() == library(max_length=3)


@pytest.mark.parametrize("flags, message", [
    (["--beam-size", "3", "--temperature", "0.5"],
     "Error: --beam-size, --temperature belong to different strategies (beam, sample); "
     "choose one with --strategy."),
    (["--strategy", "greedy", "--beam-size", "3"],
     "Error: --beam-size applies to --strategy beam, not greedy; drop it or choose "
     "--strategy beam."),
    (["--strategy", "sample", "--beam-stopping", "exact"],
     "Error: --beam-stopping applies to --strategy beam, not sample; drop it or choose "
     "--strategy beam."),
    (["--strategy", "beam", "--top-p", "0.5"],
     "Error: --top-p applies to --strategy sample, not beam; drop it or choose "
     "--strategy sample."),
])
def test_flags_of_another_strategy_are_usage_errors(tmp_path, flags, message):
    result = invoke("translate", "--model", str(tmp_path), *flags, input="x\n")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == message


@pytest.mark.parametrize("flag", ["--length-penalty", "--temperature", "--top-p",
                                  "--max-length-ratio", "--repetition-penalty"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_float_flags_must_be_finite(tmp_path, flag, value):
    result = invoke("translate", "--model", str(tmp_path), flag, value, input="x\n")
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    if flag == "--top-p" and value == "inf":  # outside the range anyway
        assert last == "Error: Invalid value for '--top-p': inf is not in the range 0.0<x<=1.0."
    else:
        assert last == f"Error: Invalid value for '{flag}': {value} is not a finite number."


def test_invalid_config_is_a_one_line_error(trained_date_model):
    _, folder = trained_date_model
    result = invoke("translate", "--model", folder, "--strategy", "greedy", "--n-best", "2",
                    input="may first\n")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: greedy search returns one hypothesis, got n_best=2; use strategy 'beam' "
        "or 'sample' for n-best lists.")


def test_max_length_above_the_model_limit_is_a_one_line_error(trained_date_model):
    trained, folder = trained_date_model
    limit = trained.model.config.max_sequence_length - 1
    result = invoke("translate", "--model", folder, "--max-length", str(limit + 1),
                    input="may first\n")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: max_length={limit + 1} exceeds what the model can decode ({limit} = "
        "max_sequence_length - 1); lower --max-length.\n")


def test_decoding_flags_with_a_saved_model_are_rejected(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"")
    result = invoke("translate", "--model", str(tmp_path), "--beam-size", "4", "--min-length",
                    "2", input="x\n")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: --beam-size, --min-length: '{tmp_path}' is an exported SavedModel "
        "whose decoding (greedy or beam search, chosen at export) is built into the graph; "
        "use a trained model folder (with "
        "model.keras) for decoding options.")


def test_xla_flag_gives_the_library_outputs_and_needs_a_model_folder(trained_date_model,
                                                                    tmp_path):
    trained, folder = trained_date_model
    result = invoke("translate", "--model", folder, "--xla", "--beam-size", "2",
                    input="\n".join(TEXTS) + "\n")
    assert result.exit_code == 0, result.output
    config = DecodingConfig(strategy="beam", beam_size=2)
    assert result.stdout.splitlines() == TextGenerator(trained, config=config).best(TEXTS)
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"")
    result = invoke("translate", "--model", str(tmp_path), "--xla", input="x\n")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: --xla: '{tmp_path}' is an exported SavedModel, whose decoding graph is "
        "fixed at export; export it with 'keras-attention export --xla', or use a "
        "trained model folder (with model.keras) for --xla.")


def test_too_long_input_and_truncate(trained_date_model):
    trained, folder = trained_date_model
    limit = trained.model.config.max_sequence_length
    long_text = " ".join(["may"] * (limit + 3))
    result = invoke("translate", "--model", folder, input=f"may first\n{long_text}\n")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: line 2 has {limit + 3} tokens, more than the model's limit of {limit} "
        "(1 input(s) too long); split it or truncate it (--truncate).")
    result = invoke("translate", "--model", folder, "--truncate",
                    input=f"{long_text}\nmay first\n{long_text}\n")
    assert result.exit_code == 0
    assert result.stderr == ("truncated 2 of 3 inputs to the model's limit of "
                             f"{limit} tokens (--truncate).\n")
    cut = " ".join(["may"] * limit)
    assert result.stdout.splitlines() == TextGenerator(trained).best([cut, "may first", cut])


def test_summarize_warns_on_a_translation_model(trained_date_model):
    trained, folder = trained_date_model
    result = invoke("summarize", "--model", folder, input=TEXTS[0] + "\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        "warning: the model was trained for translation, not summarization; "
        "'keras-attention translate' is the matching command.")
    assert result.stdout.splitlines() == TextGenerator(trained).best(TEXTS[:1])


_TFLITE_FIX = ("pass the trained model folder it was exported from, or a SavedModel exported "
               "from that (keras-attention export --format saved_model); run TFLite models "
               "with keras_attention.export.TFLiteText or TFLiteDecoder.")


@pytest.mark.parametrize("files, model, message", [
    (["dates.tflite"], "dates.tflite",
     "'{root}/dates.tflite' is a TFLite model, which translate cannot run; " + _TFLITE_FIX),
    (["run/model/model.keras"], "run/model/model.keras",
     "'{root}/run/model/model.keras' is the Keras file of a trained model folder; pass the "
     "folder: --model {root}/run/model"),
    (["notes.txt"], "notes.txt",
     "'{root}/notes.txt' is a file, not a model; pass a trained model folder (with "
     "model.keras) or an exported SavedModel folder."),
    (["run/config.yaml", "run/checkpoints/epoch-0001.weights.h5", "run/model/model.keras"], "run",
     "'{root}/run' is a training run folder; pass its model folder: --model {root}/run/model"),
    (["run/config.yaml", "run/checkpoints/epoch-0001.weights.h5"], "run",
     "'{root}/run' is a training run folder without a model yet (no {root}/run/model: "
     "training has not finished); resume it with 'keras-attention train --config ...' and "
     "pass RUN/model."),
    (["lite/1/model.tflite", "lite/1/keras_attention.json"], "lite/1",
     "'{root}/lite/1' is a TFLite export folder, which translate cannot decode; " + _TFLITE_FIX),
    (["lite/1/model.tflite", "lite/1/keras_attention.json"], "lite",
     "'{root}/lite' is a TFLite export folder, which translate cannot decode; " + _TFLITE_FIX),
])
def test_model_paths_that_are_not_decodable_say_what_to_pass(tmp_path, files, model, message):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    result = invoke("translate", "--model", str(tmp_path / model), input="may first\n")
    assert result.exit_code == 1
    assert result.output == "Error: " + message.format(root=tmp_path) + "\n"


def test_folder_without_model_keras_or_saved_model(tmp_path):
    result = invoke("summarize", "--model", str(tmp_path), input="x\n")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: '{tmp_path}' holds no SavedModel (no saved_model.pb, no numbered version "
        "folder).")


def test_exported_saved_model_gives_the_same_greedy_outputs(trained_date_model, date_export,
                                                            tmp_path):
    """The SavedModel path of the same command: greedy in the graph equals the
    trained folder's greedy decoding."""
    _, folder = trained_date_model
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    result = invoke("translate", "--model", date_export[1], "--input", str(source),
                    "--output", str(target), "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert "translating" in result.stderr
    from_folder = invoke("translate", "--model", folder, "--input", str(source))
    assert target.read_text().splitlines() == from_folder.stdout.splitlines()


def test_saved_model_refuses_too_long_inputs_unless_truncate(trained_date_model, date_export):
    # As a trained model folder does: the export's source_lengths signature counts.
    _, folder = trained_date_model
    module, export = date_export
    limit = module.max_input_length
    long_text = " ".join(["may"] * (limit + 3))
    text = f"may first\n{long_text}\n"
    result = invoke("translate", "--model", export, input=text)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: line 2 has {limit + 3} tokens, more than the model's limit of {limit} "
        "(1 input(s) too long); split it or truncate it (--truncate).\n")
    result = invoke("translate", "--model", export, "--truncate", input=text)
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"truncated 1 of 2 inputs to the model's limit of {limit} "
                             "tokens (--truncate).\n")
    assert result.stdout == invoke("translate", "--model", folder, "--truncate",
                                   input=text).stdout


def test_saved_model_without_source_lengths_warns(date_export, monkeypatch):
    from keras_attention.export import SavedModelTranslator

    monkeypatch.setattr(SavedModelTranslator, "source_lengths", lambda self, texts: None)
    result = invoke("translate", "--model", date_export[1], input="may first\n")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: '{date_export[1]}' was exported without the source_lengths signature, so "
        "inputs longer than its limit are cut without notice; export it again to have them "
        "checked.\n")


def test_saved_model_task_is_checked_like_a_folder(date_export, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(date_export[1], export)
    warning = ("warning: the model was trained for {}, not {}; 'keras-attention {}' is the "
               "matching command.\n")
    result = invoke("summarize", "--model", str(export), input="may first\n")
    assert result.exit_code == 0, result.output
    assert result.stderr == warning.format("translation", "summarization", "translate")
    metadata_file = export / "1" / "keras_attention.json"
    metadata = json.loads(metadata_file.read_text())
    metadata_file.write_text(json.dumps(dict(metadata, task="summarization")))
    result = invoke("translate", "--model", str(export), input="may first\n")
    assert result.stderr == warning.format("summarization", "translation", "summarize")
    assert invoke("summarize", "--model", str(export), input="may first\n").stderr == ""


@pytest.mark.parametrize("error, last_line", [(KeyboardInterrupt, "Aborted!"),
                                               (ValueError("boom"), "Error: boom")])
def test_an_interrupted_job_keeps_the_finished_outputs(trained_date_model, tmp_path,
                                                       monkeypatch, error, last_line):
    # A real model, windows of one batch: each finished batch is written at once.
    trained, folder = trained_date_model
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    monkeypatch.setattr(text_module, "SORT_WINDOW", 1)
    decode_batch = TextGenerator._decode_batch
    calls = []

    def stop_in_the_third_batch(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise error
        return decode_batch(self, *args)

    monkeypatch.setattr(TextGenerator, "_decode_batch", stop_in_the_third_batch)
    result = invoke("translate", "--model", folder, "--input", str(source), "--output",
                    str(target), "--batch-size", "2")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line]
    assert lines[-2:] == [f"interrupted: 4 of 6 outputs kept in {target}.partial", last_line]
    assert not target.exists()
    monkeypatch.setattr(TextGenerator, "_decode_batch", decode_batch)
    expected = TextGenerator(trained).best(TEXTS[:4])
    assert (tmp_path / "out.txt.partial").read_text().split("\n") == expected + [""]


# translate with a decoder that is killed (SIGKILL) after two batches.
_KILLED_SCRIPT = """
import os, signal, sys
sys.path.append(sys.argv[1])  # after the package root: its cli, not tests/cli
from cli import translate
from cli.main import main
from fake_decoders import stopping_decoder
translate.Decoder = stopping_decoder(2, lambda: os.kill(os.getpid(), signal.SIGKILL))
main(sys.argv[2:])
"""


def test_a_killed_job_leaves_every_finished_batch(tmp_path):
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_SCRIPT, os.path.join(root, "tests"), "translate",
         "--model", "m", "--input",
         str(source), "--output", str(target), "--batch-size", "2"],
        capture_output=True, text=True, timeout=120, cwd=root,
        env=dict(os.environ, PYTHONPATH=root))
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert not target.exists()
    kept = (tmp_path / "out.txt.partial").read_text()
    assert kept.split("\n") == [text.upper() for text in TEXTS[:4]] + [""]


def test_stdout_gets_each_batch_as_it_is_decoded(monkeypatch):
    monkeypatch.setattr(translate_module, "Decoder", stopping_decoder(2, interrupt))
    result = invoke("translate", "--model", "m", "--batch-size", "2",
                    input="\n".join(TEXTS) + "\n")
    assert result.exit_code == 1  # Aborted!
    assert result.stdout.split("\n") == [text.upper() for text in TEXTS[:4]] + [""]


def test_a_bad_output_path_fails_before_the_model_loads(tmp_path, monkeypatch):
    missing = tmp_path / "missing" / "out.txt"
    result = invoke("translate", "--model", str(tmp_path / "no-model"), "--output",
                    str(missing), input="may first\n")
    assert result.exit_code == 1
    assert result.output == (f"Error: --output '{missing}': folder '{missing.parent}' does "
                             "not exist; create it first or choose another path.\n")
    result = invoke("translate", "--model", str(tmp_path / "no-model"), "--output",
                    str(tmp_path), input="may first\n")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for '--output': File '{tmp_path}' is a directory.")
    # The outputs an interrupted job kept are never replaced.
    (tmp_path / "out.txt.partial").write_text("kept\n")
    result = invoke("translate", "--model", str(tmp_path / "no-model"), "--output",
                    str(tmp_path / "out.txt"), input="may first\n")
    assert result.output == (
        f"Error: --output '{tmp_path / 'out.txt'}': '{tmp_path / 'out.txt.partial'}' exists "
        "(the outputs an interrupted job kept); move or delete it first.\n")


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    now = [0.0]  # a fake clock: each batch takes 6 s
    monkeypatch.setattr(translate_module, "ProgressLog",
                        functools.partial(ProgressLog, clock=lambda: now[0]))

    class SlowDecoder(FakeDecoder):
        def before_batch(self, number):
            now[0] += 6

    monkeypatch.setattr(translate_module, "Decoder", SlowDecoder)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    result = invoke("translate", "--model", "m", "--input", str(source), "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert translate_module.PROGRESS_INTERVAL == 10  # a line after 12 s, one at the end
    assert result.stderr.splitlines() == [
        "translating: 4/6 (66%), 0.3 sentences/s, ETA 6s",
        "translating: 6/6 (100%), 0.3 sentences/s, took 18s"]
