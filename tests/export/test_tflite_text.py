"""String -> string TFLite: TF Text's fast SentencePiece kernels + greedy
search, equal to the SavedModel and TextGenerator, in LiteRT and
tf.lite.Interpreter."""

import contextlib
import gzip
import io
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import sacrebleu
import tensorflow as tf

from keras_attention.data import SentencePieceTokenizer, WordTokenizer, date_pairs
from keras_attention.decoding import DecodingConfig
from keras_attention.decoding.text import TextGenerator
from keras_attention.export import TextToTextModule
from keras_attention.export.tflite import (
    TFLiteText,
    export_tflite_text,
    fast_sentencepiece,
    interpreter_classes,
)
from keras_attention.models import TrainedModel

DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"
OUTPUT_LENGTH = 12
GREEDY = DecodingConfig(max_length=OUTPUT_LENGTH)
HELD_OUT = [source for source, _ in date_pairs(100, seed=77)]
EDGE_CASES = ["", "5 apr 1917", "the twenty third of march nineteen ninety four " * 6]


def _lines(name, count):
    with gzip.open(DATA / "multi30k" / name, "rt", encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(count)]


@pytest.fixture(scope="module")
def exports(sentencepiece_date_model, tmp_path_factory):
    trained, _ = sentencepiece_date_model
    folder = tmp_path_factory.mktemp("tflite_text")
    return {q: export_tflite_text(trained, str(folder / f"{q}.tflite"), GREEDY, quantize=q)
            for q in ("none", "int8")}


@pytest.fixture(scope="module")
def expected(sentencepiece_date_model):
    """Greedy outputs of the SavedModel graph and of TextGenerator."""
    trained, _ = sentencepiece_date_model
    config = GREEDY
    texts = HELD_OUT + EDGE_CASES
    module = TextToTextModule(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                              config=config, max_batch_size=len(texts))
    saved = [t.decode() for t in module.serve(tf.constant(texts))["outputs"].numpy()]
    generator = TextGenerator(trained, config=config, truncate=True)
    nonempty = [h[0].text for h in generator.generate(HELD_OUT + EDGE_CASES[1:])]
    return saved, [""] + nonempty[:len(HELD_OUT)] + nonempty[len(HELD_OUT):]


def test_fast_tokenizer_equals_ours_on_multi30k():
    train = _lines("train.en.gz", 300) + _lines("train.de.gz", 300)
    ours = SentencePieceTokenizer.build(train, vocabulary_size=600)
    fast = fast_sentencepiece(ours)
    test = _lines("val.en.gz", 150) + _lines("val.de.gz", 150)
    ids = ours.tokenize(test)
    assert fast.tokenize(tf.constant(test)).to_list() == ids.to_list()
    assert ids.flat_values.shape[0] > 3000
    # Detokenize: the same text (the unknown-id rule of ours applied first).
    kept = ours._detokenizable(ids.to_tensor())
    expected = ours.detokenize(ids.to_tensor()).numpy().tolist()
    assert fast.detokenize(kept).numpy().tolist() == expected


def test_float32_string_model_equals_saved_model_and_text_generator(exports, expected):
    saved, generated = expected
    assert saved == _reorder(generated)
    dates = [t for t in saved[: len(HELD_OUT)] if re.fullmatch(r"\d{4}-\d\d-\d\d", t)]
    assert len(dates) >= 0.9 * len(HELD_OUT)  # a real model, real outputs
    for interpreter_class in interpreter_classes():
        outputs = TFLiteText(exports["none"], interpreter_class)(HELD_OUT + EDGE_CASES)
        assert outputs == saved, interpreter_class.__module__


def _reorder(generated):
    """TextGenerator's list (empty input first) in the order HELD_OUT + EDGE_CASES."""
    return generated[1:1 + len(HELD_OUT)] + [""] + generated[1 + len(HELD_OUT):]


def test_builtin_ops_plus_tf_text_custom_ops_only(exports):
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        tf.lite.experimental.Analyzer.analyze(model_path=exports["none"])
    ops = set(re.findall(r"Op#\d+ ([A-Za-z_0-9>]+)\(", report.getvalue()))
    custom = {op for op in ops if not re.fullmatch(r"[A-Z_0-9]+", op)}
    assert custom == {"TFText>FastSentencepieceTokenize", "TFText>FastSentencepieceDetokenize"}
    assert "WHILE" in ops and not any("Flex" in op for op in ops)


def test_runs_in_a_fresh_litert_process(exports, expected):
    saved, _ = expected
    script = (
        "import json, sys; import numpy as np; import tensorflow_text;"
        "from ai_edge_litert.interpreter import InterpreterWithCustomOps as I;"
        "run = I(model_path=sys.argv[1], custom_op_registerers="
        "tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS).get_signature_runner();"
        "texts = json.loads(sys.stdin.read());"
        "print(json.dumps([run(inputs=np.array([t], object))['outputs'][0].decode()"
        " for t in texts]))"
    )
    result = subprocess.run([sys.executable, "-c", script, exports["none"]],
                            input=json.dumps(HELD_OUT[:8]), capture_output=True, text=True,
                            check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == saved[:8]


def test_int8_is_smaller_and_bleu_within_half_a_point(sentencepiece_date_model, exports, expected):
    saved, _ = expected
    assert os.path.getsize(exports["int8"]) < 0.5 * os.path.getsize(exports["none"])
    references = [target for _, target in date_pairs(100, seed=77)]
    quantized = TFLiteText(exports["int8"])(HELD_OUT)
    fp32 = sacrebleu.corpus_bleu(saved[: len(HELD_OUT)], [references]).score
    int8 = sacrebleu.corpus_bleu(quantized, [references]).score
    # The goal is a drop of at most 0.5 (int8 may also score higher).
    assert fp32 > 50 and fp32 - int8 <= 0.5, (fp32, int8)


def test_ids_output_is_the_generated_ids(sentencepiece_date_model, exports):
    trained, _ = sentencepiece_date_model
    runner = TFLiteText(exports["none"])
    ids = runner.ids(HELD_OUT[0])
    assert ids.shape == (OUTPUT_LENGTH,) and 2 in ids.tolist()
    text = trained.target_tokenizer.detokenize(ids[None]).numpy()[0].decode()
    assert text == runner([HELD_OUT[0]])[0]


def test_beam_search_string_model_equals_text_generator(sentencepiece_date_model, tmp_path):
    trained, _ = sentencepiece_date_model
    config = DecodingConfig(strategy="beam", beam_size=3, length_penalty=1.0,
                            max_length=OUTPUT_LENGTH)
    path = export_tflite_text(trained, str(tmp_path / "beam.tflite"), config)
    texts = HELD_OUT[:20] + EDGE_CASES[1:2]
    assert TFLiteText(path)(texts) == TextGenerator(trained, config=config).best(texts)


@pytest.mark.parametrize("change, message", [
    ("word", "the source tokenizer is a WordTokenizer: no TFLite kernel can run it"),
    ("bpe", "the target tokenizer is a SentencePiece BPE model (TF Text's fast kernel "
            "implements unigram only)"),
    ("lowercase", "the source tokenizer lowercases or normalizes text (lowercase=True"),
])
def test_unsupported_tokenizers_name_the_ids_fallback(sentencepiece_date_model, tmp_path,
                                                      change, message):
    trained, _ = sentencepiece_date_model
    source, target = trained.source_tokenizer, trained.target_tokenizer
    texts = [t for _, t in date_pairs(200, seed=5)]
    if change == "word":
        with pytest.raises(ValueError) as error:
            fast_sentencepiece(WordTokenizer.build(texts), "source")
        assert message in str(error.value) and "(--io ids)" in str(error.value)
        return
    if change == "bpe":
        target = SentencePieceTokenizer.build(texts, vocabulary_size=30, model_type="bpe")
    else:
        source = SentencePieceTokenizer(source.model_proto, lowercase=True)
    path = str(tmp_path / "model.tflite")
    with pytest.raises(ValueError) as error:
        export_tflite_text(TrainedModel(trained.model, source, target, "translation"), path,
                           DecodingConfig(max_length=8))
    text = str(error.value)
    assert message in text and "export the ids -> ids model (--io ids)" in text
    assert "\n" not in text and not os.path.exists(path)


def test_ids_model_is_refused_by_the_text_runner(sentencepiece_date_model, tmp_path):
    from keras_attention.export.tflite import export_tflite

    path = export_tflite(sentencepiece_date_model[0], str(tmp_path / "ids.tflite"),
                         DecodingConfig(max_length=4), 8)
    with pytest.raises(ValueError, match="is an ids -> ids TFLite model, not a string one"):
        TFLiteText(path)
