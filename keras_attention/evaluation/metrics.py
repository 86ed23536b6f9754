"""Corpus-level metrics over decoded strings: sacreBLEU (BLEU, chrF), ROUGE
(``rouge_score``) and exact match.

Scores come from the reference implementations, never re-implemented here;
every result carries a signature that says how it was computed, so numbers
can be compared across papers and runs.
"""

import dataclasses
import importlib.metadata
import re

from keras_attention.constants import BLEU_TOKENIZERS, METRICS

# rougeL: the LCS of the whole texts; rougeLsum: summary-level LCS over
# sentences (``split_sentences``), the ROUGE-L of most summarization papers.
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclasses.dataclass(frozen=True)
class MetricResult:
    """One corpus score on a 0-100 scale.

    Args:
        name: metric name as usually printed (``BLEU``, ``chrF2``, ``ROUGE-1`` ...).
        score: the corpus score, 0-100.
        signature: how it was computed (sacreBLEU's signature string for
            BLEU/chrF), for reporting next to the number.
        details: the library's own longer summary (e.g. n-gram precisions).
    """

    name: str
    score: float
    signature: str
    details: str = ""

    def to_dict(self):
        return dataclasses.asdict(self)

    def __str__(self):
        return f"{self.name} = {self.score:.2f}  ({self.signature})"


def _check_aligned(hypotheses, references):
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses for {len(references)} references; "
            "they must be aligned one to one."
        )
    if not references:
        raise ValueError(
            "no references to compare with; pass at least one hypothesis/reference pair."
        )
    for kind, texts in (("hypotheses", hypotheses), ("references", references)):
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(
                f"{kind}[{bad}] is a {type(texts[bad]).__name__}, not a string; "
                "decode bytes to str before scoring."
            )
    return hypotheses, references


def exact_match(hypotheses, references):
    """Fraction of hypotheses equal to their reference (after stripping spaces)."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses for {len(references)} references; "
            "they must be aligned one to one."
        )
    if not references:
        raise ValueError("no references to compare with.")
    matches = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return matches / len(references)


def _sacrebleu_result(metric, hypotheses, references):
    score = metric.corpus_score(hypotheses, [references])
    return MetricResult(
        name=score.name,
        score=float(score.score),
        signature=str(metric.get_signature()),
        details=score.format(),
    )


def bleu(hypotheses, references, tokenize="13a", lowercase=False):
    """Corpus BLEU (sacreBLEU, one reference per hypothesis).

    Args:
        tokenize: sacreBLEU tokenizer: ``13a`` (the WMT default), ``intl``,
            ``zh``, ``char``, ``none`` ...
        lowercase: case-insensitive BLEU.
    """
    from sacrebleu.metrics import BLEU

    hypotheses, references = _check_aligned(hypotheses, references)
    if tokenize not in BLEU_TOKENIZERS:
        raise ValueError(
            f"unknown BLEU tokenizer {tokenize!r}; use one of {', '.join(BLEU_TOKENIZERS)}."
        )
    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    return _sacrebleu_result(metric, hypotheses, references)


def chrf(hypotheses, references, word_order=0):
    """Corpus chrF (sacreBLEU); ``word_order=2`` gives chrF++."""
    from sacrebleu.metrics import CHRF

    hypotheses, references = _check_aligned(hypotheses, references)
    if word_order not in (0, 1, 2):
        raise ValueError(f"word_order must be 0 (chrF), 1 or 2 (chrF++), got {word_order!r}.")
    return _sacrebleu_result(CHRF(word_order=word_order), hypotheses, references)


def split_sentences(text):
    """``text``'s sentences, one per line: a sentence ends at ``.``, ``!`` or
    ``?`` followed by white space (a fixed rule, so ROUGE-Lsum needs no
    NLTK data download)."""
    return "\n".join(part for part in _SENTENCE_END.split(text.strip()) if part)


def rouge(hypotheses, references, rouge_types=ROUGE_TYPES, use_stemmer=True):
    """ROUGE F-measures (``rouge_score``, Porter stemming): one ``MetricResult``
    per type, the mean sentence-level F1 times 100.

    ``rougeL`` is the longest common subsequence of the whole texts;
    ``rougeLsum`` (``ROUGE-Lsum``) the summary-level union LCS over the
    sentences of ``split_sentences``, the ROUGE-L most summarization papers
    report. ``rouge_score``'s tokenizer keeps only ASCII letters and digits,
    so use it for English outputs.

    Empty lines (blank after stripping white space): an empty hypothesis of
    an empty reference is a perfect match (100 for that line, every type;
    ``rouge_score`` alone gives 0), an empty one against a non-empty one
    scores 0, either way round. So identical files score 100, as BLEU and
    exact match say. The signature records it as ``empty:both=100``.
    """
    from rouge_score import rouge_scorer

    hypotheses, references = _check_aligned(hypotheses, references)
    unknown = [t for t in rouge_types if t not in ROUGE_TYPES]
    if unknown or not rouge_types:
        raise ValueError(
            f"unknown ROUGE type(s) {unknown or list(rouge_types)}; use some of "
            f"{', '.join(ROUGE_TYPES)}."
        )
    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
    totals = dict.fromkeys(rouge_types, 0.0)
    for hypothesis, reference in zip(hypotheses, references):
        if not hypothesis.strip() and not reference.strip():
            for rouge_type in rouge_types:
                totals[rouge_type] += 1.0
            continue
        # (target, prediction); the newlines only matter to rougeLsum.
        scores = scorer.score(split_sentences(reference), split_sentences(hypothesis))
        for rouge_type in rouge_types:
            totals[rouge_type] += scores[rouge_type].fmeasure
    version = importlib.metadata.version("rouge-score")
    signature = (f"rouge_score:{version}|stem:{'yes' if use_stemmer else 'no'}"
                 "|F1 mean|nrefs:1|empty:both=100")
    return [
        MetricResult(
            name=f"ROUGE-{rouge_type[len('rouge'):]}",
            score=100.0 * totals[rouge_type] / len(references),
            signature=signature + ("|sentences:split at .!?" if rouge_type == "rougeLsum" else ""),
        )
        for rouge_type in rouge_types
    ]


def score(hypotheses, references, metrics=("bleu", "chrf"), tokenize="13a"):
    """The named ``metrics`` (``bleu``, ``chrf``, ``rouge``, ``exact``) as a
    list of ``MetricResult`` (``rouge`` gives ROUGE-1, -2, -L and -Lsum)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; use some of "
            f"{', '.join(METRICS)}."
        )
    hypotheses, references = _check_aligned(hypotheses, references)
    results = []
    for metric in metrics:
        if metric == "bleu":
            results.append(bleu(hypotheses, references, tokenize=tokenize))
        elif metric == "chrf":
            results.append(chrf(hypotheses, references))
        elif metric == "rouge":
            results.extend(rouge(hypotheses, references))
        else:
            results.append(MetricResult(
                name="exact match",
                score=100.0 * exact_match(hypotheses, references),
                signature="exact|strip:yes|case:mixed",
            ))
    return results
