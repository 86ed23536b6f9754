"""Keras' int8 (``model.quantize("int8")``) against float32: decoding speed
on this machine and how far the outputs move; prints JSON.

The ``small`` preset (3+3 layers, hidden 256) with an 8000-token vocabulary
and random weights decodes one batch of random 20-token sources, exactly
``--length`` tokens (``min_length``), greedy and beam 4, each decode a
``tf.function`` traced once before timing (best of ``--repeats``). Both
models are measured in the same run; the ratios are what to read.

    python benchmarks/keras_int8.py [--quick]
"""

import argparse
import json
import time

from _common import machine, progress


def sentences_per_second(model, sources, config, repeats):
    import numpy as np
    import tensorflow as tf

    from keras_attention.decoding import generate

    @tf.function
    def decode(ids):
        generation = generate(model, ids, config)
        return generation.ids, generation.scores

    decode(sources)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.asarray(decode(sources)[0])
        best = min(best, time.perf_counter() - started)
    return len(sources) / best


def run(batch_size=32, length=20, repeats=3, preset="small", vocabulary_size=8000,
        strategies=("greedy", "beam4")):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_attention.decoding import DecodingConfig
    from keras_attention.models import Transformer

    sources = np.random.default_rng(0).integers(4, vocabulary_size, size=(batch_size, 20))
    sources = sources.astype("int32")
    configs = {
        "greedy": DecodingConfig(min_length=length, max_length=length + 1),
        "beam4": DecodingConfig(strategy="beam", beam_size=4, min_length=length,
                                max_length=length + 1),
    }
    configs = {name: configs[name] for name in strategies}
    probe = {"encoder_tokens": sources[:8], "decoder_tokens": sources[:8, :length]}
    figures, logits = {}, {}
    for precision in ("float32", "int8"):
        keras.utils.set_random_seed(0)
        model = Transformer.from_preset(preset, encoder_vocabulary_size=vocabulary_size,
                                        decoder_vocabulary_size=vocabulary_size,
                                        max_sequence_length=64)
        if precision == "int8":
            model.quantize("int8")
        logits[precision] = np.asarray(model(probe))
        for name, config in configs.items():
            progress(f"{precision} {name}")
            figures[f"{precision}_{name}_sentences_per_s"] = round(
                sentences_per_second(model, sources, config, repeats), 2)
    probabilities = {k: np.asarray(keras.ops.softmax(v)) for k, v in logits.items()}
    return {
        **machine(tf, keras),
        "preset": preset, "vocabulary_size": vocabulary_size, "batch_size": batch_size,
        "length": length,
        **figures,
        **{f"int8_over_float32_{name}": round(figures[f"int8_{name}_sentences_per_s"]
                                              / figures[f"float32_{name}_sentences_per_s"], 3)
           for name in configs},
        "max_probability_change": float(np.abs(probabilities["int8"]
                                               - probabilities["float32"]).max()),
        "same_argmax_fraction": float((logits["int8"].argmax(-1)
                                       == logits["float32"].argmax(-1)).mean()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny preset, 200 tokens, 4 sentences of 4 tokens")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        result = run(batch_size=4, length=4, repeats=1, preset="tiny", vocabulary_size=200)
    else:
        result = run(repeats=args.repeats)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
