"""Subword tokenizers: exact round trips on real corpora, the WordPiece spacing
scheme, builds, files, graphs and SavedModels, every error message."""

import gzip
import io
import pathlib

import numpy as np
import pytest
import sentencepiece
import tensorflow as tf

from keras_attention.data.subword import (
    MAX_SENTENCE_BYTES,
    MIN_VOCABULARY_SIZE,
    SentencePieceTokenizer,
    WordPieceTokenizer,
)
from keras_attention.data.tokenizers import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
    CharacterTokenizer,
    Tokenizer,
    VocabularyTokenizer,
    WordTokenizer,
)

# The shared corpora live next to the repository: repo_root/../shared/data.
DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"
TRAIN = 400  # sentences per language the shared tokenizers learn from

# (class, build options) for every subword tokenizer kind.
KINDS = {
    "wordpiece": (WordPieceTokenizer, {}),
    "unigram": (SentencePieceTokenizer, {"model_type": "unigram"}),
    "bpe": (SentencePieceTokenizer, {"model_type": "bpe"}),
}
SPACING = [
    "Hello, world!",
    "  two leading, two inner  and two trailing spaces  ",
    " one leading",
    "one trailing ",
    "tab\tand\nnewline",
    "„Zitat“ (Klammer) [Klammer] 3D-Drucker's T-Shirt...",
    "",
    " ",
    "   ",
]


def _lines(path, count):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for _, line in zip(range(count), f)]


def _texts(tensor):
    return [t.decode("utf-8") for t in tensor.numpy()]


def _round_trip(tokenizer, texts):
    return _texts(tokenizer.detokenize(tokenizer.tokenize(texts).to_tensor(PAD_ID)))


def _one_line(error):
    message = str(error.value)
    assert "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def multi30k():
    english = _lines(DATA / "multi30k/train.en.gz", 2 * TRAIN)
    german = _lines(DATA / "multi30k/train.de.gz", 2 * TRAIN)
    return english, german


@pytest.fixture(scope="module")
def shared(multi30k):
    """One tokenizer of each kind, on the first TRAIN English and German lines."""
    english, german = multi30k
    corpus = english[:TRAIN] + german[:TRAIN] + SPACING
    return {
        kind: cls.build(corpus, vocabulary_size=800, **options)
        for kind, (cls, options) in KINDS.items()
    }


# ---------------------------------------------------------------- interface


def test_all_tokenizers_share_the_interface():
    for cls in (WordTokenizer, CharacterTokenizer, WordPieceTokenizer, SentencePieceTokenizer):
        assert issubclass(cls, Tokenizer) and issubclass(cls, tf.Module)
        for method in ("tokenize", "detokenize", "save", "load", "build"):
            assert getattr(cls, method) is not getattr(Tokenizer, method), (cls, method)
    assert issubclass(WordTokenizer, VocabularyTokenizer)


@pytest.mark.parametrize("kind", list(KINDS))
def test_reserved_ids_and_ragged_int32_ids(shared, kind):
    tokenizer = shared[kind]
    assert tokenizer.vocabulary[:4] == RESERVED_TOKENS
    assert tokenizer.vocabulary_size == len(tokenizer.vocabulary)
    ids = tokenizer.tokenize(["A dog runs.", "", "Ein Hund"])
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    lengths = [len(row) for row in ids.to_list()]
    assert lengths[1] == 0 and lengths[0] > 0 and lengths[2] > 0
    values = ids.flat_values.numpy()
    assert not {PAD_ID, START_ID, END_ID} & set(values.tolist())  # no START/END
    assert values.min() >= 0 and values.max() < tokenizer.vocabulary_size


# ---------------------------------------------------------------- exact round trips


@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip_is_exact_on_multi30k(shared, kind, multi30k):
    english, german = multi30k
    tokenizer = shared[kind]
    for training in (english[:TRAIN], german[:TRAIN]):
        assert UNK_ID not in tokenizer.tokenize(training).flat_values.numpy()
        assert _round_trip(tokenizer, training) == training
    # Unseen sentences too, as long as their characters were seen.
    held_out = english[TRAIN:] + german[TRAIN:]
    known = tf.reduce_all(tokenizer.tokenize(held_out) != UNK_ID, axis=1).numpy()
    held_out = [t for t, k in zip(held_out, known) if k]
    assert len(held_out) > 0.95 * 2 * TRAIN
    assert _round_trip(tokenizer, held_out) == held_out


@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip_keeps_umlauts_quotes_and_punctuation(shared, kind, multi30k):
    _, german = multi30k
    sample = [t for t in german if any(c in t for c in "äöüß")][:20]
    sample += [t for t in german + multi30k[0] if '"' in t or "'" in t][:10]
    assert len(sample) == 30
    assert _round_trip(shared[kind], sample) == sample


@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip_keeps_spacing(shared, kind):
    assert _round_trip(shared[kind], SPACING) == SPACING


@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip_is_exact_on_spanish_english(kind):
    with gzip.open(DATA / "spa-eng/spa.txt.gz", "rt", encoding="utf-8") as f:
        pairs = [line.rstrip("\n").split("\t") for _, line in zip(range(200), f)]
    english, spanish = [p[0] for p in pairs], [p[1] for p in pairs]
    assert any(c in "".join(spanish) for c in "¿¡ñá")
    cls, options = KINDS[kind]
    tokenizer = cls.build(english + spanish, vocabulary_size=300, **options)
    assert _round_trip(tokenizer, english) == english
    assert _round_trip(tokenizer, spanish) == spanish


# ---------------------------------------------------------------- WordPiece scheme


GOLDEN_VOCABULARY = list(RESERVED_TOKENS) + [
    "Hello", "world", "T", "shirt", "##shirt", "##s", "##,", "##!", "##-", "## ", ",",
]


def test_wordpiece_golden_pieces():
    tokenizer = WordPieceTokenizer(GOLDEN_VOCABULARY)

    def pieces(text):
        return [tokenizer.vocabulary[i] for i in tokenizer.tokenize([text]).to_list()[0]]

    # Units after a space are words; what follows directly continues with suffix pieces.
    assert pieces("Hello, world!") == ["Hello", "##,", "world", "##!"]
    assert pieces("T-shirts, shirt") == ["T", "##-", "##shirt", "##s", "##,", "shirt"]
    assert pieces("Hello , world") == ["Hello", ",", "world"]
    assert pieces("Hello  world ") == ["Hello", "## ", "world", "## "]
    assert pieces(" Hello") == ["## ", "Hello"]
    for text in ("Hello, world!", "T-shirts, shirt", "Hello , world", "Hello  world ", " Hello"):
        assert _round_trip(tokenizer, [text]) == [text]
    # A unit with an unknown character is [UNK] as a whole, with its space.
    assert pieces("Hello wörld!") == ["Hello", "[UNK]", "##!"]
    assert _round_trip(tokenizer, ["Hello wörld!"]) == ["Hello!"]
    assert _round_trip(tokenizer, ["Hello ☃shirt"]) == ["Helloshirt"]


def test_wordpiece_detokenize_follows_the_suffix_rule():
    tokenizer = WordPieceTokenizer(GOLDEN_VOCABULARY)
    ids = [[tokenizer.vocabulary.index(t) for t in tokens] for tokens in (
        ["##,", "Hello", "[PAD]", "[PAD]"],  # a leading suffix piece has no space to glue to
        ["world", "## ", "## ", "##!"],
    )]
    assert _texts(tokenizer.detokenize(ids)) == [", Hello", "world  !"]


def test_wordpiece_vocabulary_has_every_character_and_suffix_form(shared, multi30k):
    vocabulary = set(shared["wordpiece"].vocabulary)
    characters = set("".join(multi30k[0][:TRAIN] + multi30k[1][:TRAIN])) - {" "}
    assert characters <= vocabulary
    assert {"##" + c for c in characters} | {"## "} <= vocabulary
    # Learned pieces never cross a unit boundary (no "##s." or "T-").
    for token in vocabulary - set(RESERVED_TOKENS):
        body = token[2:] if token.startswith("##") else token
        assert len(body) == 1 or body.isalnum(), token


def test_unknown_characters_are_dropped(shared):
    # WordPiece drops the unit holding the character (with the space before
    # it), SentencePiece the character alone.
    assert _round_trip(shared["wordpiece"], ["A dog ☃runs.", "A dog rø."]) == [
        "A dogruns.", "A dog."]
    for kind in ("unigram", "bpe"):
        assert _round_trip(shared[kind], ["A dog ☃runs.", "A dog rø."]) == [
            "A dog runs.", "A dog r."]


def test_documented_losses(shared):
    wordpiece, unigram = shared["wordpiece"], shared["unigram"]
    assert _round_trip(wordpiece, ["A\x00dog"]) == ["Adog"]  # NUL is dropped
    assert _round_trip(unigram, ["A\u2581dog"]) == ["A dog"]  # SentencePiece's space marker
    long_word = "a" * 101  # over MAX_BYTES_PER_WORD: [UNK]
    assert wordpiece.tokenize([f"A {long_word} dog"]).to_list()[0][1] == UNK_ID
    assert _round_trip(wordpiece, [f"A {long_word} dog"]) == ["A dog"]


def test_sentencepiece_survives_resetting_the_random_seed(shared):
    # tensorflow_text.SentencepieceTokenizer loses its model when the eager
    # kernel cache is cleared, as tf.random.set_seed does.
    tokenizer = shared["unigram"]
    before = tokenizer.tokenize(SPACING).to_list()
    tf.random.set_seed(1)
    assert tokenizer.tokenize(SPACING).to_list() == before
    assert _round_trip(tokenizer, SPACING) == SPACING


@pytest.mark.parametrize("kind", list(KINDS))
def test_reserved_token_spellings_are_not_reserved_ids(shared, kind):
    ids = shared[kind].tokenize(["[START] [END] [PAD] [UNK]"]).flat_values.numpy()
    assert not {PAD_ID, START_ID, END_ID, UNK_ID} & set(ids.tolist())
    assert _round_trip(shared[kind], ["[START] [END] [PAD] [UNK]"]) == [
        "[START] [END] [PAD] [UNK]"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_detokenize_stops_at_end_and_drops_reserved_and_out_of_range(shared, kind):
    tokenizer = shared[kind]
    size = tokenizer.vocabulary_size
    a, b = (tokenizer.tokenize([w]).to_list()[0] for w in ("A dog", "runs"))
    ids = [
        [START_ID] + a + [END_ID] + b,
        a + [PAD_ID, UNK_ID, START_ID] + b,
        a + [size, size + 5, -1] + b,
        [END_ID] + a + b,
    ]
    width = max(map(len, ids))
    ids = [row + [PAD_ID] * (width - len(row)) for row in ids]
    assert _texts(tokenizer.detokenize(ids)) == ["A dog", "A dog runs", "A dog runs", ""]
    ragged = tf.ragged.constant([a + b, a])
    assert _texts(tokenizer.detokenize(ragged)) == ["A dog runs", "A dog"]


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("cls", [WordPieceTokenizer, SentencePieceTokenizer])
def test_lowercase_and_normalization(cls):
    corpus = ["Größe ＡＢＣ ﬁne café", "größe abc fine"]
    tokenizer = cls.build(corpus, vocabulary_size=60, lowercase=True, normalization="NFKC")
    assert (tokenizer.lowercase, tokenizer.normalization) == (True, "NFKC")
    assert _texts(tokenizer.prepare(corpus[:1])) == ["größe abc fine café"]
    assert _round_trip(tokenizer, corpus) == ["größe abc fine café", "größe abc fine"]
    learned = "".join(tokenizer.vocabulary[len(RESERVED_TOKENS):])
    assert "ﬁ" not in learned and "Ａ" not in learned and learned == learned.lower()
    # The defaults keep case and characters as they are.
    exact = cls.build(corpus, vocabulary_size=60)
    assert (exact.lowercase, exact.normalization) == (False, None)
    assert _round_trip(exact, corpus) == corpus
    with pytest.raises(ValueError, match="normalization must be None or one of") as error:
        cls.build(corpus, vocabulary_size=60, normalization="nfkc_cf")
    _one_line(error)


# ---------------------------------------------------------------- building


@pytest.mark.parametrize("kind", list(KINDS))
def test_build_is_deterministic_and_independent_of_order(kind, multi30k):
    cls, options = KINDS[kind]
    corpus = multi30k[0][:150]
    first = cls.build(corpus, vocabulary_size=300, **options)
    again = cls.build(corpus, vocabulary_size=300, **options)
    reordered = cls.build(list(reversed(corpus)), vocabulary_size=300, **options)
    assert first.vocabulary == again.vocabulary == reordered.vocabulary
    if cls is SentencePieceTokenizer:
        assert first.model_proto == again.model_proto == reordered.model_proto


@pytest.mark.parametrize("kind", list(KINDS))
def test_build_respects_vocabulary_size(kind, shared, multi30k):
    assert 0.9 * 800 <= shared[kind].vocabulary_size <= 800
    cls, options = KINDS[kind]
    tokenizer = cls.build(multi30k[0][:TRAIN] + multi30k[1][:TRAIN], vocabulary_size=300,
                          **options)
    assert 0.9 * 300 <= tokenizer.vocabulary_size <= 300


def test_build_returns_fewer_tokens_when_the_corpus_is_small():
    tokenizer = WordPieceTokenizer.build(["a small corpus", "a tiny corpus"], vocabulary_size=500)
    assert tokenizer.vocabulary_size < 100
    assert _round_trip(tokenizer, ["a tiny small corpus"]) == ["a tiny small corpus"]


def test_shared_vocabulary_tokenizes_both_languages_with_few_unknowns(shared, multi30k):
    english, german = multi30k
    for kind in KINDS:
        tokenizer = shared[kind]
        for held_out in (english[TRAIN:], german[TRAIN:]):
            ids = tokenizer.tokenize(held_out).flat_values.numpy()
            assert np.mean(ids == UNK_ID) < 0.01, kind
            # Subwords, not characters: a few tokens per word.
            words = sum(len(t.split()) for t in held_out)
            assert len(ids) < 2.5 * words, kind


def test_per_language_vocabulary_misses_the_other_language(multi30k):
    english, german = multi30k
    own = WordPieceTokenizer.build(german[:TRAIN], vocabulary_size=300)
    other = WordPieceTokenizer.build(english[:TRAIN], vocabulary_size=300)
    german_ids = german[TRAIN:]
    unknown_own = np.mean(own.tokenize(german_ids).flat_values.numpy() == UNK_ID)
    unknown_other = np.mean(other.tokenize(german_ids).flat_values.numpy() == UNK_ID)
    assert unknown_own < 0.01 < unknown_other  # English has no umlauts


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_build_streams_from_generators_and_datasets(kind, multi30k):
    cls, options = KINDS[kind]
    corpus = multi30k[0][:150]
    from_list = cls.build(corpus, vocabulary_size=300, **options)
    from_generator = cls.build((t for t in corpus), vocabulary_size=300, **options)
    dataset = tf.data.Dataset.from_tensor_slices(corpus)
    from_dataset = cls.build(dataset, vocabulary_size=300, **options)
    from_batches = cls.build(dataset.batch(7), vocabulary_size=300, **options)
    assert (from_list.vocabulary == from_generator.vocabulary == from_dataset.vocabulary
            == from_batches.vocabulary)


# ---------------------------------------------------------------- graphs


@pytest.mark.parametrize("kind", list(KINDS))
def test_tokenizers_inside_tf_function_and_tf_data(shared, kind, multi30k):
    tokenizer = shared[kind]
    texts = multi30k[1][:8] + SPACING

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(batch):
        ids = tokenizer.tokenize(batch).to_tensor(PAD_ID)
        return ids, tokenizer.detokenize(ids)

    graph_ids, graph_texts = round_trip(tf.constant(texts))
    np.testing.assert_array_equal(graph_ids.numpy(), tokenizer.tokenize(texts).to_tensor().numpy())
    assert _texts(graph_texts) == texts
    assert _texts(round_trip(tf.constant(texts[:1]))[1]) == texts[:1]  # other batch size

    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(5)
    dataset = dataset.map(lambda batch: tokenizer.tokenize(batch).to_tensor(PAD_ID))
    mapped = [row[row != PAD_ID].tolist() for batch in dataset.as_numpy_iterator() for row in batch]
    assert mapped == tokenizer.tokenize(texts).to_list()


class _Holder(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        return self.tokenizer.tokenize(texts).to_tensor(PAD_ID)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def detokenize(self, ids):
        return self.tokenizer.detokenize(ids)


@pytest.mark.parametrize("kind", list(KINDS))
def test_saved_model_round_trip(kind, multi30k, tmp_path):
    cls, options = KINDS[kind]
    corpus = multi30k[0][:100] + multi30k[1][:100] + SPACING
    tokenizer = cls.build(corpus, vocabulary_size=300, lowercase=True, normalization="NFKC",
                          **options)
    tf.saved_model.save(_Holder(tokenizer), str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    texts = corpus[95:105] + SPACING + ["ＵＰＰＥＲ ﬁne"]
    expected = tokenizer.tokenize(texts).to_tensor(PAD_ID).numpy()
    np.testing.assert_array_equal(loaded.tokenize(tf.constant(texts)).numpy(), expected)
    assert _texts(loaded.detokenize(expected)) == _texts(tokenizer.detokenize(expected))
    assert _texts(loaded.detokenize(expected))[-1] == "upper fine"


# ---------------------------------------------------------------- files


def test_wordpiece_save_load_round_trip(shared, multi30k, tmp_path):
    tokenizer = shared["wordpiece"]
    path = tmp_path / "vocabulary.txt"
    tokenizer.save(str(path))
    assert not (tmp_path / "vocabulary.txt.tmp").exists()
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    assert lines[:4] == list(RESERVED_TOKENS) and "\\n" in lines and "## " in lines
    loaded = WordPieceTokenizer.load(str(path))
    assert isinstance(loaded, WordPieceTokenizer)
    assert loaded.vocabulary == tokenizer.vocabulary
    texts = multi30k[1][:20] + SPACING
    np.testing.assert_array_equal(loaded.tokenize(texts).to_tensor().numpy(),
                                  tokenizer.tokenize(texts).to_tensor().numpy())
    options = WordPieceTokenizer.load(str(path), lowercase=True, normalization="NFC")
    assert (options.lowercase, options.normalization) == (True, "NFC")


def test_sentencepiece_save_load_round_trip(shared, multi30k, tmp_path):
    tokenizer = shared["unigram"]
    path = tmp_path / "shared.model"
    tokenizer.save(str(path))
    assert path.read_bytes() == tokenizer.model_proto
    assert not (tmp_path / "shared.model.tmp").exists()
    # A standard SentencePiece model file, with the reserved pieces.
    processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
    assert [processor.id_to_piece(i) for i in range(4)] == list(RESERVED_TOKENS)
    assert [processor.is_control(i) for i in range(3)] == [True] * 3
    assert processor.is_unknown(UNK_ID)
    loaded = SentencePieceTokenizer.load(str(path))
    assert loaded.vocabulary == tokenizer.vocabulary
    texts = multi30k[1][:20] + SPACING
    np.testing.assert_array_equal(loaded.tokenize(texts).to_tensor().numpy(),
                                  tokenizer.tokenize(texts).to_tensor().numpy())
    assert SentencePieceTokenizer.load(str(path), lowercase=True).lowercase is True


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", [WordPieceTokenizer, SentencePieceTokenizer])
@pytest.mark.parametrize("corpus", [[], [""], ["", " \t\n "], ["\u3000", "\xa0 \u2028"]])
def test_build_on_empty_corpus_raises(cls, corpus):
    with pytest.raises(ValueError, match="empty corpus") as error:
        cls.build(corpus, vocabulary_size=100)
    _one_line(error)


def test_sentencepiece_on_texts_all_too_long_raises_in_one_line():
    texts = ["ab " * 1500, "x" * MAX_SENTENCE_BYTES]  # the leading space makes the 2nd too long
    with pytest.raises(ValueError) as error:
        SentencePieceTokenizer.build(texts, vocabulary_size=100)
    assert _one_line(error) == (
        "cannot build a SentencePiece vocabulary: all 2 texts are longer than 4192 bytes, the "
        "most SentencePiece learns from; split them into shorter texts (e.g. sentences), or "
        "build a WordPiece vocabulary (--type wordpiece).")


def test_sentencepiece_learns_from_the_texts_short_enough_and_says_so(caplog):
    short = ["the cat sat on the mat", "a dog ran home"]
    with caplog.at_level("WARNING", logger="keras_attention.data.subword"):
        tokenizer = SentencePieceTokenizer.build(short + ["zq " * 1500], vocabulary_size=40)
    assert "SentencePiece learned from 2 of 3 texts: 1 are longer than 4192 bytes" in caplog.text
    alone = SentencePieceTokenizer.build(short, vocabulary_size=40)
    assert tokenizer.vocabulary == alone.vocabulary
    assert "q" not in "".join(tokenizer.vocabulary)  # nothing learned from the long text


@pytest.mark.parametrize("cls, name", [(WordPieceTokenizer, "vocab.txt"),
                                       (SentencePieceTokenizer, "sp.model")])
def test_load_missing_file_names_it_and_says_how_to_build_one(cls, name, tmp_path):
    path = str(tmp_path / name)
    with pytest.raises(FileNotFoundError) as error:
        cls.load(path)
    message = _one_line(error)
    assert f"'{path}' not found" in message and f"{cls.__name__}.build(texts)" in message


def test_wordpiece_mismatched_vocabulary_raises(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[CLS]\n[SEP]\n[UNK]\nhello\n", encoding="utf-8")  # a BERT vocabulary
    with pytest.raises(ValueError, match="must start with the reserved tokens") as error:
        WordPieceTokenizer.load(str(path))
    message = _one_line(error)
    assert str(path) in message and "WordPieceTokenizer.build(texts)" in message
    with pytest.raises(ValueError, match="duplicate"):
        WordPieceTokenizer(list(RESERVED_TOKENS) + ["a", "a"])


def test_sentencepiece_mismatched_model_raises(tmp_path):
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(  # SentencePiece's default ids: <unk>=0, <s>=1
        sentence_iterator=iter(["a small corpus", "another one"] * 10), model_writer=model,
        vocab_size=30, hard_vocab_limit=False, minloglevel=2)
    path = tmp_path / "default.model"
    path.write_bytes(model.getvalue())
    with pytest.raises(ValueError, match="reserved tokens") as error:
        SentencePieceTokenizer.load(str(path))
    message = _one_line(error)
    assert str(path) in message and "'<unk>', '<s>', '</s>'" in message
    path.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a SentencePiece model") as error:
        SentencePieceTokenizer.load(str(path))
    assert str(path) in _one_line(error)


@pytest.mark.parametrize("kind", list(KINDS))
def test_vocabulary_size_too_small_raises(kind, multi30k):
    cls, options = KINDS[kind]
    with pytest.raises(ValueError, match=f"too small: it must be at least {MIN_VOCABULARY_SIZE}"):
        cls.build(multi30k[1][:50], vocabulary_size=MIN_VOCABULARY_SIZE - 1, **options)
    # Big enough in general, too small for the characters of this corpus.
    with pytest.raises(ValueError, match="too small for this corpus") as error:
        cls.build(multi30k[1][:50], vocabulary_size=MIN_VOCABULARY_SIZE, **options)
    message = _one_line(error)
    needed = message.split("use vocabulary_size >= ")[1].split()[0]
    assert f"use vocabulary_size >= {needed} (--size {needed})" in message
    with pytest.raises(TypeError, match="vocabulary_size must be an integer"):
        cls.build(multi30k[1][:50], vocabulary_size=1000.0, **options)


def test_sentencepiece_option_errors():
    with pytest.raises(ValueError, match="model_type must be one of") as error:
        SentencePieceTokenizer.build(["a b"], vocabulary_size=100, model_type="word")
    _one_line(error)
    with pytest.raises(ValueError, match=r"character_coverage must be in \(0, 1\]"):
        SentencePieceTokenizer.build(["a b"], vocabulary_size=100, character_coverage=0)


@pytest.mark.parametrize("cls", [WordPieceTokenizer, SentencePieceTokenizer])
def test_texts_must_be_strings(cls):
    with pytest.raises(TypeError, match="got one string; wrap it in a list"):
        cls.build("a single text", vocabulary_size=100)
    with pytest.raises(TypeError, match="texts must be strings, got int"):
        cls.build([1, 2], vocabulary_size=100)
    with pytest.raises(TypeError, match="texts must be a dataset of strings"):
        cls.build(tf.data.Dataset.range(3), vocabulary_size=100)
