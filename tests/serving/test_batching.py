"""Dynamic batching: concurrent calls merged into one, split back per request
in order, grouped by input length, oversize alone, errors kept per request,
stop with queued requests, wired into ``ServedModel`` and ``Server``."""

import io
import json
import os
import shutil
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
import tensorflow as tf
from click.testing import CliRunner

from cli.main import main
from keras_attention.serving import (Batcher, RequestBatching, RequestError, ServedModel, Server,
                                     ServerConfig)

from serving.toy import call, export_toy_module

WAIT = 30.0  # seconds a test waits at most for its threads
# Batches run only when full: the timeout is far longer than any test.
FULL_ONLY = dict(batch_timeout_ms=60_000)


class Recorder:
    """A signature stand-in that doubles ``x`` (or upper-cases strings) and
    records every call's inputs; ``fail_on`` makes calls holding it fail."""

    def __init__(self, fail_on=None, scalar=False):
        self.calls = []
        self.batches = []
        self.fail_on = fail_on
        self.scalar = scalar
        self._lock = threading.Lock()

    def __call__(self, signature_name, tensors):
        values = tensors["x"].numpy().tolist()
        with self._lock:
            self.calls.append((signature_name, values))
        if self.fail_on is not None and self.fail_on in values:
            raise tf.errors.InvalidArgumentError(None, None, f"bad value {self.fail_on}")
        x = tensors["x"]
        if self.scalar:
            return {"total": tf.reduce_sum(x)}
        return {"y": tf.strings.upper(x) if x.dtype == tf.string else x * 2}

    def on_batch(self, signature_name, size):
        with self._lock:
            self.batches.append((signature_name, size))


def concurrently(batcher, requests, signature="sig"):
    """Each request's ``call`` from its own thread; ``[outputs or exception]`` in order."""
    results = [None] * len(requests)

    def client(i):
        try:
            x = requests[i]
            outputs = batcher.call(signature, {"x": x if tf.is_tensor(x) else tf.constant(x)})
            results[i] = {k: v.numpy().tolist() for k, v in outputs.items()}
        except Exception as error:  # noqa: BLE001  (the test checks it)
            results[i] = error

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads)
    return results


def batcher_for(recorder, **config):
    return Batcher(recorder, RequestBatching(**config), on_batch=recorder.on_batch)


def test_config_is_validated():
    with pytest.raises(ValueError, match="max_batch_size must be a positive integer, got 0"):
        RequestBatching(max_batch_size=0)
    with pytest.raises(ValueError, match="batch_timeout_ms must be a number >= 0, got -1"):
        RequestBatching(batch_timeout_ms=-1)
    with pytest.raises(ValueError, match="num_batch_threads must be a positive integer"):
        RequestBatching(num_batch_threads=0)
    with pytest.raises(ValueError, match="length_boundaries must be a tuple of increasing"):
        RequestBatching(length_boundaries=(64, 8))
    with pytest.raises(ValueError, match="batching must be a RequestBatching or None, got dict"):
        ServerConfig(batching={"max_batch_size": 8})
    with pytest.raises(TypeError, match="config must be a RequestBatching, got int"):
        Batcher(Recorder(), 8)


def test_concurrent_requests_are_merged_and_split_back_in_order():
    recorder = Recorder()
    batcher = batcher_for(recorder, max_batch_size=6, **FULL_ONLY)
    requests = [[1], [2, 3], [4], [5, 6]]  # 6 rows: one full batch
    results = concurrently(batcher, requests)
    assert results == [{"y": [2 * v for v in r]} for r in requests]
    assert recorder.batches == [("sig", 6)]
    (signature, merged), = recorder.calls
    assert signature == "sig" and sorted(merged) == [1, 2, 3, 4, 5, 6]
    batcher.stop(WAIT)


def test_requests_are_grouped_by_input_length():
    recorder = Recorder()
    batcher = batcher_for(recorder, max_batch_size=2, length_boundaries=(16,), **FULL_ONLY)
    short, long = ["ab"], ["x" * 40]
    results = concurrently(batcher, [short, long, short, long])
    assert results == [{"y": [b"AB"]}, {"y": [b"X" * 40]}] * 2
    merged = sorted(sorted(values) for _, values in recorder.calls)
    assert merged == [[b"ab", b"ab"], [b"x" * 40, b"x" * 40]]
    assert recorder.batches == [("sig", 2), ("sig", 2)]
    batcher.stop(WAIT)


def test_signatures_and_shapes_are_never_mixed():
    recorder = Recorder()
    batcher = batcher_for(recorder, max_batch_size=2, **FULL_ONLY)
    results = [None] * 4
    cases = [("a", [[1, 2]]), ("b", [[3, 4]]), ("a", [[5, 6]]), ("b", [[7, 8]])]

    def client(i):
        signature, x = cases[i]
        results[i] = batcher.call(signature, {"x": tf.constant(x)})["y"].numpy().tolist()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert results == [[[2, 4]], [[6, 8]], [[10, 12]], [[14, 16]]]
    assert sorted((s, sorted(v)) for s, v in recorder.calls) == [
        ("a", [[1, 2], [5, 6]]), ("b", [[3, 4], [7, 8]])]
    batcher.stop(WAIT)


def test_a_request_over_max_batch_size_runs_alone_at_once():
    recorder = Recorder()
    batcher = batcher_for(recorder, max_batch_size=2, **FULL_ONLY)
    outputs = batcher.call("sig", {"x": tf.constant([1, 2, 3])})  # never waits for the timeout
    assert outputs["y"].numpy().tolist() == [2, 4, 6]
    assert recorder.batches == [("sig", 3)]
    assert batcher.queue_depth() == 0
    batcher.stop(WAIT)


def test_a_bad_request_in_a_merged_batch_fails_alone():
    recorder = Recorder(fail_on=-1)
    batcher = batcher_for(recorder, max_batch_size=4, **FULL_ONLY)
    results = concurrently(batcher, [[1], [-1], [2], [3]])
    assert [results[i] for i in (0, 2, 3)] == [{"y": [2]}, {"y": [4]}, {"y": [6]}]
    assert isinstance(results[1], tf.errors.InvalidArgumentError)
    assert "bad value -1" in str(results[1])
    # The merged call failed, then each ran alone; only the good ones returned.
    assert len(recorder.calls) == 5 and sorted(recorder.calls[0][1]) == [-1, 1, 2, 3]
    assert recorder.batches == [("sig", 1)] * 3
    batcher.stop(WAIT)


def test_outputs_without_the_batch_dimension_are_never_merged_again():
    recorder = Recorder(scalar=True)
    batcher = batcher_for(recorder, max_batch_size=2, **FULL_ONLY)
    assert concurrently(batcher, [[1], [2]]) == [{"total": 1}, {"total": 2}]
    assert len(recorder.calls) == 3  # merged once (sum 3, not split-able), then alone
    assert batcher.call("sig", {"x": tf.constant([5])})["total"].numpy() == 5  # at once
    assert recorder.calls[-1] == ("sig", [5])
    batcher.stop(WAIT)


def test_stop_runs_the_queued_requests_and_ends_the_threads():
    recorder = Recorder()
    batcher = batcher_for(recorder, max_batch_size=8, **FULL_ONLY)
    results = [None] * 3

    def client(i):
        results[i] = batcher.call("sig", {"x": tf.constant([i])})["y"].numpy().tolist()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT
    while batcher.queue_depth() < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for the clients to queue, not an assertion
    assert batcher.queue_depth() == 3  # not full, far from the timeout: all wait
    batch_threads = list(batcher._threads)
    batcher.stop(WAIT)
    for thread in threads:
        thread.join(WAIT)
    assert results == [[0], [2], [4]]
    assert recorder.batches == [("sig", 3)]
    assert batch_threads and not any(thread.is_alive() for thread in batch_threads)
    # After stop, calls run directly in the caller's thread.
    assert batcher.call("sig", {"x": tf.constant([7])})["y"].numpy().tolist() == [14]


def test_a_full_queue_is_a_503():
    recorder = Recorder()
    batcher = batcher_for(recorder, max_batch_size=8, max_queued=1, **FULL_ONLY)
    waiting = threading.Thread(target=batcher.call, args=("sig", {"x": tf.constant([1])}))
    waiting.start()
    deadline = time.monotonic() + WAIT
    while batcher.queue_depth() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(RequestError, match=r"^the server is overloaded \(its batching queue "
                                           r"is full\); retry later\.$") as failure:
        batcher.call("sig", {"x": tf.constant([2])})
    assert failure.value.status == 503
    batcher.stop(WAIT)
    waiting.join(WAIT)
    assert recorder.batches == [("sig", 1)]


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return export_toy_module(str(tmp_path_factory.mktemp("batching") / "toy"))


def predict_concurrently(model, bodies):
    results = [None] * len(bodies)

    def client(i):
        try:
            results[i] = model.predict(bodies[i])[0]
        except RequestError as error:
            results[i] = (error.status, error.message)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    return results


def test_served_model_merges_requests_and_keeps_errors_apart(toy_dir):
    sizes = []
    model = ServedModel(toy_dir, batching=RequestBatching(max_batch_size=4, **FULL_ONLY),
                        on_batch=lambda signature, size: sizes.append((signature, size)))
    words = ["ab", "cde", "f", "gh"]
    results = predict_concurrently(model, [{"instances": [w]} for w in words])
    assert results == [{"predictions": [{"outputs": w.upper(), "lengths": len(w)}]}
                       for w in words]
    assert sizes == [("serving_default", 4)]
    # 'strict' takes at most 2 inputs: the merged call of 4 fails, then each
    # request runs alone and only the one of 3 inputs gets the model's error.
    sizes.clear()
    bodies = [{"signature_name": "strict", "instances": ["a"]},
              {"signature_name": "strict", "instances": ["b", "c", "d"]}]
    results = predict_concurrently(model, bodies)
    assert results == [{"predictions": ["a"]},
                       (400, "the model rejected the input: at most 2 inputs")]
    assert sizes == [("strict", 1)]
    model.close(WAIT)


def test_the_exports_max_batch_size_caps_merged_calls(toy_dir, tmp_path):
    version = tmp_path / "capped" / "1"
    shutil.copytree(os.path.join(toy_dir, "1"), version)
    (version / "keras_attention.json").write_text(json.dumps({"max_batch_size": 2}))
    model = ServedModel(str(tmp_path / "capped"), batching=RequestBatching(max_batch_size=32))
    assert model.batcher.config.max_batch_size == 2
    assert ServedModel(toy_dir, batching=None).batcher is None


def test_server_batches_by_default_and_stops_its_threads(toy_dir):
    assert ServerConfig().batching == RequestBatching()
    config = ServerConfig(port=0, batching=RequestBatching(max_batch_size=3, **FULL_ONLY))
    server = Server(toy_dir, config, log_stream=io.StringIO()).start()
    url = f"{server.url}/v1/models/toy:predict"
    results = [None] * 3

    def client(i):
        results[i] = call(url, {"instances": ["x" * (i + 1)]})[:2]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert results == [(200, {"predictions": [{"outputs": "X" * (i + 1), "lengths": i + 1}]})
                       for i in range(3)]
    # The merged call reaches the Prometheus batch-size histogram, the queue is empty again.
    metrics = {(sample.name, sample.labels.get("signature")): sample.value
               for family in text_string_to_metric_families(
                   server.metrics.prometheus.text().decode())
               for sample in family.samples}
    assert metrics[("keras_attention_serving_batch_size_count", "serving_default")] == 1
    assert metrics[("keras_attention_serving_batch_size_sum", "serving_default")] == 3
    assert metrics[("keras_attention_serving_queue_depth", None)] == 0
    batch_threads = list(server.model.batcher._threads)
    server.stop()
    assert batch_threads and not any(thread.is_alive() for thread in batch_threads)


def test_cli_defaults_are_the_configs():
    params = {p.name: p for p in main.commands["serve"].params}
    defaults = RequestBatching()
    assert params["max_batch_size"].default == defaults.max_batch_size
    assert params["batch_timeout_ms"].default == defaults.batch_timeout_ms
    assert params["num_batch_threads"].default == defaults.num_batch_threads
    assert params["batching"].default is True
    result = CliRunner().invoke(main, ["serve", "--help"])
    for flag in ("--no-batching", "--max-batch-size", "--batch-timeout-ms",
                 "--num-batch-threads"):
        assert flag in result.output


def test_a_failing_on_batch_never_fails_a_request():
    recorder = Recorder()

    def broken(signature_name, size):
        raise RuntimeError("observer bug")

    batcher = Batcher(recorder, RequestBatching(max_batch_size=2, **FULL_ONLY), on_batch=broken)
    assert concurrently(batcher, [[1], [2]]) == [{"y": [2]}, {"y": [4]}]
    assert concurrently(batcher, [[3], [4]]) == [{"y": [6]}, {"y": [8]}]  # the thread lives on
    assert len(recorder.calls) == 2  # merged twice, never rerun
    batcher.stop(WAIT)


def test_empty_strings_and_empty_rows_are_batched_too():
    recorder = Recorder()
    batcher = batcher_for(recorder, max_batch_size=2, **FULL_ONLY)
    no_strings = tf.constant([[]], dtype=tf.string)  # one row of no strings
    assert concurrently(batcher, [no_strings, no_strings]) == [{"y": [[]]}, {"y": [[]]}]
    assert concurrently(batcher, [[""], [""]]) == [{"y": [b""]}, {"y": [b""]}]
    assert recorder.batches == [("sig", 2), ("sig", 2)]
    batcher.stop(WAIT)
