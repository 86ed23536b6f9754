"""Source-target token alignments from the cross-attention.

Output token ``j`` is aligned to the source token its prediction attended
to most: the argmax over real source positions of one decoder layer's
cross-attention at decoder position ``j``, averaged over heads (Garg et al.,
2019 read alignments this way; training them in with guided alignment is
not done here). Indices are 0-based token positions as the tokenizers cut
the texts; END gets no entry, so every output token has exactly one.
"""

import numpy as np

from keras_attention.constants import END_ID, PAD_ID, START_ID
from keras_attention.data.buckets import padded_ids


def alignments(model, source_ids, target_ids, layer=-1, attention_fn=None):
    """``[[(i, j), ...] per row]``: for each row's target tokens
    ``target_ids`` (lists of ids without START/END), the source position
    ``i`` each target position ``j`` attends to most in decoder ``layer``
    (``-1``: the last) of ``model`` (a ``Transformer``). ``source_ids``:
    lists of ids. ``attention_fn``: ``model.attention_scores`` (the default)
    or a traced copy of it (``tf.function``: a TextGenerator keeps one)."""
    check_layer(model, layer)
    source = padded_ids(source_ids, max(1, max(len(row) for row in source_ids)))
    width = max(len(row) for row in target_ids) + 1
    decoder = padded_ids([[START_ID] + list(row) for row in target_ids], width)
    scores = (attention_fn or model.attention_scores)(source, decoder)
    cross = scores["cross"][layer]
    weights = np.asarray(cross).mean(axis=1)  # (batch, target, source)
    weights = np.where((source != PAD_ID)[:, None, :], weights, -np.inf)
    best = weights.argmax(axis=-1)
    return [[(int(best[row, j]), j) for j in range(len(target))]
            for row, target in enumerate(target_ids)]


def check_layer(model, layer):
    """A one-line ``ValueError`` unless ``model`` has decoder ``layer``."""
    layers = model.config.num_decoder_layers
    if not -layers <= layer < layers:
        raise ValueError(f"the model has decoder layers 0..{layers - 1} (or -1 for the last); "
                         f"got --alignment-layer {layer}.")


def pharaoh(pairs):
    """``i-j`` pairs joined by spaces (the Pharaoh format of fast_align/Moses)."""
    return " ".join(f"{i}-{j}" for i, j in pairs)


def target_tokens(ids):
    """``ids`` up to (without) the first END, PAD and START dropped."""
    out = []
    for token in ids:
        if token == END_ID:
            break
        if token not in (PAD_ID, START_ID):
            out.append(int(token))
    return out
