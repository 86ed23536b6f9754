"""TextGenerator: strings in, n-best strings out; equal to eager ``generate``."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data import WordTokenizer, date_pairs
from keras_attention.decoding.generate import DecodingConfig, generate
from keras_attention.decoding import text as text_module
from keras_attention.decoding.text import Hypothesis, TextGenerator
from keras_attention.models import TrainedModel

# Held-out dates (the fixture trains on date_pairs(3000, seed=0)), lengths 3-9 words.
TEXTS = [source for source, _ in date_pairs(12, seed=123)]


@pytest.fixture(scope="module")
def generator(trained_date_model):
    return TextGenerator(trained_date_model[0])


def _eager_text(trained, text, config=DecodingConfig()):
    """Eager ``generate`` on one unpadded sentence, detokenized."""
    ids = trained.source_tokenizer.tokenize([text]).to_tensor()
    generation = generate(trained.model, ids, config)
    return trained.target_tokenizer.detokenize(np.asarray(generation.ids)[:, 0]).numpy()[0].decode()


def test_best_equals_eager_generate_sentence_by_sentence(trained_date_model, generator):
    trained, _ = trained_date_model
    outputs = generator.best(TEXTS, batch_size=5)
    # Eager decoding is slow: compare the shortest and the longest inputs.
    chosen = sorted(range(len(TEXTS)), key=lambda i: len(TEXTS[i].split()))
    for i in chosen[:2] + chosen[-2:]:
        assert outputs[i] == _eager_text(trained, TEXTS[i])
    # The model is trained: most held-out dates come out right.
    references = [target for _, target in date_pairs(12, seed=123)]
    assert sum(o == r for o, r in zip(outputs, references)) >= 9


def test_traced_batch_function_equals_eager_generate(trained_date_model, generator):
    trained, _ = trained_date_model
    ids = [generator.tokenize(TEXTS[:3])[i] for i in range(3)]
    batch = generator._padded_batch(ids, 4)
    assert batch.shape == (4, 16)  # length rounded up to the bucket, rows up to batch_size
    np.testing.assert_array_equal(batch[3], batch[2])  # filler rows repeat the last one
    traced_ids, traced_scores = generator._generate_ids(tf.constant(batch))
    eager = generate(trained.model, batch, DecodingConfig())
    np.testing.assert_array_equal(np.asarray(traced_ids), np.asarray(eager.ids))
    np.testing.assert_allclose(np.asarray(traced_scores), np.asarray(eager.scores), atol=1e-5)


@pytest.mark.parametrize("config", [DecodingConfig(),
                                    DecodingConfig(strategy="beam", beam_size=3, n_best=2)])
def test_xla_compiled_decoding_equals_the_graph(trained_date_model, config):
    # float32 model: XLA's rounding differs in the last bits only, so the
    # ids are the same and the scores equal to float32 precision.
    trained, _ = trained_date_model
    graph = TextGenerator(trained, config=config).generate(TEXTS, batch_size=5)
    compiled = TextGenerator(trained, config=config, jit_compile=True)
    assert compiled.jit_compile
    xla = compiled.generate(TEXTS, batch_size=5)
    assert [[h.text for h in n_best] for n_best in xla] == [
        [h.text for h in n_best] for n_best in graph]
    np.testing.assert_allclose([[h.score for h in n_best] for n_best in xla],
                               [[h.score for h in n_best] for n_best in graph], atol=1e-4)


def test_order_is_restored_whatever_the_batching(generator):
    calls = []
    one_batch = generator.generate(TEXTS, batch_size=32)
    small_batches = generator.generate(TEXTS, batch_size=5, on_batch=calls.append)
    assert calls == [5, 5, 2]
    reversed_ = generator.generate(TEXTS[::-1], batch_size=5)[::-1]
    assert all(len(h) == 1 and isinstance(h[0], Hypothesis) for h in one_batch)
    expected = [h[0] for h in one_batch]
    for other in (small_batches, reversed_):
        assert [h[0].text for h in other] == [h.text for h in expected]
        # Other batch shapes change float rounding only.
        np.testing.assert_allclose([h[0].score for h in other], [h.score for h in expected],
                                   atol=1e-5)


def test_stream_yields_in_input_order_as_soon_as_decoded(generator, monkeypatch):
    # Sorted by length within windows of 2 batches of 3: each window's outputs
    # come out, in input order, before the next window is decoded.
    expected = generator.best(TEXTS, batch_size=3)  # one window: all 12 sorted
    monkeypatch.setattr(text_module, "SORT_WINDOW", 2)
    decoded, yielded, streamed = [], [], []
    for ready in generator.stream(TEXTS, batch_size=3, on_batch=decoded.append):
        streamed.extend(ready)
        yielded.append((sum(decoded), len(streamed)))
    assert decoded == [3] * 4
    assert [h[0].text for h in streamed] == expected
    assert yielded[-1] == (12, 12) and (6, 6) in yielded  # the first window, at its end
    assert all(done - kept < 6 for done, kept in yielded)  # never a whole window behind


def test_batches_are_traced_once_per_bucket(trained_date_model):
    generator = TextGenerator(trained_date_model[0])
    generator.best(TEXTS[:4], batch_size=4)
    generator.best(TEXTS[4:8], batch_size=4)  # same bucket (<= 16 tokens), same rows
    assert generator._generate_ids.experimental_get_tracing_count() == 1
    long_text = " ".join(TEXTS[:3])  # > 16 words: the next bucket
    assert len(generator.tokenize([long_text])[0]) > 16
    generator.best([long_text], batch_size=4)
    assert generator._generate_ids.experimental_get_tracing_count() == 2


def test_score_is_the_sum_of_token_log_probabilities(trained_date_model, generator):
    trained, _ = trained_date_model
    text = TEXTS[0]
    hypothesis = generator.generate([text])[0][0]
    source = trained.source_tokenizer.tokenize([text]).to_tensor().numpy()
    target = trained.target_tokenizer.tokenize([hypothesis.text]).numpy()[0].tolist() + [2]
    logits = trained.model({"encoder_tokens": source,
                            "decoder_tokens": np.asarray([[1] + target[:-1]], "int32")})
    log_probs = np.asarray(keras.ops.log_softmax(logits, axis=-1))[0]
    expected = sum(log_probs[i, t] for i, t in enumerate(target))
    assert hypothesis.score == pytest.approx(expected, abs=1e-4)


def test_beam_n_best_lists_are_sorted_and_equal_eager(trained_date_model):
    trained, _ = trained_date_model
    config = DecodingConfig(strategy="beam", beam_size=3, n_best=3)
    results = TextGenerator(trained, config=config).generate(TEXTS[:4], batch_size=4)
    for hypotheses in results:
        assert len(hypotheses) == 3
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
    assert results[0][0].text == _eager_text(trained, TEXTS[0], config)


def test_truncate_cuts_long_inputs_to_the_model_limit(trained_date_model):
    trained, _ = trained_date_model
    limit = trained.model.config.max_sequence_length
    words = (TEXTS[0] + " ") * 10
    with pytest.raises(ValueError) as error:
        TextGenerator(trained).best(["may first two thousand", words])
    count = len(trained.source_tokenizer.tokenize([words])[0])
    assert str(error.value) == (
        f"line 2 has {count} tokens, more than the model's limit of {limit} (1 input(s) "
        "too long); split it or truncate it (--truncate, TextGenerator(truncate=True))."
    )
    generator = TextGenerator(trained, truncate=True)
    cut = " ".join(words.split()[:limit])
    assert generator.tokenize([words])[0] == generator.tokenize([cut])[0]
    assert generator.best([words]) == generator.best([cut])


@pytest.mark.parametrize("texts, line", [(["may first", ""], 2), (["  \t", "x"], 1)])
def test_empty_inputs_name_the_line(generator, texts, line):
    with pytest.raises(ValueError) as error:
        generator.best(texts)
    assert str(error.value) == f"line {line} is empty; remove empty lines, one input per line."


def test_non_string_input_is_rejected(generator):
    with pytest.raises(TypeError, match="line 2 is a bytes, not a string"):
        generator.best(["may first", b"june"])


def test_bad_batch_size(generator):
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        generator.generate(TEXTS, batch_size=0)


def test_vocabulary_mismatch_uses_check_vocabularies(trained_date_model):
    trained, _ = trained_date_model
    other = WordTokenizer.build(["just a few words"])
    with pytest.raises(ValueError) as error:
        TextGenerator(trained.model, other, trained.target_tokenizer)
    assert str(error.value) == (
        f"source vocabulary has {other.vocabulary_size} tokens but the model expects "
        f"{trained.model.config.encoder_vocabulary_size}; use the vocabulary the model was "
        "trained with."
    )


def test_bare_model_with_tokenizers_equals_trained_model(trained_date_model, generator):
    trained, _ = trained_date_model
    bare = TextGenerator(trained.model, trained.source_tokenizer, trained.target_tokenizer)
    assert bare.best(TEXTS[:3]) == generator.best(TEXTS[:3])


def test_constructor_errors(trained_date_model):
    trained, _ = trained_date_model
    with pytest.raises(ValueError, match="a TrainedModel brings its own tokenizers"):
        TextGenerator(trained, trained.source_tokenizer, trained.target_tokenizer)
    with pytest.raises(ValueError, match="a bare model needs source_tokenizer and target"):
        TextGenerator(trained.model, trained.source_tokenizer)
    with pytest.raises(TypeError, match="config must be a DecodingConfig, got dict"):
        TextGenerator(trained, config={"strategy": "beam"})
    with pytest.raises(ValueError, match="length_bucket must be a positive integer"):
        TextGenerator(trained, length_bucket=0)
    assert isinstance(trained, TrainedModel)


def test_max_length_above_the_model_limit_fails_before_decoding(trained_date_model):
    trained, _ = trained_date_model
    with pytest.raises(ValueError, match=r"^max_length=32 exceeds what the model can decode "
                                         r"\(31 = max_sequence_length - 1\)"):
        TextGenerator(trained, config=DecodingConfig(max_length=32))


def test_sampling_without_seed_draws_one_per_generator(trained_date_model):
    trained, _ = trained_date_model
    generator = TextGenerator(trained, config=DecodingConfig(strategy="sample"))
    assert isinstance(generator.config.seed, int)
    seeded = DecodingConfig(strategy="sample", seed=7, n_best=2)
    first = TextGenerator(trained, config=seeded).generate(TEXTS[:2])
    again = TextGenerator(trained, config=seeded).generate(TEXTS[:2])
    assert first == again and all(len(h) == 2 for h in first)


def test_small_inputs_are_padded_to_a_power_of_two_rows(trained_date_model, monkeypatch):
    generator = TextGenerator(trained_date_model[0])
    shapes = []
    original = generator._padded_batch

    def recording(rows, batch_size):
        batch = original(rows, batch_size)
        shapes.append(batch.shape)
        return batch

    monkeypatch.setattr(generator, "_padded_batch", recording)
    generator.best(TEXTS[:3], batch_size=32)
    generator.best(TEXTS, batch_size=8)
    assert shapes == [(4, 16), (8, 16), (8, 16)]


def test_no_retracing_warning_for_the_bucket_shapes(trained_date_model):
    # 12 shapes in 12 calls (rows 1 ... 32, lengths 16 and 32): TensorFlow
    # warns about "excessive retracing" after 5, which is the design here.
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    tf.get_logger().addHandler(handler)
    try:
        generator = TextGenerator(trained_date_model[0], config=DecodingConfig(max_length=2))
        long_text = " ".join(["may first two thousand"] * 5)  # 20 words: the 32 bucket
        for rows in (1, 2, 4, 8, 16, 32):
            generator.generate(TEXTS[:1] * rows, batch_size=rows)
            generator.generate([long_text] * rows, batch_size=rows)
    finally:
        tf.get_logger().removeHandler(handler)
    assert generator._generate_ids.experimental_get_tracing_count() == 12
    assert not [message for message in records if "retracing" in message]
