"""What the translation controls cost in decoding speed; prints JSON.

The ``small`` preset (3+3 layers, hidden 256) with an 8000-token vocabulary
and random weights decodes one batch of random 20-token sources, exactly
``--length`` tokens (``min_length``), greedy and beam 4, each decode a
``tf.function`` traced once before timing (best of ``--repeats``), plain and
with a target prefix of ``--prefix`` tokens per sentence
(``generate(..., prefix_ids=...)``); and the alignments of the greedy
outputs (``decoding.alignment.alignments``: one teacher-forced pass in a
``tf.function``, as ``translate --alignments`` adds after decoding); beam 4
with ``--constraints`` phrases of 2 tokens per sentence (dynamic beam
allocation, ``constraint_ids``); and an ensemble of two such models
(``ensemble_steps``), greedy and beam 4. Measured in the same run: read the
ratios.

    python benchmarks/translation_controls.py [--quick]
"""

import argparse
import json
import time

from _common import machine, progress


def _sentences_per_second(decode, arguments, rows, repeats):
    import numpy as np

    decode(*arguments)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.asarray(decode(*arguments)[0])
        best = min(best, time.perf_counter() - started)
    return rows / best


def _alignment_figures(model, sources, decode, figures, repeats):
    """Greedy decoding followed by the alignments of its outputs."""
    import numpy as np

    from keras_attention.decoding.alignment import alignments, target_tokens

    import tensorflow as tf

    outputs = [target_tokens(row) for row in np.asarray(decode(sources)[0])[:, 0]]
    rows = [list(row) for row in sources]
    traced = tf.function(model.attention_scores, reduce_retracing=True)  # as TextGenerator
    alignments(model, rows, outputs, attention_fn=traced)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        alignments(model, rows, outputs, attention_fn=traced)
        best = min(best, time.perf_counter() - started)
    decode_seconds = len(sources) / figures["greedy_sentences_per_s"]
    return {"greedy_with_alignments_sentences_per_s": round(
                len(sources) / (decode_seconds + best), 2),
            "greedy_with_alignments_over_plain": round(decode_seconds / (decode_seconds + best),
                                                       3)}


def _ratio(figures, name, control):
    figures[f"{name}_{control}_over_plain"] = round(
        figures[f"{name}_{control}_sentences_per_s"] / figures[f"{name}_sentences_per_s"], 3)


def run(batch_size=32, length=20, prefix_length=5, repeats=3, preset="small",
        vocabulary_size=8000, constraints=2):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_attention.decoding import DecodingConfig, generate
    from keras_attention.decoding.ensemble import ensemble_steps
    from keras_attention.models import Transformer

    rng = np.random.default_rng(0)
    sources = rng.integers(4, vocabulary_size, size=(batch_size, 20)).astype("int32")
    prefix = rng.integers(4, vocabulary_size, size=(batch_size, prefix_length)).astype("int32")
    keras.utils.set_random_seed(0)
    phrases = rng.integers(4, vocabulary_size, size=(batch_size, constraints, 2)).astype("int32")
    model, second = (Transformer.from_preset(preset, encoder_vocabulary_size=vocabulary_size,
                                             decoder_vocabulary_size=vocabulary_size,
                                             max_sequence_length=64) for _ in range(2))
    pair = ensemble_steps([model, second])
    figures = {}
    for name, config in (
            ("greedy", DecodingConfig(min_length=length, max_length=length + 1)),
            ("beam4", DecodingConfig(strategy="beam", beam_size=4, min_length=length,
                                     max_length=length + 1))):
        plain = tf.function(lambda s, c=config: tuple(vars(generate(model, s, c)).values()))
        prefixed = tf.function(lambda s, p, c=config: tuple(
            vars(generate(model, s, c, prefix_ids=p)).values()))
        progress(f"{name}: plain, prefix")
        figures[f"{name}_sentences_per_s"] = round(
            _sentences_per_second(plain, (sources,), batch_size, repeats), 2)
        figures[f"{name}_prefix_sentences_per_s"] = round(
            _sentences_per_second(prefixed, (sources, prefix), batch_size, repeats), 2)
        _ratio(figures, name, "prefix")
        progress(f"{name}: ensemble of 2")
        together = tf.function(lambda s, c=config: tuple(
            vars(generate(model, s, c, steps=pair)).values()))
        figures[f"{name}_ensemble2_sentences_per_s"] = round(
            _sentences_per_second(together, (sources,), batch_size, repeats), 2)
        _ratio(figures, name, "ensemble2")
        if name == "greedy":
            figures.update(_alignment_figures(model, sources, plain, figures, repeats))
            continue
        progress(f"{name}: {constraints} constraints of 2 tokens")
        constrained = tf.function(lambda s, p, c=config: tuple(
            vars(generate(model, s, c, constraint_ids=p)).values()))
        figures[f"{name}_constraints_sentences_per_s"] = round(
            _sentences_per_second(constrained, (sources, phrases), batch_size, repeats), 2)
        _ratio(figures, name, "constraints")
    return {**machine(tf, keras), "preset": preset, "batch_size": batch_size,
            "length": length, "prefix_length": prefix_length,
            "constraints": f"{constraints} x 2 tokens", **figures}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny preset, 200 tokens, 4 sentences of 4 tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prefix", type=int, default=5, help="prefix tokens per sentence")
    args = parser.parse_args()
    if args.quick:
        result = run(batch_size=4, length=4, prefix_length=2, repeats=1, preset="tiny",
                     vocabulary_size=200)
    else:
        result = run(prefix_length=args.prefix, repeats=args.repeats)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
