"""Decoding strategies over the models' key/value cache."""

from keras_attention.decoding.greedy import greedy_search

__all__ = ["greedy_search"]
