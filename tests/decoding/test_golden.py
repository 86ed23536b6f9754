"""``generate`` pinned to recorded outputs: ids (exact) and scores of greedy
search, beam search and sampling on two small fixed-weight Transformers
(post-norm; pre-norm with tied embeddings and the copy mechanism), and long
outputs (up to 63 tokens: the decoding state grows in several windows).

The golden file ``golden_generate.json`` holds the outputs of the decoding
code before the decoding-speed changes (commit 17b03fb); a faster decoding
path must give the same ids and, up to float rounding, the same scores.
Regenerate it only for a deliberate change of outputs::

    python tests/decoding/test_golden.py > tests/decoding/golden_generate.json
"""

import json
import os
import sys

import numpy as np
import pytest

from keras_attention.decoding import DecodingConfig, generate
from keras_attention.models import Transformer

pytestmark = pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")

GOLDEN_FILE = os.path.join(os.path.dirname(__file__), "golden_generate.json")
VOCAB, MAX_LENGTH = 24, 14
SOURCES = [[5, 6, 7, 8, 9, 10, 11], [12, 4, 17], [19, 3, 8, 8, 5], [7], [22, 21, 20, 4, 4, 9]]
COPY = {"normalize_first": True, "share_embeddings": True, "tie_output_embeddings": True,
        "copy_attention": True}
# Name: (config changes, max_sequence_length, decoding configs).
LONG = 64
MODELS = {
    "post_norm": ({}, MAX_LENGTH, "short"),
    "pre_norm_copy": (COPY, MAX_LENGTH, "short"),
    "post_norm_long": ({}, LONG, "long"),
    "pre_norm_copy_long": (COPY, LONG, "long"),
}
CONFIGS = {
    "greedy": DecodingConfig(),
    "greedy_no_repeat": DecodingConfig(no_repeat_ngram_size=2, max_length_ratio=1.0,
                                       max_length_offset=2),
    "beam": DecodingConfig(strategy="beam", beam_size=4, n_best=2),
    "beam_no_repeat": DecodingConfig(strategy="beam", beam_size=3, n_best=3, length_penalty=1.0,
                                     no_repeat_ngram_size=2, max_length_ratio=1.0,
                                     max_length_offset=2),
    "sample": DecodingConfig(strategy="sample", n_best=2, seed=3, top_k=10),
}
LONG_CONFIGS = {
    "greedy": DecodingConfig(),
    "greedy_min_length": DecodingConfig(min_length=50),
    "beam": DecodingConfig(strategy="beam", beam_size=3, n_best=2, min_length=40),
    "beam_ratio": DecodingConfig(strategy="beam", beam_size=2, max_length_ratio=3.0,
                                 max_length_offset=5, min_length=12),
    "sample": DecodingConfig(strategy="sample", n_best=2, seed=3, top_k=10),
}


def fixed_model(changes, max_sequence_length):
    """A tiny Transformer whose weights are drawn with NumPy (not Keras's
    initializers), normal with standard deviation 0.4: varied outputs."""
    model = Transformer.from_preset(
        "tiny", encoder_vocabulary_size=VOCAB, decoder_vocabulary_size=VOCAB,
        max_sequence_length=max_sequence_length, num_encoder_layers=1, num_decoder_layers=2,
        **changes)
    rng = np.random.default_rng(5)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.4, weight.shape).astype("float32"))
    return model


def sources():
    length = max(len(s) for s in SOURCES)
    return np.array([s + [0] * (length - len(s)) for s in SOURCES], "int32")


def outputs(model_name):
    """``{config name: (ids, scores)}`` as lists, for one model."""
    changes, max_sequence_length, configs = MODELS[model_name]
    model = fixed_model(changes, max_sequence_length)
    results = {}
    for name, config in (CONFIGS if configs == "short" else LONG_CONFIGS).items():
        generation = generate(model, sources(), config)
        results[name] = (np.asarray(generation.ids).tolist(),
                         np.round(np.asarray(generation.scores), 5).tolist())
    return results


@pytest.fixture(scope="module")
def golden():
    with open(GOLDEN_FILE) as f:
        return json.load(f)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_generate_gives_recorded_outputs(golden, model_name):
    for name, (ids, scores) in outputs(model_name).items():
        expected_ids, expected_scores = golden[model_name][name]
        np.testing.assert_array_equal(ids, expected_ids, err_msg=f"{model_name}/{name}")
        np.testing.assert_allclose(scores, expected_scores, atol=2e-4,
                                   err_msg=f"{model_name}/{name}")


if __name__ == "__main__":
    json.dump({name: outputs(name) for name in MODELS}, sys.stdout, indent=None)
    sys.stdout.write("\n")
