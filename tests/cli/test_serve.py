"""``keras-attention serve``: help, one-line errors, and a real server stopped by Ctrl-C."""

import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from cli.main import main
from serving.toy import call, export_toy_module
from keras_attention.serving import Server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def invoke(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return export_toy_module(str(tmp_path_factory.mktemp("serve_cli") / "toy"))


def test_help_lists_the_options_and_an_example():
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--name", "--max-body-bytes", "--max-batch",
                 "--max-string-length", "--grpc-port"):
        assert flag in result.output
    assert "keras-attention serve saved_models/demo --port 8501" in result.output
    assert "--poll-seconds FLOAT RANGE Check MODEL_DIR this often for a new version" in " ".join(
        result.output.split())
    assert "serve saved_models/demo --port 8501" in invoke("--help").output


def test_missing_model_folder_is_one_line(tmp_path):
    missing = str(tmp_path / "nothing")
    result = invoke("serve", missing, "--port", "0")
    assert result.exit_code == 1
    assert result.output == (f"Error: model '{missing}' not found; export one with "
                             "'keras-attention demo' or keras_attention.export.export_saved_model."
                             "\n")


def test_folder_without_saved_model_is_one_line(tmp_path):
    result = invoke("serve", str(tmp_path), "--port", "0")
    assert result.exit_code == 1
    assert result.output == (f"Error: '{tmp_path}' holds no SavedModel (no saved_model.pb, "
                             "no numbered version folder).\n")


def test_port_in_use_is_one_line(toy_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", toy_dir, "--port", str(port))
    assert result.exit_code == 1
    assert result.output == (f"Error: port {port} on 127.0.0.1 is already in use; pick another "
                             "with --port (0 picks a free one).\n")


def test_bad_name_and_limits_are_rejected(toy_dir):
    result = invoke("serve", toy_dir, "--port", "0", "--name", "a/b")
    assert result.exit_code == 1
    assert result.output == ("Error: model name must be non-empty without '/' or ':', got 'a/b'; "
                             "pass another with --name.\n")
    result = invoke("serve", toy_dir, "--max-batch", "0")
    assert result.exit_code == 2 and "--max-batch" in result.output


def test_ctrl_c_in_process_stops_cleanly(toy_dir, monkeypatch):
    def interrupted(self):
        self.start()  # a background thread instead, so stop() also shuts it down
        assert call(f"{self.url}/v1/models/upper")[0] == 200
        raise KeyboardInterrupt

    monkeypatch.setattr(Server, "serve_forever", interrupted)
    result = invoke("serve", toy_dir, "--port", "0", "--name", "upper")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.fullmatch(r"serving 'upper' version 1 from .*toy/1 at "
                        r"http://127\.0\.0\.1:\d+/v1/models/upper", lines[0])
    assert lines[-1] == "stopped."


def test_grpc_port_prints_a_client_that_works(toy_dir, monkeypatch):
    from keras_attention.serving.grpc_service import client_example

    examples = []

    def interrupted(self):
        self.start()
        code = client_example(self.grpc_address, self.model,
                              "the first of may two thousand and nine")
        printed = []
        exec(code, {"print": printed.append})  # the printed program, against this server
        examples.append((code, printed[0].outputs["lengths"].int_val))
        raise KeyboardInterrupt

    monkeypatch.setattr(Server, "serve_forever", interrupted)
    result = invoke("serve", toy_dir, "--port", "0", "--grpc-port", "0")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("{")]  # logs
    (code, lengths), = examples
    assert list(lengths) == [38]
    assert re.fullmatch(r"gRPC \(TF Serving's PredictionService\) at 127\.0\.0\.1:\d+", lines[2])
    assert lines[3] == f'try: python -c "{code}"'
    assert shlex.split(lines[3].removeprefix("try: ")) == ["python", "-c", code]
    assert lines[4:] == ["Ctrl-C stops the server.", "stopped."]
    result = invoke("serve", toy_dir, "--port", "8600", "--grpc-port", "8600")
    assert result.output == ("Error: grpc_port and port are both 8600; give gRPC its own port "
                             "(TF Serving uses 8500 for gRPC and 8501 for REST).\n")


def read_lines(process, count, timeout):
    """``count`` stdout lines of ``process`` within ``timeout`` seconds, else kill it and fail."""
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(process.stdout.readline()) for _ in range(count)],
                     daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        return [lines.get(timeout=max(deadline - time.monotonic(), 0)) for _ in range(count)]
    except queue.Empty:
        process.kill()
        pytest.fail(f"no banner within {timeout} s; stderr: {process.communicate()[1][-2000:]}")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_real_process_serves_the_printed_curl_and_stops_on_sigint(toy_dir, stop):
    # SIGINT ignored at start, as a background job of a non-interactive shell inherits it
    # (cmd & in a script or CI step): Python then installs no KeyboardInterrupt handler, and
    # the server used to ignore the SIGINT below until the test gave up after 60 s.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", toy_dir, "--port", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        banner = read_lines(process, 3, timeout=180)  # TensorFlow's import on a busy machine
        assert banner[2] == "Ctrl-C stops the server.\n", banner
        curl = shlex.split(banner[1].removeprefix("try: "))
        assert curl[:2] == ["curl", "-d"]
        body, url = json.loads(curl[2]), curl[3]
        code, answer, _ = call(url, body)
        assert (code, answer) == (200, {"predictions": [{
            "outputs": "THE FIRST OF MAY TWO THOUSAND AND NINE", "lengths": 38}]})
        process.send_signal(stop)
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"still running 60 s after {stop.name}; stderr: "
                        f"{process.communicate()[1][-2000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout == "stopped.\n"
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [(r["method"], r["status"], r["instances"]) for r in logs] == [("POST", 200, 1)]


def test_poll_seconds_reaches_the_server(toy_dir, monkeypatch):
    seen = {}

    def interrupted(self):
        seen.update(config=self.config.poll_seconds, models=self.models.poll_seconds)
        raise KeyboardInterrupt

    monkeypatch.setattr(Server, "serve_forever", interrupted)
    result = invoke("serve", toy_dir, "--port", "0", "--poll-seconds", "0.5")
    assert result.exit_code == 0, result.output
    assert seen == {"config": 0.5, "models": 0.5}
    result = invoke("serve", os.path.join(toy_dir, "1"), "--port", "0", "--poll-seconds", "0.5")
    assert result.exit_code == 0, result.output
    assert seen == {"config": 0.5, "models": 0.0}  # a version folder is never polled
