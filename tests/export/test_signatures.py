import numpy as np
import pytest
import tensorflow as tf

from keras_attention.data import END_ID, PAD_ID, START_ID
from keras_attention.decoding import greedy_search
from keras_attention.export import TextToTextModule

from .conftest import SENTENCES


def test_serve_equals_tokenize_decode_detokenize(text_module):
    model = text_module.model
    source_ids = text_module.source_tokenizer.tokenize(SENTENCES).to_tensor(PAD_ID)
    encoder_output, mask = model.encode(source_ids)
    cache = model.init_cache(encoder_output, mask, 12)
    tokens = greedy_search(
        model.decode_step, tf.fill([len(SENTENCES)], START_ID), cache, 12, END_ID
    )
    expected = text_module.target_tokenizer.detokenize(tokens).numpy()
    served = text_module.serve(tf.constant(SENTENCES))["outputs"].numpy()
    np.testing.assert_array_equal(served, expected)


def test_batched_outputs_equal_one_by_one(text_module):
    batched = text_module.serve(tf.constant(SENTENCES))["outputs"].numpy()
    single = [text_module.serve(tf.constant([s]))["outputs"].numpy()[0] for s in SENTENCES]
    assert list(batched) == single


def test_empty_strings_and_empty_batch_give_defined_results(text_module):
    outputs = text_module.serve(tf.constant(["", ""]))["outputs"].numpy()
    assert outputs.shape == (2,)
    mixed = text_module.serve(tf.constant(["", SENTENCES[0]]))["outputs"].numpy()
    alone = text_module.serve(tf.constant([SENTENCES[0]]))["outputs"].numpy()
    assert mixed[1] == alone[0]
    assert text_module.serve(tf.constant([], dtype=tf.string))["outputs"].shape == (0,)


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


def test_max_output_length_must_fit_the_model(text_module):
    with pytest.raises(ValueError, match="max_output_length must be in"):
        TextToTextModule(
            text_module.model,
            text_module.source_tokenizer,
            text_module.target_tokenizer,
            max_output_length=text_module.model.config.max_sequence_length + 1,
        )
