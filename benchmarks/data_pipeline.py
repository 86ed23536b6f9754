"""Input pipeline speed and padding efficiency; prints JSON.

For Multi30k en-de (train, 29k pairs) and Tatoeba en-es (119k pairs): pairs/s
and real tokens/s of a full epoch of ``make_training_dataset`` (first epoch:
read + tokenize + bucket; later epochs: from the cache), padding efficiency
with and without bucketing, and - as the reference measured in the same run -
the real tokens/s that one training step of the ``small`` Transformer
consumes on this machine. ``pipeline_over_training`` is the ratio.

    python benchmarks/data_pipeline.py [--train-steps 10]
"""

import argparse
import json
import os
import time

from _common import machine

import keras
import numpy as np

from keras_attention.data import (
    BatchingConfig,
    SentencePieceTokenizer,
    aligned_pairs,
    make_training_dataset,
    padding_efficiency,
    tsv_pairs,
)
from keras_attention.models import Transformer
from keras_attention.training import MaskedAccuracy, sequence_loss

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
CORPORA = {
    "multi30k_en_de": lambda: aligned_pairs(
        f"{DATA}/multi30k/train.en.gz", f"{DATA}/multi30k/train.de.gz"
    ),
    "tatoeba_en_es": lambda: tsv_pairs(f"{DATA}/spa-eng/spa.txt.gz"),
}


def real_tokens(dataset):
    return sum(int(np.count_nonzero(labels)) + int(np.count_nonzero(x["encoder_tokens"]))
               for x, labels in dataset)


def epoch_seconds(dataset):
    started = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - started


def training_tokens_per_second(dataset, vocabulary_size, steps):
    """Real (non-pad) source+target tokens/s of ``small`` training steps."""
    model = Transformer.from_preset(
        "small",
        encoder_vocabulary_size=vocabulary_size,
        decoder_vocabulary_size=vocabulary_size,
        max_sequence_length=64,
    )
    model.compile(optimizer="adam", loss=sequence_loss(), metrics=[MaskedAccuracy()])
    batches = list(dataset.take(steps + 2))
    model.train_on_batch(*batches[0])  # trace
    model.train_on_batch(*batches[1])
    started = time.perf_counter()
    tokens = 0
    for x, labels in batches[2:]:
        model.train_on_batch(x, labels)
        tokens += int(np.count_nonzero(labels)) + int(np.count_nonzero(x["encoder_tokens"]))
    return tokens / (time.perf_counter() - started)


def measure(name, make_source, train_steps):
    source = make_source()
    stats = source.scan()
    started = time.perf_counter()
    tokenizer = SentencePieceTokenizer.build(
        (text for pair in source for text in pair), vocabulary_size=8000
    )
    vocab_seconds = time.perf_counter() - started
    config = BatchingConfig(batch_tokens=4096, max_source_tokens=64, max_target_tokens=63)
    started = time.perf_counter()
    dataset = make_training_dataset(source.dataset(), tokenizer, tokenizer, config)
    build_seconds = time.perf_counter() - started
    first = epoch_seconds(dataset)
    second = epoch_seconds(dataset)
    tokens = real_tokens(dataset)
    unbucketed = make_training_dataset(
        source.dataset(), tokenizer, tokenizer,
        BatchingConfig(batch_tokens=4096, max_source_tokens=64, max_target_tokens=63,
                       bucket_boundaries=()),
    )
    result = {
        "pairs": stats.pairs,
        "vocabulary": "sentencepiece unigram 8000, shared",
        "vocabulary_build_s": round(vocab_seconds, 2),
        "dataset_build_s": round(build_seconds, 2),
        "first_epoch": {"seconds": round(first, 2), "pairs_per_s": round(stats.pairs / first),
                        "real_tokens_per_s": round(tokens / first)},
        "cached_epoch": {"seconds": round(second, 2), "pairs_per_s": round(stats.pairs / second),
                         "real_tokens_per_s": round(tokens / second)},
        "padding_efficiency": {"bucketed": round(padding_efficiency(dataset), 4),
                               "not_bucketed": round(padding_efficiency(unbucketed), 4)},
    }
    if train_steps:
        training = training_tokens_per_second(dataset, tokenizer.vocabulary_size, train_steps)
        result["training_small_fp32_real_tokens_per_s"] = round(training)
        result["pipeline_over_training"] = {
            "first_epoch": round(tokens / first / training, 1),
            "cached_epoch": round(tokens / second / training, 1),
        }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=10,
                        help="training steps for the reference (0 = skip)")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    report = {**machine(), "batch_tokens": 4096}
    for name, make_source in CORPORA.items():
        report[name] = measure(name, make_source, args.train_steps)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
