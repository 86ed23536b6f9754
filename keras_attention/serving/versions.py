"""``ModelVersions``: the versions of one model a server holds, with TF
Serving's default version policy (serve the highest numbered version).

Given a model folder, it serves the highest numbered version and checks the
folder every ``poll_seconds``: a new highest version is loaded in the
polling thread, fully (its warmup records run, see ``ServedModel``), while
the old one keeps answering; then one assignment under a lock switches new
requests to it. Requests already running on the old version finish on it
(each holds it through ``acquire``); the last one out releases it. A
version that fails to load is logged (one JSON line), shown in the status
with its error, and not tried again until its files change; the old version
keeps serving. Given a version folder, or ``poll_seconds=0``, it serves
that one version and never polls.

States, as TF Serving's status shows them: ``LOADING``, ``AVAILABLE`` (the
one serving), ``UNLOADING`` (replaced, draining its requests) and ``END``
(released, or failed to load, with the error).
"""

import contextlib
import os
import threading
import time

from keras_attention.constants import SAVED_MODEL_FILE
from keras_attention.export.saved_model import resolve_version
from keras_attention.serving.errors import RequestError
from keras_attention.serving.model import ServedModel


class _Held:
    """One loaded version and how many requests use it."""

    def __init__(self, model):
        self.model = model
        self.version = model.version
        self.users = 0
        self.retired = False


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _fingerprint(directory):
    """The files under ``directory`` with their sizes and times: a failed
    version is tried again once this changes (a copy still arriving)."""
    files = []
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            files.append((os.path.relpath(path, directory), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(files))


class ModelVersions:
    """The served versions of one model (see the module).

    Args:
        path: a model folder (numbered version folders; polled) or one
            version folder (served alone).
        name: the model name in the URLs; default the model folder's name.
        open_model: ``open_model(version_path, name)`` loads one version
            (default ``ServedModel`` with its defaults); ``close()`` is
            called on a version once released.
        poll_seconds: how often the model folder is checked for a new
            version; ``0`` never.
        log: called with one JSON-able dict per version event.
    """

    def __init__(self, path, name=None, open_model=None, poll_seconds=10.0, log=None):
        self._open = open_model or (lambda version_path, model_name: ServedModel(
            version_path, name=model_name))
        first = self._open(path, name)
        self.name = first.name
        single = os.path.exists(os.path.join(path, SAVED_MODEL_FILE))
        self.directory = None if single else path
        self.poll_seconds = 0.0 if single else float(poll_seconds)
        self._log = log if log is not None else (lambda record: None)
        self._lock = threading.Lock()
        self._polling = threading.Lock()
        self._current = _Held(first)
        self._states = {first.version: ("AVAILABLE", "")}
        self._failed = {}  # version -> the fingerprint of its folder when it failed
        self._stop = threading.Event()
        self._thread = None
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_forever, daemon=True,
                                            name=f"keras-attention-versions-{self.name}")
            self._thread.start()

    @property
    def current(self):
        """The ``ServedModel`` new requests get."""
        with self._lock:
            return self._current.model

    @contextlib.contextmanager
    def acquire(self, version=None):
        """Hold the serving version (or 404 unless it is ``version``) for one
        request: a switch meanwhile lets the request finish on it."""
        with self._lock:
            held = self._current
            if version is not None and version != held.version:
                raise RequestError(404, f"model '{self.name}' version {version!r} not found; "
                                        f"this server serves version {held.version}.")
            held.users += 1
        try:
            yield held.model
        finally:
            with self._lock:
                held.users -= 1
                released = self._release_if_idle(held)
            self._unloaded(held.version, released)

    def status(self, version=None):
        """TF Serving's model status JSON: every version known, newest first
        (or only ``version``; 404 for one never seen)."""
        with self._lock:
            states = dict(self._states)
            serving = self._current.version
        if version is not None:
            if version not in states:
                raise RequestError(404, f"model '{self.name}' version {version!r} not found; "
                                        f"this server serves version {serving}.")
            states = {version: states[version]}
        return {"model_version_status": [{
            "version": number,
            "state": state,
            "status": {"error_code": "UNKNOWN" if error else "OK", "error_message": error},
        } for number, (state, error) in sorted(states.items(), key=lambda s: -int(s[0]))]}

    def poll(self):
        """Check the model folder once: load its highest version if that is
        not the one served and switch to it. Returns the version served."""
        if self.directory is None:
            return self.current.version
        with self._polling:  # one poll at a time (the thread, a caller)
            return self._poll()

    def _poll(self):
        try:
            path = resolve_version(self.directory)
        except (FileNotFoundError, ValueError):  # folder gone or emptied: keep serving
            return self.current.version
        version = os.path.basename(path)
        if version == self.current.version:
            return version
        fingerprint = _fingerprint(path)
        if self._failed.get(version) == fingerprint:
            return self.current.version
        with self._lock:
            self._states[version] = ("LOADING", "")
        started = time.perf_counter()
        try:
            model = self._open(path, self.name)
        except Exception as error:  # noqa: BLE001  (the old version keeps serving)
            self._failed[version] = fingerprint
            with self._lock:
                self._states[version] = ("END", _first_line(error))
            self._event("version_load_failed", version,
                        error=f"{type(error).__name__}: {_first_line(error)}")
            return self.current.version
        self._failed.pop(version, None)
        with self._lock:
            old, self._current = self._current, _Held(model)
            self._states[version] = ("AVAILABLE", "")
            self._states[old.version] = ("UNLOADING", "")
            old.retired = True
            released = self._release_if_idle(old)
        self._event("version_available", version, replaced=old.version,
                    load_seconds=round(time.perf_counter() - started, 3),
                    warmup_requests=model.warmup_requests)
        self._unloaded(old.version, released)
        return version

    def close(self, timeout=10.0):
        """Stop polling (a load in progress finishes first, up to ``timeout``),
        then close the serving version (its queued requests run first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.current.close(timeout)

    def _release_if_idle(self, held):
        """Under the lock: drop a retired version nobody uses; the dropped
        ``ServedModel`` (to close outside the lock), else ``None``."""
        if not held.retired or held.users or held.model is None:
            return None
        model, held.model = held.model, None  # the last reference: TensorFlow frees it
        self._states[held.version] = ("END", "")
        return model

    def _unloaded(self, version, model):
        if model is not None:
            model.close()
            self._event("version_unloaded", version)

    def _poll_forever(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception as error:  # noqa: BLE001  (polling goes on)
                self._event("version_poll_failed", None,
                            error=f"{type(error).__name__}: {_first_line(error)}")

    def _event(self, event, version, **fields):
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "event": event,
                  "model": self.name}
        if version is not None:
            record["version"] = version
        record.update(fields)
        self._log(record)
