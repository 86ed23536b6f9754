"""Multi-head scaled dot-product attention with masks and a key/value cache."""

import keras
from keras import ops

from keras_attention import validation
from keras_attention.layers.masking import merge_padding_and_attention_mask

# Added to masked logits. Softmax runs in float32, so this is safe under
# mixed_float16 / mixed_bfloat16 policies too.
_MASK_VALUE = -1e9


@keras.saving.register_keras_serializable(package="keras_attention")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention (Vaswani et al., 2017), for self- and cross-attention.

    Weights have the same shapes and order as ``keras.layers.MultiHeadAttention``
    (query, key, value and output kernels with biases), so weights can be copied
    between the two.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to ``key_dim``.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_dim: size of the output; defaults to the query's last dimension.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.

    Call arguments:
        query: ``(batch, query_length, query_dim)``.
        value: ``(batch, key_length, value_dim_in)``; defaults to ``query``.
        key: ``(batch, key_length, key_dim_in)``; defaults to ``value``.
        padding_mask: ``(batch, key_length)``, true for real (non-pad) keys.
        attention_mask: ``(batch, query_length, key_length)``, true = attend.
        use_causal_mask: forbid attention to later positions.
        return_attention_scores: also return the attention probabilities
            ``(batch, num_heads, query_length, key_length)`` (float32).
        cache: a pair ``(keys, values)`` of projected keys ``(batch,
            num_heads, cache_length, key_dim)`` and values ``(batch,
            num_heads, cache_length, value_dim)``, heads first: the layout the
            attention products read without a transpose. With
            ``cache_update_index`` the projections of ``key``/``value`` are
            written into the cache at that index and the query attends over
            the whole cache (incremental decoding; the causal mask is offset
            by the index). Without it, the cache is used as precomputed
            keys/values (see ``compute_key_value_cache``).
        cache_update_index: integer position of ``query[:, 0]`` in the sequence.

    Returns:
        ``output``, then the attention scores if requested, then the updated
        cache (a ``(keys, values)`` pair) if one was given.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = validation.check_positive_int("num_heads", num_heads)
        self.key_dim = validation.check_positive_int("key_dim", key_dim)
        self.value_dim = validation.check_positive_int("value_dim", value_dim, optional=True)
        self.dropout = validation.check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.output_dim = validation.check_positive_int("output_dim", output_dim, optional=True)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self._value_dim = value_dim or key_dim
        self._dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self._inverse_sqrt_key_dim = 1.0 / float(key_dim) ** 0.5

    def _projection(self, name, input_dim, head_dim):
        kernel = self.add_weight(
            name=f"{name}_kernel",
            shape=(input_dim, self.num_heads, head_dim),
            initializer=self.kernel_initializer,
        )
        bias = None
        if self.use_bias:
            bias = self.add_weight(
                name=f"{name}_bias",
                shape=(self.num_heads, head_dim),
                initializer=self.bias_initializer,
            )
        return kernel, bias

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        self._query_kernel, self._query_bias = self._projection(
            "query", query_shape[-1], self.key_dim
        )
        self._key_kernel, self._key_bias = self._projection(
            "key", key_shape[-1], self.key_dim
        )
        self._value_kernel, self._value_bias = self._projection(
            "value", value_shape[-1], self._value_dim
        )
        output_dim = self.output_dim or query_shape[-1]
        self._output_kernel = self.add_weight(
            name="output_kernel",
            shape=(self.num_heads, self._value_dim, output_dim),
            initializer=self.kernel_initializer,
        )
        self._output_bias = None
        if self.use_bias:
            self._output_bias = self.add_weight(
                name="output_bias", shape=(output_dim,), initializer=self.bias_initializer
            )
        self.built = True

    def _project(self, x, kernel, bias):
        # Explicit casts: compute_key_value_cache runs outside __call__'s autocast.
        dtype = self.compute_dtype
        x = ops.einsum("btd,dhk->bthk", ops.cast(x, dtype), ops.cast(kernel, dtype))
        return x if bias is None else x + ops.cast(bias, dtype)

    def compute_key_value_cache(self, value, key=None):
        """Project ``key``/``value`` once: a cache ``(keys, values)``, each
        ``(batch, num_heads, length, dim)``, reusable across decoding steps
        (for cross-attention over the encoder)."""
        key = value if key is None else key
        return (
            _heads_first(self._project(key, self._key_kernel, self._key_bias)),
            _heads_first(self._project(value, self._value_kernel, self._value_bias)),
        )

    def _keys_and_values(self, value, key, cache, cache_update_index):
        """Heads-first keys and values to attend over, and the cache to return."""
        if cache is None:
            return self.compute_key_value_cache(value, key), None
        keys, values = (ops.cast(part, self.compute_dtype) for part in cache)
        if cache_update_index is not None:
            new_keys, new_values = self.compute_key_value_cache(value, key)
            start = [0, 0, cache_update_index, 0]
            keys = ops.slice_update(keys, start, new_keys)
            values = ops.slice_update(values, start, new_values)
        return (keys, values), (keys, values)

    def call(
        self,
        query,
        value=None,
        key=None,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        if cache is not None and cache_update_index is not None and value is None:
            value = query
        if cache is None:
            value = query if value is None else value
        (keys, values), cache = self._keys_and_values(value, key, cache, cache_update_index)
        queries = _heads_first(self._project(query, self._query_kernel, self._query_bias))
        mask = merge_padding_and_attention_mask(
            query,
            keys[:, 0],  # (batch, key_length, key_dim): the mask needs its length
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
            causal_start_index=0 if cache_update_index is None else cache_update_index,
        )
        output, scores = self._attend(queries, keys, values, mask, training)
        results = (output,)
        if return_attention_scores:
            results += (scores,)
        if cache is not None:
            results += (cache,)
        return results[0] if len(results) == 1 else results

    def _attend(self, queries, keys, values, mask, training):
        """Attention of heads-first ``queries`` ``(batch, heads, T, key_dim)``
        over ``keys``/``values`` ``(batch, heads, S, dim)``."""
        queries = queries * ops.cast(self._inverse_sqrt_key_dim, queries.dtype)
        logits = ops.cast(ops.einsum("bhtk,bhsk->bhts", queries, keys), "float32")
        if mask is not None:
            logits = ops.where(ops.expand_dims(mask, 1), logits, _MASK_VALUE)
        scores = ops.softmax(logits, axis=-1)
        weights = self._dropout_layer(ops.cast(scores, self.compute_dtype), training=training)
        context = _heads_last(ops.matmul(weights, values))
        output = ops.einsum("bthk,hkd->btd", context, self._output_kernel)
        if self._output_bias is not None:
            output = output + self._output_bias
        return output, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def _heads_first(x):
    """``(batch, length, heads, dim) -> (batch, heads, length, dim)``."""
    return ops.transpose(x, (0, 2, 1, 3))


def _heads_last(x):
    """``(batch, heads, length, dim) -> (batch, length, heads, dim)``."""
    return ops.transpose(x, (0, 2, 1, 3))
