"""Corpus readers: real corpora slices, every error message, empty pairs, streaming."""

import gzip
import json
import logging
import os
import pathlib
import re
import sys
import threading

import pytest
import tensorflow as tf

from keras_attention.data import readers
from keras_attention.data.readers import (
    CorpusStats,
    PairSource,
    aligned_pairs,
    jsonl_pairs,
    tfds_pairs,
    tsv_pairs,
)

# The shared corpora live next to the repository: repo_root/../shared/data.
DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"
LIMIT = 300
SUFFIXES = [".txt", ".txt.gz"]


def _starts(text):
    """A ``pytest.raises(match=...)`` pattern for a message that starts with ``text``."""
    return "^" + re.escape(text)


def _write(path, text_or_bytes):
    """Write a plain or (by suffix) gzip file from str (UTF-8) or bytes."""
    data = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else text_or_bytes
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f:
        f.write(data)
    return path


def _first_lines(path, count):
    """The first ``count`` lines of a shared corpus, read independently of the readers."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for _, line in zip(range(count), f)]


def _decoded(dataset):
    """All pairs as Python strings (batched: per-element eager iteration is slow)."""
    return [
        (s.decode("utf-8"), t.decode("utf-8"))
        for sources, targets in dataset.batch(512).as_numpy_iterator()
        for s, t in zip(sources, targets)
    ]


# ---------------------------------------------------------------- real corpora


def test_aligned_pairs_multi30k_golden():
    source = aligned_pairs(DATA / "multi30k/train.en.gz", DATA / "multi30k/train.de.gz",
                           limit=LIMIT)
    pairs = list(source)
    assert pairs[0] == (
        "Two young, White males are outside near many bushes.",
        "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
    )
    english = _first_lines(DATA / "multi30k/train.en.gz", LIMIT)
    german = _first_lines(DATA / "multi30k/train.de.gz", LIMIT)
    assert pairs == [(e.strip(), g.strip()) for e, g in zip(english, german)]
    assert _decoded(source.dataset()) == pairs


def test_tsv_pairs_tatoeba_golden():
    source = tsv_pairs(DATA / "spa-eng/spa.txt.gz", limit=LIMIT)
    pairs = list(source)
    assert pairs[:3] == [("Go.", "Ve."), ("Go.", "Vete."), ("Go.", "Vaya.")]
    lines = _first_lines(DATA / "spa-eng/spa.txt.gz", LIMIT)
    assert pairs == [tuple(line.split("\t")[:2]) for line in lines]
    reversed_pairs = list(tsv_pairs(DATA / "spa-eng/spa.txt.gz", 1, 0, limit=3))
    assert reversed_pairs[0] == ("Ve.", "Go.")


@pytest.mark.parametrize(
    "corpus, source_field, target_field, golden",
    [
        (
            "samsum/train.jsonl.gz",
            "dialogue",
            "summary",
            (
                "Amanda: I baked  cookies. Do you want some?\nJerry: Sure!\n"
                "Amanda: I'll bring you tomorrow :-)",
                "Amanda baked cookies and will bring Jerry some tomorrow.",
            ),
        ),
        ("aeslc/train.jsonl.gz", "email", "subject", (None, "Service Agreement")),
    ],
)
def test_jsonl_pairs_golden(corpus, source_field, target_field, golden):
    source = jsonl_pairs(DATA / corpus, source_field, target_field, limit=LIMIT)
    pairs = list(source)
    records = [json.loads(line) for line in _first_lines(DATA / corpus, LIMIT)]
    expected = [(r[source_field].strip(), r[target_field].strip()) for r in records]
    assert pairs == expected
    if golden[0] is not None:
        assert pairs[0][0] == golden[0]
    assert pairs[0][1] == golden[1]
    first, second = _decoded(source.dataset().take(2))
    assert (first, second) == tuple(expected[:2])


def test_scan_with_limit_reads_only_the_first_records():
    stats = tsv_pairs(DATA / "spa-eng/spa.txt.gz", limit=LIMIT).scan()
    assert stats.records == stats.pairs == LIMIT
    assert stats.dropped_empty == 0
    lines = _first_lines(DATA / "spa-eng/spa.txt.gz", LIMIT)
    english = [line.split("\t")[0] for line in lines]
    assert stats.max_source_chars == max(map(len, english))
    assert stats.mean_source_chars == pytest.approx(sum(map(len, english)) / LIMIT)


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_plain_and_gzip_read_the_same(tmp_path, suffix):
    path = _write(tmp_path / f"pairs{suffix}", "\ufeffHello\tHola\r\n  Bye \t Adiós\t(extra)\n")
    assert list(tsv_pairs(path)) == [("Hello", "Hola"), ("Bye", "Adiós")]
    assert _decoded(tsv_pairs(path).dataset()) == [("Hello", "Hola"), ("Bye", "Adiós")]


def test_skip_header_keeps_physical_line_numbers(tmp_path):
    path = _write(tmp_path / "pairs.tsv", "en\tes\nhi\thola\nbroken\n")
    source = tsv_pairs(path, skip_header=True)
    with pytest.raises(ValueError, match=_starts(f"{path}:3: 1 tab-separated column")):
        source.scan()
    assert list(tsv_pairs(path, skip_header=True, limit=1)) == [("hi", "hola")]


def test_dataset_element_spec_and_repeat(tmp_path):
    en = _write(tmp_path / "a.en", "".join(f"sentence {i}\n" for i in range(2500)))
    de = _write(tmp_path / "a.de", "".join(f"Satz {i}\n" for i in range(2500)))
    dataset = aligned_pairs(en, de).dataset()
    assert dataset.element_spec == (tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string))
    once = _decoded(dataset)
    assert len(once) == 2500 and once[-1] == ("sentence 2499", "Satz 2499")
    assert _decoded(dataset.repeat(2)) == once + once
    assert len(_decoded(aligned_pairs(en, de, limit=1100).dataset())) == 1100


def test_pair_source_over_any_iterable_and_stats():
    pairs = [("ab", "xyz"), ("abcd", "x")]
    source = PairSource("in memory", lambda: iter(pairs))
    assert source.scan() == CorpusStats(
        records=2, pairs=2, dropped_empty=0, max_source_chars=4, max_target_chars=3,
        mean_source_chars=3.0, mean_target_chars=2.0,
    )
    assert list(source) == pairs


# ---------------------------------------------------------------- empty pairs


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_empty_pairs_are_dropped_counted_and_logged(tmp_path, caplog, suffix):
    en = _write(tmp_path / f"x.en{suffix}", "one\n\nthree\n  \t \nfive\n")
    de = _write(tmp_path / f"x.de{suffix}", "eins\nzwei\n\nvier\nfünf\n")
    source = aligned_pairs(en, de)
    with caplog.at_level(logging.WARNING, logger="keras_attention.data"):
        stats = source.scan()
    assert (stats.records, stats.pairs, stats.dropped_empty) == (5, 2, 3)
    [record] = [r for r in caplog.records if r.name == "keras_attention.data"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"{en} + {de}: dropped 3 of 5 pairs with an empty source or target."
    )
    assert "\n" not in record.getMessage()
    assert _decoded(source.dataset()) == [("one", "eins"), ("five", "fünf")]


def test_empty_jsonl_values_and_blank_lines_are_dropped(tmp_path, caplog):
    path = _write(tmp_path / "d.jsonl", '{"a": "x", "b": "y"}\n\n{"a": null, "b": "y"}\n'
                                        '{"a": "x", "b": "  "}\n')
    with caplog.at_level(logging.WARNING, logger="keras_attention.data"):
        stats = jsonl_pairs(path, "a", "b").scan()
    assert (stats.pairs, stats.dropped_empty) == (1, 3)
    assert "dropped 3 of 4 pairs" in caplog.text


def test_no_warning_when_nothing_is_dropped(tmp_path, caplog):
    path = _write(tmp_path / "p.tsv", "a\tb\n")
    with caplog.at_level(logging.WARNING, logger="keras_attention.data"):
        tsv_pairs(path).scan()
    assert not [r for r in caplog.records if r.name == "keras_attention.data"]


# ---------------------------------------------------------------- errors


def test_missing_files_are_named_when_the_reader_is_created(tmp_path):
    present = _write(tmp_path / "ok.de", "Hallo\n")
    missing = tmp_path / "train.en.gz"
    message = _starts(f"corpus file '{missing}' not found; check the path")
    with pytest.raises(FileNotFoundError, match=message):
        aligned_pairs(missing, present)
    with pytest.raises(FileNotFoundError, match=message):
        aligned_pairs(present, missing)
    with pytest.raises(FileNotFoundError, match=message):
        tsv_pairs(missing)
    with pytest.raises(FileNotFoundError, match=message):
        jsonl_pairs(missing, "a", "b")


def test_file_removed_after_creation_is_named(tmp_path):
    path = _write(tmp_path / "gone.tsv", "a\tb\n")
    source = tsv_pairs(path)
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=_starts(f"corpus file '{path}' not found")):
        source.scan()


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_unequal_line_counts_name_the_shorter_file(tmp_path, suffix):
    long_en = _write(tmp_path / f"train.en{suffix}", "a\nb\nc\nd\n")
    short_de = _write(tmp_path / f"train.de{suffix}", "A\nB\nC\n")
    with pytest.raises(ValueError) as error:
        aligned_pairs(long_en, short_de).scan()
    assert str(error.value) == (
        f"{short_de} ends at line 3 but {long_en} has more lines; "
        "the files must be aligned line by line."
    )
    message = _starts(f"{short_de} ends at line 3 but {long_en} has more lines")
    with pytest.raises(ValueError, match=message):
        aligned_pairs(short_de, long_en).scan()
    # A limit inside the shorter file reads no further, so no error.
    assert len(list(aligned_pairs(long_en, short_de, limit=3))) == 3


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_empty_corpus(tmp_path, suffix):
    empty = _write(tmp_path / f"empty{suffix}", "")
    with pytest.raises(ValueError, match=_starts(f"{empty} + {empty}: the corpus is empty")):
        aligned_pairs(empty, empty).scan()
    message = _starts(f"{empty}: the corpus is empty; check that the path")
    with pytest.raises(ValueError, match=message):
        tsv_pairs(empty).scan()
    with pytest.raises(ValueError, match=_starts(f"{empty}: the corpus is empty")):
        jsonl_pairs(empty, "a", "b").scan()
    header_only = _write(tmp_path / f"header{suffix}", "en\tes\n")
    with pytest.raises(ValueError, match=_starts(f"{header_only}: the corpus is empty")):
        tsv_pairs(header_only, skip_header=True).scan()


def test_corpus_of_only_empty_pairs(tmp_path):
    path = _write(tmp_path / "blank.tsv", "a\t\n\t b\n")
    with pytest.raises(ValueError) as error:
        tsv_pairs(path).scan()
    assert str(error.value) == (
        f"{path}: no pairs left: all 2 records have an empty source or target; "
        "check the column or field arguments."
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_invalid_json_line(tmp_path, suffix):
    path = _write(tmp_path / f"d{suffix}", '{"a": "x", "b": "y"}\n{"a": "x", "b": \n')
    with pytest.raises(ValueError) as error:
        jsonl_pairs(path, "a", "b").scan()
    assert str(error.value).startswith(f"{path}:2: invalid JSON (Expecting value: line 1")
    assert str(error.value).endswith("); each line must be one JSON object.")


def test_json_line_that_is_not_an_object(tmp_path):
    path = _write(tmp_path / "d.jsonl", '{"a": "x", "b": "y"}\n{"a": "x", "b": "y"}\n["x", "y"]\n')
    with pytest.raises(ValueError) as error:
        jsonl_pairs(path, "a", "b").scan()
    assert str(error.value) == (
        f"{path}:3: expected a JSON object, got an array; each line must be one JSON object."
    )
    null_line = _write(tmp_path / "null.jsonl", "null\n")
    message = _starts(f"{null_line}:1: expected a JSON object, got null;")
    with pytest.raises(ValueError, match=message):
        jsonl_pairs(null_line, "a", "b").scan()


def test_missing_json_field_lists_the_fields_present(tmp_path):
    path = _write(tmp_path / "samsum.jsonl", '{"id": "1", "dialogue": "hi", "summary": "s"}\n')
    with pytest.raises(ValueError) as error:
        jsonl_pairs(path, "dialogue", "summry").scan()
    assert str(error.value) == (
        f"{path}:1: no field 'summry' (target_field); fields present: 'id', 'dialogue', "
        "'summary'."
    )
    with pytest.raises(ValueError, match=_starts(f"{path}:1: no field 'email' (source_field)")):
        jsonl_pairs(path, "email", "summary").scan()


def test_json_field_that_is_not_text(tmp_path):
    path = _write(tmp_path / "d.jsonl", '{"a": "x", "b": 3}\n')
    with pytest.raises(ValueError) as error:
        jsonl_pairs(path, "a", "b").scan()
    assert str(error.value) == f"{path}:1: field 'b' is a number, not a string; pick a text field."


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_tsv_line_with_too_few_columns(tmp_path, suffix):
    path = _write(tmp_path / f"spa{suffix}", "Go.\tVe.\nHi.\n")
    with pytest.raises(ValueError) as error:
        tsv_pairs(path).scan()
    assert str(error.value) == (
        f"{path}:2: 1 tab-separated column(s), but source_column=0 and target_column=1 need 2; "
        "fix the line or the column arguments."
    )
    message = _starts(f"{path}:1: 2 tab-separated column(s), ") + ".* need 3;"
    with pytest.raises(ValueError, match=message):
        tsv_pairs(path, target_column=2).scan()


@pytest.mark.parametrize("suffix, where", [(".txt", "file"), (".txt.gz", "decompressed file")])
def test_non_utf8_bytes_give_line_and_offset(tmp_path, suffix, where):
    path = _write(tmp_path / f"latin1{suffix}", "ok\tbien\n".encode() + b"caf\xe9\tcafe\n")
    with pytest.raises(ValueError) as error:
        tsv_pairs(path).scan()
    assert str(error.value) == (
        f"{path}:2: invalid UTF-8 byte 0xe9 at offset 3 of the line (offset 11 in the {where}); "
        "re-encode the file as UTF-8, e.g. with 'iconv -f latin1 -t utf-8'."
    )


def test_gz_suffix_on_a_plain_file(tmp_path):
    path = tmp_path / "plain.txt.gz"
    path.write_text("Go.\tVe.\n", encoding="utf-8")
    message = _starts(f"{path}:1: not valid gzip data (") + r".*\); a '\.gz' file must"
    with pytest.raises(ValueError, match=message):
        tsv_pairs(path).scan()


def test_truncated_gzip(tmp_path):
    path = _write(tmp_path / "cut.tsv.gz", "".join(f"s{i}\tt{i}\n" for i in range(2000)))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match=_starts(f"{path}:") + r"\d+: not valid gzip data"):
        tsv_pairs(path).scan()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: tsv_pairs(p, source_column=-1), "source_column must be a non-negative"),
        (lambda p: tsv_pairs(p, target_column="1"), "target_column must be a non-negative"),
        (lambda p: jsonl_pairs(p, "", "b"), "source_field must be a non-empty string"),
        (lambda p: tsv_pairs(p, limit=0), "limit must be a positive integer or None"),
    ],
)
def test_invalid_arguments(tmp_path, make, message):
    path = _write(tmp_path / "p.tsv", "a\tb\n")
    with pytest.raises(ValueError, match=message):
        make(path)


def test_tfds_pairs_without_tensorflow_datasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
    with pytest.raises(ImportError) as error:
        tfds_pairs("wmt14_translate/de-en", "train", "en", "de")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("tfds_pairs needs tensorflow-datasets, which is not installed")
    assert "'pip install tensorflow-datasets'" in message


# ---------------------------------------------------------------- errors inside tf.data


def test_dataset_errors_are_wrapped_and_clean_errors_unwraps_them(tmp_path):
    path = _write(tmp_path / "bad.tsv", "a\tb\nbroken\n")
    source = tsv_pairs(path)
    expected = f"{path}:2: 1 tab-separated column(s)"
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(expected)):
        list(source.dataset())
    with pytest.raises(ValueError) as error:
        with source.clean_errors():
            list(source.dataset())
    assert str(error.value).startswith(expected)


def test_clean_errors_passes_other_tensorflow_errors_through(tmp_path):
    source = tsv_pairs(_write(tmp_path / "ok.tsv", "a\tb\n"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not mine"):
        with source.clean_errors():
            raise tf.errors.InvalidArgumentError(None, None, "not mine")


# ---------------------------------------------------------------- streaming


def test_dataset_streams_before_the_file_is_complete(tmp_path):
    """The reader gets its first pair while the writer still holds back most of
    the corpus: nothing waits for (or loads) the whole file."""
    path = tmp_path / "pipe.tsv"
    os.mkfifo(path)
    first_pair_seen = threading.Event()
    outcome = {}

    def write():
        with open(path, "w", encoding="utf-8") as pipe:  # blocks until the reader opens
            pipe.writelines(f"s{i}\tt{i}\n" for i in range(2 * readers._CHUNK_SIZE))
            pipe.flush()
            outcome["streamed"] = first_pair_seen.wait(timeout=10)
            pipe.writelines(f"s{i}\tt{i}\n" for i in range(2 * readers._CHUNK_SIZE, 20_000))

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    batches = tsv_pairs(path).dataset().batch(100).as_numpy_iterator()
    first_sources, first_targets = next(batches)
    first_pair_seen.set()
    rest = [source for sources, _ in batches for source in sources]
    writer.join(timeout=10)
    assert outcome["streamed"], "the first pair only came after the writer gave up waiting"
    assert (first_sources[0], first_targets[0]) == (b"s0", b"t0")
    assert len(rest) == 20_000 - 100 and rest[-1] == b"s19999"


def test_iteration_stops_reading_when_the_consumer_stops(tmp_path):
    """Taking a few pairs from a large file reads one chunk, not the file."""
    path = _write(tmp_path / "big.tsv.gz", "".join(f"s{i}\tt{i}\n" for i in range(200_000)))
    lines_read = []
    original = readers._lines

    def counting_lines(p):
        for item in original(p):
            lines_read.append(item[0])
            yield item

    source = tsv_pairs(path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "_lines", counting_lines)
        assert _decoded(source.dataset().take(2)) == [("s0", "t0"), ("s1", "t1")]
        iterator = iter(source)
        assert next(iterator) == ("s0", "t0")
        iterator.close()
    assert len(lines_read) <= readers._CHUNK_SIZE + 2


def test_memory_pairs_stream_a_list_and_drop_empty_pairs_with_a_count(caplog):
    from keras_attention.data import memory_pairs

    source = memory_pairs([("a b", "x"), (" ", "y"), ("c", "z ")], name="generated")
    with caplog.at_level("WARNING", logger="keras_attention.data"):
        stats = source.scan()
    assert (stats.pairs, stats.dropped_empty) == (2, 1)
    assert "generated" in caplog.text and "dropped 1 of 3" in caplog.text
    assert [(s.decode(), t.decode()) for s, t in source.dataset().as_numpy_iterator()] == [
        ("a b", "x"),
        ("c", "z"),
    ]


# ---------------------------------------------------------------- hash holdout


def test_holdout_bucket_golden_and_normalization():
    from keras_attention.data.readers import holdout_bucket, holdout_key, holdout_split

    assert holdout_key("  Go.\t") == holdout_key("GO.") == "go."
    assert holdout_key("ｆｕｌｌ  width") == "full width"  # NFKC
    # crc32 of the UTF-8 key, mod 100 (zlib.crc32(b"go.") == 2355789328).
    assert holdout_bucket("Go.") == 28 == holdout_bucket(" go. ")
    assert holdout_split("Go.") == "train"
    assert holdout_bucket("Jump.") == 1 and holdout_split("Jump.") == "test"
    assert holdout_split("Jump.", test_percent=1, validation_percent=2) == "validation"
    assert holdout_split("Jump.", test_percent=0, validation_percent=1) == "train"
    assert holdout_bucket("I'm here.") == 3 and holdout_split("I'm here.") == "validation"


def test_tatoeba_holdout_sizes_and_no_shared_source():
    """The Tatoeba recipe's split: every pair in exactly one split, no English
    sentence (normalized) in two, fixed sizes."""
    from keras_attention.data.readers import holdout_key, split_pairs

    whole = tsv_pairs(DATA / "spa-eng/spa.txt.gz")
    splits = {name: list(split_pairs(whole, name)) for name in ("train", "validation", "test")}
    assert {name: len(pairs) for name, pairs in splits.items()} == {
        "train": 114_409, "validation": 2_271, "test": 2_284}
    assert sorted(p for pairs in splits.values() for p in pairs) == sorted(whole)
    keys = {name: {holdout_key(s) for s, _ in pairs} for name, pairs in splits.items()}
    assert not keys["train"] & keys["test"]
    assert not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]
    # Tatoeba repeats English sentences: the test split holds all their translations.
    assert len(keys["test"]) == 1_975 < len(splits["test"])


def test_split_pairs_ignores_order_and_applies_limit_after_the_split():
    from keras_attention.data import memory_pairs
    from keras_attention.data.readers import holdout_split, split_pairs

    pairs = [(f"sentence {i}", f"target {i}") for i in range(400)]
    expected = [p for p in pairs if holdout_split(p[0], 10, 10) == "test"]
    assert len(expected) > 20
    forward = list(split_pairs(memory_pairs(pairs), "test", 10, 10))
    backward = list(split_pairs(memory_pairs(pairs[::-1]), "test", 10, 10))
    assert forward == expected and sorted(backward) == sorted(expected)
    limited = split_pairs(memory_pairs(pairs), "test", 10, 10, limit=5)
    assert list(limited) == expected[:5]
    assert limited.name == "<memory> [test: holdout test 10%, validation 10%]"
    assert _decoded(limited.dataset()) == expected[:5]


@pytest.mark.parametrize("split, test_percent, validation_percent, message", [
    ("dev", 2, 2, "split must be one of train, validation, test; got 'dev'."),
    ("test", -1, 2, "test_percent must be an integer in [0, 100), got -1."),
    ("test", 2, 1.5, "validation_percent must be an integer in [0, 100), got 1.5."),
    ("train", 60, 40, "test_percent + validation_percent must be below 100 to leave "
     "training pairs, got 60 + 40."),
    ("test", 0, 5, "split: test is empty with test_percent 0; raise test_percent or pick "
     "another split."),
])
def test_split_pairs_errors(split, test_percent, validation_percent, message):
    from keras_attention.data import memory_pairs
    from keras_attention.data.readers import split_pairs

    with pytest.raises(ValueError) as error:
        split_pairs(memory_pairs([("a", "b")]), split, test_percent, validation_percent)
    assert str(error.value) == message
