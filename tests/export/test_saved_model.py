import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.export import (
    SavedModelTranslator,
    TextToTextModule,
    export_saved_model,
    next_version,
    resolve_version,
    version_directory,
)
from keras_attention.export.saved_model import METADATA_FILE

from .conftest import CONFIGS, SENTENCES, SMALL_BATCH


@pytest.fixture(scope="module")
def exported(text_module, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("export") / "dates")
    path = export_saved_model(text_module, directory, version=1, metadata={"task": "test"})
    expected = [t.decode() for t in text_module.serve(tf.constant(SENTENCES))["outputs"].numpy()]
    return directory, path, expected


def test_layout_is_versioned_with_metadata_and_no_leftovers(exported):
    directory, path, _ = exported
    assert path == os.path.join(directory, "1")
    assert sorted(os.listdir(directory)) == ["1", "batching_parameters.txt"]
    assert sorted(os.listdir(path)) == ["assets", "assets.extra", "fingerprint.pb",
                                        METADATA_FILE, "saved_model.pb", "variables"]
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    with open(os.path.join(path, METADATA_FILE)) as f:
        info = json.load(f)
    assert info["versions"]["tensorflow"] == tf.__version__
    assert "tensorflow_text" in info["versions"]
    assert info["task"] == "test"
    assert info["decoding"]["strategy"] == "greedy" and info["decoding"]["max_length"] == 11
    assert info["max_input_length"] == 16 and info["max_batch_size"] == 64
    assert info["signatures"]["serving_default"]["outputs"] == {
        "outputs": "string (batch,)", "scores": "float32 (batch,)"}


def test_reload_in_process_equals_in_memory(exported):
    directory, _, expected = exported
    assert SavedModelTranslator(directory)(SENTENCES, batch_size=3) == expected


def test_an_existing_version_is_refused_before_any_work(text_module, tmp_path, monkeypatch):
    directory = str(tmp_path / "m")
    marker = os.path.join(directory, "2", "old-marker")
    os.makedirs(os.path.dirname(marker))
    open(marker, "w").close()
    monkeypatch.setattr(tf.saved_model, "save", None)  # refused before saving anything
    with pytest.raises(FileExistsError) as error:
        export_saved_model(text_module, directory, version=2)
    assert str(error.value) == (
        f"export version '{directory}/2' already exists; pass --overwrite (overwrite=True) "
        "to replace it, or choose another --version.")
    assert os.listdir(directory) == ["2"] and os.listdir(os.path.join(directory, "2")) == [
        "old-marker"]


def test_export_replaces_an_existing_version_atomically_with_overwrite(text_module, tmp_path):
    directory = str(tmp_path / "m")
    export_saved_model(text_module, directory, version=2)
    marker = os.path.join(directory, "2", "old-marker")
    open(marker, "w").close()
    export_saved_model(text_module, directory, version=2, overwrite=True)
    assert sorted(os.listdir(directory)) == ["2", "batching_parameters.txt"]
    assert not os.path.exists(marker)
    assert resolve_version(directory) == os.path.join(directory, "2")


def test_failed_export_leaves_previous_version_and_no_temp(text_module, tmp_path, monkeypatch):
    directory = str(tmp_path / "m")
    export_saved_model(text_module, directory, version=1)

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(text_module, directory, version=1, overwrite=True)
    assert sorted(os.listdir(directory)) == ["1", "batching_parameters.txt"]
    assert os.path.exists(os.path.join(directory, "1", "saved_model.pb"))


def test_resolve_version_picks_highest_and_reports_missing(tmp_path):
    for version in ("1", "10", "9"):
        os.makedirs(tmp_path / "m" / version)
        (tmp_path / "m" / version / "saved_model.pb").write_bytes(b"")
    os.makedirs(tmp_path / "m" / "11")  # no saved_model.pb: not a version
    assert resolve_version(str(tmp_path / "m")) == str(tmp_path / "m" / "10")
    with pytest.raises(FileNotFoundError, match="model '.*nope' not found"):
        resolve_version(str(tmp_path / "nope"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="holds no SavedModel"):
        resolve_version(str(tmp_path / "empty"))
    pb = str(tmp_path / "m" / "10" / "saved_model.pb")
    with pytest.raises(ValueError) as error:  # a file that exists is not "not found"
        resolve_version(pb)
    assert str(error.value) == (
        f"'{pb}' is a file, not a SavedModel; pass the folder holding saved_model.pb (or its "
        "parent, with numbered version folders).")


def test_next_version_is_one_above_the_highest(tmp_path):
    assert next_version(str(tmp_path / "missing")) == 1
    for version in ("1", "7", "notes"):
        os.makedirs(tmp_path / "m" / version)
    assert next_version(str(tmp_path / "m")) == 8


@pytest.mark.parametrize("version", [0, -1, "1", True])
def test_bad_version_is_rejected(text_module, tmp_path, version):
    with pytest.raises(ValueError, match="version must be a positive integer"):
        export_saved_model(text_module, str(tmp_path), version=version)


def test_version_directory_checks_the_version_and_an_existing_folder(tmp_path):
    assert version_directory(str(tmp_path), 3) == os.path.join(str(tmp_path), "3")
    os.makedirs(tmp_path / "3")
    with pytest.raises(FileExistsError, match="export version '.*3' already exists"):
        version_directory(str(tmp_path), 3)
    assert version_directory(str(tmp_path), 3, overwrite=True) == os.path.join(str(tmp_path), "3")
    with pytest.raises(ValueError, match="version must be a positive integer"):
        version_directory(str(tmp_path), 0, overwrite=True)


# Trained greedy and beam exports: reloaded in this process and run by
# saved_model_cli in fresh processes (the TF1 session loader TF Serving uses).

LONG = " ".join(["march"] * 40)
PROBES = SENTENCES + ["", LONG]
INVALID_UTF8 = b"5 apr\xff 1917"

@pytest.fixture(scope="module")
def trained_exports(trained_modules, tmp_path_factory):
    """``{name: (module, version folder)}`` for greedy, beam and beam
    compiled with XLA (``beam_xla``)."""
    root = tmp_path_factory.mktemp("trained")
    beam = trained_modules["beam"]
    modules = dict(trained_modules, beam_xla=TextToTextModule(
        beam.model, beam.source_tokenizer, beam.target_tokenizer, config=beam.config,
        max_batch_size=beam.max_batch_size, jit_compile=True))
    return {name: (module, export_saved_model(module, str(root / name), version=3))
            for name, module in modules.items()}


def _saved_model_cli(path, signature, inputs, outdir):
    """``saved_model_cli run`` in a fresh process importing only tensorflow
    and tensorflow_text; returns the running process."""
    script = (
        "import sys; import tensorflow; import tensorflow_text;"
        "from tensorflow.python.tools import saved_model_cli;"
        "sys.exit(saved_model_cli.main())"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, "run", "--dir", path, "--tag_set", "serve",
         "--signature_def", signature, *inputs, "--outdir", str(outdir), "--overwrite"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )


@pytest.fixture(scope="module")
def cli_runs(trained_exports, tmp_path_factory):
    """The saved_model_cli runs, started together: ``{key: (returncode,
    stderr, outputs)}`` with the outputs loaded from the .npy files."""
    root = tmp_path_factory.mktemp("cli_runs")
    probes = "inputs=" + repr([p.encode() for p in PROBES] + [INVALID_UTF8])
    too_many = "inputs=" + repr([b"june"] * (SMALL_BATCH + 1))
    ids_file = str(root / "source_ids.npy")
    np.save(ids_file, _source_ids(trained_exports))
    runs = {
        "greedy": (trained_exports["greedy"][1], "serving_default", ["--input_exprs", probes]),
        "n_best": (trained_exports["beam"][1], "n_best", ["--input_exprs", probes]),
        "ids": (trained_exports["beam"][1], "ids", ["--inputs", f"source_ids={ids_file}"]),
        "too_many": (trained_exports["beam"][1], "serving_default", ["--input_exprs", too_many]),
        "xla": (trained_exports["beam_xla"][1], "n_best", ["--input_exprs", probes]),
    }
    processes = {key: _saved_model_cli(path, signature, inputs, root / key)
                 for key, (path, signature, inputs) in runs.items()}
    results = {}
    for key, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        outputs = {}
        if process.returncode == 0:
            for file in os.listdir(root / key):
                outputs[file[:-4]] = np.load(root / key / file, allow_pickle=True)
        results[key] = process.returncode, stderr, outputs
    return results


def _source_ids(trained_exports):
    module = trained_exports["beam"][0]
    return module.source_tokenizer.tokenize(SENTENCES).to_tensor(0).numpy().astype(np.int32)


def _in_memory(module, signature):
    inputs = tf.constant([p.encode() for p in PROBES] + [INVALID_UTF8])
    result = getattr(module, signature)(inputs)
    return {key: value.numpy() for key, value in result.items()}


@pytest.mark.parametrize("name", ["greedy", "beam"])
def test_reloaded_signatures_equal_in_memory(trained_exports, name):
    module, path = trained_exports[name]
    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures) == ["alignments", "ids", "n_best", "prefix",
                                         "serving_default", "source_lengths"]
    for signature, key in (("serve", "serving_default"), ("n_best", "n_best")):
        expected = _in_memory(module, signature)
        inputs = tf.constant([p.encode() for p in PROBES] + [INVALID_UTF8])
        result = loaded.signatures[key](inputs=inputs)
        np.testing.assert_array_equal(result["outputs"].numpy(), expected["outputs"])
        np.testing.assert_allclose(result["scores"].numpy(), expected["scores"], atol=1e-5)
    ids = tf.constant(_source_ids(trained_exports))
    result = loaded.signatures["ids"](source_ids=ids)
    np.testing.assert_array_equal(result["ids"].numpy(), module.ids(ids)["ids"].numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_batch_size=8"):
        loaded.signatures["serving_default"](inputs=tf.constant(["june"] * 9))


def test_source_lengths_count_the_tokens_the_export_cuts(trained_exports):
    module, path = trained_exports["greedy"]
    limit = module.max_input_length
    texts = SENTENCES + [" ".join(["june"] * (limit + 5))]
    translator = SavedModelTranslator(path)
    assert translator.max_input_length == limit
    expected = [int(n) for n in module.source_tokenizer.tokenize(texts).row_lengths()]
    assert expected[-1] == limit + 5  # before the cut
    assert translator.source_lengths(texts, batch_size=3) == expected


def test_exports_without_source_lengths_still_load(trained_exports, tmp_path):
    # Exports made before the source_lengths signature decode as before.
    module, _ = trained_exports["greedy"]
    old = {name: function for name, function in module.signatures().items()
           if name != "source_lengths"}
    tf.saved_model.save(module, str(tmp_path / "1"), signatures=old)
    translator = SavedModelTranslator(str(tmp_path))
    assert translator.source_lengths(SENTENCES) is None
    assert translator.max_input_length is None and translator.task is None  # no metadata
    assert translator(SENTENCES) == [t.decode() for t in module.serve(
        tf.constant(SENTENCES))["outputs"].numpy()]


def test_translator_caps_batches_and_gives_n_best(trained_exports):
    module, path = trained_exports["beam"]
    translator = SavedModelTranslator(os.path.dirname(path))
    assert translator.max_batch_size == SMALL_BATCH
    many = SENTENCES * 5  # 20 inputs, more than max_batch_size, in one call
    expected = _in_memory(module, "n_best")
    best = [t.decode() for t in expected["outputs"][: len(SENTENCES), 0]]
    assert translator(many, batch_size=64) == best * 5
    hypotheses = translator.hypotheses(SENTENCES, batch_size=3)
    assert [[text for text, _ in h] for h in hypotheses] == [
        [t.decode() for t in row] for row in expected["outputs"][: len(SENTENCES)]]
    np.testing.assert_allclose([[s for _, s in h] for h in hypotheses],
                               expected["scores"][: len(SENTENCES)], atol=1e-5)


@pytest.mark.parametrize("key, name, signature",
                         [("greedy", "greedy", "serve"), ("n_best", "beam", "n_best")])
def test_saved_model_cli_in_fresh_process_equals_in_memory(cli_runs, trained_exports, key,
                                                           name, signature):
    returncode, stderr, outputs = cli_runs[key]
    assert returncode == 0, stderr[-2000:]
    expected = _in_memory(trained_exports[name][0], signature)
    np.testing.assert_array_equal(outputs["outputs"], expected["outputs"])
    np.testing.assert_allclose(outputs["scores"], expected["scores"], atol=1e-5)
    # The robustness cases: "" gives "" (score 0), the long input is truncated,
    # invalid UTF-8 decodes like its U+FFFD replacement.
    best = outputs["outputs"] if key != "n_best" else outputs["outputs"][:, 0]
    assert best[PROBES.index("")] == b""
    assert best[-1] == _in_memory(trained_exports[name][0], "serve")["outputs"][-1]


def test_xla_export_compiles_its_search_and_equals_the_plain_graph(cli_runs, trained_exports):
    module, path = trained_exports["beam_xla"]
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    graph = saved.meta_graphs[0]
    compiled = [f.signature.name for f in graph.graph_def.library.function
                if f.attr["_XlaMustCompile"].b]
    assert compiled and all("_search" in name for name in compiled)
    with open(os.path.join(path, METADATA_FILE)) as f:
        assert json.load(f)["xla"] is True
    # The TF1 session loader (saved_model_cli, TF Serving) in a fresh process
    # and the reloaded export equal the plain beam module in memory.
    returncode, stderr, outputs = cli_runs["xla"]
    assert returncode == 0, stderr[-2000:]
    expected = _in_memory(trained_exports["beam"][0], "n_best")
    np.testing.assert_array_equal(outputs["outputs"], expected["outputs"])
    np.testing.assert_allclose(outputs["scores"], expected["scores"], atol=1e-4)
    inputs = tf.constant([p.encode() for p in PROBES] + [INVALID_UTF8])
    reloaded = tf.saved_model.load(path).signatures["n_best"](inputs=inputs)
    np.testing.assert_array_equal(reloaded["outputs"].numpy(), expected["outputs"])


def test_saved_model_cli_ids_signature(cli_runs, trained_exports):
    returncode, stderr, outputs = cli_runs["ids"]
    assert returncode == 0, stderr[-2000:]
    module = trained_exports["beam"][0]
    expected = module.ids(tf.constant(_source_ids(trained_exports)))
    np.testing.assert_array_equal(outputs["ids"], expected["ids"].numpy())
    np.testing.assert_allclose(outputs["scores"], expected["scores"].numpy(), atol=1e-5)


def test_saved_model_cli_rejects_a_batch_above_max_batch_size(cli_runs):
    returncode, stderr, _ = cli_runs["too_many"]
    assert returncode != 0
    assert "batch larger than max_batch_size=8; send smaller batches" in stderr
