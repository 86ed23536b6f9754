"""Ensembles: several models decoding as one.

``ensemble_steps(models)`` is a *steps* object (``cache.py``) over all of
them: each model keeps its own encoder output and key/value cache, and a
step's scores are the mean of the models' log-probabilities (a renormalized
geometric mean of their distributions, as Marian and Sockeye combine
ensemble members by default). Every strategy and control of ``generate``
runs on it unchanged: ``generate(models[0], source_ids, config,
steps=ensemble_steps(models))``.

The models must share the vocabularies (the same source ids feed every
encoder and the same target ids every decoder) and the length limit;
``check_members`` says which one does not.
"""

import numpy as np
from keras import ops

from keras_attention.decoding.cache import cached_steps


class EnsembleSteps:
    """The steps of ``members`` (steps objects, one per model) run side by
    side; the state is a tuple of the members' states."""

    def __init__(self, members):
        self.members = tuple(members)
        if not self.members:
            raise ValueError("an ensemble needs at least one model.")

    def start(self, source_ids, length):
        return tuple(member.start(source_ids, length) for member in self.members)

    def next(self, tokens, state, index):
        log_probs, states = [], []
        for member, member_state in zip(self.members, state):
            logits, member_state = member.next(tokens, member_state, index)
            log_probs.append(ops.log_softmax(ops.cast(logits, "float32"), axis=-1))
            states.append(member_state)
        mean = log_probs[0] if len(log_probs) == 1 else ops.mean(ops.stack(log_probs), axis=0)
        return mean, tuple(states)

    def reorder(self, state, rows):
        return tuple(member.reorder(s, rows) for member, s in zip(self.members, state))

    def resize(self, state, length):
        return tuple(member.resize(s, length) for member, s in zip(self.members, state))


def ensemble_steps(models, steps=cached_steps):
    """Steps that average the log-probabilities of ``models`` at every
    position (each model decoding with ``steps(model)``, its key/value cache
    by default)."""
    return EnsembleSteps([steps(model) for model in models])


def _pieces(tokenizer):
    """The text of each token id alone (what tells two vocabularies apart)."""
    ids = np.arange(tokenizer.vocabulary_size, dtype=np.int32).reshape(-1, 1)
    return [text for text in tokenizer.detokenize(ids).numpy()]


def check_members(first, others, names):
    """A one-line ``ValueError`` naming the first of ``others`` (trained
    models: ``model``, ``source_tokenizer``, ``target_tokenizer``) whose
    vocabularies or length limit differ from ``first``'s; ``names`` name
    ``first`` and each of ``others`` (e.g. their folders)."""
    for other, name in zip(others, names[1:]):
        for side in ("source", "target"):
            mine = getattr(first, f"{side}_tokenizer")
            theirs = getattr(other, f"{side}_tokenizer")
            if (type(mine) is not type(theirs) or mine.vocabulary_size != theirs.vocabulary_size
                    or _pieces(mine) != _pieces(theirs)):
                raise ValueError(
                    f"{name} has another {side} vocabulary than {names[0]}; an ensemble "
                    "needs models trained with the same vocabulary (train the others with "
                    "--set vocabulary.source_file=... and target_file=..., the first "
                    "model's vocabulary files)."
                )
        mine, theirs = first.model.config.max_sequence_length, other.model.config.max_sequence_length
        if mine != theirs:
            raise ValueError(
                f"{name} reads up to {theirs} tokens but {names[0]} {mine}; an ensemble "
                "needs models of the same max_sequence_length."
            )
