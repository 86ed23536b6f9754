"""What ``train`` may do with what it finds in a run directory (a
``RunLayout``, ``keras_attention.training.run_layout``).

``inspect_run(layout, config)`` only reads, and says how a run of ``config``
starts in ``layout`` (a ``RunStart``):

- an empty or missing folder: a new run;
- a killed run of the same config with finished epochs (recorded by
  ``RunBackup`` in ``backup/training_metadata.json``):
  it resumes after them;
- an attempt that never finished an epoch (no
  ``backup/training_metadata.json``, no ``model/``), whatever its config: a
  new run of ``config`` replaces it;
- a finished run (``model/``), or a run of another config with a finished
  epoch: refused.

Configs are compared with absolute paths (``TrainConfig.with_absolute_paths``),
so ``runs/x/``, ``runs/x`` and ``/home/me/runs/x`` are one folder.
``check_vocabulary`` says whether ``vocab/`` still fits the data
(``keras_attention.training.provenance``), and ``start_run`` does the
writing, once everything has been checked.
"""

import dataclasses
import json
import os
import shutil

from keras_attention.training.config_loader import first_difference, load_config, save_config
from keras_attention.training.provenance import provenance_difference, read_provenance


@dataclasses.dataclass(frozen=True)
class RunStart:
    """How a run starts in its directory.

    Attributes:
        initial_epoch: epochs a killed run of the same config finished (the
            0-based epoch ``fit`` starts at); 0 for a new run.
        replaced: how the config of an unfinished attempt that this run
            replaces differs (``"training.epochs: 1 there, 3 now"``), else
            ``None``.
    """

    initial_epoch: int = 0
    replaced: str | None = None


def finished_epochs(layout):
    """The epochs ``RunBackup`` recorded as finished in ``layout``
    (0 when it recorded none)."""
    if not os.path.exists(layout.backup_metadata):
        return 0
    with open(layout.backup_metadata, encoding="utf-8") as f:
        return int(json.load(f)["epoch"])


def inspect_run(layout, config):
    """How a run of ``config`` (absolute paths) starts in ``layout``: a
    ``RunStart``; writes nothing. Raises ``ValueError`` when the folder holds
    a run of another config that finished an epoch, ``FileExistsError`` when
    it holds a finished run."""
    initial_epoch = finished_epochs(layout)
    finished = os.path.exists(layout.model) and not os.path.exists(layout.backup)
    difference = _config_difference(layout, config) if os.path.exists(layout.config) else None
    if difference and (initial_epoch or finished):
        raise ValueError(
            f"output directory '{layout.directory}' holds a run with another config "
            f"({difference}); use another output.directory (--output) or delete it."
        )
    if finished:
        raise FileExistsError(
            f"output directory '{layout.directory}' holds a finished run (model/); use "
            "another output.directory (--output) or delete it."
        )
    return RunStart(initial_epoch=initial_epoch, replaced=difference)


def _config_difference(layout, config):
    try:
        previous = load_config(layout.config)
    except (ValueError, FileNotFoundError) as error:
        return f"its config.yaml no longer loads: {error}"
    return first_difference(previous.with_absolute_paths().to_dict(),
                            config.with_absolute_paths().to_dict())


def check_vocabulary(layout, config, start):
    """Whether the run can use the tokenizers in ``vocab/``:
    ``(reuse, note)``, ``note`` a line to show or ``None``.

    Reused when they were built from what ``config`` reads now. Built again
    when there are none, or when they were built from other data or options
    and no epoch was trained on them. A run folder from before
    ``vocab/provenance.json`` was recorded is unknown: resumed with its
    vocabulary unchecked when an epoch was trained on it, else built again.
    Raises ``ValueError`` when a finished epoch was trained on a vocabulary
    built from other data (resuming on other data would be wrong).
    """
    if not os.path.exists(os.path.join(layout.vocab, "target.json")):
        return False, None
    saved = read_provenance(layout.vocab)
    if saved is None:
        if start.initial_epoch:
            return True, ("vocab/ has no provenance.json (a run folder from an older version); "
                          "resuming with it unchecked")
        return False, ("vocab/ has no record of what it was built from and no epoch was "
                       "trained on it; building it again")
    difference = provenance_difference(saved, config)
    if difference is None:
        return True, None
    if start.initial_epoch:
        raise ValueError(
            f"output directory '{layout.directory}' holds {start.initial_epoch} epoch(s) "
            f"trained on a vocabulary built from other data ({difference}); resuming on other "
            "data would be wrong: restore the data, or use another output.directory (--output) "
            "or delete it."
        )
    return False, (f"vocab/ was built from other data or options ({difference}) and no epoch "
                   "was trained on it; building it again")


def start_run(layout, config, start):
    """Write the run directory for ``start`` (``inspect_run``): without
    epochs to resume, what an earlier attempt left (checkpoints, logs,
    backup) goes; then ``config.yaml``."""
    if not start.initial_epoch:
        for folder in (layout.checkpoints, layout.logs, layout.backup):
            shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(layout.checkpoints, exist_ok=True)
    os.makedirs(layout.logs, exist_ok=True)
    save_config(config, layout.config)
