"""Training: configs, schedules, losses, metrics, callbacks and ``train``.
Names import their module on first use (``losses`` and ``schedules`` need
Keras alone)."""

from keras_attention.lazy import lazy_package

__all__ = [*lazy_package(__name__, {
    "keras_attention.training.callbacks": (
        "BestCheckpoint", "EpochCheckpoints", "EpochProgress", "EpochSeeds", "EpochSummary",
        "HistoryFile", "ResumableEarlyStopping", "RunBackup", "ValidationScores"),
    "keras_attention.training.config": ("TrainConfig",),
    "keras_attention.training.config_loader": ("config_from_dict", "load_config", "save_config"),
    "keras_attention.training.losses": ("SequenceCrossEntropy",),
    "keras_attention.training.metrics": ("MaskedAccuracy", "Perplexity"),
    "keras_attention.training.schedules": (
        "NoamSchedule", "WarmupCosineSchedule", "learning_rate_schedule"),
    "keras_attention.training.run_layout": ("RunLayout",),
    "keras_attention.training.train": ("TrainResult", "train"),
}), "sequence_loss"]


def sequence_loss():
    """Cross entropy over float32 logits that ignores PAD (id 0) labels."""
    import keras

    from keras_attention.constants import PAD_ID

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)

