"""Evaluation of decoded outputs."""

from keras_attention.evaluation.metrics import exact_match

__all__ = ["exact_match"]
