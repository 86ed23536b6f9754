"""TFLite export: the interpreter's greedy ids equal ``generate``'s, builtin ops only."""

import contextlib
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data import date_pairs
from keras_attention.decoding import DecodingConfig, generate
from keras_attention.export.tflite import (
    TFLiteDecoder,
    export_tflite,
    export_tflite_folder,
    interpreter_classes,
)
from keras_attention.export.tflite.tables import schema

SOURCE_LENGTH = 16
OUTPUT_LENGTH = 12
TEXTS = [source for source, _ in date_pairs(12, seed=41)]
GREEDY = DecodingConfig(max_length=OUTPUT_LENGTH)


def _ops(path):
    """The op names of every subgraph of a ``.tflite`` file."""
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        tf.lite.experimental.Analyzer.analyze(model_path=path)
    return set(re.findall(r"Op#\d+ ([A-Za-z_0-9]+)\(", report.getvalue()))


@pytest.fixture(scope="module")
def date_sources(trained_date_model):
    trained, _ = trained_date_model
    ragged = trained.source_tokenizer.tokenize(tf.constant(TEXTS))
    return ragged.to_tensor(0, shape=[None, SOURCE_LENGTH]).numpy()


@pytest.fixture(scope="module")
def expected_ids(trained_date_model, date_sources):
    trained, _ = trained_date_model
    return generate(trained.model, date_sources, GREEDY).ids.numpy()[:, 0]


@pytest.fixture(scope="module")
def exports(trained_date_model, tmp_path_factory):
    """``{quantize: path}`` of the trained date model, converted once."""
    trained, _ = trained_date_model
    folder = tmp_path_factory.mktemp("tflite")
    return {
        quantize: export_tflite(trained, str(folder / f"dates_{quantize}.tflite"), GREEDY,
                                SOURCE_LENGTH, quantize=quantize)
        for quantize in ("none", "float16", "dynamic", "int8")
    }


def test_float32_ids_equal_generate_and_decode_to_dates(
        trained_date_model, exports, date_sources, expected_ids):
    trained, _ = trained_date_model
    runner = TFLiteDecoder(exports["none"])
    assert (runner.max_source_length, runner.max_output_length) == (SOURCE_LENGTH, OUTPUT_LENGTH)
    ids = runner(date_sources)
    assert ids.dtype == np.int32 and ids.shape == (len(TEXTS), OUTPUT_LENGTH)
    np.testing.assert_array_equal(ids, expected_ids)
    # Shorter inputs are padded: the same ids.
    np.testing.assert_array_equal(runner(date_sources[:, :12]), expected_ids)
    # The trained model writes ISO dates (YYYY-MM-DD, END): the outputs are real.
    texts = [t.decode() for t in trained.target_tokenizer.detokenize(ids).numpy()]
    assert sum(bool(re.fullmatch(r"\d{4}-\d\d-\d\d", t)) for t in texts) >= len(TEXTS) - 1


def test_builtin_ops_only_with_a_while_loop(exports):
    ops = _ops(exports["none"])
    assert "WHILE" in ops and "ARG_MAX" in ops and "DYNAMIC_UPDATE_SLICE" in ops
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in ops), ops


def test_quantized_files_are_smaller_and_mostly_agree(exports, date_sources, expected_ids):
    sizes = {q: os.path.getsize(path) for q, path in exports.items()}
    assert sizes["float16"] <= 0.6 * sizes["none"], sizes
    assert sizes["dynamic"] <= 0.45 * sizes["none"], sizes
    assert sizes["int8"] <= sizes["dynamic"], sizes
    for quantize in ("float16", "dynamic", "int8"):
        ids = TFLiteDecoder(exports[quantize])(date_sources)
        same = np.mean(np.all(ids == expected_ids, axis=1))
        assert same >= 0.75, (quantize, same)
    np.testing.assert_array_equal(TFLiteDecoder(exports["float16"])(date_sources), expected_ids)


def test_all_padding_source_gives_end(exports):
    ids = TFLiteDecoder(exports["none"])(np.zeros((1, SOURCE_LENGTH), np.int32))
    np.testing.assert_array_equal(ids, [[2] + [0] * (OUTPUT_LENGTH - 1)])


def test_runs_in_a_fresh_process_without_tensorflow(exports, date_sources, expected_ids):
    script = (
        "import json, sys; import numpy as np;"
        "from ai_edge_litert.interpreter import Interpreter;"
        "run = Interpreter(model_path=sys.argv[1]).get_signature_runner('serving_default');"
        "rows = json.loads(sys.stdin.read());"
        "print(json.dumps([run(source_ids=np.array([r], np.int32))['ids'][0].tolist()"
        " for r in rows]));"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script, exports["none"]],
                            input=json.dumps(date_sources[:4].tolist()),
                            capture_output=True, text=True, check=True)
    ids, tensorflow_loaded = result.stdout.strip().splitlines()[-2:]
    assert json.loads(ids) == expected_ids[:4].tolist()
    assert tensorflow_loaded == "False"


def test_written_atomically_over_an_old_file(trained_date_model, exports, tmp_path):
    trained, _ = trained_date_model
    path = str(tmp_path / "model.tflite")
    with open(path, "wb") as f:
        f.write(b"old")
    assert export_tflite(trained.model, path, GREEDY, SOURCE_LENGTH) == path
    assert os.listdir(tmp_path) == ["model.tflite"]
    with open(path, "rb") as new, open(exports["none"], "rb") as reference:
        assert new.read() == reference.read()


def test_folder_export_refuses_an_existing_folder(trained_date_model, tmp_path):
    trained, _ = trained_date_model
    folder = tmp_path / "1"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(b"old")
    with pytest.raises(FileExistsError) as error:
        export_tflite_folder(trained, str(folder), GREEDY)
    assert str(error.value) == (
        f"TFLite export '{folder}' already exists; pass --overwrite (overwrite=True) to "
        "replace it, or choose another --version.")
    assert os.listdir(folder) == ["model.tflite"]
    assert (folder / "model.tflite").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["1"]


@pytest.mark.parametrize("args, message", [
    ((GREEDY, 33, "none"), "max_source_length=33 exceeds the model's max_sequence_length 32"),
    ((DecodingConfig(max_length=32), 16, "none"),
     "max_length=32 exceeds what the model can decode (31"),
    ((GREEDY, 0, "none"), "max_source_length must be a positive integer, got 0"),
    ((GREEDY, 16, "int4"),
     "quantize must be one of ('none', 'float16', 'dynamic', 'int8'), got 'int4'"),
    ((DecodingConfig(strategy="sample"), 16, "none"), "strategy 'sample' cannot be exported"),
    ((DecodingConfig(strategy="beam", n_best=2), 16, "none"),
     "a TFLite model returns one output per input, got n_best=2"),
])
def test_bad_arguments_are_one_line_errors(trained_date_model, tmp_path, args, message):
    trained, _ = trained_date_model
    path = str(tmp_path / "model.tflite")
    with pytest.raises(ValueError) as error:
        export_tflite(trained, path, *args)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not os.path.exists(path)


def test_runner_errors(exports, tmp_path):
    missing = str(tmp_path / "none.tflite")
    with pytest.raises(FileNotFoundError, match="export --format tflite"):
        TFLiteDecoder(missing)
    with pytest.raises(ValueError, match=r"length <= 16\), got \(1, 17\); truncate"):
        TFLiteDecoder(exports["none"])(np.ones((1, 17), np.int32))


def test_mixed_bfloat16_model_exports_as_float32(trained_date_model, date_sources,
                                                 expected_ids, tmp_path):
    """TFLite has no bfloat16 kernels: a model trained under mixed_bfloat16
    is converted from a float32 copy of its (float32) weights, so it gives
    the float32 model's ids."""
    from keras_attention.models import Transformer

    trained, _ = trained_date_model
    mixed = Transformer(trained.model.config, dtype="mixed_bfloat16")
    mixed.set_weights(trained.model.get_weights())
    path = export_tflite(mixed, str(tmp_path / "mixed.tflite"), GREEDY, SOURCE_LENGTH)
    np.testing.assert_array_equal(TFLiteDecoder(path)(date_sources), expected_ids)


def test_tf_lite_interpreter_gives_litert_ids(exports, date_sources, expected_ids):
    """TensorFlow's interpreter slices at most 5-D tensors: the 4-D per-layer
    key/value cache keeps the file runnable there, with LiteRT's ids."""
    litert, tensorflow_lite = interpreter_classes()
    assert litert.__module__ == "ai_edge_litert.interpreter"
    assert tensorflow_lite.__module__ == "tensorflow.lite.python.interpreter"
    for quantize in ("none", "int8"):
        ids = [TFLiteDecoder(exports[quantize], cls)(date_sources)
               for cls in (litert, tensorflow_lite)]
        np.testing.assert_array_equal(ids[0], ids[1])
    np.testing.assert_array_equal(
        TFLiteDecoder(exports["none"], tensorflow_lite)(date_sources), expected_ids)


def test_beam_search_ids_equal_generate_in_both_runtimes(tmp_path):
    """Beam search (top-k, beam reordering of the cache, length penalty)
    converts with builtin ops only and gives generate's beam ids. An
    untrained model: unlike the trained date model, its beam and greedy
    outputs differ, so the test sees the beam search at work."""
    import keras

    from keras_attention.models import Transformer

    keras.utils.set_random_seed(5)
    model = Transformer.from_preset("tiny", encoder_vocabulary_size=60,
                                    decoder_vocabulary_size=60, max_sequence_length=16)
    rng = np.random.default_rng(5)
    sources = rng.integers(4, 60, size=(8, 12)).astype(np.int32)
    for row, length in enumerate([12, 9, 5, 1, 12, 7, 3, 0]):
        sources[row, length:] = 0  # padding; the last row is all padding
    beam = DecodingConfig(strategy="beam", beam_size=3, length_penalty=1.0, max_length=10)
    expected = generate(model, sources, beam).ids.numpy()[:, 0]
    greedy = generate(model, sources, DecodingConfig(max_length=10)).ids.numpy()[:, 0]
    assert (expected != greedy).any(axis=1).sum() >= 2
    path = export_tflite(model, str(tmp_path / "beam.tflite"), beam, 12)
    for interpreter_class in interpreter_classes():
        np.testing.assert_array_equal(TFLiteDecoder(path, interpreter_class)(sources), expected)
    ops = _ops(path)
    assert {"WHILE", "TOPK_V2", "GATHER"} <= ops
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in ops), ops


@pytest.mark.parametrize("config", [
    DecodingConfig(max_length=40, min_length=35),
    DecodingConfig(max_length=40, max_length_ratio=1.2, max_length_offset=3,
                   no_repeat_ngram_size=3),
    DecodingConfig(strategy="beam", beam_size=3, max_length=40, min_length=20,
                   no_repeat_ngram_size=2, repetition_penalty=1.3),
    DecodingConfig(strategy="beam", beam_size=3, max_length=40, beam_stopping="exact",
                   min_length=10),
], ids=["min_length", "ratio_ngrams", "beam_controls", "beam_exact"])
def test_every_decoding_control_runs_as_in_generate(tmp_path, config):
    """The file runs ``generate`` itself: the length limits, n-gram
    blocking, repetition penalty and beam stopping convert to builtin ops,
    and outputs longer than the first cache window (16 positions, forced by
    ``min_length``) grow it as in memory."""
    import keras

    from keras_attention.models import Transformer

    keras.utils.set_random_seed(3)
    model = Transformer.from_preset("tiny", encoder_vocabulary_size=50,
                                    decoder_vocabulary_size=40, num_encoder_layers=1,
                                    num_decoder_layers=2, max_sequence_length=48)
    rng = np.random.default_rng(0)
    sources = rng.integers(4, 50, size=(6, 48)).astype(np.int32)
    for row, length in enumerate([3, 47, 20, 9, 33, 12]):
        sources[row, length:] = 0
    expected = generate(model, sources, config).ids.numpy()[:, 0]
    if config.min_length > 16:
        assert (expected != 0).sum(axis=1).min() > 16
    path = export_tflite(model, str(tmp_path / "model.tflite"), config)
    np.testing.assert_array_equal(TFLiteDecoder(path)(sources), expected)
    assert not any(op.startswith(("Flex", "CUSTOM")) for op in _ops(path))


def test_int8_stores_a_tied_table_once(tmp_path):
    """With tied embeddings the converter's dynamic quantization keeps the
    table twice (a per-tensor int8 copy for GATHER, a per-channel one for
    the output layer); int8 keeps the per-channel one only."""
    import keras

    from keras_attention.models import Transformer

    keras.utils.set_random_seed(3)
    model = Transformer.from_preset(
        "tiny", encoder_vocabulary_size=2000, decoder_vocabulary_size=2000, num_encoder_layers=1,
        num_decoder_layers=1, max_sequence_length=8, share_embeddings=True,
        tie_output_embeddings=True)
    rows, width = model.decoder_embedding.embeddings.shape
    table = rows * width
    paths = {q: export_tflite(model, str(tmp_path / f"{q}.tflite"), DecodingConfig(max_length=6),
                              8, quantize=q)
             for q in ("dynamic", "int8")}
    assert {q: _table_buffers(p, model.decoder_embedding.embeddings.shape)
            for q, p in paths.items()} == {"dynamic": 2, "int8": 1}
    # One int8 copy fewer (1 byte a weight), less the per-channel scales and
    # zero points (12 bytes a row) the gathers now carry.
    sizes = {q: os.path.getsize(p) for q, p in paths.items()}
    assert sizes["dynamic"] - sizes["int8"] >= table - 12 * rows, sizes
    # Both runtimes read the shared per-channel table the same way.
    sources = np.array([[5, 6, 7, 0, 0, 0, 0, 0], [9, 10, 11, 12, 13, 14, 15, 16]], np.int32)
    ids = [TFLiteDecoder(paths["int8"], cls)(sources) for cls in interpreter_classes()]
    np.testing.assert_array_equal(ids[0], ids[1])
    assert ids[0].shape == (2, 6)


def _table_buffers(path, shape):
    """How many distinct int8 buffers of the file hold a tensor of ``shape``."""
    fields = schema()
    with open(path, "rb") as f:
        model = fields.ModelT.InitFromObj(fields.Model.GetRootAsModel(bytearray(f.read()), 0))
    return len({t.buffer for g in model.subgraphs for t in g.tensors
                if list(t.shape) == list(shape) and t.type == fields.TensorType.INT8
                and model.buffers[t.buffer].data is not None})
