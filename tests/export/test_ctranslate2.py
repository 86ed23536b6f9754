"""CTranslate2 export: the converted model computes our model's
log-probabilities (every architecture option), decodes the same outputs
(greedy, beam search with our GNMT ranking, n-best), int8 stays close, and
what it cannot run is a one-line error."""

import os
import sys

import ctranslate2  # a dev dependency (setup.cfg), so make test always runs these
import keras
import numpy as np
import pytest

from keras_attention.data import END_ID, START_ID, date_pairs
from keras_attention.decoding import DecodingConfig
from keras_attention.decoding.text import TextGenerator, source_ids
from keras_attention.export.ctranslate2 import (
    QUANTIZATIONS,
    CTranslate2Translator,
    export_ctranslate2,
    transformer_spec,
    vocabulary,
)
from keras_attention.models import Transformer
from keras_attention.models.presets import get_preset

HELD_OUT = [source for source, _ in date_pairs(200, seed=5)]


@pytest.fixture(scope="module")
def date_export(trained_date_model, tmp_path_factory):
    trained, _ = trained_date_model
    folder = str(tmp_path_factory.mktemp("ct2") / "dates")
    return trained, export_ctranslate2(trained, folder)


@pytest.mark.parametrize("config", [
    DecodingConfig(),
    DecodingConfig(strategy="beam", beam_size=4, length_penalty=0.6, n_best=3),
    DecodingConfig(strategy="beam", beam_size=3, length_penalty=0.0),
    DecodingConfig(max_length=5),  # the limit counts END, as ours
], ids=["greedy", "beam-n-best", "beam-no-penalty", "max-length"])
def test_decodes_what_the_keras_model_decodes(date_export, config):
    trained, folder = date_export
    ours = TextGenerator(trained, config=config).generate(HELD_OUT)
    theirs = CTranslate2Translator(folder, config=config).generate(HELD_OUT)
    assert [n[0].text for n in theirs] == [n[0].text for n in ours]
    np.testing.assert_allclose([n[0].score for n in theirs], [n[0].score for n in ours],
                               atol=2e-4)
    assert all(len(n) == config.n_best for n in theirs)
    # Lower n-best ranks: CTranslate2's beam search stops exploring once its
    # beam_size hypotheses have ended, ours while an alive beam could still
    # beat the n-th finished one; the lists agree on most inputs (82% of
    # 1,000 dates with beam 4, n-best 3), the best one on all.
    same = sum([h.text for h in a] == [h.text for h in b] for a, b in zip(theirs, ours))
    assert same >= 0.75 * len(HELD_OUT), same
    for hypotheses in theirs:
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)


def _log_probs(model, source, target):
    """Our float32 log-probabilities of ``target`` ids (END appended) given
    ``source`` ids, one per target token."""
    decoder = np.array([[START_ID] + target], np.int32)
    logits = model({"encoder_tokens": np.array([source], np.int32), "decoder_tokens": decoder})
    log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits, axis=-1))[0]
    return log_probs[np.arange(len(target) + 1), target + [END_ID]]


@pytest.mark.parametrize("changes", [
    {},
    {"normalize_first": True, "position_encoding": "learned", "activation": "gelu"},
    {"share_embeddings": True, "tie_output_embeddings": True, "layer_norm_epsilon": 1e-3},
], ids=["post-norm-sinusoidal", "pre-norm-learned-gelu", "shared-tied-epsilon"])
def test_every_architecture_option_gives_our_log_probabilities(tmp_path, changes):
    keras.utils.set_random_seed(1)
    config = get_preset("tiny", encoder_vocabulary_size=40, decoder_vocabulary_size=40,
                        max_sequence_length=24, dropout=0.0, **changes)
    model = Transformer(config)
    spec = transformer_spec(model)
    spec.validate()
    spec.optimize(quantization=None)
    folder = str(tmp_path)
    spec.save(folder)
    translator = ctranslate2.Translator(folder)
    rng = np.random.default_rng(0)
    tokens = vocabulary(40)
    for source_length, target_length in ((3, 5), (9, 2), (23, 22)):
        source = rng.integers(4, 40, source_length).tolist()
        target = rng.integers(4, 40, target_length).tolist()
        result = translator.score_batch([[tokens[i] for i in source]],
                                        [[tokens[i] for i in target]])[0]
        np.testing.assert_allclose(result.log_probs, _log_probs(model, source, target),
                                   atol=2e-4, rtol=1e-4)


def test_int8_scores_within_half_a_bleu_point_of_float32(date_export, tmp_path):
    import sacrebleu

    trained, folder = date_export
    references = [target for _, target in date_pairs(200, seed=5)]
    int8 = export_ctranslate2(trained, str(tmp_path / "int8"), quantization="int8")
    bleu = {}
    for name, path in (("float32", folder), ("int8", int8)):
        outputs = [n[0].text for n in CTranslate2Translator(path).generate(HELD_OUT)]
        bleu[name] = sacrebleu.corpus_bleu(outputs, [references]).score
    assert bleu["float32"] > 90
    assert abs(bleu["int8"] - bleu["float32"]) <= 0.5, bleu
    assert os.path.getsize(os.path.join(int8, "model.bin")) < 0.5 * os.path.getsize(
        os.path.join(folder, "model.bin"))


def test_folder_holds_our_tokenizers_and_metadata_and_is_not_replaced(date_export, tmp_path):
    import json

    trained, folder = date_export
    names = set(os.listdir(folder))
    assert {"model.bin", "config.json", "keras_attention.json", "source.json",
            "target.json"} <= names
    metadata = json.load(open(os.path.join(folder, "keras_attention.json")))
    assert metadata["format"] == "ctranslate2" and metadata["task"] == "translation"
    assert metadata["max_sequence_length"] == trained.model.config.max_sequence_length
    with pytest.raises(FileExistsError):
        export_ctranslate2(trained, folder)


def test_long_inputs_are_refused_unless_truncated(date_export):
    trained, folder = date_export
    long_input = " ".join(["the first of may"] * 10)
    limit = trained.model.config.max_sequence_length
    with pytest.raises(ValueError, match=f"more than the model's limit of {limit}"):
        CTranslate2Translator(folder).generate([long_input])
    assert len(CTranslate2Translator(folder, truncate=True).generate([long_input])) == 1
    assert len(source_ids(trained.source_tokenizer, [long_input])[0]) > limit


@pytest.mark.parametrize("config, message", [
    (DecodingConfig(repetition_penalty=1.2), "repetition_penalty is not supported by "
     "CTranslate2 decoding here; decode with the trained model folder instead."),
    (DecodingConfig(strategy="beam", beam_stopping="exact"), "beam_stopping 'exact' is not "
     "supported by CTranslate2 decoding, which stops early; decode with the trained model "
     "folder instead."),
])
def test_decoding_ctranslate2_cannot_do_is_refused(date_export, config, message):
    _, folder = date_export
    with pytest.raises(ValueError) as error:
        CTranslate2Translator(folder, config=config).generate(["the first of may"])
    assert str(error.value) == message


def test_what_ctranslate2_cannot_run_is_a_one_line_error(monkeypatch):
    copy = Transformer(get_preset("tiny", encoder_vocabulary_size=30, decoder_vocabulary_size=30,
                                  share_embeddings=True, copy_attention=True))
    with pytest.raises(ValueError, match="copy-attention models .* have no CTranslate2 "
                                         "equivalent; export a SavedModel"):
        transformer_spec(copy)
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    with pytest.raises(ImportError, match=r"CTranslate2 is not installed; install it with: "
                                          r"pip install 'keras-attention\[ctranslate2\]'"):
        transformer_spec(copy)


def test_cli_lists_the_library_quantizations():
    from cli.export import CTRANSLATE2_QUANTIZATIONS, TFLITE_QUANTIZATIONS
    from keras_attention.export import tflite

    assert CTRANSLATE2_QUANTIZATIONS == QUANTIZATIONS
    assert TFLITE_QUANTIZATIONS == tflite.QUANTIZATIONS
