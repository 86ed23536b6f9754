"""``tf.data`` steps, written as functions for ``dataset.apply``."""

import tensorflow as tf

from keras_attention.data.tokenizers import END_ID, PAD_ID, START_ID


def tokenize_pairs(source_tokenizer, target_tokenizer, max_source_length, max_target_length):
    """Map batched ``(source_text, target_text)`` to ragged id pairs, truncating
    sources to ``max_source_length`` and targets to ``max_target_length - 1``
    (room for START/END)."""

    def transform(dataset):
        def tokenize(source, target):
            return (
                source_tokenizer.tokenize(source)[:, :max_source_length],
                target_tokenizer.tokenize(target)[:, : max_target_length - 1],
            )

        return dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)

    return transform


def teacher_forcing():
    """Turn ragged ``(source_ids, target_ids)`` batches into padded model inputs
    ``{"encoder_tokens", "decoder_tokens": [START] + target}`` and labels
    ``target + [END]``, padded with PAD = 0."""

    def make_inputs(source, target):
        batch = target.nrows()
        start = tf.fill([batch, 1], START_ID)
        end = tf.fill([batch, 1], END_ID)
        decoder = tf.concat([start, target], axis=1).to_tensor(PAD_ID)
        labels = tf.concat([target, end], axis=1).to_tensor(PAD_ID)
        inputs = {"encoder_tokens": source.to_tensor(PAD_ID), "decoder_tokens": decoder}
        return inputs, labels

    def transform(dataset):
        return dataset.map(make_inputs, num_parallel_calls=tf.data.AUTOTUNE)

    return transform


def text_pair_dataset(
    pairs, source_tokenizer, target_tokenizer, batch_size, max_length, shuffle_seed=None
):
    """A ready-to-fit dataset from an in-memory list of ``(source, target)`` texts."""
    if not pairs:
        raise ValueError("no sentence pairs given; the dataset would be empty.")
    sources, targets = zip(*pairs)
    dataset = tf.data.Dataset.from_tensor_slices((list(sources), list(targets)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(pairs), seed=shuffle_seed, reshuffle_each_iteration=True)
    return (
        dataset.batch(batch_size)
        .apply(tokenize_pairs(source_tokenizer, target_tokenizer, max_length, max_length))
        .apply(teacher_forcing())
        .prefetch(tf.data.AUTOTUNE)
    )
