"""The decoding state's windows: their lengths, the loop that grows the
state through them, and ``resize`` on both kinds of steps."""

import numpy as np
import pytest
from keras import ops

from keras_attention.decoding.cache import (
    cached_steps,
    resize_axis,
    uncached_steps,
    while_loop_in_windows,
    window_lengths,
)
from keras_attention.models import Transformer


@pytest.mark.parametrize("length, expected", [
    (128, [16, 32, 64, 128]), (100, [16, 32, 100]), (32, [16, 32]), (31, [31]), (12, [12]),
])
def test_window_lengths_double_up_to_the_length(length, expected):
    assert window_lengths(length) == expected


def test_resize_axis_cuts_and_pads_with_zeros():
    x = np.arange(1, 7, dtype="float32").reshape(1, 6)
    np.testing.assert_array_equal(resize_axis(x, 1, 4), [[1, 2, 3, 4]])
    np.testing.assert_array_equal(resize_axis(x, 1, 8), [[1, 2, 3, 4, 5, 6, 0, 0]])
    assert resize_axis(x, 1, 6) is x


def test_loop_in_windows_runs_every_position_with_room_for_it():
    """Each step writes its position into a state as long as the current
    window, which must have room for it; the result is the one loop's."""
    seen = []

    def body(index, total, state):
        if not seen or seen[-1] != state.shape[0]:
            seen.append(state.shape[0])
        state = ops.slice_update(state, [index], ops.reshape(ops.cast(index, "int32"), (1,)))
        return index + 1, total + index, state

    def cond(index, total, state):
        return index < 40

    index, total, state = while_loop_in_windows(
        cond, body, (0, 0, ops.zeros((16,), "int32")), 40, lambda s, n: resize_axis(s, 0, n))
    assert int(index) == 40 and int(total) == sum(range(40))
    np.testing.assert_array_equal(state, np.arange(40))
    assert seen == [16, 40]


def test_a_loop_that_stops_early_never_grows_the_state():
    def body(index, state):
        return index + 1, state

    index, state = while_loop_in_windows(
        lambda index, state: index < 5, body, (0, ops.zeros((16,))), 64,
        lambda s, n: resize_axis(s, 0, n))
    assert int(index) == 5 and state.shape == (64,)  # only the final resize, no steps


def test_resize_keeps_the_decoded_positions():
    model = Transformer.from_preset("tiny", encoder_vocabulary_size=12, decoder_vocabulary_size=12,
                                    max_sequence_length=40, num_encoder_layers=1,
                                    num_decoder_layers=2)
    source = np.array([[4, 5, 6], [7, 0, 0]], "int32")
    steps = cached_steps(model)
    state = steps.start(source, 16)
    for index in range(3):
        _, state = steps.next(np.full((2, 1), 5, "int32"), state, index)
    grown = steps.resize(state, 32)
    for before, after in zip(state["self_attention"][1], grown["self_attention"][1]):
        assert after.shape == (2, 4, 32, 16)
        np.testing.assert_array_equal(np.asarray(after)[:, :, :16], before)
        assert np.all(np.asarray(after)[:, :, 16:] == 0)
    uncached = uncached_steps(model)
    assert uncached.resize(uncached.start(source, 16), 32)["tokens"].shape == (2, 32)
