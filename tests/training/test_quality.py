"""benchmarks/quality.py: a bounded run of a recipe, then its test split scored,
as one JSON object."""

import json
import os

import pytest
from benchmark_scripts import ROOT, load_benchmark
from training.run_configs import write_config

from keras_attention.evaluation.metrics import bleu, chrf

quality = load_benchmark("quality")


def test_bounded_run_prints_json_with_test_scores(tmp_path, capsys):
    recipe = write_config(tmp_path / "tiny.yaml", tmp_path / "unused", {
        "data": {"test": {"format": "dates", "size": 6, "seed": 2}}})
    output = tmp_path / "quality"
    quality.main(["--recipe", recipe, "--steps", "2", "--test-limit", "4", "--beam-size", "2",
                  "--length-penalty", "0.5", "--batch-size", "4", "--output", str(output),
                  "--set", "training.epochs=3"])
    report = json.loads(capsys.readouterr().out)
    assert report == json.load(open(output / "quality.json"))
    assert report["task"] == "translation" and report["sentences"] == 4
    assert report["test_set"] == "dates(size=6, seed=2)"
    assert (report["steps"], report["epochs"], report["stop_reason"]) == (2, 1, "max_steps")
    assert report["overrides"] == ["training.epochs=3", "training.max_steps=2",
                                   f"output.directory={output}"]
    assert report["budget"] == {"minutes": None, "steps": 2, "test_limit": 4,
                                "cpu_reference": False}
    assert report["decoding"]["strategy"] == "beam" and report["decoding"]["beam_size"] == 2
    assert report["decoding"]["length_penalty"] == 0.5
    assert report["decoding"]["max_length"] == 12  # the recipe's evaluation.decoding
    # The scores are sacreBLEU's on the written hypotheses.
    from keras_attention.training.config import CorpusConfig

    references = [t for _, t in CorpusConfig(format="dates", size=6, seed=2).pairs()][:4]
    hypotheses = (output / "test_hypotheses.txt").read_text().splitlines()
    assert len(hypotheses) == 4
    assert report["metric"] == {"bleu": bleu(hypotheses, references).score,
                                "chrf": chrf(hypotheses, references).score}
    assert report["signature"]["bleu"] == bleu(hypotheses, references).signature
    assert report["device"]["kind"] in ("cpu", "gpu") and report["device"]["name"]
    assert report["backend"].startswith("keras 3.") and report["precision"] == "float32"
    assert report["parameters"] > 0 and report["train_wall_seconds"] > 0
    assert report["model"] == {"preset": "tiny", "changes": {
        "hidden_dim": 32, "intermediate_dim": 64, "num_heads": 2, "num_encoder_layers": 1,
        "num_decoder_layers": 1, "max_sequence_length": 64}}
    assert os.path.isdir(output / "model") and os.path.isdir(output / "logs")


def test_recipe_without_a_test_corpus_is_a_one_line_error(tmp_path):
    recipe = write_config(tmp_path / "tiny.yaml", tmp_path / "out")
    with pytest.raises(SystemExit) as error:
        quality.main(["--recipe", recipe, "--steps", "1"])
    assert str(error.value) == (
        f"error: {recipe} has no data.test; add a test corpus to the recipe or with "
        "--set data.test.format=... .")
    assert not os.path.exists(tmp_path / "out")


def test_config_errors_are_one_line(tmp_path):
    recipe = write_config(tmp_path / "tiny.yaml", tmp_path / "out")
    with pytest.raises(SystemExit) as error:
        quality.main(["--recipe", recipe, "--steps", "1", "--set", "training.epoch=3"])
    assert str(error.value) == (f"error: unknown key 'training.epoch' in {recipe}; did you "
                                "mean 'training.epochs'?")


def test_cpu_reference_budget_applies_only_without_a_bound_on_a_cpu():
    cpu = {"kind": "cpu", "name": "x", "cores": 2}
    args = quality.parse_args(["--recipe", "recipes/samsum.yaml"])
    assert quality.budget(args, "samsum", cpu) == {
        "minutes": 40, "steps": None, "test_limit": 300, "cpu_reference": True,
        "overrides": ["optimizer.warmup_steps=300", "evaluation.max_sentences=100",
                      "model.changes.dropout=0.1"]}
    assert quality.budget(args, "other", cpu)["test_limit"] == 500
    gpu = quality.budget(args, "samsum", {"kind": "gpu", "name": "H100", "count": 1})
    assert gpu == {"minutes": None, "steps": None, "test_limit": None, "cpu_reference": False,
                   "overrides": []}
    args = quality.parse_args(["--recipe", "recipes/samsum.yaml", "--minutes", "5",
                               "--test-limit", "7"])
    limits = quality.budget(args, "samsum", cpu)
    assert (limits["minutes"], limits["test_limit"], limits["cpu_reference"]) == (5.0, 7, False)
    args = quality.parse_args(["--recipe", "recipes/samsum.yaml", "--test-limit", "7"])
    limits = quality.budget(args, "samsum", cpu)
    assert (limits["minutes"], limits["test_limit"], limits["cpu_reference"]) == (40, 7, True)
    with pytest.raises(SystemExit):  # --minutes and --steps exclude each other
        quality.parse_args(["--recipe", "r.yaml", "--minutes", "1", "--steps", "2"])


@pytest.mark.parametrize("name", sorted(quality.CPU_REFERENCE))
def test_cpu_reference_overrides_load_with_their_recipe(name, monkeypatch):
    from keras_attention.training import load_config

    monkeypatch.chdir(ROOT)
    config = load_config(os.path.join("recipes", f"{name}.yaml"),
                         quality.CPU_REFERENCE[name]["overrides"])
    assert config.data.test is not None
