"""A ``keras.testing.TestCase.run_layer_test``-style helper for this package's layers.

``run_layer_test`` builds a layer, checks its output shape, round-trips it through
``get_config``/``from_config`` and through a ``.keras`` file (inside a small
functional model) with identical outputs, checks that ``get_config`` covers every
``__init__`` argument, and runs it under the ``mixed_bfloat16`` policy.
"""

import inspect
import json

import keras
import numpy as np


def _as_tuple(inputs):
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _flatten(outputs):
    return [np.asarray(keras.ops.convert_to_numpy(x)) for x in keras.tree.flatten(outputs)]


def _symbolic_input(array, name):
    array = np.asarray(array)
    return keras.Input(shape=array.shape[1:], batch_size=None, dtype=str(array.dtype), name=name)


def init_parameter_names(layer_cls):
    """Names of ``layer_cls.__init__``'s parameters, without ``self``/``*args``/``**kwargs``."""
    parameters = inspect.signature(layer_cls.__init__).parameters.values()
    return {
        p.name
        for p in parameters
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def assert_config_covers_init(layer):
    """``get_config()`` must hold every ``__init__`` argument (so ``from_config`` works)."""
    missing = init_parameter_names(type(layer)) - set(layer.get_config())
    assert not missing, f"{type(layer).__name__}.get_config() lacks {sorted(missing)}"


def assert_outputs_close(actual, expected, atol=1e-6, rtol=1e-6):
    actual, expected = _flatten(actual), _flatten(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol)


def _check_shapes(outputs, expected_output_shape):
    flat = keras.tree.flatten(outputs)
    if isinstance(expected_output_shape, list):
        expected = [tuple(s) for s in expected_output_shape]
    else:
        expected = [tuple(expected_output_shape)]
    got = [tuple(x.shape) for x in flat]
    assert got[: len(expected)] == expected, f"output shapes {got} != {expected}"


def run_layer_test(
    layer_cls,
    init_kwargs,
    inputs,
    expected_output_shape,
    call_kwargs=None,
    tensor_call_kwargs=None,
    tmp_path=None,
    expected_output_dtype="float32",
    run_mixed_precision=True,
    atol=1e-6,
):
    """Exercise one layer like ``keras.testing.TestCase.run_layer_test``.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        inputs: one array or a tuple of arrays, passed positionally to ``call``.
        expected_output_shape: shape of the (first) output, or a list of shapes.
        call_kwargs: non-tensor keyword arguments of ``call``.
        tensor_call_kwargs: tensor keyword arguments of ``call`` (e.g. masks);
            they become inputs of the model saved to ``.keras``.
        tmp_path: a folder for the ``.keras`` round trip (pytest's ``tmp_path``).
        expected_output_dtype: dtype of the float32 run's first output.
        run_mixed_precision: also run under ``mixed_bfloat16``.
        atol: tolerance of the round-trip comparisons.

    Returns:
        The built layer.
    """
    call_kwargs = dict(call_kwargs or {})
    tensor_call_kwargs = dict(tensor_call_kwargs or {})
    inputs = _as_tuple(inputs)

    def call(layer):
        return layer(*inputs, **tensor_call_kwargs, **call_kwargs)

    # 1. Eager call: output shape and dtype.
    layer = layer_cls(**init_kwargs)
    outputs = call(layer)
    _check_shapes(outputs, expected_output_shape)
    first = keras.tree.flatten(outputs)[0]
    assert keras.backend.standardize_dtype(first.dtype) == expected_output_dtype
    assert np.all(np.isfinite(_flatten(outputs)[0]))
    assert layer.built
    assert len(layer.weights) == len(layer.trainable_weights) + len(layer.non_trainable_weights)

    # 2. get_config covers __init__ and is JSON serializable; from_config gives
    #    the same layer (same config, same outputs with the same weights).
    assert_config_covers_init(layer)
    config = layer.get_config()
    json.dumps(keras.saving.serialize_keras_object(layer))
    for name, value in init_kwargs.items():
        stored = config[name]
        if isinstance(stored, dict):  # a serialized object (initializer, ...)
            assert stored["class_name"].lower() == str(value).replace("_", "").lower(), name
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            assert float(stored) == float(value), name
        else:
            assert stored == value, name
    revived = layer_cls.from_config(config)
    assert revived.get_config() == config
    call(revived)  # build
    assert len(revived.weights) == len(layer.weights)
    revived.set_weights(layer.get_weights())
    assert_outputs_close(call(revived), outputs, atol=atol)

    # 3. .keras round trip, with the layer inside a functional model.
    if tmp_path is not None:
        symbolic = [_symbolic_input(x, f"input_{i}") for i, x in enumerate(inputs)]
        symbolic_kwargs = {k: _symbolic_input(v, k) for k, v in tensor_call_kwargs.items()}
        model_layer = layer_cls.from_config(config)
        model_outputs = model_layer(*symbolic, **symbolic_kwargs, **call_kwargs)
        model = keras.Model(
            inputs=symbolic + list(symbolic_kwargs.values()), outputs=model_outputs
        )
        model_layer.set_weights(layer.get_weights())
        model_inputs = list(inputs) + list(tensor_call_kwargs.values())
        before = model(model_inputs)
        assert_outputs_close(before, outputs, atol=atol)
        path = str(tmp_path / f"{layer_cls.__name__}.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        loaded_layer = [x for x in loaded.layers if isinstance(x, layer_cls)]
        assert len(loaded_layer) == 1
        assert loaded_layer[0].get_config() == config
        assert_outputs_close(loaded(model_inputs), before, atol=atol)

    # 4. mixed_bfloat16: bfloat16 outputs, float32 variables, finite values.
    if run_mixed_precision:
        mixed = layer_cls(**init_kwargs, dtype="mixed_bfloat16")
        mixed_outputs = call(mixed)
        _check_shapes(mixed_outputs, expected_output_shape)
        first = keras.tree.flatten(mixed_outputs)[0]
        assert keras.backend.standardize_dtype(first.dtype) == "bfloat16"
        for value in _flatten(mixed_outputs):
            assert np.all(np.isfinite(value.astype("float32")))
        for weight in mixed.weights:
            assert keras.backend.standardize_dtype(weight.dtype) == "float32"
    return layer
