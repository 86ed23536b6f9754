"""Learning-rate schedules: warmup, then inverse square root (Noam) or cosine.

Both count optimizer steps from 1 (the first update is step 1, so it never
gets a learning rate of 0) and reach their peak ``learning_rate`` at step
``warmup_steps``.
"""

import math

import keras
from keras import ops

from keras_attention import validation


@keras.saving.register_keras_serializable(package="keras_attention")
class NoamSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The Transformer schedule (Vaswani et al., 2017, eq. 3), by its peak.

    ``lr(step) = learning_rate * min(step / warmup_steps, sqrt(warmup_steps / step))``:
    linear warmup to ``learning_rate`` at ``warmup_steps``, then decay with
    the inverse square root of the step. The paper's form,
    ``hidden_dim ** -0.5 * min(step ** -0.5, step * warmup_steps ** -1.5)``,
    is ``NoamSchedule.from_hidden_dim(hidden_dim, warmup_steps)``.

    Args:
        learning_rate: the peak learning rate (at ``warmup_steps``).
        warmup_steps: steps of linear warmup, >= 1.
    """

    def __init__(self, learning_rate, warmup_steps):
        validation.check_positive_number("learning_rate", learning_rate, what="positive")
        validation.check_positive_int(
            "warmup_steps", warmup_steps, what="a positive integer for the noam schedule",
            fix="use schedule 'constant' or 'cosine' for no warmup",
        )
        self.learning_rate = float(learning_rate)
        self.warmup_steps = warmup_steps

    @classmethod
    def from_hidden_dim(cls, hidden_dim, warmup_steps, scale=1.0):
        """The paper's schedule for a model of width ``hidden_dim``, times
        ``scale``: its peak is ``scale / sqrt(hidden_dim * warmup_steps)``."""
        return cls(scale / math.sqrt(hidden_dim * warmup_steps), warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warmup = float(self.warmup_steps)
        factor = ops.minimum(step / warmup, ops.sqrt(warmup / step))
        return self.learning_rate * factor

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="keras_attention")
class WarmupCosineSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to ``learning_rate`` over ``warmup_steps``, then cosine
    decay to ``final_learning_rate`` at ``total_steps`` (constant after).

    ``lr(step) = learning_rate * step / warmup_steps`` for ``step <= warmup_steps``,
    else ``final + (learning_rate - final) * (1 + cos(pi * t)) / 2`` with
    ``t = min(1, (step - warmup_steps) / (total_steps - warmup_steps))``.
    """

    def __init__(self, learning_rate, total_steps, warmup_steps=0, final_learning_rate=0.0):
        validation.check_positive_number("learning_rate", learning_rate, what="positive")
        validation.check_positive_int("total_steps", total_steps)
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps!r}; "
                "lower optimizer.warmup_steps or train for more steps."
            )
        if not 0 <= final_learning_rate <= learning_rate:
            raise ValueError(
                f"final_learning_rate must be in [0, learning_rate], got {final_learning_rate!r}."
            )
        self.learning_rate = float(learning_rate)
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.final_learning_rate = float(final_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warmup = float(self.warmup_steps)
        peak, final = self.learning_rate, self.final_learning_rate
        progress = ops.clip((step - warmup) / float(self.total_steps - self.warmup_steps), 0.0, 1.0)
        decayed = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        if self.warmup_steps == 0:
            return decayed
        return ops.where(step <= warmup, peak * step / warmup, decayed)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_learning_rate": self.final_learning_rate,
        }


def learning_rate_schedule(optimizer_config, total_steps):
    """The learning rate (a schedule or a float) an ``OptimizerConfig`` asks
    for, for a run of ``total_steps`` optimizer steps."""
    c = optimizer_config
    if c.schedule == "noam":
        return NoamSchedule(c.learning_rate, c.warmup_steps)
    if c.schedule == "cosine":
        return WarmupCosineSchedule(c.learning_rate, total_steps, warmup_steps=c.warmup_steps)
    return c.learning_rate
