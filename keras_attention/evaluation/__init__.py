"""Evaluation of decoded outputs: corpus metrics and attention plots."""

from keras_attention.evaluation.metrics import (
    METRICS,
    MetricResult,
    bleu,
    chrf,
    exact_match,
    rouge,
    score,
    split_sentences,
)

__all__ = ["METRICS", "MetricResult", "bleu", "chrf", "exact_match", "rouge", "score",
           "split_sentences"]
