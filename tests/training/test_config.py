"""TrainConfig: loading YAML/JSON, dotted overrides, one-line errors naming the key."""

import json

import pytest

from keras_attention.data import BatchingConfig
from keras_attention.decoding.generate import DecodingConfig
from keras_attention.training import TrainConfig, config_from_dict, load_config, save_config
from keras_attention.training.config import CorpusConfig, DataConfig

DATES = {"data": {"train": {"format": "dates", "size": 50}}}


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_yaml_file_gives_sections_with_defaults(tmp_path):
    (tmp_path / "train.en").write_text("a\n")
    (tmp_path / "train.de").write_text("b\n")
    path = write(tmp_path, f"""
task: summarization
data:
  train: {{format: aligned, source: {tmp_path}/train.en, target: {tmp_path}/train.de}}
model: {{preset: tiny, changes: {{dropout: 0.2}}}}
batching: {{batch_size: 16, bucket_boundaries: [4, 8], max_source_tokens: 32,
            max_target_tokens: 31}}
training: {{epochs: 3, precision: mixed_bfloat16}}
evaluation: {{decoding: {{strategy: beam, beam_size: 3}}}}
""")
    config = load_config(path)
    assert config.task == "summarization"
    assert config.data.train.source == f"{tmp_path}/train.en" and config.data.validation is None
    assert config.model.changes == {"dropout": 0.2}
    assert config.batching == BatchingConfig(batch_size=16, bucket_boundaries=(4, 8),
                                             max_source_tokens=32, max_target_tokens=31)
    assert config.training.epochs == 3 and config.training.precision == "mixed_bfloat16"
    assert config.training.label_smoothing == 0.1  # default
    assert config.evaluation.decoding == DecodingConfig(strategy="beam", beam_size=3)
    assert config.optimizer.beta_2 == 0.98 and config.optimizer.epsilon == 1e-9
    assert config.monitor == "val_rougeL"
    assert config.data.train.pairs().scan().pairs == 1


def test_default_batching_is_token_batches():
    config = config_from_dict(DATES)
    assert config.batching.batch_tokens == 4096 and config.batching.batch_size is None
    # A batching section that names neither batch key gets the same default.
    limited = config_from_dict(dict(DATES, batching={"max_source_tokens": 64}))
    assert limited.batching == BatchingConfig(batch_tokens=4096, max_source_tokens=64)


def test_overrides_are_dotted_keys_with_yaml_values(tmp_path):
    path = write(tmp_path, json.dumps(DATES), "run.json")  # JSON is YAML too
    config = load_config(path, [
        "training.epochs=3", "model.preset=tiny", "batching.max_target_tokens=40",
        "batching.max_source_tokens=64", "optimizer.clipnorm=1.5",
        "model.changes.hidden_dim=32", "output.tensorboard=false",
        "data.validation.format=dates", "training.early_stopping_patience=2",
    ])
    assert config.training.epochs == 3
    assert config.model.preset == "tiny" and config.model.changes == {"hidden_dim": 32}
    assert config.optimizer.clipnorm == 1.5
    assert config.output.tensorboard is False
    assert config.data.validation == CorpusConfig(format="dates")
    assert config.training.early_stopping_patience == 2


def test_to_dict_and_save_round_trip(tmp_path):
    config = config_from_dict(dict(DATES, batching={"batch_size": 8, "bucket_boundaries": [3]}))
    path = save_config(config, str(tmp_path / "config.yaml"))
    assert load_config(path) == config
    assert config.to_dict()["batching"]["bucket_boundaries"] == [3]


def test_python_construction_validates():
    with pytest.raises(ValueError, match="data.train is missing"):
        TrainConfig()
    config = TrainConfig(data=DataConfig(train=CorpusConfig(format="dates")))
    assert config.replace(task="summarization").task == "summarization"


@pytest.mark.parametrize("data, overrides, message", [
    ({**DATES, "training": {"epoch": 3}}, (),
     "unknown key 'training.epoch' in {path}; did you mean 'training.epochs'?"),
    (DATES, ("training.epoch=3",),
     "unknown key 'training.epoch' in {path}; did you mean 'training.epochs'?"),
    ({**DATES, "trainig": {}}, (),
     "unknown key 'trainig' in {path}; did you mean 'training'?"),
    ({**DATES, "training": {"zzz": 1}}, (),
     "unknown key 'training.zzz' in {path}; known keys: training.epochs, "
     "training.label_smoothing, training.precision, training.jit_compile, training.seed, "
     "training.distribution, training.early_stopping_patience, training.max_steps, "
     "training.time_limit_minutes, training.lora_rank."),
    ({**DATES, "training": {"epochs": "three"}}, (),
     "training.epochs must be an integer, got 'three'."),
    (DATES, ("training.epochs=three",), "training.epochs must be an integer, got 'three'."),
    (DATES, ("training.epochs=2.5",), "training.epochs must be an integer, got 2.5."),
    (DATES, ("training.epochs=0",), "training.epochs must be a positive integer, got 0."),
    (DATES, ("optimizer.learning_rate=fast",),
     "optimizer.learning_rate must be a number, got 'fast'."),
    (DATES, ("optimizer.clipnorm=yes",),
     "optimizer.clipnorm must be a number or null, got True."),
    (DATES, ("training.jit_compile=3",), "training.jit_compile must be true or false, got 3."),
    (DATES, ("batching.bucket_boundaries=[a]",),
     "batching.bucket_boundaries must be a list of integers or null, got a list ['a']."),
    (DATES, ("training.precision=float16",),
     "training.precision must be one of float32, mixed_bfloat16, mixed_float16; "
     "got 'float16'."),
    (DATES, ("task=qa",), "task must be one of translation, summarization; got 'qa'."),
    (DATES, ("model.preset=huge",),
     "model.preset: unknown preset 'huge'; choose one of ['base', 'small', 'summarization', "
     "'tiny']."),
    (DATES, ("model.changes.hidden_dim=30",),
     "model.changes: hidden_dim=30 must be divisible by num_heads=4."),
    (DATES, ("model.changes.encoder_vocabulary_size=30",),
     "model.changes.encoder_vocabulary_size is set by the tokenizers; remove it and set "
     "vocabulary.size instead."),
    (DATES, ("model.preset=tiny", "batching.max_source_tokens=100",
             "batching.max_target_tokens=20"),
     "model.changes.max_sequence_length must be at least 100 (max(batching.max_source_tokens, "
     "batching.max_target_tokens + 1)), got 64; raise it or lower the batching limits."),
    (DATES, ("batching.batch_size=8", "batching.batch_tokens=4096"),
     "batching: set exactly one of batch_tokens (padded tokens per batch) or batch_size "
     "(pairs per batch); got batch_tokens=4096, batch_size=8."),
    (DATES, ("batching.max_source_tokens=-1",),
     "batching.max_source_tokens must be a positive integer, got -1."),
    (DATES, ("data.train.format=csv",),
     "data.train.format must be one of aligned, tsv, jsonl, dates; got 'csv'."),
    (DATES, ("data.train.format=tsv",),
     "data.train.path is missing; format tsv needs path."),
    (DATES, ("data.train.format=jsonl", "data.train.path={path}"),
     "data.train.source_field is missing; format jsonl needs path, source_field, target_field."),
    ({}, (), "data.train is missing; name the training corpus, e.g. "
     "data: {{train: {{format: tsv, path: pairs.tsv}}}}."),
    ({"data": {}}, (), "data.train is missing; name the training corpus, e.g. "
     "train: {{format: tsv, path: pairs.tsv}}."),
    ({"data": {"train": "pairs.tsv"}}, (), "data.train must be a mapping or null, "
     "got 'pairs.tsv'."),
    (DATES, ("vocabulary.type=bpe",),
     "vocabulary.type must be one of sentencepiece, wordpiece, word, char; got 'bpe'."),
    (DATES, ("vocabulary.type=char", "vocabulary.normalization=NFC"),
     "vocabulary.normalization is only available for the subword types; remove it or use "
     "type sentencepiece/wordpiece (got type char)."),
    (DATES, ("optimizer.schedule=linear",),
     "optimizer.schedule must be one of noam, cosine, constant; got 'linear'."),
    (DATES, ("training.distribution=tpu",),
     "training.distribution must be one of default, mirrored, multi_worker; got 'tpu'."),
    (DATES, ("training.early_stopping_patience=2",),
     "training.early_stopping_patience needs data.validation; add a validation corpus or "
     "remove early_stopping_patience."),
    (DATES, ("training.max_steps=0",), "training.max_steps must be a positive integer, got 0."),
    (DATES, ("training.lora_rank=0",), "training.lora_rank must be a positive integer, got 0."),
    (DATES, ("model.init_from=''",),
     "model.init_from must be a model folder path or null, got ''."),
    (DATES, ("training.time_limit_minutes=-1",),
     "training.time_limit_minutes must be positive or null, got -1.0."),
    (DATES, ("training.time_limit_minutes=soon",),
     "training.time_limit_minutes must be a number or null, got 'soon'."),
    (DATES, ("training.time_limit_minutes=5", "training.distribution=multi_worker"),
     "training.time_limit_minutes cannot bound a multi_worker run (each worker's clock would "
     "stop it at another step); use max_steps instead."),
    (DATES, ("data.train.split=dev",),
     "data.train.split must be one of train, validation, test; got 'dev'."),
    (DATES, ("data.train.split=train", "data.train.test_percent=101"),
     "data.train.test_percent must be an integer in [0, 100), got 101."),
    (DATES, ("data.test.format=dates", "data.test.split=test", "data.test.test_percent=0"),
     "data.test.split: test is empty with test_percent 0; raise test_percent or pick "
     "another split."),
    (DATES, ("data.train.split=train", "data.test.format=dates", "data.test.size=50"),
     "data.test reads the same file as data.train but has no split; set data.test.split so "
     "no pair is in both."),
    (DATES, ("data.train.split=test", "data.test.format=dates", "data.test.size=50",
             "data.test.split=test"),
     "data.test and data.train both read split test of the same file; give data.test "
     "another split."),
    (DATES, ("data.train.split=train", "data.validation.format=dates",
             "data.validation.size=50", "data.validation.split=validation",
             "data.validation.validation_percent=5"),
     "data.validation.validation_percent=5 differs from data.train.validation_percent=2 on "
     "the same file; use one holdout for both."),
    (DATES, ("model.preset=summarization", "model.changes.max_sequence_length=256"),
     "model preset 'summarization' shares one embedding between source and target "
     "(share_embeddings), so it needs one vocabulary; set vocabulary.shared: true."),
    (DATES, ("training=3",), "training must be a mapping, got 3."),
    (DATES, ("training.epochs=3", "training.epochs.x=1"),
     "cannot set 'training.epochs.x': 'training.epochs' is a value, not a section."),
    (DATES, ("task.name=x",), "task must be a string, got a mapping."),
    (DATES, ("training.epochs",), "--set 'training.epochs': expected KEY=VALUE, "
     "e.g. training.epochs=3."),
    # Both failed only once TensorFlow ran: the first at the optimizer, the
    # second at the first validation, after an epoch of training.
    (DATES, ("optimizer.warmup_steps=0",),
     "optimizer.warmup_steps must be at least 1 for the noam schedule, got 0; use schedule "
     "cosine or constant for no warmup."),
    (DATES, ("model.preset=tiny", "batching.max_source_tokens=60", "batching.max_target_tokens=12",
             "evaluation.decoding.max_length=64"),
     "evaluation.decoding.max_length=64 exceeds what the model can decode (63 = "
     "model.changes.max_sequence_length - 1); lower it or raise max_sequence_length."),
])
def test_errors_are_one_line_and_name_the_key(tmp_path, data, overrides, message):
    path = write(tmp_path, json.dumps(data))
    overrides = [o.format(path=path) for o in overrides]
    with pytest.raises(ValueError) as error:
        load_config(path, overrides)
    assert str(error.value) == message.format(path=path)


def test_missing_files_name_the_key(tmp_path):
    missing = str(tmp_path / "nope.en")
    path = write(tmp_path, json.dumps(
        {"data": {"train": {"format": "aligned", "source": missing, "target": missing}}}))
    with pytest.raises(FileNotFoundError) as error:
        load_config(path)
    assert str(error.value) == f"data.train.source: file '{missing}' not found; check the path."
    with pytest.raises(FileNotFoundError) as error:
        load_config(str(tmp_path / "absent.yaml"))
    assert str(error.value) == (f"config file '{tmp_path}/absent.yaml' not found; "
                                "write one (see recipes/dates.yaml).")
    with pytest.raises(FileNotFoundError, match=r"^vocabulary.source_file: file '.*x.model' "
                       r"not found; build one with 'keras-attention vocab'.$"):
        load_config(write(tmp_path, json.dumps(DATES)), [
            f"vocabulary.source_file={tmp_path}/x.model", "vocabulary.shared=true"])
    # A cache in a missing folder failed inside tf.data with a traceback.
    with pytest.raises(FileNotFoundError) as error:
        load_config(write(tmp_path, json.dumps(DATES)), [
            f"batching.cache_file={tmp_path}/absent/cache"])
    assert str(error.value) == (f"batching.cache_file: folder '{tmp_path}/absent' not found; "
                                "create it, or use '' to cache in memory.")


def test_absolute_paths_make_spellings_of_one_path_equal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.tsv").write_text("a\tb\n")

    def config(train, output):
        return config_from_dict({"data": {"train": {"format": "tsv", "path": train}},
                                 "output": {"directory": output}}).with_absolute_paths()

    relative = config("data/train.tsv", "runs/x/")
    assert relative == config(str(tmp_path / "data" / ".." / "data" / "train.tsv"),
                              str(tmp_path / "runs" / "x"))
    assert relative.data.train.path == str(tmp_path / "data" / "train.tsv")
    assert relative.output.directory == str(tmp_path / "runs" / "x")
    assert relative.batching.cache_file == "" and relative.data.validation is None


def test_invalid_yaml_and_non_mapping(tmp_path):
    with pytest.raises(ValueError) as error:
        load_config(write(tmp_path, "data: {train: [\n"))
    assert str(error.value).startswith(f"{tmp_path}/run.yaml: invalid YAML at line ")
    assert str(error.value).endswith("; fix the syntax.")
    with pytest.raises(ValueError) as error:
        load_config(write(tmp_path, "- a\n- b\n"))
    assert str(error.value) == (f"{tmp_path}/run.yaml must hold a mapping of sections "
                                "(task, data, model, ...), got a list ['a', 'b'].")


def test_recipe_loads():
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    config = load_config(os.path.join(root, "recipes", "dates.yaml"))
    assert config.data.train.format == "dates" and config.model.preset == "tiny"


def test_test_corpus_and_hash_splits_of_one_file(tmp_path):
    lines = [f"sentence {i}\tfrase {i}" for i in range(300)]
    (tmp_path / "pairs.tsv").write_text("\n".join(lines) + "\n")
    corpus = {"format": "tsv", "path": str(tmp_path / "pairs.tsv"), "test_percent": 10,
              "validation_percent": 10}
    config = config_from_dict({"data": {
        "train": dict(corpus, split="train"), "validation": dict(corpus, split="validation"),
        "test": dict(corpus, split="test", limit=5)}})
    splits = {name: list(getattr(config.data, name).pairs())
              for name in ("train", "validation")}
    whole = CorpusConfig(**corpus)  # no split: every pair
    test_all = list(CorpusConfig(**dict(corpus, split="test")).pairs())
    assert sorted(splits["train"] + splits["validation"] + test_all) == sorted(whole.pairs())
    assert min(len(p) for p in (*splits.values(), test_all)) > 10
    assert list(config.data.test.pairs()) == test_all[:5]
    assert config.data.test.files == config.data.train.files
    # The same file without split and a holdout, or two different files, are fine.
    config_from_dict({"data": {"train": corpus, "validation": dict(corpus, limit=3)}})


def recipe_paths():
    import glob
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return sorted(glob.glob(os.path.join(root, "recipes", "*.yaml")))


def test_the_real_task_recipes_are_there():
    import os

    names = {os.path.basename(path) for path in recipe_paths()}
    assert {"dates.yaml", "multi30k_en_de.yaml", "tatoeba_en_es.yaml", "samsum.yaml",
            "aeslc.yaml"} <= names


@pytest.mark.parametrize("path", recipe_paths(), ids=lambda p: p.rsplit("/", 1)[-1])
def test_every_recipe_loads_and_names_existing_corpora(path, monkeypatch):
    import os

    # Recipes name ../shared/data relative to the repository root.
    monkeypatch.chdir(os.path.dirname(os.path.dirname(path)))
    config = load_config(path)  # validates; raises FileNotFoundError on a missing corpus
    text = open(path, encoding="utf-8").read()
    assert text.startswith("#") and f"--config recipes/{os.path.basename(path)}" in text
    corpora = [c for c in (config.data.train, config.data.validation, config.data.test) if c]
    for corpus in corpora:
        for name in ("source", "target", "path"):
            if getattr(corpus, name) is not None:
                assert os.path.exists(getattr(corpus, name))
    if config.data.train.format == "dates":
        return
    assert config.data.validation is not None and config.data.test is not None
    assert f"benchmarks/quality.py --recipe recipes/{os.path.basename(path)}" in text
    assert config.data.test.files != config.data.train.files or config.data.test.split == "test"
    if config.task == "summarization":
        model = config.model.transformer_config(8000, 8000)
        assert config.batching.too_long == "truncate"
        # Test and validation decoding truncate at the model's limit: the same as training.
        assert model.max_sequence_length == config.batching.max_source_tokens
        assert model.share_embeddings and config.vocabulary.shared
        assert config.model.preset == "summarization"


def test_aeslc_recipe_tests_on_the_validation_file_and_validates_on_a_train_holdout(
        monkeypatch):
    import os

    path = next(p for p in recipe_paths() if p.endswith("aeslc.yaml"))
    monkeypatch.chdir(os.path.dirname(os.path.dirname(path)))
    config = load_config(path)
    assert config.data.test.path.endswith("aeslc/validation.jsonl.gz")
    assert config.data.test.split is None
    assert (config.data.train.split, config.data.validation.split) == ("train", "validation")
    assert config.data.validation.pairs().scan().pairs == 743
    copy = load_config(path, ["model.changes.copy_attention=true"])
    assert copy.model.transformer_config(8000, 8000).copy_attention is True
