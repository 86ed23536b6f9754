"""Attention-head importance and pruning (Michel et al., 2019, "Are Sixteen
Heads Really Better than One?").

A head's importance is ``|dL/dxi_h|``, the gradient of the loss with
respect to a gate ``xi_h`` on the head's output, at ``xi = 1``, summed over
batches. The gate scales the head's rows of the output projection, so its
gradient is ``<dL/dW_o[h], W_o[h]>``: one gradient of the loss with respect
to the output kernels gives every head's, with no gate in the model.
Scores are normalized per layer (L2), as in the paper, so layers compare.

``prune_heads`` returns a smaller ``Transformer``: the dropped heads'
slices of the query, key, value and output projections are gone
(``TransformerConfig.attention_heads``), and its outputs equal the
original's with those heads' outputs zeroed.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_attention.models.transformer import Transformer
from keras_attention.training.losses import SequenceCrossEntropy


def attention_layers(model):
    """``{name: MultiHeadAttention}`` of a ``Transformer``, named and ordered
    as ``TransformerConfig.attention_layer_names``."""
    layers = [block.self_attention for block in model.encoder_blocks]
    for block in model.decoder_blocks:
        layers += [block.self_attention, block.cross_attention]
    return dict(zip(model.config.attention_layer_names(), layers))


def prunable_layers(model):
    """``attention_layers`` but, in a copy-attention model, the last
    cross-attention: the copy distribution is the mean of its heads' scores,
    so its heads cannot go without changing what the model copies."""
    layers = attention_layers(model)
    if model.config.copy_attention:
        layers.pop(f"decoder_block_{model.config.num_decoder_layers - 1}/cross_attention")
    return layers


def head_importance(model, batches, normalize=True):
    """``{layer name: (num_heads,) float array}``: each head's importance over
    ``batches`` (``(inputs, labels)`` pairs of the training format, e.g. a
    ``make_training_dataset`` dataset), L2-normalized per layer unless
    ``normalize=False``; the ``prunable_layers`` only."""
    layers = prunable_layers(model)
    kernels = [layer.output_dense.kernel for layer in layers.values()]
    loss_fn = SequenceCrossEntropy(0.0)
    totals = [np.zeros(layer.num_heads) for layer in layers.values()]
    for inputs, labels in batches:
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(inputs, training=False))
        for total, kernel, gradient in zip(totals, kernels, tape.gradient(loss, kernels)):
            # (heads, head_dim, hidden): the gate's gradient per head.
            total += np.abs(np.sum(np.asarray(gradient) * np.asarray(kernel), axis=(1, 2)))
    if normalize:
        totals = [total / max(np.linalg.norm(total), 1e-12) for total in totals]
    return dict(zip(layers, totals))


def least_important(importance, count):
    """``{layer name: [head indices]}``: the ``count`` least important heads
    over all layers, never a layer's last head."""
    ranked = sorted((score, name, head) for name, scores in importance.items()
                    for head, score in enumerate(scores))
    remaining = {name: len(scores) for name, scores in importance.items()}
    available = sum(remaining.values()) - len(remaining)
    if not 0 <= count <= available:
        raise ValueError(
            f"cannot prune {count} heads: the model has {sum(remaining.values())} in "
            f"{len(remaining)} attention layers and keeps at least one per layer "
            f"(at most {available})."
        )
    dropped = {}
    for _, name, head in ranked:
        if sum(len(v) for v in dropped.values()) == count:
            break
        if remaining[name] > 1:
            dropped.setdefault(name, []).append(head)
            remaining[name] -= 1
    return {name: sorted(heads) for name, heads in dropped.items()}


def prune_heads(model, heads):
    """A new ``Transformer`` without ``heads`` (``{layer name: [head
    indices]}``), its other weights copied from ``model``."""
    layers = prunable_layers(model)
    config = model.config
    counts = dict(config.attention_heads)
    kept = {}
    for name, dropped in heads.items():
        if name not in layers:
            raise ValueError(f"no prunable attention layer {name!r}; known: "
                             f"{', '.join(layers)}.")
        total = layers[name].num_heads
        bad = sorted(set(h for h in dropped if not 0 <= h < total))
        if bad:
            raise ValueError(f"{name} has heads 0..{total - 1}, not {bad}.")
        gone = set(dropped)
        kept[name] = [h for h in range(total) if h not in gone]
        if not kept[name]:
            raise ValueError(f"pruning every head of {name} leaves it nothing; keep one.")
        counts[name] = len(kept[name])
    pruned = Transformer(config.replace(attention_heads=counts), dtype=model.dtype_policy.name)
    new_layers = prunable_layers(pruned)
    sliced = {}
    for name, heads_kept in kept.items():
        for old, new in zip(layers[name].projection_variables(),
                            new_layers[name].projection_variables()):
            sliced[id(new)] = _slice_heads(old, heads_kept, new.path)
    for old, new in zip(model.weights, pruned.weights):
        new.assign(sliced.get(id(new), keras.ops.convert_to_numpy(old)))
    return pruned


def _slice_heads(weight, heads, path):
    """The ``heads`` of a projection weight: axis 1 of a query/key/value
    kernel ``(in, heads, dim)``, axis 0 of their biases ``(heads, dim)`` and
    of the output kernel ``(heads, dim, out)``; the output bias stays."""
    value = np.asarray(keras.ops.convert_to_numpy(weight))
    if path.endswith("attention_output/bias"):
        return value
    axis = 1 if path.endswith("kernel") and not path.endswith("attention_output/kernel") else 0
    return np.take(value, heads, axis=axis)


def pair_batches(trained, pairs, batch_size=32):
    """``(inputs, labels)`` batches of ``pairs`` (``(source, target)``
    strings) for ``head_importance``, tokenized as ``trained`` (a
    ``TrainedModel``) does; pairs over the model's length are cut."""
    from keras_attention.data.batching import BatchingConfig, make_training_dataset
    from keras_attention.data.readers import memory_pairs

    limit = trained.model.config.max_sequence_length - 1
    config = BatchingConfig(batch_size=batch_size, max_source_tokens=limit,
                            max_target_tokens=limit - 1, too_long="truncate",
                            bucket_boundaries=(), shuffle_buffer=0)
    return make_training_dataset(memory_pairs(list(pairs)).dataset(), trained.source_tokenizer,
                                 trained.target_tokenizer, config)
