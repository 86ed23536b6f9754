"""Training: configs, schedules, losses, metrics, callbacks and ``train``."""

import keras

from keras_attention.constants import PAD_ID
from keras_attention.training.callbacks import (
    BestCheckpoint,
    EpochCheckpoints,
    EpochProgress,
    EpochSeeds,
    EpochSummary,
    HistoryFile,
    ResumableEarlyStopping,
    RunBackup,
    ValidationScores,
)
from keras_attention.training.config import TrainConfig
from keras_attention.training.config_loader import config_from_dict, load_config, save_config
from keras_attention.training.losses import SequenceCrossEntropy
from keras_attention.training.metrics import MaskedAccuracy, Perplexity
from keras_attention.training.schedules import (
    NoamSchedule,
    WarmupCosineSchedule,
    learning_rate_schedule,
)
from keras_attention.training.run_directory import RunLayout
from keras_attention.training.train import TrainResult, train


def sequence_loss():
    """Cross entropy over float32 logits that ignores PAD (id 0) labels."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)


__all__ = [
    "BestCheckpoint",
    "EpochCheckpoints",
    "EpochProgress",
    "EpochSeeds",
    "EpochSummary",
    "HistoryFile",
    "MaskedAccuracy",
    "NoamSchedule",
    "Perplexity",
    "ResumableEarlyStopping",
    "RunBackup",
    "RunLayout",
    "SequenceCrossEntropy",
    "TrainConfig",
    "TrainResult",
    "ValidationScores",
    "WarmupCosineSchedule",
    "config_from_dict",
    "learning_rate_schedule",
    "load_config",
    "save_config",
    "sequence_loss",
    "train",
]
