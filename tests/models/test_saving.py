"""Trained model folders: atomic round trip, vocabulary checks, clear errors."""

import os

import numpy as np
import pytest

from keras_attention.data import CharacterTokenizer, WordTokenizer, date_pairs
from keras_attention.models import (
    TrainedModel,
    Transformer,
    load_trained_model,
    save_trained_model,
)

PAIRS = date_pairs(50, seed=3)


@pytest.fixture(scope="module")
def trained():
    source = WordTokenizer.build([s for s, _ in PAIRS])
    target = CharacterTokenizer.build([t for _, t in PAIRS])
    model = Transformer.from_preset(
        "tiny",
        encoder_vocabulary_size=source.vocabulary_size,
        decoder_vocabulary_size=target.vocabulary_size,
        max_sequence_length=24,
    )
    return TrainedModel(model, source, target, task="translation", metadata={"epochs": 2})


def _inputs(trained):
    source = trained.source_tokenizer.tokenize([s for s, _ in PAIRS[:4]]).to_tensor()
    target = trained.target_tokenizer.tokenize([t for _, t in PAIRS[:4]]).to_tensor()
    return {"encoder_tokens": source, "decoder_tokens": target}


def test_round_trip_gives_equal_outputs_tokenizers_and_metadata(tmp_path, trained):
    path = save_trained_model(trained, tmp_path / "run" / "model", extra={"bleu": 12.5})
    loaded = load_trained_model(path)

    inputs = _inputs(trained)
    np.testing.assert_allclose(loaded.model(inputs), trained.model(inputs), atol=1e-6)
    assert loaded.source_tokenizer.vocabulary == trained.source_tokenizer.vocabulary
    assert loaded.target_tokenizer.vocabulary == trained.target_tokenizer.vocabulary
    assert loaded.task == "translation"
    assert loaded.metadata["epochs"] == 2 and loaded.metadata["bleu"] == 12.5
    assert loaded.model.config == trained.model.config


def test_saving_over_an_existing_folder_replaces_it_and_leaves_no_temporaries(tmp_path, trained):
    target = tmp_path / "model"
    save_trained_model(trained, target)
    (target / "stale.txt").write_text("old")
    save_trained_model(trained, target)
    assert not (target / "stale.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_failed_save_leaves_the_previous_model_untouched(tmp_path, trained):
    target = tmp_path / "model"
    save_trained_model(trained, target)
    before = sorted(os.listdir(target))

    class Broken(WordTokenizer):
        pass

    broken_source = Broken(trained.source_tokenizer.vocabulary)
    broken = TrainedModel(trained.model, broken_source, trained.target_tokenizer)
    with pytest.raises(TypeError, match="cannot save a Broken"):
        save_trained_model(broken, target)
    assert sorted(os.listdir(target)) == before
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_vocabulary_mismatch_is_one_line(trained):
    other = WordTokenizer.build(["just a few words"])
    with pytest.raises(ValueError, match=r"source vocabulary has \d+ tokens but the model expects \d+; use the vocabulary the model was trained with"):
        TrainedModel(trained.model, other, trained.target_tokenizer)


def test_unknown_task_is_rejected(trained):
    with pytest.raises(ValueError, match="task must be one of"):
        TrainedModel(trained.model, trained.source_tokenizer, trained.target_tokenizer, task="qa")


def test_missing_folder_and_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder '.*nope' not found; train one with"):
        load_trained_model(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=r"is not a trained model folder \(no model.keras\)"):
        load_trained_model(str(tmp_path))


def test_swapped_tokenizer_files_are_detected_on_load(tmp_path, trained):
    path = save_trained_model(trained, tmp_path / "model")
    # source.json now describes the target vocabulary and vice versa.
    os.replace(os.path.join(path, "source.json"), os.path.join(path, "tmp.json"))
    os.replace(os.path.join(path, "target.json"), os.path.join(path, "source.json"))
    os.replace(os.path.join(path, "tmp.json"), os.path.join(path, "target.json"))
    with pytest.raises(ValueError, match=r"source vocabulary has \d+ tokens but '.*model.keras' expects"):
        load_trained_model(path)
