"""Atomic, versioned SavedModel export and loading (the TF Serving layout)."""

import json
import os

import keras
import tensorflow as tf

from keras_attention.atomic import atomic_directory
from keras_attention.export.signatures import INPUT_NAME, OUTPUT_NAME

METADATA_FILE = "keras_attention.json"


def _versions():
    import tensorflow_text  # noqa: F401  (recorded: stock TF Serving links these ops)

    return {
        "tensorflow": tf.__version__,
        "tensorflow_text": tensorflow_text.__version__,
        "keras": keras.__version__,
    }


def export_saved_model(module, directory, version=1, metadata=None):
    """Save ``module`` (a ``TextToTextModule``) as ``directory/<version>/``.

    The export is written to a temporary folder beside the target and renamed
    into place, so a crash never leaves a half-written model where a server
    would load it. An existing version is replaced.

    Returns the path of the version folder.
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}.")
    final = os.path.join(directory, str(version))
    with atomic_directory(final) as tmp:
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
        info = {"versions": _versions(), "signature": {"inputs": INPUT_NAME, "outputs": OUTPUT_NAME}}
        info.update(metadata or {})
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(info, f, indent=2)
    return final


def resolve_version(path):
    """``path`` itself if it holds a SavedModel, else its highest numbered version."""
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"model '{path}' not found; export one with 'keras-attention demo' "
            "or keras_attention.export.export_saved_model."
        )
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit()]
    versions = [d for d in versions if os.path.exists(os.path.join(path, d, "saved_model.pb"))]
    if not versions:
        raise FileNotFoundError(
            f"'{path}' holds no SavedModel (no saved_model.pb, no numbered version folder)."
        )
    return os.path.join(path, max(versions, key=int))


class SavedModelTranslator:
    """Runs an exported text-to-text SavedModel on Python strings."""

    def __init__(self, path):
        import tensorflow_text  # noqa: F401  (registers TF Text ops used by exports)

        self.path = resolve_version(path)
        self._loaded = tf.saved_model.load(self.path)
        self._serve = self._loaded.signatures["serving_default"]

    def __call__(self, texts, batch_size=64):
        outputs = []
        for i in range(0, len(texts), batch_size):
            batch = tf.constant(texts[i : i + batch_size], dtype=tf.string)
            result = self._serve(**{INPUT_NAME: batch})[OUTPUT_NAME]
            outputs.extend(t.decode("utf-8") for t in result.numpy())
        return outputs
