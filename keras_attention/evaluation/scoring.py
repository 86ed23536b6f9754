"""Scores of a task's outputs (``score_task``: the one scorer of test sets
and of validation during training), and a trained model scored on a held-out
corpus (``evaluate_test_set``: decode its sources, compare with its
references, return a JSON-ready report).

    trained = load_trained_model("runs/samsum/model")
    report = evaluate_test_set(trained, config.data.test, DecodingConfig(strategy="beam"))
    report["metric"]     # {"rouge1": 30.1, "rouge2": 9.8, "rougeL": 28.0, "rougeLsum": 29.5}
    report["signature"]  # how each score was computed

Translation is scored with sacreBLEU BLEU and chrF (signatures kept),
summarization with ROUGE-1/2/L/Lsum (``rouge_score``, stemming).

Truncation policy: a source longer than the model's ``max_sequence_length``
tokens is cut to its first ``max_sequence_length`` tokens (as training with
``batching.too_long: truncate`` and validation decoding do) and counted in
``truncated_sources``; no test sentence is skipped or rejected.
"""

import dataclasses
import itertools
import time

import tensorflow as tf

from keras_attention.decoding.generate import DecodingConfig
from keras_attention.decoding.text import TextGenerator
from keras_attention.evaluation.metrics import ROUGE_TYPES, bleu, chrf, rouge
from keras_attention.models.saving import TASKS

# What a task's test set is scored with (``evaluate_test_set``), and the part
# of it validation during training logs (``val_bleu``, ``val_rouge1`` ...).
TEST_METRICS = {"translation": ("bleu", "chrf"), "summarization": ROUGE_TYPES}
VALIDATION_METRICS = {"translation": ("bleu",), "summarization": ROUGE_TYPES}


def evaluate_test_set(trained, corpus, decoding_config=DecodingConfig(), *, task=None,
                      limit=None, batch_size=64, on_batch=None):
    """Decode the test corpus with ``trained`` and score it.

    Args:
        trained: a ``models.TrainedModel``.
        corpus: a ``training.config.CorpusConfig`` (e.g. ``config.data.test``)
            or a ``data.readers.PairSource`` of ``(source, reference)`` pairs.
        decoding_config: a ``DecodingConfig``.
        task: ``"translation"`` or ``"summarization"``; ``None``: the
            model's own task.
        limit: score only the first ``limit`` pairs.
        batch_size: sentences decoded together.
        on_batch: called with the number of sentences done after each batch.

    Returns:
        a JSON-ready dict: ``task``, ``test_set`` (the corpus name),
        ``sentences``, ``truncated_sources``, ``max_source_tokens``,
        ``metric`` (``{"bleu", "chrf"}`` or ``{"rouge1", "rouge2",
        "rougeL", "rougeLsum"}``, 0-100), ``signature`` (per metric), ``decoding`` (the
        settings), ``decode_seconds``, ``sentences_per_second`` and
        ``hypotheses`` (in corpus order).
    """
    task = trained.task if task is None else task
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}.")
    pairs = corpus.pairs() if hasattr(corpus, "pairs") else corpus
    test_pairs = list(itertools.islice(pairs, limit))
    sources = [source for source, _ in test_pairs]
    references = [reference for _, reference in test_pairs]
    generator = TextGenerator(trained, config=decoding_config, truncate=True)
    truncated = sum(length > generator.max_source_length
                    for length in _source_lengths(trained.source_tokenizer, sources))

    started = time.perf_counter()
    hypotheses = [hypothesis[0].text for hypothesis in
                  generator.generate(sources, batch_size=batch_size, on_batch=on_batch)]
    seconds = time.perf_counter() - started

    results = score_task(task, hypotheses, references)
    return {
        "task": task,
        "test_set": pairs.name,
        "sentences": len(sources),
        "truncated_sources": int(truncated),
        "max_source_tokens": generator.max_source_length,
        "metric": {name: result.score for name, result in results.items()},
        "signature": {name: result.signature for name, result in results.items()},
        "decoding": dataclasses.asdict(decoding_config),
        "decode_seconds": seconds,
        "sentences_per_second": len(sources) / seconds if seconds > 0 else 0.0,
        "hypotheses": hypotheses,
    }


def score_task(task, hypotheses, references, metrics=None):
    """``{name: MetricResult}`` of ``task``'s ``metrics``, in that order.

    ``metrics``: names from ``TEST_METRICS[task]`` (BLEU and chrF,
    sacreBLEU, for translation; ROUGE-1/2/L/Lsum for summarization), all of
    them when ``None``; validation during training scores
    ``VALIDATION_METRICS[task]``.
    """
    allowed = TEST_METRICS[task]
    metrics = allowed if metrics is None else tuple(metrics)
    unknown = [name for name in metrics if name not in allowed]
    if unknown or not metrics:
        raise ValueError(f"{task} is scored with some of {', '.join(allowed)}; "
                         f"got {', '.join(unknown) or 'none'}.")
    results = {}
    if "bleu" in metrics:
        results["bleu"] = bleu(hypotheses, references)
    if "chrf" in metrics:
        results["chrf"] = chrf(hypotheses, references)
    rouge_types = [name for name in metrics if name in ROUGE_TYPES]
    if rouge_types:
        results.update(zip(rouge_types, rouge(hypotheses, references, rouge_types=rouge_types)))
    return {name: results[name] for name in metrics}


def _source_lengths(tokenizer, texts, chunk=1024):
    lengths = []
    for start in range(0, len(texts), chunk):
        ragged = tokenizer.tokenize(tf.constant(texts[start : start + chunk]))
        lengths.extend(int(n) for n in ragged.row_lengths().numpy())
    return lengths
