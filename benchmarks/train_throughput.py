"""Training throughput of the ``small`` Transformer; prints JSON.

Real (non-pad) source+target tokens/s and model FLOP/s of ``train_on_batch``
for the ``small`` preset (3+3 layers, d256, 4 heads, ff 1024, vocabulary 8000)
in float32, mixed_bfloat16 and float32 with XLA (``jit_compile=True``), on
bucketed Multi30k en-de batches of ``batch_tokens=4096`` (a shared
SentencePiece vocabulary built on a slice of the training set). The same
figures, on the same batches in the same run, for an equivalent model built
from keras-hub's ``TokenAndPositionEmbedding`` / ``TransformerEncoder`` /
``TransformerDecoder``, and the FLOP/s of a 2048x2048 float32 and bfloat16
matmul as the machine's reference.

Each model runs every timed batch once to warm up (tracing, and one XLA
compilation per batch shape), then the same batches again, timed.

    python benchmarks/train_throughput.py [--steps 4] [--quick]
"""

import argparse
import json
import os
import time

from _common import machine, matmul_flop_per_s, progress

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from keras_attention.data import (
    BatchingConfig,
    SentencePieceTokenizer,
    aligned_pairs,
    make_training_dataset,
)
from keras_attention.models import Transformer
from keras_attention.models.presets import get_preset
from keras_attention.training import sequence_loss

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
VOCABULARY = 8000
MAX_LENGTH = 64
BATCH_TOKENS = 4096
RECIPE_LENGTH = 40  # the keras.io keras-hub translation recipe
RECIPE_BATCH = 64
FLOP_FORMULA = (
    "train step = 3 x forward (backward = 2 x forward); forward, on padded shapes "
    "(B rows, S source, T target positions, d hidden, f intermediate, V vocabulary, "
    "matmuls only, 2 FLOPs per multiply-add): encoder layer 8BSd^2 + 4BS^2d + 4BSdf; "
    "decoder layer 8BTd^2 + 4BT^2d (self) + 4BTd^2 + 4BSd^2 + 4BTSd (cross) + 4BTdf; "
    "output 2BTdV"
)


def forward_flops(config, batch, source_length, target_length):
    b, s, t = batch, source_length, target_length
    d, f, v = config.hidden_dim, config.intermediate_dim, config.decoder_vocabulary_size
    encoder = 8 * b * s * d * d + 4 * b * s * s * d + 4 * b * s * d * f
    decoder = (8 * b * t * d * d + 4 * b * t * t * d + 4 * b * t * d * d + 4 * b * s * d * d
               + 4 * b * t * s * d + 4 * b * t * d * f)
    return (config.num_encoder_layers * encoder + config.num_decoder_layers * decoder
            + 2 * b * t * d * v)


def train_flops(config, x):
    b, s = x["encoder_tokens"].shape
    t = x["decoder_tokens"].shape[1]
    return 3 * forward_flops(config, b, s, t)


def multi30k_batches(pairs, count):
    """``count`` bucketed token batches (our pipeline) and ``count`` batches of
    the keras.io recipe (every pair padded to RECIPE_LENGTH, RECIPE_BATCH
    pairs), from the same pairs and vocabulary."""
    source = aligned_pairs(f"{DATA}/multi30k/train.en.gz", f"{DATA}/multi30k/train.de.gz",
                           limit=pairs)
    tokenizer = SentencePieceTokenizer.build(
        (text for pair in source for text in pair), vocabulary_size=VOCABULARY
    )
    config = BatchingConfig(batch_tokens=BATCH_TOKENS, max_source_tokens=MAX_LENGTH,
                            max_target_tokens=MAX_LENGTH - 1, seed=0)
    dataset = make_training_dataset(source.dataset(), tokenizer, tokenizer, config)
    bucketed = [({k: v.numpy() for k, v in x.items()}, y.numpy())
                for x, y in dataset.take(count)]
    recipe_config = BatchingConfig(
        batch_size=RECIPE_BATCH, bucket_boundaries=(), max_source_tokens=RECIPE_LENGTH,
        max_target_tokens=RECIPE_LENGTH - 1, too_long="truncate", seed=0)
    recipe = make_training_dataset(source.dataset(), tokenizer, tokenizer, recipe_config)
    fixed = [(_pad_to(x, RECIPE_LENGTH), _pad_to(y, RECIPE_LENGTH))
             for x, y in ((({k: v.numpy() for k, v in x.items()}, y.numpy()))
                          for x, y in recipe.take(count))]
    return bucketed, fixed, tokenizer.vocabulary_size


def _pad_to(value, length):
    if isinstance(value, dict):
        return {k: _pad_to(v, length) for k, v in value.items()}
    return np.pad(value, [(0, 0), (0, length - value.shape[1])])


def ours(config, dtype):
    return Transformer(config, dtype=dtype)


def keras_hub_equivalent(config, dtype):
    """The same sizes from keras-hub layers (learned positions, post-norm,
    Keras masks from ``mask_zero``)."""
    c = config
    encoder_tokens = keras.Input((None,), dtype="int32", name="encoder_tokens")
    decoder_tokens = keras.Input((None,), dtype="int32", name="decoder_tokens")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        c.encoder_vocabulary_size, c.max_sequence_length, c.hidden_dim, mask_zero=True,
        dtype=dtype)(encoder_tokens)
    for _ in range(c.num_encoder_layers):
        x = keras_hub.layers.TransformerEncoder(
            c.intermediate_dim, c.num_heads, dropout=c.dropout,
            layer_norm_epsilon=c.layer_norm_epsilon, dtype=dtype)(x)
    y = keras_hub.layers.TokenAndPositionEmbedding(
        c.decoder_vocabulary_size, c.max_sequence_length, c.hidden_dim, mask_zero=True,
        dtype=dtype)(decoder_tokens)
    for _ in range(c.num_decoder_layers):
        y = keras_hub.layers.TransformerDecoder(
            c.intermediate_dim, c.num_heads, dropout=c.dropout,
            layer_norm_epsilon=c.layer_norm_epsilon, dtype=dtype)(y, x)
    logits = keras.layers.Dense(c.decoder_vocabulary_size, dtype="float32")(y)
    return keras.Model({"encoder_tokens": encoder_tokens, "decoder_tokens": decoder_tokens},
                       logits)


class Trainee:
    """A compiled model and its batches; ``run()`` trains on every batch once."""

    def __init__(self, build, config, dtype, jit_compile, batches):
        keras.utils.set_random_seed(0)
        self.config, self.batches = config, batches
        self.model = build(config, dtype)
        self.model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=sequence_loss(),
                           jit_compile=jit_compile)
        started = time.perf_counter()
        self.run()  # warm-up: trace (and compile) every batch shape
        self.warmup = time.perf_counter() - started
        self.seconds = []

    def run(self):
        for x, y in self.batches:
            self.loss = self.model.train_on_batch(x, y)

    def timed_run(self):
        started = time.perf_counter()
        self.run()
        self.seconds.append(time.perf_counter() - started)

    def report(self):
        seconds = float(np.median(self.seconds))
        real = sum(int(np.count_nonzero(x["encoder_tokens"])) + int(np.count_nonzero(y))
                   for x, y in self.batches)
        flops = sum(train_flops(self.config, x) for x, _ in self.batches)
        return {
            "real_tokens_per_s": round(real / seconds),
            "model_tflop_per_s": round(flops / seconds / 1e12, 4),
            "step_ms": round(1000 * seconds / len(self.batches), 1),
            "warmup_s": round(self.warmup, 1),
            "final_loss": round(float(self.loss), 4),
            "parameters": self.model.count_params(),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="batches per timed round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed rounds; models take turns each round, medians reported")
    parser.add_argument("--pairs", type=int, default=8000,
                        help="Multi30k training pairs read (vocabulary and batches)")
    parser.add_argument("--quick", action="store_true",
                        help="2 batches, 2 rounds, float32 and mixed_bfloat16 only (no XLA)")
    args = parser.parse_args()
    steps, rounds = (2, 2) if args.quick else (args.steps, args.rounds)
    variants = {"float32": ("float32", False), "mixed_bfloat16": ("mixed_bfloat16", False)}
    if not args.quick:
        variants["float32_xla"] = ("float32", True)

    progress(f"building the vocabulary and {steps} batches of {BATCH_TOKENS} tokens")
    batches, recipe_batches, vocabulary_size = multi30k_batches(args.pairs, steps)
    config = get_preset("small", encoder_vocabulary_size=vocabulary_size,
                        decoder_vocabulary_size=vocabulary_size, max_sequence_length=MAX_LENGTH)
    shapes = sorted({(x["encoder_tokens"].shape, x["decoder_tokens"].shape) for x, _ in batches})
    report = {
        **machine(tf, keras),
        "keras_hub_version": keras_hub.__version__,
        "model": "small preset: 3+3 layers, d256, 4 heads, ff 1024, dropout 0.1, "
                 f"shared SentencePiece vocabulary {vocabulary_size}",
        "data": f"Multi30k en-de train (first {args.pairs} pairs), bucketed, "
                f"batch_tokens={BATCH_TOKENS}",
        "timed_batches": len(batches),
        "rounds": rounds,
        "batch_shapes": [[list(s), list(t)] for s, t in shapes],
        "padding_efficiency": padding(batches),
        "flop_formula": FLOP_FORMULA,
        "forward_gflop_per_batch": round(
            sum(train_flops(config, x) for x, _ in batches) / 3 / len(batches) / 1e9, 2),
    }
    progress("timing 2048x2048 matmuls")
    matmul = {name: matmul_flop_per_s(name) for name in ("float32", "bfloat16")}
    report["matmul_2048_tflop_per_s"] = {k: round(v / 1e12, 4) for k, v in matmul.items()}
    trainees = {}
    for name, build in (("ours", ours), ("keras_hub", keras_hub_equivalent)):
        for variant, (dtype, jit) in variants.items():
            progress(f"warming up {name} {variant}")
            trainees[name, variant] = Trainee(build, config, dtype, jit, batches)
    # The toolkits end to end: the keras.io keras-hub recipe's batches (fixed
    # length, fixed batch size) against our bucketed token batches.
    progress("warming up keras_hub mixed_bfloat16 on recipe batches")
    trainees["keras_hub_recipe", "mixed_bfloat16"] = Trainee(
        keras_hub_equivalent, config, "mixed_bfloat16", False, recipe_batches)
    for round_ in range(rounds):
        progress(f"timed round {round_ + 1}/{rounds}")
        for trainee in trainees.values():
            trainee.timed_run()
    for (name, variant), trainee in trainees.items():
        report.setdefault(name, {})[variant] = trainee.report()
    report["keras_hub_recipe"]["data"] = (
        f"keras.io recipe batches: {RECIPE_BATCH} pairs padded to {RECIPE_LENGTH} tokens, "
        f"padding efficiency {padding(recipe_batches)}")
    report["ours_over_keras_hub_same_batches"] = {
        v: round(report["ours"][v]["real_tokens_per_s"]
                 / report["keras_hub"][v]["real_tokens_per_s"], 3)
        for v in variants
    }
    report["ours_over_keras_hub_recipe_end_to_end_bf16"] = round(
        report["ours"]["mixed_bfloat16"]["real_tokens_per_s"]
        / report["keras_hub_recipe"]["mixed_bfloat16"]["real_tokens_per_s"], 3)
    report["model_over_bf16_matmul"] = {
        name: {v: round(report[name][v]["model_tflop_per_s"] * 1e12 / matmul["bfloat16"], 3)
               for v in variants}
        for name in ("ours", "keras_hub")
    }
    report["goals"] = {"ours_over_keras_hub": ">= 1.3", "model_over_bf16_matmul": ">= 0.4"}
    print(json.dumps(report, indent=2))


def padding(batches):
    """Real target tokens / target positions."""
    return round(sum(int(np.count_nonzero(y)) for _, y in batches)
                 / sum(y.size for _, y in batches), 4)


if __name__ == "__main__":
    main()
