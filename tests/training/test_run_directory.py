"""What train does with what a run directory holds: other spellings of its
paths, an attempt that never finished an epoch, checks before any write, and
a vocabulary built from other data."""

import hashlib
import json
import os

import numpy as np
import pytest
from training.run_configs import quiet, write_config

from keras_attention.data import date_pairs
from keras_attention.data.tokenizer_files import load_tokenizer
from keras_attention.data.tokenizers import UNK_ID
from keras_attention.training import load_config, train
from keras_attention.training.callbacks import EpochSummary

PAIRS = date_pairs(128, seed=0)  # 2 steps of 64 pairs per epoch


class Killed(Exception):
    """Stands for a kill: what the run wrote stays on disk."""


def killed_run(monkeypatch, config, epoch):
    """Run ``train(config)`` until the first step of the 0-based ``epoch``
    ends, then stop it as a kill would (no ``on_train_end``)."""
    original = EpochSummary.on_train_batch_end

    def on_train_batch_end(self, batch, logs=None):
        original(self, batch, logs)
        if self.epochs_done == epoch:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(EpochSummary, "on_train_batch_end", on_train_batch_end)
        with pytest.raises(Killed):
            train(config, verbose=0, print_fn=quiet)


def write_pairs(path, pairs):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{source}\t{target}\n" for source, target in pairs)
    return str(path)


def tsv_config(path, output, corpus, changes=None):
    """The tiny run config, training on the TSV file ``corpus``."""
    sections = {"data": {"train": {"format": "tsv", "path": str(corpus)}, "validation": None},
                "output": {"tensorboard": False}}
    for section, values in (changes or {}).items():
        sections[section] = dict(sections.get(section, {}), **values)
    return load_config(write_config(path, output, sections))


def test_a_killed_run_resumes_with_other_spellings_of_its_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_pairs("data/train.tsv", PAIRS)
    # What tab completion gives: a trailing slash; and relative paths.
    first = tsv_config("run.yaml", "out/", "data/train.tsv")
    killed_run(monkeypatch, first, epoch=1)
    again = tsv_config("again.yaml", tmp_path / "out", tmp_path / "data" / ".." / "data/train.tsv")
    lines = []
    result = train(again, verbose=0, print_fn=lines.append)
    assert "resuming at epoch 2 of 2" in lines
    assert result.epochs == 2 and result.steps == 4
    assert result.output_directory == str(tmp_path / "out")
    saved = load_config(tmp_path / "out" / "config.yaml")
    assert saved.data.train.path == str(tmp_path / "data" / "train.tsv")
    assert saved.output.directory == str(tmp_path / "out")


def test_an_attempt_that_finished_no_epoch_takes_a_new_config(tmp_path, monkeypatch):
    corpus = write_pairs(tmp_path / "train.tsv", PAIRS)
    out = tmp_path / "out"
    killed_run(monkeypatch, tsv_config(tmp_path / "run.yaml", out, corpus), epoch=0)
    assert os.path.exists(out / "config.yaml") and os.path.exists(out / "vocab" / "target.json")
    corrected = tsv_config(tmp_path / "run.yaml", out, corpus, {
        "vocabulary": {"type": "word"}, "training": {"epochs": 1}})
    lines = []
    result = train(corrected, verbose=0, print_fn=lines.append)
    assert lines[:2] == [
        "vocab/ was built from other data or options (vocabulary.type: 'char' there, 'word' "
        "now) and no epoch was trained on it; building it again",
        f"training pairs: 128 ({corpus}); vocabularies: {result_vocabularies(out)}",
    ]
    assert (f"output directory '{out}' held an attempt with another config that finished no "
            "epoch (training.epochs: 2 there, 1 now); starting over") in lines
    assert load_config(out / "config.yaml") == corrected
    assert json.loads((out / "vocab" / "source.json").read_text())["type"] == "word"
    assert result.epochs == 1 and os.listdir(out / "checkpoints") == ["epoch-0001.weights.h5"]


def result_vocabularies(out):
    sizes = [load_tokenizer(str(out / "vocab"), side).vocabulary_size
             for side in ("source", "target")]
    return f"{sizes[0]} source, {sizes[1]} target tokens"


def test_errors_that_need_the_steps_per_epoch_come_before_any_file_is_written(tmp_path):
    out = tmp_path / "out"
    config = load_config(write_config(tmp_path / "run.yaml", out, {
        "optimizer": {"schedule": "cosine", "warmup_steps": 6}}))  # 2 epochs of 3 steps
    with pytest.raises(ValueError) as error:
        train(config, verbose=0, print_fn=quiet)
    assert str(error.value) == (
        "optimizer.warmup_steps=6 is not below the 6 steps this run trains (2 epoch(s) of 3 "
        "steps); lower optimizer.warmup_steps or train for more steps.")
    bounded = config.replace(training=config.training.__class__(epochs=2, max_steps=5))
    with pytest.raises(ValueError) as error:
        train(bounded, verbose=0, print_fn=quiet)
    assert str(error.value) == (
        "optimizer.warmup_steps=6 is not below the 5 steps this run trains "
        "(training.max_steps=5); lower optimizer.warmup_steps or train for more steps.")
    assert not os.path.exists(out)


def test_a_vocabulary_built_from_other_data_is_built_again_before_an_epoch_finished(
        tmp_path, monkeypatch):
    # The first attempt read the columns the wrong way round: its source
    # vocabulary holds digits, no letters.
    corpus = write_pairs(tmp_path / "train.tsv", [(target, source) for source, target in PAIRS])
    out = tmp_path / "out"
    config = tsv_config(tmp_path / "run.yaml", out, corpus, {"training": {"epochs": 1}})
    killed_run(monkeypatch, config, epoch=0)
    write_pairs(corpus, PAIRS)  # fixed: as many bytes, in another order
    lines = []
    train(config, verbose=0, print_fn=lines.append)
    assert lines[0] == (
        f"vocab/ was built from other data or options ('{corpus}' changed since: other bytes "
        "of the same size) and no epoch was trained on it; building it again")
    source = load_tokenizer(str(out / "vocab"), "source")
    ids = np.asarray(source.tokenize(["the first of may"]).flat_values)
    assert UNK_ID not in ids
    provenance = json.loads((out / "vocab" / "provenance.json").read_text())
    assert provenance["vocabulary"] == config.to_dict()["vocabulary"]
    assert provenance["train"] == config.to_dict()["data"]["train"]
    assert provenance["files"] == [{
        "path": corpus, "size": os.path.getsize(corpus),
        "mtime_ns": os.stat(corpus).st_mtime_ns,
        "sha256": hashlib.sha256(open(corpus, "rb").read()).hexdigest()}]


def test_resuming_on_other_data_is_refused_and_an_older_folder_resumes_unchecked(
        tmp_path, monkeypatch):
    corpus = write_pairs(tmp_path / "train.tsv", PAIRS)
    out = tmp_path / "out"
    config = tsv_config(tmp_path / "run.yaml", out, corpus)
    killed_run(monkeypatch, config, epoch=1)
    size = os.path.getsize(corpus)
    write_pairs(corpus, PAIRS[:-1])
    with pytest.raises(ValueError) as error:
        train(config, verbose=0, print_fn=quiet)
    assert str(error.value) == (
        f"output directory '{out}' holds 1 epoch(s) trained on a vocabulary built from other "
        f"data ('{corpus}' changed since: {size} bytes then, {os.path.getsize(corpus)} now); "
        "resuming on other data would be wrong: restore the data, or use another "
        "output.directory (--output) or delete it.")
    os.remove(out / "vocab" / "provenance.json")  # as a run folder of an older version
    lines = []
    result = train(config, verbose=0, print_fn=lines.append)
    assert lines[0] == ("vocab/ has no provenance.json (a run folder from an older version); "
                        "resuming with it unchecked")
    assert "resuming at epoch 2 of 2" in lines and result.epochs == 2
