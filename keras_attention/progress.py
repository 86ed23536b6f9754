"""Progress as log lines, for where no progress bar can be drawn (stderr not
a terminal: logs, CI):

    translating: 1280/6000 (21%), 35.2 sentences/s, ETA 2m14s

at most one line every ``interval`` seconds, and a last one when the work is
done. TensorFlow-free (the command line and a training callback can share it).
"""

import sys
import time

from keras_attention import validation


def format_duration(seconds):
    """``14s``, ``2m14s``, ``1h02m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLog:
    """Counts work done and writes a progress line at most every
    ``interval`` seconds; as a context manager, a last line when the block
    ends without an error.

    Args:
        total: units of work in all.
        label: what is being done (``"translating"``).
        unit: what is counted, plural (``"sentences"``, ``"steps"``).
        interval: seconds between two lines.
        write: called with each line (default: print to stderr).
        clock: seconds, monotonic (``time.monotonic``; a fake one in tests).
    """

    def __init__(self, total, label, unit="sentences", interval=10.0, write=None,
                 clock=time.monotonic):
        validation.check_positive_number("interval", interval, what="> 0 seconds")
        self.total = total
        self.label = label
        self.unit = unit
        self.interval = interval
        self.done = 0
        self._write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._clock = clock
        self._start = self._last = clock()

    def update(self, count):
        """Add ``count`` units done; write a line if ``interval`` has passed
        since the last one."""
        self.done += count
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            self._write(self.line(now))

    def line(self, now=None):
        """``label: done/total (percent), rate unit/s, ETA ...``; the last
        line gives the time taken instead of the ETA."""
        elapsed = (self._clock() if now is None else now) - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        percent = 100 * self.done // self.total if self.total else 100
        if self.done >= self.total:
            when = f"took {format_duration(elapsed)}"
        elif rate > 0:
            when = f"ETA {format_duration((self.total - self.done) / rate)}"
        else:
            when = "ETA unknown"
        return (f"{self.label}: {self.done}/{self.total} ({percent}%), "
                f"{rate:.1f} {self.unit}/s, {when}")

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None:
            self._write(self.line())
