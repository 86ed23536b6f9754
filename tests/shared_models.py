"""Trained test models built once per test run, also across pytest-xdist
workers: the first worker to ask trains and saves the model under a file
lock; the others (and later sessions of the same run) load the saved folder,
which holds the same weights. Each worker otherwise trained its own copy,
both at once on the same cores."""

import fcntl
import os


def shared_trained_model(tmp_path_factory, name, build):
    """``(TrainedModel, folder)``: ``build(folder)`` trains and saves the model
    the first time in this run, ``load_trained_model(folder)`` afterwards."""
    from keras_attention.models import load_trained_model

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, shared by its workers
    folder = root / name
    done = root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if done.exists():
            return load_trained_model(str(folder)), str(folder)
        trained = build(str(folder))
        done.touch()
    return trained, str(folder)
