import re

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data import END_ID, PAD_ID
from keras_attention.decoding import DecodingConfig, generate
from keras_attention.decoding.text import TextGenerator
from keras_attention.export import TextToTextModule

from .conftest import CONFIGS, SENTENCES


def texts(tensor):
    return [t.decode("utf-8") for t in np.asarray(tensor).ravel()]


def test_serve_equals_tokenize_generate_detokenize(text_module):
    model = text_module.model
    source_ids = text_module.source_tokenizer.tokenize(SENTENCES).to_tensor(PAD_ID)
    generation = generate(model, source_ids, DecodingConfig(max_length=11))
    expected = text_module.target_tokenizer.detokenize(generation.ids[:, 0]).numpy()
    served = text_module.serve(tf.constant(SENTENCES))
    np.testing.assert_array_equal(served["outputs"].numpy(), expected)
    np.testing.assert_allclose(served["scores"].numpy(), generation.scores[:, 0], atol=1e-5)
    assert text_module.max_output_length == 12 and text_module.config.max_length == 11


@pytest.mark.parametrize("name", ["greedy", "beam"])
def test_text_signatures_equal_text_generator(trained_date_model, trained_modules, name):
    trained, _ = trained_date_model
    module = trained_modules[name]
    expected = TextGenerator(trained, config=CONFIGS[name]).generate(SENTENCES)
    n_best = module.n_best(tf.constant(SENTENCES))
    assert n_best["outputs"].shape == (len(SENTENCES), CONFIGS[name].n_best)
    assert [texts(row) for row in n_best["outputs"].numpy()] == [
        [h.text for h in hypotheses] for hypotheses in expected
    ]
    np.testing.assert_allclose(
        n_best["scores"].numpy(), [[h.score for h in hs] for hs in expected], atol=1e-4
    )
    served = module.serve(tf.constant(SENTENCES))
    assert texts(served["outputs"]) == [hypotheses[0].text for hypotheses in expected]
    np.testing.assert_allclose(served["scores"].numpy(), n_best["scores"].numpy()[:, 0])
    # The model learned the output format: the best outputs are ISO dates.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", t) for t in texts(served["outputs"]))


def test_ids_signature_equals_generate_and_truncates(trained_date_model, trained_modules):
    trained, _ = trained_date_model
    module = trained_modules["beam"]
    source_ids = trained.source_tokenizer.tokenize(SENTENCES).to_tensor(PAD_ID)
    generation = generate(trained.model, source_ids, CONFIGS["beam"])
    result = module.ids(source_ids)
    np.testing.assert_array_equal(result["ids"].numpy(), generation.ids)
    np.testing.assert_allclose(result["scores"].numpy(), generation.scores, atol=1e-5)
    limit = module.max_input_length
    long_ids = tf.fill([1, limit * 2], 5)
    np.testing.assert_array_equal(module.ids(long_ids)["ids"].numpy(),
                                  module.ids(long_ids[:, :limit])["ids"].numpy())


def test_ids_outside_the_vocabulary_fail_clearly(text_module):
    vocabulary = text_module.model.config.encoder_vocabulary_size
    with pytest.raises(tf.errors.InvalidArgumentError, match="source vocabulary size"):
        text_module.ids(tf.constant([[4, vocabulary]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="source_ids must be >= 0"):
        text_module.ids(tf.constant([[-1]]))


def test_batched_outputs_equal_one_by_one(text_module):
    batched = text_module.serve(tf.constant(SENTENCES))
    for i, sentence in enumerate(SENTENCES):
        single = text_module.serve(tf.constant([sentence]))
        assert single["outputs"].numpy()[0] == batched["outputs"].numpy()[i]
        np.testing.assert_allclose(single["scores"].numpy()[0], batched["scores"].numpy()[i],
                                   atol=1e-5)


def test_empty_strings_give_empty_outputs_whatever_the_batch(text_module):
    long_text = " ".join(["march"] * 30)
    for batch in (["", ""], ["", SENTENCES[0]], [long_text, "", "   "]):
        result = text_module.serve(tf.constant(batch))
        for text, output, score in zip(batch, result["outputs"].numpy(), result["scores"].numpy()):
            if not text.strip():
                assert output == b"" and score == 0.0
    mixed = text_module.serve(tf.constant(["", SENTENCES[0]]))["outputs"].numpy()
    alone = text_module.serve(tf.constant([SENTENCES[0]]))["outputs"].numpy()
    assert mixed[1] == alone[0]
    ids = text_module.ids(tf.constant([[0, 0, 0]]))["ids"].numpy()
    assert ids[0, 0, 0] == END_ID and (ids[0, 0, 1:] == PAD_ID).all()
    empty = text_module.serve(tf.constant([], dtype=tf.string))
    assert empty["outputs"].shape == (0,) and empty["scores"].shape == (0,)


def test_long_input_is_truncated_to_the_model_limit(text_module):
    limit = text_module.max_input_length
    long_text = " ".join(["march"] * (limit * 3))
    ids = text_module.encode_text(tf.constant([long_text]))
    assert ids.shape[1] == limit
    truncated = " ".join(["march"] * limit)
    np.testing.assert_array_equal(
        text_module.serve(tf.constant([long_text]))["outputs"].numpy(),
        text_module.serve(tf.constant([truncated]))["outputs"].numpy(),
    )


def test_invalid_utf8_is_replaced_not_an_error(text_module):
    broken = tf.constant([b"5 apr\xff 1917", b"\xc3\x28 june"])
    replaced = tf.constant(["5 apr\ufffd 1917".encode(), "\ufffd( june".encode()])
    np.testing.assert_array_equal(text_module.encode_text(broken).numpy(),
                                  text_module.encode_text(replaced).numpy())
    np.testing.assert_array_equal(text_module.serve(broken)["outputs"].numpy(),
                                  text_module.serve(replaced)["outputs"].numpy())


def test_batch_above_max_batch_size_fails_with_a_clear_message(text_module):
    module = TextToTextModule(text_module.model, text_module.source_tokenizer,
                              text_module.target_tokenizer, max_batch_size=2)
    assert len(module.serve(tf.constant(SENTENCES[:2]))["outputs"].numpy()) == 2
    for signature, batch in ((module.serve, tf.constant(SENTENCES[:3])),
                             (module.n_best, tf.constant(SENTENCES[:3])),
                             (module.ids, tf.ones([3, 2], tf.int32))):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="batch larger than max_batch_size=2; send smaller batches"):
            signature(batch)


def test_describe_records_the_decoding_and_limits(text_module):
    info = text_module.describe()
    assert info["decoding"] == dict(DecodingConfig(max_length=11).__dict__)
    assert info["max_input_length"] == 16 and info["max_generated_tokens"] == 11
    assert info["max_batch_size"] == 64
    assert sorted(info["signatures"]) == ["alignments", "ids", "n_best", "prefix",
                                          "serving_default", "source_lengths"]
    assert info["alignment_layer"] == 0 and info["decoder_layers"] == 1  # the last


def _make(text_module, **kwargs):
    return TextToTextModule(text_module.model, text_module.source_tokenizer,
                            text_module.target_tokenizer, **kwargs)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"max_output_length": 17}, ValueError, r"max_output_length must be in \[2, 16\]"),
    ({"config": DecodingConfig(strategy="sample", seed=1)}, ValueError,
     "strategy 'sample' cannot be exported: exports must be deterministic"),
    ({"max_output_length": 8, "config": DecodingConfig(max_length=5)}, ValueError,
     "either max_output_length or config.max_length"),
    ({"config": DecodingConfig(max_length=16)}, ValueError, "max_length=16 exceeds"),
    ({"max_batch_size": 0}, ValueError, "max_batch_size must be a positive integer"),
    ({"jit_compile": True, "length_bucket": 0}, ValueError,
     "length_bucket must be a positive integer"),
    ({"config": {"strategy": "beam"}}, TypeError, "config must be a DecodingConfig"),
])
def test_bad_arguments_are_one_line_errors(text_module, kwargs, error, message):
    with pytest.raises(error, match=message) as info:
        _make(text_module, **kwargs)
    assert "\n" not in str(info.value)


# XLA inside the graph (export --xla): the search is compiled once per shape
# bucket; outputs equal the plain graph's.

def test_xla_buckets_pad_rows_to_a_power_of_two_and_length_to_the_bucket(text_module):
    module = _make(text_module, jit_compile=True, max_batch_size=6, length_bucket=5)
    ids = tf.constant([[4, 5, 0], [6, 7, 8], [9, 0, 0]])
    bucketed = module._bucketed(ids).numpy()
    # 3 rows -> 4 (the last repeated); 3 tokens -> 5 (PAD after).
    np.testing.assert_array_equal(bucketed, [[4, 5, 0, 0, 0], [6, 7, 8, 0, 0],
                                             [9, 0, 0, 0, 0], [9, 0, 0, 0, 0]])
    # Rows stop at max_batch_size, lengths at the model's limit (16).
    assert module._bucketed(tf.ones([5, 14], tf.int32)).shape == (6, 15)
    assert module._bucketed(tf.ones([5, 16], tf.int32)).shape == (6, 16)
    assert module._bucketed(tf.ones([1, 1], tf.int32)).shape == (1, 5)
    assert module._bucketed(tf.ones([0, 2], tf.int32)).shape == (0, 5)


@pytest.mark.parametrize("name", ["greedy", "beam"])
def test_xla_module_equals_the_plain_graph(trained_date_model, trained_modules, name):
    trained, _ = trained_date_model
    plain = trained_modules[name]
    compiled = TextToTextModule(trained.model, trained.source_tokenizer,
                                trained.target_tokenizer, config=CONFIGS[name],
                                max_batch_size=plain.max_batch_size, jit_compile=True)
    inputs = tf.constant(SENTENCES[:3] + [""])  # 4 rows: one shape bucket
    expected, result = plain.n_best(inputs), compiled.n_best(inputs)
    np.testing.assert_array_equal(result["outputs"].numpy(), expected["outputs"].numpy())
    np.testing.assert_allclose(result["scores"].numpy(), expected["scores"].numpy(), atol=1e-4)
    assert texts(compiled.serve(inputs)["outputs"])[3] == ""
    empty = compiled.serve(tf.constant([], dtype=tf.string))
    assert empty["outputs"].shape == (0,)
    assert compiled.describe()["xla"] is True and plain.describe()["xla"] is False
