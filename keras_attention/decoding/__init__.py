"""Decoding strategies over the models' key/value cache."""

from keras_attention.decoding.beam import beam_search, gnmt_length_penalty
from keras_attention.decoding.cache import cached_steps, uncached_steps
from keras_attention.decoding.generate import DecodingConfig, Generation, generate
from keras_attention.decoding.greedy import argmax_pick, greedy_search, token_search
from keras_attention.decoding.processors import (
    ForceEndAtLimit,
    LogSoftmax,
    MinLength,
    NoRepeatNgram,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
    decoding_processors,
    sampling_warpers,
)
from keras_attention.decoding.sampling import sample_search, sampling_pick

__all__ = [
    "DecodingConfig",
    "ForceEndAtLimit",
    "Generation",
    "LogSoftmax",
    "MinLength",
    "NoRepeatNgram",
    "RepetitionPenalty",
    "Temperature",
    "TopK",
    "TopP",
    "argmax_pick",
    "beam_search",
    "cached_steps",
    "decoding_processors",
    "generate",
    "gnmt_length_penalty",
    "greedy_search",
    "sample_search",
    "sampling_pick",
    "sampling_warpers",
    "token_search",
    "uncached_steps",
]
