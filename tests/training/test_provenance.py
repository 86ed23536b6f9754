"""vocab/provenance.json: what a vocabulary was built from, and what changed since."""

import os

from keras_attention.training import config_from_dict
from keras_attention.training.provenance import provenance_difference, vocabulary_provenance


def tsv_config(path, vocabulary=None):
    return config_from_dict({
        "data": {"train": {"format": "tsv", "path": str(path)}},
        "vocabulary": vocabulary or {"type": "char"},
    }).with_absolute_paths()


def test_a_file_with_the_same_bytes_is_the_same_data(tmp_path):
    corpus = tmp_path / "train.tsv"
    corpus.write_text("a\tb\nc\td\n")
    config = tsv_config(corpus)
    saved = vocabulary_provenance(config)
    assert provenance_difference(saved, config) is None
    stat = os.stat(corpus)
    os.utime(corpus, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, or copied
    assert provenance_difference(saved, config) is None
    corpus.write_text("a\tb\nc\te\n")
    os.utime(corpus, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
    assert provenance_difference(saved, config) == (
        f"'{corpus}' changed since: other bytes of the same size")
    corpus.write_text("a\tb\n")
    assert provenance_difference(saved, config) == f"'{corpus}' changed since: 8 bytes then, 4 now"


def test_vocabulary_options_and_generated_corpora_count(tmp_path):
    corpus = tmp_path / "train.tsv"
    corpus.write_text("a\tb\n")
    saved = vocabulary_provenance(tsv_config(corpus))
    assert provenance_difference(saved, tsv_config(corpus, {"type": "word", "size": 50})) == (
        "vocabulary.size: 8000 there, 50 now")
    dates = config_from_dict({"data": {"train": {"format": "dates", "size": 100}}})
    saved = vocabulary_provenance(dates)
    assert saved["files"] == []
    more = config_from_dict({"data": {"train": {"format": "dates", "size": 200}}})
    assert provenance_difference(saved, more) == "data.train.size: 100 there, 200 now"
