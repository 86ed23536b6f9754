"""exact_match over decoded strings."""

import pytest

from keras_attention.evaluation import exact_match


@pytest.mark.parametrize(
    "hypotheses, references, expected",
    [
        (["1994-03-23"], ["1994-03-23"], 1.0),
        (["1994-03-23"], ["1994-03-24"], 0.0),
        (["a", "b", "c", "d"], ["a", "x", "c", "y"], 0.5),
        (["2001-01-01", "1999-12-31", "x"], ["2001-01-01", "1999-12-31", "y"], 2 / 3),
        # Surrounding whitespace is ignored on both sides ...
        ([" 1994-03-23\n", "a"], ["1994-03-23", "  a  "], 1.0),
        # ... but inner whitespace and case are not.
        (["1994 -03-23", "Mar"], ["1994-03-23", "mar"], 0.0),
        (["", " "], ["", ""], 1.0),
    ],
)
def test_exact_match_golden(hypotheses, references, expected):
    assert exact_match(hypotheses, references) == pytest.approx(expected)


def test_exact_match_accepts_tuples_and_returns_float():
    result = exact_match(("a", "b"), ("a", "c"))
    assert isinstance(result, float) and result == 0.5


@pytest.mark.parametrize("hypotheses, references", [(["a"], ["a", "b"]), (["a", "b"], ["a"]),
                                                    ([], ["a"])])
def test_exact_match_mismatched_lengths_raise(hypotheses, references):
    with pytest.raises(ValueError, match="aligned"):
        exact_match(hypotheses, references)


def test_exact_match_empty_raises():
    with pytest.raises(ValueError, match="no references"):
        exact_match([], [])


# --- corpus metrics: golden values from calling sacreBLEU / rouge_score directly ---

import sacrebleu  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

from keras_attention.evaluation import (  # noqa: E402
    METRICS,
    MetricResult,
    bleu,
    chrf,
    rouge,
    score,
    split_sentences,
)

HYPOTHESES = ["The cat sat on the mat.", "A man is riding a horses in the field",
              "two dogs play", "It is raining today ."]
REFERENCES = ["The cat sat on a mat.", "A man rides a horse in a field.",
              "Two dogs are playing in the snow.", "It is raining today."]


def test_bleu_equals_sacrebleu():
    result = bleu(HYPOTHESES, REFERENCES)
    expected = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES], tokenize="13a")
    assert result.name == "BLEU"
    assert result.score == pytest.approx(expected.score, abs=1e-9)
    assert 10 < result.score < 90  # a real partial match, not a degenerate value
    assert result.signature == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    assert result.details == expected.format()


def test_bleu_tokenizer_and_lowercase_reach_sacrebleu():
    result = bleu(HYPOTHESES, REFERENCES, tokenize="char", lowercase=True)
    expected = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES], tokenize="char", lowercase=True)
    assert result.score == pytest.approx(expected.score, abs=1e-9)
    assert "tok:char" in result.signature and "case:lc" in result.signature


def test_chrf_and_chrf_plus_plus_equal_sacrebleu():
    plain = chrf(HYPOTHESES, REFERENCES)
    assert plain.name == "chrF2"
    assert plain.score == pytest.approx(
        sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score, abs=1e-9)
    assert plain.signature == "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"
    plus = chrf(HYPOTHESES, REFERENCES, word_order=2)
    assert plus.name == "chrF2++"
    assert plus.score == pytest.approx(
        sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES], word_order=2).score, abs=1e-9)


def test_rouge_is_mean_f1_times_100_with_stemming():
    results = rouge(HYPOTHESES, REFERENCES)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    per_pair = [scorer.score(r, h) for h, r in zip(HYPOTHESES, REFERENCES)]
    assert [r.name for r in results] == ["ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum"]
    for result, key in zip(results, ["rouge1", "rouge2", "rougeL"]):
        expected = 100 * sum(s[key].fmeasure for s in per_pair) / len(per_pair)
        assert result.score == pytest.approx(expected, abs=1e-9)
        assert result.signature == "rouge_score:0.1.2|stem:yes|F1 mean|nrefs:1|empty:both=100"
    # One sentence each: the summary-level LCS is the LCS.
    assert results[3].score == pytest.approx(results[2].score, abs=1e-9)
    assert results[3].signature == (
        "rouge_score:0.1.2|stem:yes|F1 mean|nrefs:1|empty:both=100|sentences:split at .!?")
    # Stemming matters: "rides"/"ride", "horses"/"horse" match only with the stemmer.
    unstemmed = rouge(HYPOTHESES, REFERENCES, use_stemmer=False)
    assert unstemmed[0].score < results[0].score
    assert "stem:no" in unstemmed[0].signature


def test_split_sentences_puts_one_sentence_per_line():
    assert split_sentences("  Amy is late. She missed the bus!  Why? 3.5 km away. ") == (
        "Amy is late.\nShe missed the bus!\nWhy?\n3.5 km away.")
    assert split_sentences("no end mark") == "no end mark"
    assert split_sentences("") == ""


def test_rouge_lsum_matches_sentence_order_swaps_that_rouge_l_misses():
    # Golden values by hand. Reference sentences A B, hypothesis B A.
    # ROUGE-L: the LCS of the whole texts covers one sentence, 4 of 8 tokens:
    # F1 0.5. ROUGE-Lsum: each reference sentence's union LCS with the
    # hypothesis sentences covers it fully: F1 1.0.
    reference = "Tom buys milk. Ann walks home."
    hypothesis = "Ann walks home. Tom buys milk."
    rouge_l, rouge_lsum = rouge([hypothesis], [reference], rouge_types=("rougeL", "rougeLsum"))
    assert rouge_l.name == "ROUGE-L" and rouge_l.score == pytest.approx(50.0)
    assert rouge_lsum.name == "ROUGE-Lsum" and rouge_lsum.score == pytest.approx(100.0)
    # Unsplit, rouge_score's rougeLsum would see one sentence and agree with ROUGE-L.
    plain = rouge_scorer.RougeScorer(["rougeLsum"]).score(reference, hypothesis)
    assert plain["rougeLsum"].fmeasure == pytest.approx(0.5)


def test_identical_hypotheses_score_100_everywhere():
    results = score(REFERENCES, REFERENCES, metrics=METRICS)
    assert [r.name for r in results] == ["BLEU", "chrF2", "ROUGE-1", "ROUGE-2", "ROUGE-L",
                                         "ROUGE-Lsum", "exact match"]
    for result in results:
        assert result.score == pytest.approx(100.0)


WITH_EMPTY_LINE = ["Amy is late. She missed the bus.", "", "the cat sat"]


def test_identical_files_with_an_empty_line_score_100_everywhere():
    results = score(WITH_EMPTY_LINE, WITH_EMPTY_LINE, metrics=METRICS)
    assert {r.name: round(r.score, 6) for r in results} == {
        "BLEU": 100.0, "chrF2": 100.0, "ROUGE-1": 100.0, "ROUGE-2": 100.0, "ROUGE-L": 100.0,
        "ROUGE-Lsum": 100.0, "exact match": 100.0}
    # Blank after stripping counts as empty.
    assert [r.score for r in rouge([" ", "\t"], ["", " \n"])] == [100.0] * 4


@pytest.mark.parametrize("hypotheses, references", [
    (["", "the cat sat"], ["a dog ran", "the cat sat"]),  # empty hypothesis
    (["a dog ran", "the cat sat"], ["", "the cat sat"]),  # empty reference
])
def test_an_empty_line_against_a_non_empty_one_scores_0(hypotheses, references):
    # Line 1 scores 0, line 2 100: the mean is 50 for every ROUGE type.
    assert [r.score for r in rouge(hypotheses, references)] == [50.0] * 4


def test_score_matches_the_single_metrics():
    results = score(HYPOTHESES, REFERENCES, metrics=("exact", "bleu"), tokenize="intl")
    assert results[0] == MetricResult("exact match", 0.0, "exact|strip:yes|case:mixed")
    assert results[1] == bleu(HYPOTHESES, REFERENCES, tokenize="intl")
    assert str(results[1]).startswith(f"BLEU = {results[1].score:.2f}  (nrefs:1|")
    assert results[1].to_dict()["signature"] == results[1].signature


@pytest.mark.parametrize("metric", [bleu, chrf, rouge])
def test_metrics_reject_misaligned_and_empty_inputs(metric):
    with pytest.raises(ValueError) as error:
        metric(["a", "b"], ["a"])
    assert str(error.value) == "got 2 hypotheses for 1 references; they must be aligned one to one."
    with pytest.raises(ValueError) as error:
        metric([], [])
    assert str(error.value) == (
        "no references to compare with; pass at least one hypothesis/reference pair.")
    with pytest.raises(TypeError) as error:
        metric(["a", b"b"], ["a", "b"])
    assert str(error.value) == (
        "hypotheses[1] is a bytes, not a string; decode bytes to str before scoring.")


def test_metric_option_errors():
    with pytest.raises(ValueError) as error:
        bleu(["a"], ["a"], tokenize="spm")
    assert str(error.value) == "unknown BLEU tokenizer 'spm'; use one of 13a, intl, zh, char, none."
    with pytest.raises(ValueError, match=r"word_order must be 0 \(chrF\), 1 or 2"):
        chrf(["a"], ["a"], word_order=3)
    with pytest.raises(ValueError, match=r"unknown ROUGE type\(s\) \['rougeW'\]"):
        rouge(["a"], ["a"], rouge_types=("rougeW",))
    with pytest.raises(ValueError) as error:
        score(["a"], ["a"], metrics=("bleu", "meteor"))
    assert str(error.value) == "unknown metric(s) meteor; use some of bleu, chrf, rouge, exact."
