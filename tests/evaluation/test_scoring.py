"""score_task: a task's metrics by name; evaluate_test_set: decode a test
corpus, scores equal the metrics on the returned hypotheses, long sources
truncated and counted."""

import pytest

from keras_attention.data import date_pairs, memory_pairs
from keras_attention.decoding.generate import DecodingConfig
from keras_attention.decoding.text import TextGenerator
from keras_attention.evaluation.metrics import bleu, chrf, rouge
from keras_attention.evaluation.scoring import (
    VALIDATION_METRICS,
    evaluate_test_set,
    score_task,
)
from keras_attention.training.config import CorpusConfig

PAIRS = date_pairs(12, seed=7)


HYPOTHESES = ["the cat sat on the mat.", "a dog ran in the park today"]
REFERENCES = ["the cat sat on a mat.", "the dog ran in the park"]


def test_score_task_gives_the_tasks_metrics_in_order():
    translation = score_task("translation", HYPOTHESES, REFERENCES)
    assert list(translation) == ["bleu", "chrf"]
    assert translation["bleu"] == bleu(HYPOTHESES, REFERENCES)
    assert translation["chrf"] == chrf(HYPOTHESES, REFERENCES)
    summarization = score_task("summarization", HYPOTHESES, REFERENCES)
    assert list(summarization) == ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    assert list(summarization.values()) == rouge(HYPOTHESES, REFERENCES)


def test_validation_scores_a_part_of_the_test_metrics():
    validation = score_task("translation", HYPOTHESES, REFERENCES,
                            VALIDATION_METRICS["translation"])
    assert validation == {"bleu": bleu(HYPOTHESES, REFERENCES)}
    assert (score_task("summarization", HYPOTHESES, REFERENCES,
                       VALIDATION_METRICS["summarization"])
            == score_task("summarization", HYPOTHESES, REFERENCES))


@pytest.mark.parametrize("task, metrics, message", [
    ("translation", ("bleu", "rouge1"),
     "translation is scored with some of bleu, chrf; got rouge1."),
    ("summarization", (), "summarization is scored with some of rouge1, rouge2, rougeL, "
     "rougeLsum; got none."),
])
def test_score_task_errors(task, metrics, message):
    with pytest.raises(ValueError) as error:
        score_task(task, HYPOTHESES, REFERENCES, metrics)
    assert str(error.value) == message


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("test_set") / "test.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS))
    return CorpusConfig(format="tsv", path=str(path))


def test_translation_scores_equal_the_metrics_on_the_hypotheses(trained_date_model, test_file):
    trained, _ = trained_date_model
    report = evaluate_test_set(trained, test_file, DecodingConfig(max_length=12), batch_size=8)
    sources, references = zip(*PAIRS)
    expected = TextGenerator(trained, config=DecodingConfig(max_length=12)).best(list(sources))
    assert report["hypotheses"] == expected
    assert report["task"] == "translation" and report["sentences"] == 12
    assert report["test_set"] == test_file.path
    assert report["truncated_sources"] == 0 and report["max_source_tokens"] == 32
    bleu_result, chrf_result = bleu(expected, references), chrf(expected, references)
    assert report["metric"] == {"bleu": bleu_result.score, "chrf": chrf_result.score}
    assert report["signature"] == {"bleu": bleu_result.signature,
                                   "chrf": chrf_result.signature}
    assert report["signature"]["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert report["metric"]["bleu"] > 30  # the date model has learned the task
    assert report["decoding"]["max_length"] == 12 and report["decode_seconds"] > 0


def test_summarization_scores_rouge_and_limit_takes_the_first_pairs(trained_date_model,
                                                                    test_file):
    trained, _ = trained_date_model
    report = evaluate_test_set(trained, test_file, DecodingConfig(max_length=12),
                               task="summarization", limit=5)
    references = [t for _, t in PAIRS[:5]]
    assert report["sentences"] == 5 and len(report["hypotheses"]) == 5
    results = rouge(report["hypotheses"], references)
    assert report["metric"] == {"rouge1": results[0].score, "rouge2": results[1].score,
                                "rougeL": results[2].score, "rougeLsum": results[3].score}
    assert set(report["signature"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert report["signature"]["rouge1"].startswith("rouge_score:")


def test_long_sources_are_truncated_and_counted_never_rejected(trained_date_model):
    trained, _ = trained_date_model
    long_source = " ".join(["the first of may two thousand and nine"] * 5)  # 40 words > 32
    pairs = memory_pairs([(long_source, "2009-05-01"), PAIRS[0]], name="long")
    with pytest.raises(ValueError, match="more than the model's limit of 32"):
        TextGenerator(trained).best([long_source])
    report = evaluate_test_set(trained, pairs, DecodingConfig(max_length=12))
    assert report["test_set"] == "long" and report["truncated_sources"] == 1
    first_32_words = " ".join(long_source.split()[:32])
    assert report["hypotheses"] == TextGenerator(trained, config=DecodingConfig(
        max_length=12)).best([first_32_words, PAIRS[0][0]])


@pytest.mark.parametrize("arguments, message", [
    ({"task": "qa"}, "task must be one of translation, summarization; got 'qa'."),
    ({"limit": 0}, "limit must be a positive integer or None, got 0."),
])
def test_errors(trained_date_model, test_file, arguments, message):
    trained, _ = trained_date_model
    with pytest.raises(ValueError) as error:
        evaluate_test_set(trained, test_file, **arguments)
    assert str(error.value) == message
