"""Text -> n-best hypotheses with whatever a model path holds: a trained
model folder (any decoding strategy, the decoding stored with it as the
default), an exported SavedModel (the decoding built into its graph) or a
CTranslate2 export. What ``keras-attention translate``, ``summarize`` and
``evaluate --model`` run.

Decoding options are ``DecodingConfig`` fields a user set, as a dict;
``decoding_config`` lays them over the decoding a model folder stores.
TensorFlow is imported only when a model is loaded or a config is built,
so option errors come first. Errors are one-line ``ValueError``s (and the
loaders' ``FileNotFoundError``s) naming what to pass instead.
"""

import dataclasses
import math
import os

from keras_attention.constants import (
    CONFIG_FILE,
    MODEL_FILE,
    SAVED_MODEL_FILE,
    TASKS,
    TFLITE_MODEL_FILE,
)

# Options that belong to one strategy: set alone, they imply it.
STRATEGY_OF_OPTION = {"beam_size": "beam", "length_penalty": "beam", "beam_stopping": "beam",
                      "temperature": "sample", "top_k": "sample", "top_p": "sample",
                      "seed": "sample"}


def with_implied_strategy(options):
    """``options`` with the strategy they imply: beam options alone mean
    ``strategy="beam"``, sampling options alone ``"sample"``, ``n_best``
    above 1 alone means beam; options of another strategy than the one set
    (or of two strategies) are a ``ValueError``."""
    used = {name: owner for name, owner in STRATEGY_OF_OPTION.items() if name in options}
    strategy = options.get("strategy")
    if strategy is None:
        implied = sorted(set(used.values()))
        if len(implied) > 1:
            raise ValueError(
                f"{_flags(used)} belong to different strategies ({', '.join(implied)}); "
                "choose one with --strategy."
            )
        if implied:
            return dict(options, strategy=implied[0])
        if options.get("n_best", 1) > 1:
            # An n-best list alone asks for beam search (greedy has one output).
            return dict(options, strategy="beam")
        return options
    wrong = [name for name, owner in used.items() if owner != strategy]
    if wrong:
        owner = used[wrong[0]]
        raise ValueError(
            f"{_flags(wrong)} appl{'ies' if len(wrong) == 1 else 'y'} to --strategy "
            f"{owner}, not {strategy}; drop {'it' if len(wrong) == 1 else 'them'} or "
            f"choose --strategy {owner}."
        )
    return options


def decoding_config(options, saved=None):
    """The ``DecodingConfig`` of ``options`` (strategy implied by beam or
    sampling options) over ``saved``, the decoding a trained model folder
    stores (its recipe's ``evaluation.decoding``, e.g. SAMSum's length
    limit and n-gram blocking): options win, and ``n_best`` and ``seed``
    come from the options alone."""
    from keras_attention.decoding.generate import DecodingConfig

    kept = {f.name for f in dataclasses.fields(DecodingConfig)} - {"n_best", "seed"}
    base = {name: value for name, value in (saved or {}).items() if name in kept}
    given = with_implied_strategy(options)
    try:
        return DecodingConfig(**{**base, **given})
    except ValueError as error:
        stored = {name: value for name, value in base.items() if name not in given}
        if not stored:
            raise
        listed = ", ".join(f"{name}={value}" for name, value in stored.items())
        raise ValueError(f"{error} (stored with the model: {listed}; flags override "
                         "them)") from None


def _flags(options):
    return ", ".join("--" + name.replace("_", "-") for name in options)


_TFLITE_FIX = ("pass the trained model folder it was exported from, or a SavedModel "
               "exported from that (keras-attention export --format saved_model); run "
               "TFLite models with keras_attention.export.TFLiteText or TFLiteDecoder.")


def _undecodable(path):
    """A one-line error saying what ``path`` is and what to pass instead, when
    it exists but is neither a trained model folder nor a SavedModel export
    (checked by name, before anything is loaded); else ``None``."""
    def has(*parts):
        return os.path.exists(os.path.join(path, *parts))

    if os.path.isfile(path):
        if path.endswith(".tflite"):
            return ValueError(f"'{path}' is a TFLite model, which translate cannot run; "
                              + _TFLITE_FIX)
        if os.path.basename(path) == MODEL_FILE:
            folder = os.path.dirname(path) or "."
            return ValueError(f"'{path}' is the Keras file of a trained model folder; pass "
                              f"the folder: --model {folder}")
        return ValueError(f"'{path}' is a file, not a model; pass a trained model folder "
                          "(with model.keras) or an exported SavedModel folder.")
    if not os.path.isdir(path) or has(MODEL_FILE) or has(SAVED_MODEL_FILE):
        return None
    versions = [name for name in os.listdir(path) if name.isdigit()]
    if has(TFLITE_MODEL_FILE) or any(has(v, TFLITE_MODEL_FILE) for v in versions):
        return ValueError(f"'{path}' is a TFLite export folder, which translate cannot "
                          "decode; " + _TFLITE_FIX)
    if has(CONFIG_FILE) or has("checkpoints"):
        model = os.path.join(path, "model")
        if has("model", MODEL_FILE):
            return ValueError(f"'{path}' is a training run folder; pass its model folder: "
                              f"--model {model}")
        return ValueError(f"'{path}' is a training run folder without a model yet (no "
                          f"{model}: training has not finished); resume it with "
                          "'keras-attention train --config ...' and pass RUN/model.")
    return None


def is_trained_folder(path):
    """Whether ``path`` is a trained model folder (with ``model.keras``)."""
    return os.path.exists(os.path.join(path, MODEL_FILE))


class Decoder:
    """Text -> n-best hypotheses with a trained model folder, a SavedModel or
    a CTranslate2 export.

    Args:
        model_path: a trained model folder (with ``model.keras``), an
            exported SavedModel or CTranslate2 folder (a version folder or
            its parent).
        decoding: ``DecodingConfig`` fields set by the user (trained folders
            and CTranslate2 exports), over the decoding stored in the folder.
        truncate: cut inputs longer than the model's limit instead of
            failing (``check_lengths``; SavedModels cut them in the graph).
        jit_compile: compile the decoding with XLA (trained folders only).
        ensemble: more trained model folders decoding with ``model_path``
            (itself a trained folder) as an ensemble: their
            log-probabilities averaged at each step; same vocabularies.

    Attributes:
        task: the task the model was trained for (``None``: not recorded).
        max_source_length: the most source tokens it reads (``None``: not
            recorded).
    """

    def __init__(self, model_path, decoding=None, truncate=False, jit_compile=False,
                 ensemble=()):
        decoding = decoding or {}
        for path in (model_path, *ensemble):
            error = _undecodable(path)
            if error is not None:
                raise error
            if ensemble and not is_trained_folder(path):
                raise ValueError(f"'{path}' is not a trained model folder (no {MODEL_FILE}); "
                                 "an ensemble (--model given more than once) decodes trained "
                                 "model folders only, not exports.")
        self.model_path = model_path
        self.truncate = truncate
        self._generator = self._translator = None
        from keras_attention.export.ctranslate2 import ctranslate2_folder

        folder = ctranslate2_folder(model_path)
        if folder is not None:
            if jit_compile:
                raise ValueError(f"--xla: '{model_path}' is a CTranslate2 export, which "
                                 "TensorFlow does not run; drop --xla.")
            from keras_attention.export.ctranslate2 import CTranslate2Translator, read_metadata

            config = decoding_config(decoding, read_metadata(folder).get("decoding"))
            self._generator = CTranslate2Translator(folder, config=config, truncate=truncate)
            self.task = self._generator.task if self._generator.task in TASKS else None
            self.max_source_length = self._generator.max_source_length
            return
        if is_trained_folder(model_path):
            from keras_attention.decoding.ensemble import check_members
            from keras_attention.decoding.text import TextGenerator
            from keras_attention.models import load_trained_model

            trained = load_trained_model(model_path)
            members = [load_trained_model(path) for path in ensemble]
            check_members(trained, members, [f"'{path}'" for path in (model_path, *ensemble)])
            config = decoding_config(decoding, trained.metadata.get("decoding"))
            self.task = trained.task
            self._generator = TextGenerator(trained, config=config, truncate=truncate,
                                            jit_compile=jit_compile, ensemble=members)
            self.max_source_length = self._generator.max_source_length
            return
        from keras_attention.export import SavedModelTranslator, resolve_version

        resolve_version(model_path)  # a clear error first when there is no model at all
        if decoding:
            raise ValueError(
                f"{_flags(decoding)}: '{model_path}' is an exported SavedModel whose "
                "decoding (greedy or beam search, chosen at export) is built into the "
                "graph; use a trained model folder "
                "(with model.keras) for decoding options."
            )
        if jit_compile:
            raise ValueError(
                f"--xla: '{model_path}' is an exported SavedModel, whose decoding graph is "
                "fixed at export; export it with 'keras-attention export --xla', or use a "
                "trained model folder (with model.keras) for --xla."
            )
        self._translator = SavedModelTranslator(model_path)
        # The task and the limit its keras_attention.json records (None: not recorded).
        self.task = self._translator.task if self._translator.task in TASKS else None
        self.max_source_length = self._translator.max_input_length

    def check_lengths(self, lines):
        """How many of ``lines`` are longer than the model's limit (and so
        cut to it): unless ``truncate``, a ``ValueError`` naming the first.
        ``None`` when the model cannot count source tokens (a SavedModel
        exported without the ``source_lengths`` signature, which cuts long
        inputs without notice)."""
        from keras_attention.decoding.text import check_source_lengths

        model = self._generator or self._translator
        lengths = model.source_lengths(lines)
        limit = self.max_source_length
        if lengths is None or limit is None:
            return None
        return check_source_lengths(lengths, limit, self.truncate, "--truncate")

    def check_alignments(self, layer=-1):
        """A one-line ``ValueError`` unless this model can give alignments
        from decoder ``layer`` (trained model folders; SavedModels with the
        ``alignments`` signature, of the layer they were exported with)."""
        if self._translator is not None:
            self._translator.check_signature("alignments", "source-target alignments")
            exported, layers = (self._translator.metadata.get(key)
                                for key in ("alignment_layer", "decoder_layers"))
            if layers and layer % layers != exported:
                raise ValueError(
                    f"--alignment-layer {layer}: '{self.model_path}' was exported with the "
                    f"alignments of decoder layer {exported} (of 0..{layers - 1}); pass "
                    f"--alignment-layer {exported}, or use the trained model folder.")
            return
        if not hasattr(self._generator, "alignments"):
            raise ValueError(
                f"--alignments: '{self.model_path}' is an export without the attention "
                "weights; use the trained model folder (with model.keras)."
            )
        from keras_attention.decoding.alignment import check_layer

        check_layer(self._generator.model, layer)

    def alignments(self, lines, outputs, layer=-1):
        """``[(i, j), ...]`` per line: its output's tokens aligned to its
        source tokens (``TextGenerator.alignments``, or a SavedModel's
        ``alignments`` signature)."""
        self.check_alignments(layer)
        if self._translator is not None:
            return self._translator.alignments(lines, outputs)
        return self._generator.alignments(lines, outputs, layer)

    def check_controls(self, prefixes=None, constraints=None):
        """A one-line ``ValueError`` unless this model can decode with the
        given ``prefixes`` (trained folders, SavedModels with the ``prefix``
        signature) and ``constraints`` (trained folders)."""
        if prefixes is not None and self._translator is not None:
            self._translator.check_signature("prefix", "target prefixes")
            prefixes = None
        for flag, given, what in (("--prefix-file", prefixes, "start from a prefix"),
                                  ("--constraints", constraints, "search for constraints")):
            if given is not None and not hasattr(self._generator, "tokenize_prefixes"):
                raise ValueError(
                    f"{flag}: '{self.model_path}' is an export whose decoding cannot {what}; "
                    "use the trained model folder (with model.keras)."
                )

    def stream(self, lines, batch_size=64, on_batch=None, prefixes=None, constraints=None):
        """The n-best lists of ``(text, score)`` of ``lines`` in input order,
        as they are decoded: lists that follow on from each other (see
        ``TextGenerator.stream``); SavedModel outputs have no score (NaN).
        ``prefixes``: what each output starts with; ``constraints``: the
        phrases each output contains (trained model folders)."""
        self.check_controls(prefixes, constraints)
        if prefixes is not None and self._translator is not None:
            yield from self._saved_model_batches(
                lines, batch_size, on_batch,
                lambda start, chunk: self._translator.prefixed(
                    chunk, prefixes[start : start + len(chunk)], batch_size))
            return
        if self._generator is not None:
            kwargs = {name: value for name, value in
                      (("prefixes", prefixes), ("constraints", constraints)) if value is not None}
            for ready in self._generator.stream(lines, batch_size, on_batch, **kwargs):
                yield [[(h.text, h.score) for h in hypotheses] for hypotheses in ready]
            return
        yield from self._saved_model_batches(
            lines, batch_size, on_batch, lambda start, chunk: self._translator(chunk, batch_size))

    @staticmethod
    def _saved_model_batches(lines, batch_size, on_batch, decode):
        """``stream``'s lists for a SavedModel: ``decode(start, chunk)`` gives
        the output texts of ``lines[start:start + len(chunk)]`` (no scores)."""
        for start in range(0, len(lines), batch_size):
            chunk = lines[start : start + batch_size]
            outputs = [[(text, math.nan)] for text in decode(start, chunk)]
            if on_batch is not None:
                on_batch(len(chunk))
            yield outputs
