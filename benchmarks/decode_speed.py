"""Decoding speed: greedy and beam search, cached vs. uncached, vs. keras-hub; prints JSON.

The ``small`` preset (3+3 layers, hidden 256, 4 heads, feed-forward 1024)
with an 8000-token vocabulary and random weights decodes batches of random
20-token sources. ``min_length`` forbids END until the target length, so
every configuration generates exactly ``length`` tokens (END included).
Compared in the same run:

- ``cached``: ``generate`` with ``cached_steps`` (the key/value cache);
- ``cached_xla``: the same compiled with XLA (``jit_compile=True``, what
  ``TextGenerator(jit_compile=True)`` and ``--xla`` do);
- ``uncached``: ``generate`` with ``uncached_steps`` (``model.decode`` over
  the whole fixed-size buffer at each step);
- ``keras_hub``: ``keras_hub.samplers.GreedySampler`` / ``BeamSampler``
  (``num_beams=4``) over an equal-sized model of keras-hub layers
  (``TokenAndPositionEmbedding``, ``TransformerEncoder``,
  ``TransformerDecoder``) with keras-hub's own key/value cache path and no
  stop token (so it also generates ``length`` tokens).

With ``--buffer N`` our configurations decode with ``max_length=N`` (the
default of a model with ``max_sequence_length=N + 1``, e.g. 127 for the
Multi30k recipe) and ``length`` tokens are forced with a per-sentence limit
(``max_length_ratio``), as when real sentences end long before the longest
output allowed; keras-hub still generates ``length`` tokens.

Every decode call is a ``tf.function`` (``jit_compile=False`` except
``cached_xla``), traced (and compiled) once before timing; the figure is the best of ``--repeats`` timed calls.

    python benchmarks/decode_speed.py [--quick] [--repeats 2]

Real text and CTranslate2 on the same trained weights:
``benchmarks/decode_speed_text.py --model RUN/model``.
"""

import argparse
import json
import time

from _common import machine, progress

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from keras import ops

from keras_attention.constants import START_ID
from keras_attention.decoding import (
    DecodingConfig,
    cached_steps,
    generate,
    uncached_steps,
)
from keras_attention.models import Transformer
from keras_attention.models.presets import get_preset

VOCABULARY = 8000
SOURCE_LENGTH = 20
BEAMS = 4


class KerasHubSeq2Seq:
    """The ``small`` architecture from keras-hub layers, decoded with
    keras-hub's samplers and the layers' own self/cross-attention caches."""

    def __init__(self, config):
        c = config
        self.config = c
        self.head_dim = c.hidden_dim // c.num_heads
        self.encoder_embedding = keras_hub.layers.TokenAndPositionEmbedding(
            VOCABULARY, c.max_sequence_length, c.hidden_dim)
        self.decoder_embedding = keras_hub.layers.TokenAndPositionEmbedding(
            VOCABULARY, c.max_sequence_length, c.hidden_dim)
        self.encoders = [keras_hub.layers.TransformerEncoder(c.intermediate_dim, c.num_heads)
                         for _ in range(c.num_encoder_layers)]
        self.decoders = [keras_hub.layers.TransformerDecoder(c.intermediate_dim, c.num_heads)
                         for _ in range(c.num_decoder_layers)]
        self.output_projection = keras.layers.Dense(VOCABULARY)
        # Build every layer with one full pass.
        source = np.ones((1, 4), "int32")
        x = self.encode(source)
        y = self.decoder_embedding(source)
        for layer in self.decoders:
            y = layer(y, x)
        self.output_projection(y)

    def encode(self, source_ids):
        mask = ops.not_equal(source_ids, 0)
        x = self.encoder_embedding(source_ids)
        for layer in self.encoders:
            x = layer(x, padding_mask=mask)
        return x

    def _decoder(self, tokens, cache, index, cross_update_index):
        self_cache, cross_cache, encoder_output, encoder_mask = cache
        x = self.decoder_embedding(tokens, start_index=index)
        self_caches, cross_caches = [], []
        for i, layer in enumerate(self.decoders):
            x, layer_self, layer_cross = layer(
                decoder_sequence=x,
                encoder_sequence=encoder_output,
                encoder_padding_mask=encoder_mask,
                self_attention_cache=self_cache[:, i],
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_cache[:, i],
                cross_attention_cache_update_index=cross_update_index,
            )
            self_caches.append(layer_self)
            cross_caches.append(layer_cross)
        if cross_update_index is not None:
            cross_cache = ops.stack(cross_caches, axis=1)
        cache = (ops.stack(self_caches, axis=1), cross_cache, encoder_output, encoder_mask)
        return self.output_projection(x), cache

    def generate(self, sampler, source_ids, length):
        """``length`` generated tokens after START with ``sampler``."""
        c = self.config
        batch = ops.shape(source_ids)[0]
        encoder_output = self.encode(source_ids)
        encoder_mask = ops.not_equal(source_ids, 0)
        shape = (batch, c.num_decoder_layers, 2, length + 1, c.num_heads, self.head_dim)
        cross_shape = (batch, c.num_decoder_layers, 2, SOURCE_LENGTH, c.num_heads, self.head_dim)
        cache = (ops.zeros(shape), ops.zeros(cross_shape), encoder_output, encoder_mask)
        prompt = ops.concatenate(
            [ops.full((batch, 1), START_ID, "int32"), ops.zeros((batch, length), "int32")], 1)
        # Prefill position 0 and the cross-attention cache once.
        _, cache = self._decoder(prompt[:, :1], cache, 0, 0)

        def next(prompt, cache, index):
            tokens = ops.slice(prompt, [0, index - 1], [ops.shape(prompt)[0], 1])
            logits, cache = self._decoder(tokens, cache, index - 1, None)
            return logits[:, 0], None, cache

        mask = ops.broadcast_to(ops.arange(length + 1) < 1, ops.shape(prompt))
        return sampler(next=next, prompt=prompt, cache=cache, index=1, mask=mask,
                       stop_token_ids=None)


def best_seconds(function, source, repeats):
    function(source)  # trace
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(source)
        keras.tree.map_structure(lambda x: x.numpy(), result)
        times.append(time.perf_counter() - started)
    return min(times)


def figures(seconds, batch):
    return {"sentences_per_s": round(batch / seconds, 2),
            "ms_per_sentence": round(1000 * seconds / batch, 2)}


def ours(model, steps, strategy, length, jit_compile=False, buffer=None):
    config = DecodingConfig(strategy=strategy, beam_size=BEAMS, max_length=length,
                            min_length=length - 1)
    if buffer is not None:
        # Every source has SOURCE_LENGTH tokens: the limit is length for all.
        config = config.replace(max_length=buffer, max_length_ratio=1.0,
                                max_length_offset=length - SOURCE_LENGTH)
    return tf.function(lambda source: generate(model, source, config, steps=steps).ids,
                       jit_compile=jit_compile)


def keras_hubs(model, strategy, length):
    sampler = (keras_hub.samplers.GreedySampler() if strategy == "greedy"
               else keras_hub.samplers.BeamSampler(num_beams=BEAMS))
    return tf.function(lambda source: model.generate(sampler, source, length))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: length 16 only, batch 1 and 4, one repeat")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per configuration")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--buffer", type=int, default=None,
                        help="decode with max_length BUFFER, ending each output after "
                             "length tokens (lengths >= 20, <= BUFFER)")
    parser.add_argument("--uncached-limit", type=int, default=32 * 4 * 64 * 64,
                        help="skip uncached runs with rows * length**2 above this (their "
                             "cost is quadratic: beam 4 at batch 32 and 128 tokens takes "
                             "~10 minutes on 2 CPU cores)")
    args = parser.parse_args()
    lengths, batches, repeats = args.lengths, args.batches, args.repeats
    if args.quick:
        lengths, batches, repeats = [16], [1, 4], 1
    keras.utils.set_random_seed(0)
    config = get_preset("small", encoder_vocabulary_size=VOCABULARY,
                        decoder_vocabulary_size=VOCABULARY,
                        max_sequence_length=max(max(lengths) + 1, SOURCE_LENGTH,
                                                (args.buffer or 0) + 1))
    model = Transformer(config)
    hub_model = KerasHubSeq2Seq(config)
    rng = np.random.default_rng(0)
    report = {**machine(tf, keras_hub),
              "model": "small preset, vocabulary 8000, random weights, float32",
              "source_tokens": SOURCE_LENGTH, "beam_size": BEAMS,
              "timing": f"best of {repeats} calls after tracing", "results": []}
    for length in lengths:
        for batch in batches:
            source = tf.constant(rng.integers(4, VOCABULARY, (batch, SOURCE_LENGTH)), tf.int32)
            for strategy in ("greedy", "beam"):
                row = {"strategy": strategy if strategy == "greedy" else f"beam{BEAMS}",
                       "batch": batch, "length": length, "buffer": args.buffer or length}
                buffer = args.buffer
                runs = {"cached": ours(model, cached_steps(model), strategy, length,
                                       buffer=buffer),
                        "cached_xla": ours(model, cached_steps(model), strategy, length,
                                           jit_compile=True, buffer=buffer),
                        "uncached": ours(model, uncached_steps(model), strategy, length,
                                         buffer=buffer),
                        "keras_hub": keras_hubs(hub_model, strategy, length)}
                rows = batch * (1 if strategy == "greedy" else BEAMS)
                if rows * length**2 > args.uncached_limit:
                    del runs["uncached"]
                    row["uncached"] = f"skipped: rows * length**2 > --uncached-limit"
                seconds = {}
                for name, function in runs.items():
                    started = time.perf_counter()
                    seconds[name] = best_seconds(function, source, repeats)
                    row[name] = figures(seconds[name], batch)
                    progress(f"{row['strategy']} batch {batch} length {length} {name}: "
                             f"{seconds[name]:.3f}s ({time.perf_counter() - started:.0f}s total)")
                if "uncached" in seconds:
                    row["cached_over_uncached"] = round(seconds["uncached"] / seconds["cached"], 2)
                row["ours_over_keras_hub"] = round(seconds["keras_hub"] / seconds["cached"], 2)
                row["xla_over_cached"] = round(seconds["cached"] / seconds["cached_xla"], 2)
                row["ours_xla_over_keras_hub"] = round(
                    seconds["keras_hub"] / seconds["cached_xla"], 2)
                report["results"].append(row)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
