"""What a run's vocabulary was built from: ``vocab/provenance.json``.

It holds the vocabulary options, the training corpus's config (for generated
``dates`` corpora their ``size`` and ``seed``) and, for every file those read
(corpus files, prebuilt vocabulary files), its absolute path, size,
modification time and SHA-256::

    {"vocabulary": {"type": "char", ...},
     "train": {"format": "tsv", "path": "/data/train.tsv", ...},
     "files": [{"path": "/data/train.tsv", "size": 5120,
                "mtime_ns": 1700000000000000000, "sha256": "9f2c..."}]}

``provenance_difference`` says what differs on a rerun. A file counts as
changed when its size or, with another modification time, its content
differs: a file copied or touched with the same bytes is the same data.
"""

import hashlib
import json
import os

from keras_attention.atomic import write_atomically
from keras_attention.training.config_loader import first_difference
from keras_attention.training.init_from import tokenizer_files

PROVENANCE_FILE = "provenance.json"
# Config paths of the provenance sections.
_PREFIXES = {"train": "data.train"}


def vocabulary_provenance(config):
    """The provenance of a vocabulary built now for ``config`` (a
    ``TrainConfig`` with absolute paths, ``with_absolute_paths``)."""
    return {**vocabulary_options(config),
            "files": [file_fingerprint(path) for path in _files(config)]}


def vocabulary_options(config):
    """``{"vocabulary", "train"}``: the config sections a vocabulary is
    built from, as plain dicts; ``{"model": {"init_from"}}`` when it is a
    trained model's."""
    if config.model.init_from is not None:
        return {"model": {"init_from": config.model.init_from}}
    data = config.to_dict()
    return {"vocabulary": data["vocabulary"], "train": data["data"]["train"]}


def _files(config):
    if config.model.init_from is not None:
        return tokenizer_files(config.model.init_from)
    vocabulary = config.vocabulary
    prebuilt = (vocabulary.source_file, vocabulary.target_file)
    return [*config.data.train.paths, *(path for path in prebuilt if path is not None)]


def file_fingerprint(path, chunk_size=1 << 20):
    """``{"path", "size", "mtime_ns", "sha256"}`` of the file ``path``."""
    stat = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha256": digest.hexdigest()}


def provenance_difference(saved, config):
    """What differs between the ``saved`` provenance (a dict) and what
    ``config`` (absolute paths) would build from now, in a few words; ``None``
    when nothing does. Files are hashed only when their size is the same and
    their modification time is not."""
    now = vocabulary_options(config)
    for section in ("model", "vocabulary", "train"):
        found = first_difference(saved.get(section) or {}, now.get(section) or {})
        if found:
            return f"{_PREFIXES.get(section, section)}.{found}"
    saved_files = {entry["path"]: entry for entry in saved.get("files", [])}
    for path in _files(config):
        old = saved_files.get(os.path.abspath(path))
        change = f"'{path}' was not read then" if old is None else _change(old, path)
        if change:
            return change
    return None


def _change(old, path):
    stat = os.stat(path)
    if stat.st_size != old["size"]:
        return f"'{path}' changed since: {old['size']} bytes then, {stat.st_size} now"
    if stat.st_mtime_ns != old["mtime_ns"] and file_fingerprint(path)["sha256"] != old["sha256"]:
        return f"'{path}' changed since: other bytes of the same size"
    return None


def read_provenance(directory):
    """The provenance saved in the vocabulary folder ``directory``, or
    ``None`` when it has none (a run folder from before it was recorded)."""
    path = os.path.join(directory, PROVENANCE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_provenance(directory, provenance):
    """Save ``provenance`` in the vocabulary folder ``directory``."""
    text = json.dumps(provenance, indent=1)
    write_atomically(os.path.join(directory, PROVENANCE_FILE), text.encode("utf-8"))
