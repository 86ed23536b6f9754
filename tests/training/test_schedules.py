"""Learning-rate schedules: golden values, serialization, the config factory."""

import math

import keras
import numpy as np
import pytest

from keras_attention.training import NoamSchedule, WarmupCosineSchedule, learning_rate_schedule
from keras_attention.training.config import OptimizerConfig


def values(schedule, iterations):
    return [float(schedule(i)) for i in iterations]


def test_noam_golden_values():
    schedule = NoamSchedule(1e-3, warmup_steps=4)
    # iteration i is step i + 1: warmup 1/4, 2/4, 3/4, peak, then sqrt(4 / step).
    expected = [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3 * math.sqrt(4 / 5), 1e-3 * math.sqrt(4 / 16)]
    assert values(schedule, [0, 1, 2, 3, 4, 15]) == pytest.approx(expected, rel=1e-6)


def test_noam_from_hidden_dim_is_the_paper_formula():
    d, warmup = 512, 4000
    schedule = NoamSchedule.from_hidden_dim(d, warmup, scale=2.0)
    for step in (1, 100, 4000, 4001, 100_000):
        paper = 2.0 * d ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
        assert float(schedule(step - 1)) == pytest.approx(paper, rel=1e-5)


def test_warmup_cosine_golden_values():
    schedule = WarmupCosineSchedule(1e-3, total_steps=10, warmup_steps=2, final_learning_rate=1e-4)

    def cosine(step):
        t = min(1.0, (step - 2) / 8)
        return 1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * t))

    expected = [5e-4, 1e-3] + [cosine(step) for step in range(3, 13)]
    assert values(schedule, range(12)) == pytest.approx(expected, rel=1e-5)
    assert float(schedule(9)) == pytest.approx(1e-4)  # last step reaches the floor
    assert values(WarmupCosineSchedule(1.0, total_steps=4), [0, 3]) == pytest.approx(
        [0.5 * (1 + math.cos(math.pi / 4)), 0.0], abs=1e-6)


@pytest.mark.parametrize("schedule", [
    NoamSchedule(3e-4, 10),
    WarmupCosineSchedule(1e-3, total_steps=50, warmup_steps=5, final_learning_rate=1e-5),
])
def test_schedules_serialize_and_restore_in_an_optimizer(schedule):
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    steps = np.arange(0, 60, 7)
    assert values(restored, steps) == values(schedule, steps)
    optimizer = keras.optimizers.Adam(schedule)
    again = keras.optimizers.Adam.from_config(optimizer.get_config())
    assert float(again.learning_rate) == pytest.approx(float(schedule(0)))


def test_get_config_covers_init():
    import inspect

    for cls, schedule in ((NoamSchedule, NoamSchedule(1e-3, 3)),
                          (WarmupCosineSchedule, WarmupCosineSchedule(1e-3, 9))):
        assert set(schedule.get_config()) == set(inspect.signature(cls).parameters)


def test_learning_rate_schedule_from_config():
    noam = learning_rate_schedule(OptimizerConfig(learning_rate=2e-3, warmup_steps=5), 100)
    assert isinstance(noam, NoamSchedule) and float(noam(4)) == pytest.approx(2e-3)
    cosine = learning_rate_schedule(
        OptimizerConfig(learning_rate=1e-3, schedule="cosine", warmup_steps=10), 100)
    assert isinstance(cosine, WarmupCosineSchedule) and cosine.total_steps == 100
    assert learning_rate_schedule(OptimizerConfig(schedule="constant"), 100) == 5e-4


@pytest.mark.parametrize("make, message", [
    (lambda: NoamSchedule(1e-3, 0), "warmup_steps must be a positive integer for the noam "
     "schedule, got 0; use schedule 'constant' or 'cosine' for no warmup."),
    (lambda: NoamSchedule(0.0, 5), "learning_rate must be positive, got 0.0."),
    (lambda: WarmupCosineSchedule(1e-3, 10, warmup_steps=10), "warmup_steps must be in "
     "[0, total_steps=10), got 10; lower optimizer.warmup_steps or train for more steps."),
])
def test_schedule_errors(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert str(error.value) == message
