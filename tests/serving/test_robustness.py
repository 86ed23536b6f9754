"""Robustness: stalled or slow clients are dropped without blocking others,
every method gets a JSON answer (HEAD without a body), signals stop."""

import http.client
import io
import json
import re
import select
import signal
import socket

import pytest

from keras_attention.serving import Server, ServerConfig
from keras_attention.serving.signals import stop_on_signals

from serving.toy import call, export_toy_module

UPPER_AB = {"predictions": [{"outputs": "AB", "lengths": 2}]}


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return export_toy_module(str(tmp_path_factory.mktemp("robust") / "toy"))


@pytest.fixture(scope="module")
def toy(toy_dir):
    with Server(toy_dir, ServerConfig(port=0), log_stream=io.StringIO()) as running:
        yield running


def connect(server):
    host, port = server.url.split("//")[1].split(":")
    return socket.create_connection((host, int(port)), timeout=60)


def read_until_closed(sock):
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed while our last bytes were unread
            chunk = b""
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def response(raw):
    """``(status line, headers dict, body bytes)`` of one raw HTTP response."""
    head, body = raw.split(b"\r\n\r\n", 1)
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines), body


def read_response(sock):
    """One response, read by its Content-Length, on a connection that stays open."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536)
    status, headers, body = response(raw)
    while len(body) < int(headers["Content-Length"]):
        body += sock.recv(65536)
    return status, headers, body


def predict_head(length):
    return (b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n")


BODY = json.dumps({"instances": ["ab"]}).encode()


def test_stalled_clients_do_not_block_the_others(toy_dir):
    log = io.StringIO()
    with Server(toy_dir, ServerConfig(port=0, read_timeout=60), log_stream=log) as running:
        half_body, silent, half_headers = connect(running), connect(running), connect(running)
        with half_body, silent, half_headers:
            half_body.sendall(predict_head(len(BODY)) + BODY[:5])
            half_headers.sendall(b"GET /v1/models/toy HTTP/1.1\r\nHost: x\r\n")
            # While those three stall, other clients are served.
            assert call(f"{running.url}/v1/models/toy:predict", {"instances": ["ab"]})[:2] == (
                200, UPPER_AB)
            assert call(f"{running.url}/v1/models/toy")[0] == 200
            # Then the stalled ones finish their requests and get their answers.
            half_body.sendall(BODY[5:])
            status, headers, body = read_response(half_body)
            assert status == "HTTP/1.1 200 OK" and json.loads(body) == UPPER_AB
            half_headers.sendall(b"Connection: close\r\n\r\n")
            status, _, body = response(read_until_closed(half_headers))
            assert status == "HTTP/1.1 200 OK"
            assert json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE"
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    # sorted: a line is written after its answer, so the next request's may come first
    assert sorted((r["method"], r["status"]) for r in records) == [
        ("GET", 200), ("GET", 200), ("POST", 200), ("POST", 200)]


def test_a_stalled_body_is_408_and_silent_connections_are_closed(toy_dir):
    log = io.StringIO()
    with Server(toy_dir, ServerConfig(port=0, read_timeout=0.5), log_stream=log) as running:
        with connect(running) as half_body:
            half_body.sendall(predict_head(len(BODY)) + BODY[:5])
            status, headers, body = response(read_until_closed(half_body))
        assert status == "HTTP/1.1 408 Request Timeout"
        assert headers["Connection"] == "close"
        assert json.loads(body) == {"error": (
            f"the request body did not arrive within 0.5 s (--read-timeout): 5 of {len(BODY)} "
            "bytes; send it at once or raise --read-timeout.")}

        with connect(running) as silent:
            assert read_until_closed(silent) == b""  # closed, nothing to answer
        with connect(running) as half_headers:
            half_headers.sendall(b"GET /v1/models/toy HTTP/1.1\r\nHost: x\r\n")
            assert read_until_closed(half_headers) == b""
        with connect(running) as idle_keep_alive:
            idle_keep_alive.sendall(b"GET /v1/models/toy HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = response(read_until_closed(idle_keep_alive))
            assert status == "HTTP/1.1 200 OK" and len(body) == int(headers["Content-Length"])

        with connect(running) as slow:  # a byte every 0.1 s: never silent, still too slow
            slow.sendall(predict_head(200))
            for _ in range(200):
                if select.select([slow], [], [], 0.1)[0]:
                    break  # the server answered
                slow.sendall(b" ")
            status, headers, body = response(read_until_closed(slow))
        assert status == "HTTP/1.1 408 Request Timeout"
        assert re.fullmatch(r"the request body did not arrive within 0\.5 s \(--read-timeout\): "
                            r"\d+ of 200 bytes; send it at once or raise --read-timeout\.",
                            json.loads(body)["error"])
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    assert sorted((r["method"], r["status"]) for r in records) == [
        ("GET", 200), ("POST", 408), ("POST", 408)]


def test_a_body_shorter_than_its_content_length_is_400(toy):
    with connect(toy) as short:
        short.sendall(predict_head(len(BODY) + 10) + BODY)
        short.shutdown(socket.SHUT_WR)
        status, headers, body = response(read_until_closed(short))
    assert status == "HTTP/1.1 400 Bad Request" and headers["Connection"] == "close"
    assert json.loads(body) == {"error": f"the request body ended after {len(BODY)} of "
                                         f"{len(BODY) + 10} bytes (Content-Length); send it "
                                         "whole."}


def test_head_answers_get_headers_without_a_body(toy):
    connection = http.client.HTTPConnection(toy.url.split("//")[1], timeout=60)
    connection.request("GET", "/v1/models/toy")
    got = connection.getresponse()
    get_body = got.read()
    for path, status, length in [("/v1/models/toy", 200, len(get_body)),
                                 ("/v1/models/toy:predict", 405, None),
                                 ("/nowhere", 404, None)]:
        connection.request("HEAD", path)  # the same keep-alive connection throughout
        head = connection.getresponse()
        assert head.status == status
        assert head.read() == b""
        assert head.headers["Content-Type"] == "application/json"
        if length is not None:
            assert int(head.headers["Content-Length"]) == length
    assert head.headers["Connection"] is None
    connection.request("GET", "/v1/models/toy")  # the connection still works
    assert connection.getresponse().read() == get_body
    connection.close()


@pytest.mark.parametrize("method, path, allowed", [
    ("OPTIONS", "/v1/models/toy", "GET"),
    ("OPTIONS", "/v1/models/toy:predict", "POST"),
    ("OPTIONS", "/monitoring/metrics", "GET"),
    ("TRACE", "/v1/models/toy", "GET"),
    ("BREW", "/v1/models/toy/metadata", "GET"),
])
def test_every_other_method_gets_a_json_405_with_allow(toy, method, path, allowed):
    code, answer, headers = call(toy.url + path, method=method)
    assert (code, answer) == (405, {"error": f"{method} is not allowed here; use {allowed}."})
    assert headers["Allow"] == allowed
    assert headers["Content-Type"] == "application/json"


def test_http_servers_own_refusals_are_json(toy):
    with connect(toy) as long_header:
        long_header.sendall(b"GET /v1/models/toy HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n")
        status, headers, body = response(read_until_closed(long_header))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert headers["Content-Type"] == "application/json" and headers["Connection"] == "close"
    assert json.loads(body) == {
        "error": "Line too long (got more than 65536 bytes when reading header line)"}
    with connect(toy) as bad_version:  # an unknown version is answered as HTTP/0.9: body only
        bad_version.sendall(b"GET /v1/models/toy HTTP/1.x\r\n\r\n")
        assert json.loads(read_until_closed(bad_version)) == {
            "error": "Bad request version ('HTTP/1.x')"}


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stop_on_signals_raises_keyboard_interrupt_then_restores(number):
    previous = signal.signal(number, signal.SIG_IGN)  # as a background job inherits SIGINT
    try:
        with pytest.raises(KeyboardInterrupt, match=signal.Signals(number).name):
            with stop_on_signals():
                signal.raise_signal(number)
                for _ in range(1000):  # the handler runs between two bytecodes
                    pass
        assert signal.getsignal(number) == signal.SIG_IGN
    finally:
        signal.signal(number, previous)
