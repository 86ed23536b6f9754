"""A TFLite export folder, and checking a file against the in-memory model.

``export_tflite_folder`` writes, atomically, ``model.tflite`` (the ids ->
ids graph of ``ids.py`` or the string -> string one of ``text.py``), the
source and target tokenizers and ``keras_attention.json`` (the format,
lengths, quantization, decoding, input/output names, versions).
``compare_with_model`` decodes texts with a file and with ``generate``.
"""

import json
import os

import tensorflow as tf

from keras_attention.atomic import atomic_directory, refuse_existing
from keras_attention.constants import METADATA_FILE, TFLITE_IO
from keras_attention.constants import TFLITE_MODEL_FILE as MODEL_FILE
from keras_attention.data.tokenizer_files import save_tokenizer
from keras_attention.decoding.generate import DecodingConfig, generate
from keras_attention.export.signatures import (
    DEFAULT_SIGNATURE,
    IDS_NAME,
    INPUT_NAME,
    OUTPUT_NAME,
    SOURCE_IDS_NAME,
)
from keras_attention.export.tflite.convert import check_quantize
from keras_attention.export.tflite.ids import export_tflite, fixed_lengths
from keras_attention.export.tflite.runtime import TFLiteDecoder, TFLiteText, load_interpreter
from keras_attention.export.tflite.text import export_tflite_text

TEXT_OPS = "tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS"


def export_tflite_folder(trained, directory, config=DecodingConfig(), quantize="none", io="ids",
                         overwrite=False):
    """Write ``directory/`` (atomically) with ``model.tflite``, the source
    and target tokenizers (``source.json``, ``target.json`` and their
    vocabularies or models) and ``keras_attention.json``. Returns
    ``directory``. An existing ``directory`` is a ``FileExistsError`` (before
    converting) unless ``overwrite=True``: then it is replaced.

    ``config``: the ``DecodingConfig`` the file runs (greedy or beam search,
    ``n_best=1``; ``max_length``, or the model's limit, fixes the output
    length). ``io``: ``"ids"`` (``ids.export_tflite``, source length the
    model's ``max_sequence_length``; the app tokenizes with the saved
    tokenizers) or ``"text"`` (``text.export_tflite_text``: strings in and
    out).
    """
    if io not in TFLITE_IO:
        raise ValueError(f"io must be one of {TFLITE_IO}, got {io!r}.")
    check_quantize(quantize)
    # The lengths (and their errors) before converting.
    source_length, output_length = fixed_lengths(trained.model, config)
    if not overwrite:
        refuse_existing(directory, "TFLite export", "--version")
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        path = os.path.join(tmp, MODEL_FILE)
        ids_output = f"int32 (1, {output_length}), END then PAD"
        versions = {"tensorflow": tf.__version__}
        if io == "text":
            import tensorflow_text

            export_tflite_text(trained, path, config, quantize=quantize)
            inputs = {INPUT_NAME: "string (1,), UTF-8; tokens past max_source_length are cut"}
            outputs = {OUTPUT_NAME: "string (1,)", IDS_NAME: ids_output}
            versions["tensorflow_text"] = tensorflow_text.__version__
        else:
            export_tflite(trained, path, config, quantize=quantize)
            inputs = {SOURCE_IDS_NAME: f"int32 (1, {source_length}), PAD = 0"}
            outputs = {IDS_NAME: ids_output}
        save_tokenizer(trained.source_tokenizer, tmp, "source")
        save_tokenizer(trained.target_tokenizer, tmp, "target")
        info = {
            "format": "tflite",
            "io": io,
            "custom_ops": TEXT_OPS if io == "text" else None,
            "task": trained.task,
            # What the file runs: the strategy and length, other fields when
            # not their default.
            "decoding": {"strategy": config.strategy, "max_length": output_length,
                         **config.replace(max_length=output_length).changes()},
            "quantize": quantize,
            "max_source_length": source_length,
            "max_output_length": output_length,
            "inputs": inputs,
            "outputs": outputs,
            "versions": versions,
        }
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(info, f, indent=2)
    return directory


def model_texts(trained, texts, max_source_length, config):
    """``(source_ids, outputs)``: ``texts`` tokenized and cut to
    ``max_source_length`` tokens as the exports do, and their in-memory
    outputs (``generate`` with ``config``)."""
    ids = trained.source_tokenizer.tokenize(tf.constant(list(texts)))
    ids = ids[:, :max_source_length].to_tensor(0, shape=[None, max_source_length]).numpy()
    expected = generate(trained.model, ids, config).ids.numpy()[:, 0]
    return ids, [t.decode("utf-8") for t in trained.target_tokenizer.detokenize(expected).numpy()]


def compare_with_model(trained, path, texts, config=DecodingConfig()):
    """Decode ``texts`` with the ``.tflite`` file at ``path`` (a string or an
    ids model, written for ``config``) and in memory (``generate`` with
    ``config``); returns ``(tflite_texts, model_texts)``. Inputs longer than
    the file's source length are cut."""
    inputs = load_interpreter(path, text_ops=True).get_signature_runner(
        DEFAULT_SIGNATURE).get_input_details()
    if INPUT_NAME in inputs:
        runner = TFLiteText(path)
        config = config.replace(max_length=runner.max_output_length)
        _, expected = model_texts(trained, texts, trained.model.config.max_sequence_length,
                                  config)
        return runner(texts), expected
    runner = TFLiteDecoder(path)
    config = config.replace(max_length=runner.max_output_length)
    ids, expected = model_texts(trained, texts, runner.max_source_length, config)
    outputs = trained.target_tokenizer.detokenize(runner(ids)).numpy()
    return [t.decode("utf-8") for t in outputs], expected
