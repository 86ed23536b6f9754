"""Fine-tuning: a run that starts from a trained model folder
(``model.init_from``, ``keras-attention train --init-from``).

The run takes the folder's tokenizers (its vocabulary: ``vocabulary`` in the
config is not used) and its weights; the config's model must have the
folder's shape (``preset`` and ``changes``; dropout may differ; a pruned
folder's ``attention_heads`` are taken over when the config names none). With
``training.lora_rank`` only LoRA adapters of the attention layers' query and
value projections train (``Transformer.enable_lora``), and the model folder
holds them merged into the kernels.
"""

import glob
import os

from keras_attention.data.tokenizer_files import load_tokenizer
from keras_attention.models.saving import load_trained_model
from keras_attention.models.transformer import Transformer

# Fields of a TransformerConfig a fine-tuning run may change.
TUNABLE_FIELDS = ("dropout",)


def tokenizer_files(folder):
    """The files of the folder's source and target tokenizers."""
    return sorted(glob.glob(os.path.join(folder, "source.*")) +
                  glob.glob(os.path.join(folder, "target.*")))


def init_tokenizers(folder):
    """``(source, target)``: the tokenizers of the model folder ``folder``."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"model.init_from '{folder}' not found; point it to a trained model folder "
            "(RUN/model, written by 'keras-attention train')."
        )
    return load_tokenizer(folder, "source"), load_tokenizer(folder, "target")


def initial_model(config, folder, dtype=None):
    """A ``Transformer`` of ``config`` (the run's ``TransformerConfig``; a
    pruned folder's ``attention_heads`` when it names none) in ``dtype``,
    with the weights of the model in ``folder``. Raises a one-line
    ``ValueError`` when their shapes differ."""
    trained = load_trained_model(folder).model
    if trained.config.attention_heads and not config.attention_heads:
        config = config.replace(attention_heads=trained.config.attention_heads)
    differences = shape_differences(trained.config, config)
    if differences:
        theirs = ", ".join(f"{name}={value!r}" for name, (value, _) in differences.items())
        ours = ", ".join(f"{name}={value!r}" for name, (_, value) in differences.items())
        raise ValueError(
            f"model.init_from '{folder}' has {theirs} but this config asks {ours}; set "
            "model.preset/model.changes to the trained model's shape (or start from scratch "
            "without --init-from)."
        )
    model = Transformer(config, dtype=dtype)
    model.set_weights(trained.get_weights())
    return model


def shape_differences(trained, wanted):
    """``{field: (trained value, wanted value)}`` of the ``TransformerConfig``
    fields that differ, but for ``TUNABLE_FIELDS``."""
    trained, wanted = trained.to_dict(), wanted.to_dict()
    return {name: (trained[name], wanted[name]) for name in trained
            if name not in TUNABLE_FIELDS and trained[name] != wanted.get(name)}
