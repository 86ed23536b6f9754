"""``TrainConfig``s (``keras_attention.training.config``) from and to YAML/JSON.

    config = load_config("run.yaml", overrides=["training.epochs=3"])
    save_config(config, "runs/x/config.yaml")

Loading follows the dataclasses' type hints: each mapping becomes its
section, made by the field's ``default_factory`` when it has one, else by
its class, and each value is checked against its type. Errors are one line
naming the key: ``unknown key 'training.epoch' in run.yaml; did you mean
'training.epochs'?``, ``training.epochs must be an integer, got 'three'``.
"""

import dataclasses
import difflib
import os
import types
import typing

import yaml

from keras_attention import validation
from keras_attention.atomic import write_atomically
from keras_attention.training.config import TrainConfig


def first_difference(old, new, prefix=""):
    """The first key (in sorted order, nested keys joined with dots) whose
    value differs between the dicts ``old`` and ``new``, as ``"key: old
    there, new now"``; ``None`` when they are equal."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key}: {a!r} there, {b!r} now"
    return None


def save_config(config, path):
    """Write ``config`` as YAML to ``path`` (atomically); returns ``path``."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
    write_atomically(path, text.encode("utf-8"))
    return path


def load_config(path, overrides=()):
    """The ``TrainConfig`` in the YAML or JSON file ``path``, with
    ``overrides`` (``"training.epochs=3"``; values parsed as YAML scalars)
    applied in order."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"config file '{path}' not found; write one (see recipes/dates.yaml)."
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise ValueError(f"{path}: invalid YAML{where} ({problem}); fix the syntax.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} must hold a mapping of sections (task, data, model, ...), "
            f"got {_describe(data)}."
        )
    for override in overrides:
        _apply_override(data, override)
    return config_from_dict(data, source=path)


def config_from_dict(data, source="the config"):
    """A ``TrainConfig`` from nested dicts (``load_config`` without the file);
    ``source`` names where unknown keys came from."""
    return _build(TrainConfig, data, "", source)


def _apply_override(data, override):
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(
            f"--set {override!r}: expected KEY=VALUE, e.g. training.epochs=3."
        )
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            section = ".".join(parts[: depth + 1])
            raise ValueError(f"cannot set '{key}': '{section}' is a value, not a section.")
        node = child
    node[parts[-1]] = value


def _build(cls, data, prefix, source, make=None):
    """The section ``cls`` of the mapping ``data``, made by ``make`` (default:
    ``cls``) from the converted values."""
    where = prefix.rstrip(".") or "the config"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of keys, got {_describe(data)}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    values = {}
    for key, value in data.items():
        if key not in names:
            raise ValueError(_unknown_key(f"{prefix}{key}", [f"{prefix}{n}" for n in names], source))
        factory = fields[key].default_factory
        values[key] = _convert(value, hints[key], f"{prefix}{key}", source,
                               make=None if factory is dataclasses.MISSING else factory)
    try:
        return (make or cls)(**values)
    except TypeError as error:  # a required field is missing
        raise ValueError(f"{where}: {error}") from None
    except (ValueError, FileNotFoundError) as error:
        message = str(error)
        if not prefix:
            raise
        if message.split(" ")[0].split(":")[0].split(".")[0] in names:
            message = f"{prefix}{message}"
        else:
            message = f"{where}: {message}"
        raise type(error)(message) from None


def _unknown_key(key, known, source):
    prefix, _, name = key.rpartition(".")
    close = difflib.get_close_matches(name, [k.rpartition(".")[2] for k in known], n=1)
    if close:
        hint = f"did you mean '{prefix + '.' if prefix else ''}{close[0]}'?"
    else:
        hint = f"known keys: {', '.join(known)}."
    return f"unknown key '{key}' in {source}; {hint}"


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               dict: "a mapping"}


def _convert(value, hint, key, source, make=None):
    """``value`` checked against the type ``hint`` (and converted: lists to
    tuples, ints to floats, mappings to sections, made by ``make`` if given)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    optional = type(None) in options
    options = [o for o in options if o is not type(None)]
    if value is None:
        if optional:
            return None
        raise ValueError(f"{key} must be {_expected(options)}, got null.")
    for option in options:
        if dataclasses.is_dataclass(option):
            if isinstance(value, dict):
                return _build(option, value, f"{key}.", source, make)
            continue
        origin = typing.get_origin(option)
        if origin is tuple and isinstance(value, (list, tuple)):
            item = typing.get_args(option)[0]
            if all(_is(v, item) for v in value):
                return tuple(value)
            continue
        if _is(value, option):
            return float(value) if option is float else value
    raise ValueError(f"{key} must be {_expected(options, optional)}, got {_describe(value)}.")


def _is(value, kind):
    if kind is float:
        return validation.is_number(value)
    if kind is int:
        return validation.is_int(value)
    return isinstance(value, kind)


def _expected(options, optional=False):
    names = []
    for option in options:
        if dataclasses.is_dataclass(option):
            names.append("a mapping")
        elif typing.get_origin(option) is tuple:
            names.append(f"a list of {_TYPE_NAMES[typing.get_args(option)[0]].split(' ', 1)[1]}s")
        else:
            names.append(_TYPE_NAMES.get(option, option.__name__))
    if optional:
        names.append("null")
    return " or ".join(names)


def _describe(value):
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list {value!r}"
    return repr(value)
