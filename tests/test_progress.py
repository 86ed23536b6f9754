"""keras_attention.progress: log lines every interval seconds (a fake clock, no sleeps)."""

import pytest

from keras_attention.progress import ProgressLog, format_duration


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_line_every_interval_and_a_last_one():
    clock, lines = FakeClock(), []
    with ProgressLog(6000, "translating", interval=10, write=lines.append, clock=clock) as log:
        for _ in range(6):  # 64 sentences every 2 s: 32/s
            clock.now += 2
            log.update(64)
        assert lines == ["translating: 320/6000 (5%), 32.0 sentences/s, ETA 2m58s"]
        clock.now += 27.5
        log.update(960)  # 1344 done in 39.5 s
        clock.now += 1
        log.update(64)  # within 10 s of the last line: no line
    assert lines[1:] == ["translating: 1344/6000 (22%), 34.0 sentences/s, ETA 2m17s",
                         "translating: 1408/6000 (23%), 34.8 sentences/s, ETA 2m12s"]


def test_last_line_gives_the_time_taken_and_none_after_an_error():
    clock, lines = FakeClock(), []
    with ProgressLog(3, "decoding", unit="inputs", write=lines.append, clock=clock) as log:
        clock.now += 4
        log.update(3)
    assert lines == ["decoding: 3/3 (100%), 0.8 inputs/s, took 4s"]
    with pytest.raises(KeyboardInterrupt):
        with ProgressLog(3, "decoding", write=lines.append, clock=clock) as log:
            raise KeyboardInterrupt
    assert len(lines) == 1


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (59, "59s"), (134, "2m14s"),
                                           (3720, "1h02m")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text
