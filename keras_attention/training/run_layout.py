"""The paths of a run directory, the one place that names them.

What ``keras_attention.training.train`` writes in ``config.output.directory``::

    config.yaml                    the full resolved TrainConfig (paths absolute)
    vocab/source.*, vocab/target.* tokenizers; built once, reused on resume
    vocab/provenance.json          what they were built from (``provenance``)
    checkpoints/epoch-0001.weights.h5 ...  weights after each epoch (newest
                                   ``output.keep_checkpoints`` kept)
    checkpoints/best.weights.h5    best by the validation score (+ .json: value, epoch)
    backup/                        the state after the last finished epoch (RunBackup)
    logs/train, logs/validation    TensorBoard; logs/history.json: every epoch's logs
    model/                         the final TrainedModel folder: the best
                                   weights with a validation set, else the last
    averaged/                      ``averaging.average_last``'s model folder

Epoch checkpoints are named by ``epoch_checkpoint_name`` (in ``checkpoints/``
and in ``backup/``) and found again by ``epoch_checkpoints``, which reads back
exactly the names it writes.
"""

import dataclasses
import os
import re

from keras_attention.constants import CONFIG_FILE, TRAINING_METADATA_FILE

CHECKPOINTS = "checkpoints"
_EPOCH_CHECKPOINT = "epoch-{epoch:04d}.weights.h5"
_EPOCH_CHECKPOINT_NAME = re.compile(r"^epoch-(\d{4,})\.weights\.h5$")


def epoch_checkpoint_name(epoch):
    """The file name of the weights after (1-based) ``epoch``:
    ``epoch-0001.weights.h5``."""
    return _EPOCH_CHECKPOINT.format(epoch=epoch)


def epoch_checkpoints(directory):
    """``{epoch: path}`` of the ``epoch_checkpoint_name`` files in
    ``directory``, by epoch; ``{}`` when there is no such folder."""
    if not os.path.isdir(directory):
        return {}
    found = {}
    for name in os.listdir(directory):
        match = _EPOCH_CHECKPOINT_NAME.match(name)
        if match:
            found[int(match.group(1))] = os.path.join(directory, name)
    return dict(sorted(found.items()))


def _part(*parts, doc=None):
    """A ``RunLayout`` property: the path ``parts`` inside the run directory."""
    return property(lambda layout: layout.path(*parts), doc=doc)


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """The paths of the run directory ``directory`` (see the module)."""

    directory: str

    config = _part(CONFIG_FILE)
    vocab = _part("vocab")
    checkpoints = _part(CHECKPOINTS)
    best = _part(CHECKPOINTS, "best.weights.h5")
    backup = _part("backup")
    backup_metadata = _part("backup", TRAINING_METADATA_FILE,
                            doc="What ``RunBackup`` writes after each finished epoch.")
    logs = _part("logs", doc="TensorBoard's folder (it writes ``train/`` and ``validation/``).")
    validation_logs = _part("logs", "validation")
    history = _part("logs", "history.json")
    model = _part("model")
    averaged = _part("averaged")

    def path(self, *parts):
        return os.path.join(self.directory, *parts)

    def epoch_checkpoints(self):
        """``{epoch: path}`` of the epoch checkpoints in ``checkpoints/``."""
        return epoch_checkpoints(self.checkpoints)
