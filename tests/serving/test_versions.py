"""Model versions: a new version folder is loaded (warmup included) while the
old one serves, switched to atomically, and the old one drained and released."""

import gc
import io
import json
import os
import threading
import time
import weakref

import numpy as np
import pytest
import tensorflow as tf

from keras_attention.export.warmup import write_warmup_requests
from keras_attention.serving import ModelVersions, RequestError, Server, ServerConfig

from serving.toy import call

DEADLINE_SECONDS = 120  # every wait below ends by then (a failure, not a hang)


class CaseModule(tf.Module):
    """Upper- or lower-cases its inputs and counts its calls."""

    def __init__(self, upper):
        super().__init__()
        self.upper = upper
        self.calls = tf.Variable(0, dtype=tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def serve(self, inputs):
        self.calls.assign_add(1)
        cased = tf.strings.upper(inputs) if self.upper else tf.strings.lower(inputs)
        return {"outputs": cased}


def write_version(directory, version, upper, warmup=0):
    """``directory/<version>`` written as exports do: into a temporary
    folder beside it, then renamed (a server never sees half of it)."""
    module = CaseModule(upper)
    tmp = os.path.join(directory, f".tmp-{version}")
    tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
    if warmup:
        inputs = {"inputs": np.array([b"Warm", b"up"], dtype=object)}
        write_warmup_requests(tmp, [("serving_default", inputs)] * warmup)
    os.rename(tmp, os.path.join(directory, str(version)))


def write_broken_version(directory, version):
    tmp = os.path.join(directory, f".tmp-{version}")
    os.makedirs(tmp)
    with open(os.path.join(tmp, "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
    os.rename(tmp, os.path.join(directory, str(version)))


def outputs(model, texts=("aB", "Cd")):
    return model.predict({"instances": list(texts)})[0]["predictions"]


def states(versions):
    return [(s["version"], s["state"]) for s in versions.status()["model_version_status"]]


class Log(list):
    def __call__(self, record):
        self.append(record)

    def events(self):
        return [(r["event"], r.get("version")) for r in self]


@pytest.fixture
def folder(tmp_path):
    directory = str(tmp_path / "case")
    os.makedirs(directory)
    write_version(directory, 1, upper=True)
    return directory


def test_requests_running_on_the_old_version_finish_on_it(folder):
    log = Log()
    versions = ModelVersions(folder, poll_seconds=0, log=log)
    assert versions.poll() == "1" and log == []  # nothing new
    with versions.acquire() as old:
        write_version(folder, 2, upper=False, warmup=3)
        assert versions.poll() == "2"
        assert states(versions) == [("2", "AVAILABLE"), ("1", "UNLOADING")]
        with versions.acquire() as new:  # new requests get version 2
            assert new.version == "2" and outputs(new) == ["ab", "cd"]
            # Loaded fully before the switch: its 3 warmup requests ran.
            assert new.warmup_requests == 3
        with pytest.raises(RequestError) as error:
            with versions.acquire("1"):
                pass
        assert (error.value.status, error.value.message) == (
            404, "model 'case' version '1' not found; this server serves version 2.")
        assert outputs(old) == ["AB", "CD"]  # the held version still answers
        released = weakref.ref(old)
        del old
    assert states(versions) == [("2", "AVAILABLE"), ("1", "END")]
    assert log.events() == [("version_available", "2"), ("version_unloaded", "1")]
    assert log[0]["replaced"] == "1" and log[0]["warmup_requests"] == 3
    gc.collect()
    assert released() is None  # nothing holds the old model any more
    assert versions.status("1") == {"model_version_status": [{
        "version": "1", "state": "END", "status": {"error_code": "OK", "error_message": ""}}]}


def test_warmup_runs_each_record_once_before_serving(folder):
    write_version(folder, 2, upper=False, warmup=4)
    versions = ModelVersions(folder, poll_seconds=0)
    model = versions.current
    assert model.warmup_requests == 4
    assert int(model._loaded.calls.numpy()) == 4  # the signature ran 4 times, before any request
    outputs(model)
    assert int(model._loaded.calls.numpy()) == 5


def test_a_version_that_fails_to_load_is_logged_once_and_the_old_one_serves(folder):
    log = Log()
    versions = ModelVersions(folder, poll_seconds=0, log=log)
    write_broken_version(folder, 2)
    assert versions.poll() == "1"
    assert versions.poll() == "1"  # the same files: not tried again
    assert log.events() == [("version_load_failed", "2")]
    pb = os.path.join(folder, "2", "saved_model.pb")
    message = f"Cannot parse file b'{pb}': Error parsing message with type"
    assert log[0]["error"].startswith(f"OSError: {message}")
    (failed,) = versions.status("2")["model_version_status"]
    assert failed["state"] == "END" and failed["status"]["error_code"] == "UNKNOWN"
    assert failed["status"]["error_message"].startswith(message)
    with versions.acquire() as model:
        assert model.version == "1" and outputs(model) == ["AB", "CD"]
    # Fixed (other files): tried again, and served.
    os.rename(os.path.join(folder, "2"), os.path.join(folder, ".broken"))
    write_version(folder, 2, upper=False)
    assert versions.poll() == "2"
    assert states(versions) == [("2", "AVAILABLE"), ("1", "END")]


def test_a_version_folder_is_served_alone_without_polling(folder):
    versions = ModelVersions(os.path.join(folder, "1"), poll_seconds=0.2)
    assert versions.poll_seconds == 0 and versions._thread is None
    write_version(folder, 2, upper=False)
    assert versions.poll() == "1" and versions.current.version == "1"


def test_poll_seconds_is_validated():
    with pytest.raises(ValueError, match="poll_seconds must be a number >= 0, got -1"):
        ServerConfig(poll_seconds=-1)


def test_requests_during_the_switch_all_succeed_and_never_mix(folder):
    log = io.StringIO()
    config = ServerConfig(port=0, poll_seconds=0.2)
    results = {worker: [] for worker in range(4)}
    stop = threading.Event()
    deadline = time.monotonic() + DEADLINE_SECONDS
    texts = ["aB", "Cd", "eF"]

    def client(url, worker):
        while not stop.is_set() and time.monotonic() < deadline:
            code, body, _ = call(url, {"instances": texts})
            predictions = body.get("predictions")
            kind = ("v1" if predictions == ["AB", "CD", "EF"] else
                    "v2" if predictions == ["ab", "cd", "ef"] else f"{code} {body}")
            results[worker].append(kind)

    def wait_for(condition):
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert condition(), {w: r[-3:] for w, r in results.items()}

    with Server(folder, config, log_stream=log) as server:
        url = f"{server.url}/v1/models/case:predict"
        threads = [threading.Thread(target=client, args=(url, w), daemon=True) for w in results]
        for thread in threads:
            thread.start()
        wait_for(lambda: all(r.count("v1") >= 3 for r in results.values()))
        write_version(folder, 2, upper=False, warmup=2)
        wait_for(lambda: all(r.count("v2") >= 5 for r in results.values()))
        stop.set()
        for thread in threads:
            thread.join(DEADLINE_SECONDS)
        status = call(f"{server.url}/v1/models/case")[1]
        assert call(f"{server.url}/v1/models/case/versions/1:predict",
                    {"instances": texts})[:2] == (404, {
                        "error": "model 'case' version '1' not found; this server serves "
                                 "version 2."})
    for kinds in results.values():
        assert set(kinds) == {"v1", "v2"}  # every request succeeded, none mixed versions
        switch = kinds.index("v2")
        assert kinds[switch:] == ["v2"] * (len(kinds) - switch)  # once switched, stays
    assert [(s["version"], s["state"]) for s in status["model_version_status"]] == [
        ("2", "AVAILABLE"), ("1", "END")]
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    versions = [(e["event"], e["version"]) for e in events if "event" in e]
    assert versions == [("version_available", "2"), ("version_unloaded", "1")]
    requests = [e for e in events if "event" not in e and e["path"].endswith(":predict")]
    assert {e["status"] for e in requests[:-1]} == {200}  # the last: the 404 above
