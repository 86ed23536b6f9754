"""A trained model folder: the Keras model with its tokenizers and task.

Layout (what ``keras-attention train`` writes and ``translate``, ``evaluate``,
``attention`` and ``export`` read)::

    run/model/
      model.keras            the Transformer (architecture + weights)
      source.json, source.*  source tokenizer (type, options, vocabulary)
      target.json, target.*  target tokenizer
      keras_attention.json   task ("translation" | "summarization"), versions, extras

The folder is written to a temporary sibling and renamed into place, so a
crash never leaves a half-written model behind.
"""

import dataclasses
import json
import os

import keras

from keras_attention import validation
from keras_attention.atomic import atomic_directory
from keras_attention.constants import METADATA_FILE, MODEL_FILE, TASKS
from keras_attention.data.tokenizer_files import load_tokenizer, save_tokenizer
from keras_attention.models.transformer import Transformer


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A model and the tokenizers it was trained with."""

    model: Transformer
    source_tokenizer: object
    target_tokenizer: object
    task: str = "translation"
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        validation.check_choice("task", self.task, TASKS)
        check_vocabularies(self.model, self.source_tokenizer, self.target_tokenizer)


def check_vocabularies(model, source_tokenizer, target_tokenizer, where="the model"):
    """A one-line ``ValueError`` when a tokenizer does not fit the model."""
    config = model.config
    for side, tokenizer, size in (
        ("source", source_tokenizer, config.encoder_vocabulary_size),
        ("target", target_tokenizer, config.decoder_vocabulary_size),
    ):
        if tokenizer.vocabulary_size != size:
            raise ValueError(
                f"{side} vocabulary has {tokenizer.vocabulary_size} tokens but {where} "
                f"expects {size}; use the vocabulary the model was trained with."
            )


def save_trained_model(trained, directory, extra=None, overwrite=True):
    """Write ``trained`` (a ``TrainedModel``) to ``directory`` atomically;
    an existing folder there is replaced (``overwrite=False``: never, see
    ``atomic_directory``). Returns ``directory``."""
    directory = os.path.abspath(directory)
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        trained.model.save(os.path.join(tmp, MODEL_FILE))
        save_tokenizer(trained.source_tokenizer, tmp, "source")
        save_tokenizer(trained.target_tokenizer, tmp, "target")
        metadata = dict(trained.metadata, **(extra or {}))
        metadata.update(task=trained.task, keras=keras.__version__)
        with open(os.path.join(tmp, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(metadata, f, indent=2)
    return directory


def load_trained_model(directory):
    """The ``TrainedModel`` in ``directory`` (written by ``save_trained_model``)."""
    model_path = os.path.join(directory, MODEL_FILE)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"model folder '{directory}' not found; train one with 'keras-attention train'."
        )
    if not os.path.exists(model_path):
        raise FileNotFoundError(
            f"'{directory}' is not a trained model folder (no {MODEL_FILE}); point to the "
            "'model' folder that 'keras-attention train' writes."
        )
    metadata = {}
    metadata_path = os.path.join(directory, METADATA_FILE)
    if os.path.exists(metadata_path):
        with open(metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
    model = keras.saving.load_model(model_path)
    source = load_tokenizer(directory, "source")
    target = load_tokenizer(directory, "target")
    check_vocabularies(model, source, target, where=f"'{model_path}'")
    task = metadata.pop("task", "translation")
    return TrainedModel(model, source, target, task=task, metadata=metadata)
