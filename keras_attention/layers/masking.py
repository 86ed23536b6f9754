"""Attention masks: padding, explicit and causal masks merged in one place.

All masks are boolean with ``True`` meaning "may attend". The merged mask has
shape ``(batch, query_length, key_length)``.
"""

from keras import ops
from keras.src.backend import get_keras_mask, set_keras_mask


def implicit_mask(x):
    """The Keras mask ``x`` carries (``Embedding(mask_zero=True)``,
    ``Masking``, a layer that propagated one), or ``None``."""
    return None if x is None else get_keras_mask(x)


def attach_mask(x, mask):
    """Attach ``mask`` to ``x`` as its Keras mask (for layers downstream)."""
    if mask is not None:
        set_keras_mask(x, mask)
    return x


def all_of(*masks):
    """Logical AND of the masks that are not ``None`` (``None`` if none is)."""
    present = [ops.cast(m, "bool") for m in masks if m is not None]
    if not present:
        return None
    merged = present[0]
    for mask in present[1:]:
        merged = ops.logical_and(merged, mask)
    return merged


def _check_rank_and_shape(name, mask, expected):
    """Reject a mask whose rank or known dimensions disagree with ``expected``."""
    shape = tuple(mask.shape)
    if len(shape) != len(expected) or any(
        got is not None and want is not None and got != want
        for got, want in zip(shape, expected)
    ):
        side = "query" if name == "query_mask" else "key"
        names = {2: f"(batch, {side}_length)", 3: "(batch, query_length, key_length)"}
        raise ValueError(
            f"{name} must have shape {names[len(expected)]}={tuple(expected)}, "
            f"got {shape}; build it from the {side} tokens (token != 0)."
        )


def _static_dim(x, axis):
    dim = x.shape[axis]
    return dim if isinstance(dim, int) else None


def compute_causal_mask(batch_size, query_length, key_length, start_index=0):
    """Boolean mask ``(batch, query_length, key_length)`` letting query ``i``
    (absolute position ``start_index + i``) see keys ``0 .. start_index + i``."""
    query_positions = ops.arange(query_length) + start_index
    key_positions = ops.arange(key_length)
    mask = ops.expand_dims(query_positions, -1) >= ops.expand_dims(key_positions, 0)
    return ops.broadcast_to(
        ops.expand_dims(mask, 0), (batch_size, query_length, key_length)
    )


def merge_padding_and_attention_mask(
    query,
    key,
    padding_mask=None,
    attention_mask=None,
    use_causal_mask=False,
    causal_start_index=0,
    query_mask=None,
):
    """Combine the masks that apply to one attention call.

    Args:
        query: tensor ``(batch, query_length, ...)``.
        key: tensor ``(batch, key_length, ...)``.
        padding_mask: ``(batch, key_length)``; ``True``/1 marks real key tokens.
        attention_mask: ``(batch, query_length, key_length)``; ``True``/1 = attend.
        use_causal_mask: forbid attending to later positions.
        causal_start_index: absolute position of the first query (cached decoding).
        query_mask: ``(batch, query_length)``; a ``False`` query attends to
            nothing (its row is fully masked, as in ``keras.layers.MultiHeadAttention``).

    Returns:
        A boolean ``(batch, query_length, key_length)`` tensor, or ``None`` when
        no mask applies.
    """
    batch, query_length, key_length = (
        ops.shape(query)[0],
        ops.shape(query)[1],
        ops.shape(key)[1],
    )
    static = (_static_dim(query, 0), _static_dim(query, 1), _static_dim(key, 1))
    mask = None
    if padding_mask is not None:
        _check_rank_and_shape("padding_mask", padding_mask, (static[0], static[2]))
        padding_mask = ops.cast(padding_mask, "bool")
        mask = ops.broadcast_to(
            ops.expand_dims(padding_mask, 1), (batch, query_length, key_length)
        )
    if attention_mask is not None:
        _check_rank_and_shape("attention_mask", attention_mask, static)
        attention_mask = ops.cast(attention_mask, "bool")
        mask = attention_mask if mask is None else ops.logical_and(mask, attention_mask)
    if query_mask is not None:
        _check_rank_and_shape("query_mask", query_mask, (static[0], static[1]))
        rows = ops.broadcast_to(
            ops.expand_dims(ops.cast(query_mask, "bool"), -1), (batch, query_length, key_length)
        )
        mask = rows if mask is None else ops.logical_and(mask, rows)
    if use_causal_mask:
        causal = compute_causal_mask(batch, query_length, key_length, causal_start_index)
        mask = causal if mask is None else ops.logical_and(mask, causal)
    return mask
