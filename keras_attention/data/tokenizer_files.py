"""Tokenizers saved with their options, so loading needs only a folder.

``save_tokenizer(tokenizer, directory, name)`` writes the vocabulary (or
SentencePiece model) as ``<name>.vocab`` / ``<name>.model`` and
``<name>.json`` with the tokenizer type and its options (``lowercase``,
``normalization``); ``load_tokenizer(directory, name)`` rebuilds it.
"""

import json
import os

from keras_attention import constants
from keras_attention.atomic import write_atomically
from keras_attention.data.subword import SentencePieceTokenizer, WordPieceTokenizer
from keras_attention.data.tokenizers import CharacterTokenizer, WordTokenizer

# Type name -> class, the names in the order of constants.TOKENIZER_TYPES.
TOKENIZER_TYPES = dict(zip(
    constants.TOKENIZER_TYPES,
    (SentencePieceTokenizer, WordPieceTokenizer, WordTokenizer, CharacterTokenizer),
    strict=True,
))


def tokenizer_type(tokenizer):
    """The registered type name of ``tokenizer`` (``sentencepiece``, ...)."""
    for name, cls in TOKENIZER_TYPES.items():
        if type(tokenizer) is cls:
            return name
    raise TypeError(
        f"cannot save a {type(tokenizer).__name__}; supported tokenizers: "
        f"{sorted(TOKENIZER_TYPES)}."
    )


def _options(tokenizer):
    options = {"lowercase": tokenizer.lowercase}
    if hasattr(tokenizer, "normalization"):
        options["normalization"] = tokenizer.normalization
    return options


def save_tokenizer(tokenizer, directory, name):
    """Write ``tokenizer`` as ``directory/<name>.{model,vocab}`` plus
    ``directory/<name>.json``; returns the JSON path."""
    kind = tokenizer_type(tokenizer)
    filename = name + (".model" if kind == "sentencepiece" else ".vocab")
    tokenizer.save(os.path.join(directory, filename))
    spec = {
        "type": kind,
        "file": filename,
        "vocabulary_size": tokenizer.vocabulary_size,
        "options": _options(tokenizer),
    }
    path = os.path.join(directory, name + ".json")
    write_atomically(path, (json.dumps(spec, indent=2) + "\n").encode("utf-8"))
    return path


def load_tokenizer(directory, name):
    """The tokenizer written by ``save_tokenizer(..., directory, name)``."""
    path = os.path.join(directory, name + ".json")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"tokenizer description '{path}' not found; write it with "
            "keras_attention.data.save_tokenizer(tokenizer, directory, name)."
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"'{path}' is not valid JSON ({error.msg}); re-save the tokenizer.") from None
    kind = spec.get("type")
    if kind not in TOKENIZER_TYPES:
        raise ValueError(
            f"'{path}': unknown tokenizer type {kind!r}; expected one of {sorted(TOKENIZER_TYPES)}."
        )
    tokenizer = TOKENIZER_TYPES[kind].load(
        os.path.join(directory, spec["file"]), **spec.get("options", {})
    )
    expected = spec.get("vocabulary_size")
    if expected is not None and expected != tokenizer.vocabulary_size:
        raise ValueError(
            f"'{path}' says {expected} tokens but '{spec['file']}' has "
            f"{tokenizer.vocabulary_size}; the vocabulary file was replaced — re-save it."
        )
    return tokenizer
