"""Target-prefix decoding: ``generate(..., prefix_ids=...)`` continues each
output from its prefix, in every strategy."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from decoding.test_golden import fixed_model, sources

from keras_attention.constants import END_ID, PAD_ID, START_ID
from keras_attention.decoding import DecodingConfig, generate
from keras_attention.decoding.cache import uncached_steps

CONFIGS = {
    "greedy": DecodingConfig(),
    "beam": DecodingConfig(strategy="beam", beam_size=3, n_best=2),
    "sample": DecodingConfig(strategy="sample", n_best=2, seed=3, top_k=10),
}


@pytest.fixture(scope="module")
def model():
    return fixed_model({}, 14)


def _prefixes(rows):
    """Prefixes of 3, 1, 0 (none), 2 and 4 tokens for the 5 sources."""
    prefixes = [[7, 7, 9], [12], [], [5, 21], [3, 3, 3, 3]][:rows]
    width = max(len(p) for p in prefixes)
    return np.array([p + [PAD_ID] * (width - len(p)) for p in prefixes], "int32")


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_output_starts_with_its_prefix(model, name):
    source = sources()
    prefix = _prefixes(len(source))
    generation = generate(model, source, CONFIGS[name], prefix_ids=prefix)
    ids = _np(generation.ids)
    free = generate(model, source, CONFIGS[name])
    for row, wanted in enumerate(prefix):
        wanted = [t for t in wanted if t != PAD_ID]
        for hypothesis in ids[row]:
            assert list(hypothesis[:len(wanted)]) == wanted
        if not wanted:  # no prefix: decodes as without one
            np.testing.assert_array_equal(ids[row], _np(free.ids)[row])
            np.testing.assert_allclose(_np(generation.scores)[row], _np(free.scores)[row],
                                       atol=1e-5)
    assert np.all(np.isfinite(_np(generation.scores)))


def test_the_free_outputs_own_beginning_changes_nothing(model):
    source = sources()
    free = generate(model, source)
    ids = _np(free.ids)[:, 0]
    prefix = ids[:, :2].copy()
    prefix[ids[:, :2] == END_ID] = PAD_ID  # a prefix holds no END
    forced = generate(model, source, prefix_ids=prefix)
    np.testing.assert_array_equal(_np(forced.ids), _np(free.ids))
    np.testing.assert_allclose(_np(forced.scores), _np(free.scores), atol=1e-5)


def test_the_score_is_the_models_log_probability_of_the_whole_output(model):
    source = sources()
    generation = generate(model, source, prefix_ids=_prefixes(len(source)))
    ids = _np(generation.ids)[:, 0]
    for row in range(len(source)):
        length = list(ids[row]).index(END_ID) + 1 if END_ID in ids[row] else len(ids[row])
        target = ids[row, :length]
        decoder = np.concatenate([[START_ID], target[:-1]])[None].astype("int32")
        logits = model({"encoder_tokens": source[row:row + 1], "decoder_tokens": decoder})
        log_probs = _np(keras.ops.log_softmax(logits, axis=-1))[0]
        expected = log_probs[np.arange(length), target].sum()
        assert _np(generation.scores)[row, 0] == pytest.approx(expected, abs=1e-3)


def test_a_prefix_the_controls_would_forbid_is_kept(model):
    """A prefix repeating a bigram under no_repeat_ngram_size=2 stays as given."""
    source = sources()[:2]
    prefix = np.array([[7, 8, 7, 8], [4, 4, 4, 0]], "int32")
    config = DecodingConfig(no_repeat_ngram_size=2, strategy="beam", beam_size=2)
    ids = _np(generate(model, source, config, prefix_ids=prefix).ids)
    assert list(ids[0, 0, :4]) == [7, 8, 7, 8] and list(ids[1, 0, :3]) == [4, 4, 4]


def test_cached_equals_uncached_and_graph_equals_eager(model):
    source = sources()
    prefix = _prefixes(len(source))
    config = CONFIGS["beam"]
    eager = generate(model, source, config, prefix_ids=prefix)
    uncached = generate(model, source, config, steps=uncached_steps(model), prefix_ids=prefix)
    np.testing.assert_array_equal(_np(eager.ids), _np(uncached.ids))
    traced = tf.function(lambda s, p: tuple(vars(generate(model, s, config, prefix_ids=p))
                                            .values()))(source, prefix)
    np.testing.assert_array_equal(_np(traced[0]), _np(eager.ids))


def test_bad_prefixes_are_one_line_errors(model):
    source = sources()
    with pytest.raises(ValueError, match=r"prefix_ids must be \(batch, prefix_length\)"):
        generate(model, source, prefix_ids=np.array([1, 2], "int32"))
    with pytest.raises(ValueError, match="prefix_ids has 2 rows for 5 sources"):
        generate(model, source, prefix_ids=np.ones((2, 1), "int32"))
    with pytest.raises(ValueError, match="a prefix of 14 tokens leaves no room in 13 output"):
        generate(model, source, prefix_ids=np.ones((5, 14), "int32"))


def test_text_generator_continues_each_prefix(trained_date_model):
    from keras_attention.data import date_pairs
    from keras_attention.decoding.text import TextGenerator

    trained, _ = trained_date_model
    texts = [source for source, _ in date_pairs(6, seed=41)]
    generator = TextGenerator(trained)
    free = generator.best(texts, batch_size=4)
    prefixes = ["19", "", "2", "1850-1", free[4][:4], ""]
    outputs = generator.best(texts, batch_size=4, prefixes=prefixes)
    for output, prefix, unconstrained in zip(outputs, prefixes, free):
        assert output.startswith(prefix)
        if not prefix or unconstrained.startswith(prefix):
            assert output == unconstrained
    beam = TextGenerator(trained, config=DecodingConfig(strategy="beam", beam_size=3, n_best=2))
    for hypotheses, prefix in zip(beam.generate(texts, prefixes=prefixes), prefixes):
        assert all(h.text.startswith(prefix) for h in hypotheses)
    with pytest.raises(ValueError, match="2 prefixes for 6 inputs"):
        generator.best(texts, prefixes=["1", "2"])
    with pytest.raises(ValueError, match=r"prefix 1 has \d+ tokens, but outputs hold at most"):
        generator.best(texts[:1], prefixes=["1" * 40])


def test_the_controls_benchmark_times_both_paths_in_one_run():
    from benchmark_scripts import load_benchmark

    result = load_benchmark("translation_controls").run(
        batch_size=2, length=3, prefix_length=2, repeats=1, preset="tiny", vocabulary_size=200)
    for name, control in (("greedy", "prefix"), ("beam4", "prefix"), ("greedy", "ensemble2"),
                          ("beam4", "ensemble2"), ("beam4", "constraints")):
        ratio = result[f"{name}_{control}_sentences_per_s"] / result[f"{name}_sentences_per_s"]
        assert result[f"{name}_{control}_over_plain"] == pytest.approx(ratio, abs=1e-3)
    assert 0 < result["greedy_with_alignments_over_plain"] < 1


def test_the_quality_benchmark_takes_each_references_rarest_noun():
    from benchmark_scripts import load_benchmark

    rarest = load_benchmark("controls_quality").rarest_nouns
    train = ["Ein Hund läuft.", "Ein Hund und ein Ball.", "Der Ball ist rot.", "Ein Mann."]
    references = ["Ein Hund jagt einen Ball.", "Ein Mann spielt.", "ein kleiner hund.",
                  "Eine Frau und ein Hund."]
    # "Ein" starts the sentence; of Hund (2) and Ball (2) the tie goes to the first
    # alphabetically; unknown words (Frau: 0) are the rarest; no capitalized word: "".
    assert rarest(references, train) == ["Ball", "Mann", "", "Frau"]
