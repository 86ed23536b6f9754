"""Tokenizers saved with their type and options reload identically."""

import json

import pytest

from keras_attention.data import (
    CharacterTokenizer,
    SentencePieceTokenizer,
    WordPieceTokenizer,
    WordTokenizer,
    load_tokenizer,
    save_tokenizer,
)

TEXTS = [
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee!",
    "A MAN rides a bike.",
    "Two dogs play in the snow, happily.",
] * 20
PROBE = ["Ein MANN spielt im Schnee.", "two dogs ride a bike"]


def _texts(tensor):
    return [t.decode("utf-8") for t in tensor.numpy()]


def _build(kind):
    if kind == "sentencepiece":
        return SentencePieceTokenizer.build(
            TEXTS, vocabulary_size=60, lowercase=True, normalization="NFKC"
        )
    if kind == "wordpiece":
        return WordPieceTokenizer.build(TEXTS, vocabulary_size=80, lowercase=True)
    if kind == "word":
        return WordTokenizer.build(TEXTS, lowercase=False)
    return CharacterTokenizer.build(TEXTS, lowercase=True)


@pytest.mark.parametrize("kind", ["sentencepiece", "wordpiece", "word", "char"])
def test_round_trip_keeps_type_options_and_ids(tmp_path, kind):
    tokenizer = _build(kind)
    save_tokenizer(tokenizer, tmp_path, "source")
    loaded = load_tokenizer(tmp_path, "source")

    assert type(loaded) is type(tokenizer)
    assert loaded.lowercase == tokenizer.lowercase
    assert getattr(loaded, "normalization", None) == getattr(tokenizer, "normalization", None)
    assert loaded.tokenize(PROBE).to_list() == tokenizer.tokenize(PROBE).to_list()
    ids = tokenizer.tokenize(PROBE).to_tensor()
    assert _texts(loaded.detokenize(ids)) == _texts(tokenizer.detokenize(ids))
    spec = json.loads((tmp_path / "source.json").read_text())
    assert spec["type"] == kind
    assert spec["vocabulary_size"] == tokenizer.vocabulary_size


def test_missing_description_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tokenizer description '.*target.json' not found; write it with"):
        load_tokenizer(tmp_path, "target")


def test_unknown_type_is_rejected(tmp_path):
    (tmp_path / "source.json").write_text(json.dumps({"type": "bytes", "file": "x"}))
    with pytest.raises(ValueError, match=r"unknown tokenizer type 'bytes'; expected one of"):
        load_tokenizer(tmp_path, "source")


def test_invalid_json_is_one_line(tmp_path):
    (tmp_path / "source.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"source.json' is not valid JSON"):
        load_tokenizer(tmp_path, "source")


def test_replaced_vocabulary_file_is_detected(tmp_path):
    save_tokenizer(_build("word"), tmp_path, "source")
    vocab = tmp_path / "source.vocab"
    vocab.write_text("".join(vocab.read_text(encoding="utf-8").splitlines(True)[:-2]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"says \d+ tokens but 'source.vocab' has \d+"):
        load_tokenizer(tmp_path, "source")


def test_unsupported_tokenizer_cannot_be_saved(tmp_path):
    class Custom(WordTokenizer):
        pass

    with pytest.raises(TypeError, match="cannot save a Custom; supported tokenizers"):
        save_tokenizer(Custom.build(TEXTS), tmp_path, "source")
