"""``stop_on_signals``: SIGINT (Ctrl-C) and SIGTERM (``docker stop``,
Kubernetes) stop a server that runs in the main thread."""

import contextlib
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(signals=STOP_SIGNALS):
    """Inside the block each of ``signals`` raises ``KeyboardInterrupt`` in
    the main thread, so ``Server.serve_forever`` returns and ``Server.stop``
    drains the requests being handled.

    Installed explicitly because a process may start with SIGINT ignored:
    a background job of a non-interactive shell (``cmd &`` in a script or
    CI step) inherits SIGINT as ``SIG_IGN``, and Python then installs no
    ``KeyboardInterrupt`` handler, so Ctrl-C or ``kill -INT`` would never
    stop the server. SIGTERM's default would kill the process without
    draining. The previous handlers come back on exit.
    """

    def interrupt(number, frame):
        raise KeyboardInterrupt(signal.Signals(number).name)

    previous = {number: signal.signal(number, interrupt) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
