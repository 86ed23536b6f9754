"""benchmarks/decoding_sweep.py: decoding settings chosen on the validation
split, the test split scored once with the choice."""

import json

import pytest
from benchmark_scripts import load_benchmark
from training.run_configs import write_config

from keras_attention.evaluation.scoring import evaluate_test_set
from keras_attention.training import load_config

sweep = load_benchmark("decoding_sweep")
TEST_CORPUS = {"format": "dates", "size": 12, "seed": 5}


@pytest.fixture()
def recipe(tmp_path):
    return write_config(tmp_path / "dates.yaml", tmp_path / "unused",
                        {"data": {"test": TEST_CORPUS}})


def test_chooses_on_validation_and_scores_the_test_split_once(trained_date_model, recipe,
                                                              tmp_path, capsys):
    trained, folder = trained_date_model
    output = tmp_path / "sweep"
    sweep.main(["--model", folder, "--recipe", recipe, "--beam-size", "2",
                "--grid", "length_penalty=0.0,1.0", "--grid", "max_length=3,12",
                "--batch-size", "8", "--output", str(output)])
    report = json.loads(capsys.readouterr().out)
    assert report == json.load(open(output / "sweep.json"))
    assert [row["settings"] for row in report["validation"]] == [
        {"length_penalty": 0.0, "max_length": 3}, {"length_penalty": 0.0, "max_length": 12},
        {"length_penalty": 1.0, "max_length": 3}, {"length_penalty": 1.0, "max_length": 12}]
    config = load_config(recipe)
    base = config.evaluation.decoding.replace(strategy="beam", beam_size=2)
    for row in report["validation"]:  # each row is evaluate_test_set on validation
        expected = evaluate_test_set(trained, config.data.validation,
                                     base.replace(**row["settings"]), batch_size=8)
        assert row["metric"] == expected["metric"]
    assert report["select"] == "bleu" and report["validation_set"] == "dates(size=16, seed=1)"
    assert report["validation_sentences"] == 16
    best = max(report["validation"], key=lambda row: row["metric"]["bleu"])
    assert report["chosen"] == best["settings"]
    # A date is 10 characters: 3 tokens cannot score, the trained model can.
    assert report["chosen"]["max_length"] == 12 and best["metric"]["bleu"] > 30
    test = evaluate_test_set(trained, config.data.test, base.replace(**report["chosen"]),
                             batch_size=8)
    assert report["metric"] == test["metric"] and report["signature"] == test["signature"]
    assert report["test_set"] == "dates(size=12, seed=5)" and report["sentences"] == 12
    assert report["decoding"]["max_length"] == 12 and report["decoding"]["beam_size"] == 2
    hypotheses = (output / "test_hypotheses.txt").read_text().splitlines()
    assert hypotheses == test["hypotheses"]


def test_select_and_limits(trained_date_model, recipe, capsys):
    _, folder = trained_date_model
    sweep.main(["--model", folder, "--recipe", recipe, "--grid", "max_length=4,12",
                "--select", "chrf", "--validation-limit", "5", "--test-limit", "3"])
    report = json.loads(capsys.readouterr().out)
    assert report["select"] == "chrf" and report["chosen"] == {"max_length": 12}
    assert report["validation_sentences"] == 5 and report["sentences"] == 3
    assert report["decoding"]["strategy"] == "greedy"  # the recipe's own decoding


@pytest.mark.parametrize("arguments, message", [
    (["--grid", "beams=2"], "--grid 'beams' is not a decoding setting; use one of beam_size, "
     "beam_stopping, length_penalty, max_length, max_length_offset, max_length_ratio, min_length, n_best, "
     "no_repeat_ngram_size, repetition_penalty, temperature, top_k, top_p."),
    (["--grid", "length_penalty"],
     "--grid 'length_penalty' is not FIELD=V1,V2,...; e.g. --grid length_penalty=0.6,1.0."),
    (["--grid", "min_length=1,x"], "--grid min_length: '1,x' are not int values."),
    (["--grid", "min_length=1", "--select", "rouge2"],
     "--select 'rouge2' is not a translation test metric; use one of bleu, chrf."),
])
def test_errors_are_one_line(trained_date_model, recipe, arguments, message):
    _, folder = trained_date_model
    with pytest.raises(SystemExit) as error:
        sweep.main(["--model", folder, "--recipe", recipe] + arguments)
    assert str(error.value) == f"error: {message}"


def test_recipe_without_a_test_split_is_a_one_line_error(trained_date_model, tmp_path):
    _, folder = trained_date_model
    recipe = write_config(tmp_path / "dates.yaml", tmp_path / "unused")
    with pytest.raises(SystemExit) as error:
        sweep.main(["--model", folder, "--recipe", recipe, "--grid", "min_length=1"])
    assert str(error.value) == (
        f"error: {recipe} has no data.test; the sweep chooses on the validation split and "
        "reports the test split.")


def test_grid_values_take_the_type_of_their_field():
    from keras_attention.decoding import DecodingConfig

    grid = sweep.parse_grid(["beam_stopping=early,exact", "length_penalty=0.6,1",
                             "min_length=0,10"], DecodingConfig())
    assert grid == {"beam_stopping": ["early", "exact"], "length_penalty": [0.6, 1.0],
                    "min_length": [0, 10]}
    assert [type(v) for v in grid["length_penalty"]] == [float, float]
