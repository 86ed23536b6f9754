"""RunLayout: every path of a run directory, and epoch checkpoints named and
found again by one pattern."""

import os

from keras_attention.training.run_layout import (
    RunLayout,
    epoch_checkpoint_name,
    epoch_checkpoints,
)


def test_paths_of_a_run_directory():
    layout = RunLayout("runs/x")
    assert layout.config == os.path.join("runs/x", "config.yaml")
    assert layout.checkpoints == os.path.join("runs/x", "checkpoints")
    assert layout.best == os.path.join("runs/x", "checkpoints", "best.weights.h5")
    assert layout.backup_metadata == os.path.join("runs/x", "backup", "training_metadata.json")
    assert layout.validation_logs == os.path.join("runs/x", "logs", "validation")
    assert layout.history == os.path.join("runs/x", "logs", "history.json")
    assert (layout.model, layout.averaged) == (os.path.join("runs/x", "model"),
                                              os.path.join("runs/x", "averaged"))


def test_epoch_checkpoints_reads_back_the_names_it_writes(tmp_path):
    assert epoch_checkpoints(str(tmp_path / "missing")) == {}
    layout = RunLayout(str(tmp_path))
    os.makedirs(layout.checkpoints)
    names = [epoch_checkpoint_name(epoch) for epoch in (10, 2, 12345)]
    assert names == ["epoch-0010.weights.h5", "epoch-0002.weights.h5", "epoch-12345.weights.h5"]
    others = ["best.weights.h5", "epoch-1.weights.h5", "epoch-0003.weights.h5.json",
              ".tmp-1-epoch-0004.weights.h5"]
    for name in names + others:
        open(os.path.join(layout.checkpoints, name), "w").close()
    assert layout.epoch_checkpoints() == {
        epoch: os.path.join(layout.checkpoints, epoch_checkpoint_name(epoch))
        for epoch in (2, 10, 12345)}
