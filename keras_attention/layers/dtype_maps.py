"""Quantized sublayers in a layer's config, so a quantized model loads.

``model.quantize("int8")`` changes the dtype policy of the ``Dense``,
``EinsumDense`` and ``Embedding`` layers inside our layers, but a layer's
config records only its own policy: a saved quantized model would be rebuilt
in float and fail to load its int8 weights (``keras.layers.MultiHeadAttention``
in a functional model fails so). As keras-hub's backbones do, our layers
write a ``keras.dtype_policies.DTypePolicyMap`` instead, keyed by the paths of
the quantized sublayers; they pass their policy (the map) on to their
sublayers, which look up their own path in it when rebuilt.
"""

import keras

DTypePolicyMap = keras.dtype_policies.DTypePolicyMap


def own_policy(layer):
    """``layer``'s dtype policy, resolved from a map by its path."""
    policy = layer.dtype_policy
    if isinstance(policy, DTypePolicyMap):
        return policy[layer.path] if layer.path else policy.default_policy
    return policy


def dtype_config(layer):
    """The serialized ``dtype`` for ``layer.get_config()``: its policy, or a
    map that also names each quantized sublayer's policy by path."""
    if isinstance(layer.dtype_policy, DTypePolicyMap):
        return keras.dtype_policies.serialize(layer.dtype_policy)
    quantized = {
        sublayer.path: own_policy(sublayer)
        for sublayer in layer._flatten_layers(include_self=False)
        if sublayer.path and sublayer.quantization_mode is not None
    }
    if not quantized:
        return keras.dtype_policies.serialize(layer.dtype_policy)
    return keras.dtype_policies.serialize(
        DTypePolicyMap(default_policy=layer.dtype_policy, policy_map=quantized)
    )


def sublayer_dtype(layer, name, default):
    """The ``dtype`` for sublayer ``name`` of ``layer`` that would otherwise
    get ``default`` (e.g. float32 logits under a mixed policy): ``default``,
    unless ``layer``'s policy map names that sublayer (quantized)."""
    policy = layer.dtype_policy
    if isinstance(policy, DTypePolicyMap) and f"{layer.name}/{name}" in policy:
        return policy
    return default
