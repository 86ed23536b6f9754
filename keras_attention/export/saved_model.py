"""Atomic, versioned SavedModel export and loading (the TF Serving layout)."""

import json
import os

import keras
import tensorflow as tf

from keras_attention import validation
from keras_attention.atomic import atomic_directory, refuse_existing
from keras_attention.constants import METADATA_FILE, SAVED_MODEL_FILE
from keras_attention.export.batching import BatchingParameters, write_batching_parameters
from keras_attention.export.signatures import (
    ALIGNMENTS_NAME,
    INPUT_NAME,
    LENGTHS_NAME,
    OUTPUT_NAME,
    PREFIXES_NAME,
    SCORES_NAME,
)
from keras_attention.export.warmup import (
    DEFAULT_WARMUP_TEXTS,
    warmup_requests,
    write_warmup_requests,
)


def _versions():
    import tensorflow_text  # noqa: F401  (recorded: stock TF Serving links these ops)

    return {
        "tensorflow": tf.__version__,
        "tensorflow_text": tensorflow_text.__version__,
        "keras": keras.__version__,
    }


def next_version(directory):
    """One above the highest numbered version in ``directory`` (1 if none)."""
    if not os.path.isdir(directory):
        return 1
    versions = [int(d) for d in os.listdir(directory) if d.isdigit()]
    return max(versions, default=0) + 1


def version_directory(directory, version, overwrite=False):
    """``directory/<version>``, the TF Serving version folder an export
    writes: a ``ValueError`` unless ``version`` is a positive integer, and,
    unless ``overwrite``, a ``FileExistsError`` when that version exists."""
    validation.check_positive_int("version", version,
                                  what="a positive integer (TF Serving's version folder)")
    path = os.path.join(directory, str(version))
    if not overwrite:
        refuse_existing(path, "export version", "--version")
    return path


def export_saved_model(module, directory, version=1, metadata=None, overwrite=False,
                       warmup_inputs=None):
    """Save ``module`` (a ``TextToTextModule``) as ``directory/<version>/``.

    The export is written to a temporary folder beside the target and renamed
    into place, so a crash never leaves a half-written model where a server
    would load it. An existing version is a ``FileExistsError`` (before any
    work) unless ``overwrite=True``: then it is replaced, atomically.
    ``keras_attention.json`` beside ``saved_model.pb`` records the
    TensorFlow, TF Text and Keras versions, the module's ``describe()``
    (decoding config, limits, signatures) and ``metadata``.

    TF Serving's conventions come with it: warmup records in
    ``assets.extra/tf_serving_warmup_requests`` (``warmup.py``), built from
    ``warmup_inputs`` (a few sample source texts; ``None``: generic ones;
    empty: no records), which the server runs once at load; and, when this
    is the highest version, ``directory/batching_parameters.txt``
    (``batching.py``) for ``--batching_parameters_file``.

    Returns the path of the version folder.
    """
    final = version_directory(directory, version, overwrite=overwrite)
    texts = DEFAULT_WARMUP_TEXTS if warmup_inputs is None else list(warmup_inputs)
    with atomic_directory(final, overwrite=overwrite) as tmp:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        info = {"versions": _versions()}
        info.update(module.describe())
        info.update(metadata or {})
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(info, f, indent=2)
        if texts:
            write_warmup_requests(tmp, warmup_requests(module, texts))
    if next_version(directory) == version + 1:  # the highest version: the one served
        write_batching_parameters(directory, BatchingParameters.for_module(module))
    return final


def resolve_version(path):
    """``path`` itself if it holds a SavedModel, else its highest numbered version."""
    if os.path.isfile(path):
        raise ValueError(
            f"'{path}' is a file, not a SavedModel; pass the folder holding saved_model.pb "
            "(or its parent, with numbered version folders)."
        )
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"model '{path}' not found; export one with 'keras-attention demo' "
            "or keras_attention.export.export_saved_model."
        )
    if os.path.exists(os.path.join(path, SAVED_MODEL_FILE)):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit()]
    versions = [d for d in versions if os.path.exists(os.path.join(path, d, SAVED_MODEL_FILE))]
    if not versions:
        raise FileNotFoundError(
            f"'{path}' holds no SavedModel (no saved_model.pb, no numbered version folder)."
        )
    return os.path.join(path, max(versions, key=int))


class SavedModelTranslator:
    """Runs an exported text-to-text SavedModel on Python strings.

    Batches are capped at the export's ``max_batch_size`` (from its
    ``keras_attention.json``), so any ``batch_size`` works. The export cuts
    inputs longer than ``max_input_length`` tokens; ``source_lengths`` tells
    which.

    Attributes:
        metadata: the export's ``keras_attention.json`` (``{}`` without one).
        task: ``"translation"``, ``"summarization"`` or ``None`` (not recorded).
        max_input_length: source tokens the export keeps (``None``: not recorded).
    """

    def __init__(self, path):
        import tensorflow_text  # noqa: F401  (registers TF Text ops used by exports)

        self.path = resolve_version(path)
        self._loaded = tf.saved_model.load(self.path)
        self._serve = self._loaded.signatures["serving_default"]
        self.metadata = {}
        metadata_path = os.path.join(self.path, METADATA_FILE)
        if os.path.exists(metadata_path):
            with open(metadata_path, encoding="utf-8") as f:
                self.metadata = json.load(f)
        self.max_batch_size = self.metadata.get("max_batch_size")
        self.max_input_length = self.metadata.get("max_input_length")
        self.task = self.metadata.get("task")

    def _batches(self, texts, batch_size, *others):
        """String tensors of ``texts`` (and of the same rows of each of
        ``others``) in batches the export takes."""
        if self.max_batch_size:
            batch_size = min(batch_size, self.max_batch_size)
        for i in range(0, len(texts), batch_size):
            batch = [tf.constant(values[i : i + batch_size], dtype=tf.string)
                     for values in (texts, *others)]
            yield batch[0] if not others else batch

    def __call__(self, texts, batch_size=64):
        """The best output string of each text."""
        outputs = []
        for batch in self._batches(texts, batch_size):
            result = self._serve(**{INPUT_NAME: batch})[OUTPUT_NAME]
            outputs.extend(t.decode("utf-8") for t in result.numpy())
        return outputs

    def hypotheses(self, texts, batch_size=64):
        """Per text, its n-best list of ``(text, score)``, best first (the
        ``n_best`` signature; exports without it give one unscored output)."""
        if "n_best" not in self._loaded.signatures:
            return [[(text, float("nan"))] for text in self(texts, batch_size)]
        n_best = self._loaded.signatures["n_best"]
        results = []
        for batch in self._batches(texts, batch_size):
            result = n_best(**{INPUT_NAME: batch})
            for row, scores in zip(result[OUTPUT_NAME].numpy(), result[SCORES_NAME].numpy()):
                results.append([(t.decode("utf-8"), float(s)) for t, s in zip(row, scores)])
        return results

    def check_signature(self, name, what):
        """The loaded signature ``name``; a one-line ``ValueError`` for an
        export made before it (``what`` it is for)."""
        if name not in self._loaded.signatures:
            raise ValueError(f"'{self.path}' was exported without the {name} signature "
                             f"({what}); export it again, or use the trained model folder.")
        return self._loaded.signatures[name]

    def prefixed(self, texts, prefixes, batch_size=64):
        """The best output of each text, starting with its prefix (``""``:
        none; the ``prefix`` signature)."""
        signature = self.check_signature("prefix", "target prefixes")
        outputs = []
        for batch, chunk in self._batches(texts, batch_size, prefixes):
            result = signature(**{INPUT_NAME: batch, PREFIXES_NAME: chunk})[OUTPUT_NAME]
            outputs.extend(t.decode("utf-8") for t in result.numpy())
        return outputs

    @property
    def alignment_layer(self):
        """The decoder layer the ``alignments`` signature reads (``None``:
        none recorded)."""
        return self.metadata.get("alignment_layer")

    def alignments(self, texts, outputs, batch_size=64):
        """``[(i, j), ...]`` per text: each token ``j`` of its output aligned
        to source token ``i`` (the ``alignments`` signature)."""
        signature = self.check_signature("alignments", "source-target alignments")
        pairs = []
        for batch, chunk in self._batches(texts, batch_size, outputs):
            result = signature(**{INPUT_NAME: batch, OUTPUT_NAME: chunk})[ALIGNMENTS_NAME]
            pairs.extend([tuple(int(n) for n in link.split("-")) for link in text.split()]
                         for text in (t.decode("utf-8") for t in result.numpy()))
        return pairs

    def source_lengths(self, texts, batch_size=64):
        """Source tokens of each text before the export cuts it, or ``None``
        for an export without the ``source_lengths`` signature (older ones)."""
        if "source_lengths" not in self._loaded.signatures:
            return None
        signature = self._loaded.signatures["source_lengths"]
        lengths = []
        for batch in self._batches(texts, batch_size):
            lengths.extend(int(n) for n in signature(**{INPUT_NAME: batch})[LENGTHS_NAME].numpy())
        return lengths
