"""Word and character tokenizers: vocabulary building, round trips, files, graphs."""

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
    CharacterTokenizer,
    WordTokenizer,
)

TOKENIZERS = [WordTokenizer, CharacterTokenizer]


def _texts(tensor):
    return [t.decode("utf-8") for t in tensor.numpy()]


def _ids(ragged):
    return [list(row) for row in ragged.to_list()]


def test_reserved_token_constants():
    assert RESERVED_TOKENS == ("[PAD]", "[START]", "[END]", "[UNK]")
    assert (PAD_ID, START_ID, END_ID, UNK_ID) == (0, 1, 2, 3)


@pytest.mark.parametrize("cls", TOKENIZERS)
def test_build_puts_reserved_tokens_first(cls):
    tokenizer = cls.build(["hello world", "a b c"])
    assert tokenizer.vocabulary[:4] == RESERVED_TOKENS
    assert tokenizer.vocabulary_size == len(tokenizer.vocabulary)
    assert len(set(tokenizer.vocabulary)) == tokenizer.vocabulary_size


def test_word_build_orders_by_frequency_then_alphabet():
    tokenizer = WordTokenizer.build(["b a a", "c b a", "z y x d d"])
    # a: 3, b: 2, d: 2, then c, x, y, z once each (ties alphabetical).
    assert tokenizer.vocabulary == RESERVED_TOKENS + ("a", "b", "d", "c", "x", "y", "z")


def test_character_build_orders_by_frequency_then_alphabet():
    tokenizer = CharacterTokenizer.build(["abba", "cab d"])
    # a: 3, b: 3, then ' ', c, d once each (' ' sorts before letters).
    assert tokenizer.vocabulary == RESERVED_TOKENS + ("a", "b", " ", "c", "d")


@pytest.mark.parametrize("cls", TOKENIZERS)
def test_build_is_deterministic_and_independent_of_order(cls):
    corpus = ["the cat sat", "on the mat", "a cat, a hat!", "12 mats"]
    first = cls.build(corpus)
    assert cls.build(corpus).vocabulary == first.vocabulary
    assert cls.build(list(reversed(corpus))).vocabulary == first.vocabulary


def test_build_respects_max_size():
    corpus = ["b a a", "c b a", "z y x d d"]
    assert WordTokenizer.build(corpus, max_size=6).vocabulary == RESERVED_TOKENS + ("a", "b")
    assert WordTokenizer.build(corpus, max_size=4).vocabulary == RESERVED_TOKENS
    # Smaller than the reserved tokens still keeps all of them.
    assert WordTokenizer.build(corpus, max_size=2).vocabulary == RESERVED_TOKENS
    assert WordTokenizer.build(corpus, max_size=100).vocabulary_size == 11
    assert CharacterTokenizer.build(["aab"], max_size=5).vocabulary == RESERVED_TOKENS + ("a",)


def test_build_respects_min_count():
    corpus = ["b a a", "c b a", "z y x d d"]
    assert WordTokenizer.build(corpus, min_count=2).vocabulary == RESERVED_TOKENS + (
        "a", "b", "d")
    assert WordTokenizer.build(corpus, min_count=3).vocabulary == RESERVED_TOKENS + ("a",)
    assert WordTokenizer.build(corpus, min_count=4).vocabulary == RESERVED_TOKENS
    assert WordTokenizer.build(corpus, max_size=5, min_count=2).vocabulary == (
        RESERVED_TOKENS + ("a",))


def test_build_lowercases_by_default():
    assert WordTokenizer.build(["Mar MAR mar"]).vocabulary == RESERVED_TOKENS + ("mar",)
    cased = WordTokenizer.build(["Mar MAR mar"], lowercase=False)
    assert cased.vocabulary == RESERVED_TOKENS + ("MAR", "Mar", "mar")
    assert cased.lowercase is False


@pytest.mark.parametrize(
    "cls, corpus",
    [
        (WordTokenizer, []),
        (WordTokenizer, [""]),
        (WordTokenizer, ["", "   \t"]),  # whitespace only: no words
        (CharacterTokenizer, []),
        (CharacterTokenizer, ["", ""]),
    ],
)
def test_build_on_empty_corpus_raises(cls, corpus):
    with pytest.raises(ValueError) as error:
        cls.build(corpus)
    assert str(error.value) == (
        "cannot build a vocabulary from an empty corpus: the texts hold no non-whitespace "
        "character; pass the training texts.")


def test_word_split_golden():
    tokenizer = WordTokenizer.build(["23 Mar, 1994"])
    assert tokenizer.vocabulary == RESERVED_TOKENS + ("9", ",", "1", "2", "3", "4", "mar")
    ids = tokenizer.tokenize(["23 Mar, 1994"])
    assert _ids(ids) == [[7, 8, 10, 5, 6, 4, 4, 9]]
    assert _texts(tokenizer.detokenize(ids.to_tensor())) == ["2 3 mar , 1 9 9 4"]


def test_word_round_trip_on_in_vocabulary_text():
    corpus = ["the twenty third of march nineteen ninety four", "23 Mar, 1994",
              "june first two thousand and five!", "(a) b-c."]
    tokenizer = WordTokenizer.build(corpus)
    ids = tokenizer.tokenize(corpus)
    assert UNK_ID not in ids.flat_values.numpy()
    assert _texts(tokenizer.detokenize(ids.to_tensor())) == [
        "the twenty third of march nineteen ninety four",
        "2 3 mar , 1 9 9 4",
        "june first two thousand and five !",
        "( a ) b - c .",
    ]


def test_character_round_trip_is_exact():
    corpus = ["1994-03-23", "hello, world", "  two  spaces "]
    tokenizer = CharacterTokenizer.build(corpus)
    ids = tokenizer.tokenize(corpus)
    assert _ids(ids)[0] == [tokenizer.vocabulary.index(c) for c in "1994-03-23"]
    assert [len(row) for row in _ids(ids)] == [len(t) for t in corpus]
    assert _texts(tokenizer.detokenize(ids.to_tensor())) == corpus


def test_character_round_trip_non_ascii():
    text = "Größe café"
    tokenizer = CharacterTokenizer.build([text], lowercase=False)
    assert {"ö", "ß", "é"} <= set(tokenizer.vocabulary)
    ids = tokenizer.tokenize([text])
    assert len(_ids(ids)[0]) == len(text)  # one id per character, not per byte
    assert _texts(tokenizer.detokenize(ids.to_tensor())) == [text]
    lowered = CharacterTokenizer.build(["GRÖSSE Café"])
    assert _texts(lowered.detokenize(lowered.tokenize(["GRÖSSE Café"]).to_tensor())) == [
        "grösse café"]


@pytest.mark.parametrize("cls", TOKENIZERS)
def test_unknown_tokens_map_to_unk(cls):
    tokenizer = cls.build(["a b"])
    ids = _ids(tokenizer.tokenize(["a q b"] if cls is WordTokenizer else ["aqb"]))
    a, b = tokenizer.vocabulary.index("a"), tokenizer.vocabulary.index("b")
    assert ids == [[a, UNK_ID, b]]
    # Reserved-token spellings in text are not the reserved ids.
    reserved_spelled = tokenizer.tokenize(["[START] [END] [PAD]"]).flat_values.numpy()
    assert not {PAD_ID, START_ID, END_ID} & set(reserved_spelled.tolist())


def test_word_tokenize_batch_is_ragged():
    tokenizer = WordTokenizer.build(["a b c"])
    ids = tokenizer.tokenize(["a", "a b c", ""])
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32
    assert _ids(ids) == [[4], [4, 5, 6], []]


@pytest.mark.parametrize("cls", TOKENIZERS)
def test_detokenize_stops_at_end_and_drops_reserved_and_out_of_range(cls):
    tokenizer = cls.build(["a b c"] if cls is WordTokenizer else ["abc"])
    a, b, c = (tokenizer.vocabulary.index(t) for t in "abc")
    size = tokenizer.vocabulary_size
    ids = [
        [START_ID, a, b, END_ID, c, c],  # stops at END
        [a, PAD_ID, UNK_ID, b, START_ID, c],  # drops PAD, START, UNK
        [a, size, size + 5, -1, b, PAD_ID],  # drops ids outside the vocabulary
        [END_ID, a, b, c, PAD_ID, PAD_ID],  # END first: empty
        [c, b, a, PAD_ID, PAD_ID, PAD_ID],  # no END: all of it
    ]
    sep = tokenizer.separator
    assert _texts(tokenizer.detokenize(ids)) == [
        sep.join("ab"), sep.join("abc"), sep.join("ab"), "", sep.join("cba")]


def test_lowercase_false_keeps_case():
    word = WordTokenizer.build(["Mar mar"], lowercase=False)
    ids = word.tokenize(["Mar mar MAR"])
    mar_upper, mar = word.vocabulary.index("Mar"), word.vocabulary.index("mar")
    assert _ids(ids) == [[mar_upper, mar, UNK_ID]]
    assert _texts(word.detokenize(ids.to_tensor())) == ["Mar mar"]
    char = CharacterTokenizer.build(["AbC"], lowercase=False)
    assert _texts(char.detokenize(char.tokenize(["AbC"]).to_tensor())) == ["AbC"]
    # With the default, case is folded before lookup.
    lowered = WordTokenizer(word.vocabulary)
    assert _ids(lowered.tokenize(["Mar MAR"])) == [[mar, mar]]


@pytest.mark.parametrize("cls", TOKENIZERS)
def test_save_load_round_trip(cls, tmp_path):
    corpus = ["the twenty third of march", "23 Mar, 1994", "Größe café"]
    tokenizer = cls.build(corpus)
    path = tmp_path / "vocabulary.txt"
    tokenizer.save(str(path))
    assert path.read_text(encoding="utf-8").splitlines() == list(tokenizer.vocabulary)
    assert not (tmp_path / "vocabulary.txt.tmp").exists()
    loaded = cls.load(str(path))
    assert isinstance(loaded, cls)
    assert loaded.vocabulary == tokenizer.vocabulary
    np.testing.assert_array_equal(
        loaded.tokenize(corpus).to_tensor().numpy(), tokenizer.tokenize(corpus).to_tensor().numpy()
    )
    assert cls.load(str(path), lowercase=False).lowercase is False


def test_save_overwrites_existing_file(tmp_path):
    path = str(tmp_path / "vocab.txt")
    WordTokenizer.build(["a b c d e"]).save(path)
    WordTokenizer.build(["x"]).save(path)
    assert WordTokenizer.load(path).vocabulary == RESERVED_TOKENS + ("x",)


@pytest.mark.parametrize("cls", TOKENIZERS)
def test_load_missing_file_names_the_file(cls, tmp_path):
    path = str(tmp_path / "no_such_vocabulary.txt")
    with pytest.raises(FileNotFoundError) as info:
        cls.load(path)
    assert path in str(info.value)


@pytest.mark.parametrize("cls", TOKENIZERS)
@pytest.mark.parametrize(
    "vocabulary, match",
    [
        (["a", "b"], "reserved tokens"),
        (["[START]", "[PAD]", "[END]", "[UNK]", "a"], "reserved tokens"),
        (["[PAD]", "[START]", "[END]"], "reserved tokens"),
        (list(RESERVED_TOKENS) + ["a", "b", "a"], "duplicate"),
        (list(RESERVED_TOKENS) + ["[PAD]"], "duplicate"),
    ],
)
def test_invalid_vocabulary_raises(cls, vocabulary, match):
    with pytest.raises(ValueError, match=match):
        cls(vocabulary)


def test_invalid_vocabulary_file_raises(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="reserved tokens"):
        WordTokenizer.load(str(path))


@pytest.mark.parametrize("cls", TOKENIZERS)
def test_tokenizers_inside_tf_function(cls):
    corpus = ["23 Mar, 1994", "the first of may"]
    tokenizer = cls.build(corpus)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(texts):
        ids = tokenizer.tokenize(texts)
        return ids.to_tensor(PAD_ID), tokenizer.detokenize(ids.to_tensor(PAD_ID))

    graph_ids, graph_texts = round_trip(tf.constant(corpus))
    eager_ids = tokenizer.tokenize(corpus).to_tensor(PAD_ID)
    np.testing.assert_array_equal(graph_ids.numpy(), eager_ids.numpy())
    assert _texts(graph_texts) == _texts(tokenizer.detokenize(eager_ids))
    if cls is CharacterTokenizer:
        assert _texts(graph_texts) == ["23 mar, 1994", "the first of may"]
    else:
        assert _texts(graph_texts) == ["2 3 mar , 1 9 9 4", "the first of may"]
    # The traced function serves other batch sizes too.
    assert _texts(round_trip(tf.constant(["the first of may"]))[1]) == [
        _texts(graph_texts)[1]]


def test_word_tokenizer_keeps_non_ascii_letters_in_words_and_splits_on_unicode_spaces():
    tokenizer = WordTokenizer.build(["Größe café", "a\u00a0b"])
    assert "größe" in tokenizer.vocabulary and "café" in tokenizer.vocabulary
    assert "\u00a0" not in tokenizer.vocabulary
    ids = tokenizer.tokenize(["Größe café", "a\u00a0b"]).to_tensor()
    assert [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()] == [
        "größe café",
        "a b",
    ]


def test_character_vocabulary_with_newlines_and_backslashes_round_trips(tmp_path):
    tokenizer = CharacterTokenizer.build(["line one\nline two", "a\rb\\n"])
    path = str(tmp_path / "vocab.txt")
    tokenizer.save(path)
    loaded = CharacterTokenizer.load(path)
    assert loaded.vocabulary == tokenizer.vocabulary
    assert {"\n", "\r", "\\"} <= set(loaded.vocabulary)
