"""Access control: bearer token (401s, never logged), TLS, refusing an open
non-loopback bind; in the library and through ``keras-attention serve``."""

import io
import json
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import click
import pytest
from click.testing import CliRunner

from cli.main import main
from keras_attention.serving import AccessConfig, BearerToken, Server, ServerConfig
from keras_attention.serving.auth import is_loopback

from serving.toy import call, export_toy_module

SECRET = "k3y-0f-th3-t3st-server"
WRONG = "n0t-the-k3y-but-cl0se"


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return export_toy_module(str(tmp_path_factory.mktemp("access") / "toy"))


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("token") / "token"
    path.write_text(SECRET + "\n")
    return str(path)


@pytest.fixture(scope="module")
def guarded(toy_dir, token_file):
    config = ServerConfig(port=0, access=AccessConfig(token_file=token_file))
    with Server(toy_dir, config, log_stream=io.StringIO()) as running:
        yield running


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 with its key, another key, an encrypted key."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True,
                       timeout=60)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-out", "other.pem")
    openssl("pkey", "-in", "key.pem", "-aes256", "-passout", "pass:x", "-out", "encrypted.pem")
    return {name: str(folder / f"{name}.pem") for name in ("cert", "key", "other", "encrypted")}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_token_file_is_read_without_its_trailing_newline(tmp_path):
    path = tmp_path / "token"
    for text in (SECRET, SECRET + "\n", SECRET + "\r\n"):
        path.write_text(text, newline="")
        assert BearerToken.from_file(str(path)).accepts(f"Bearer {SECRET}")
    token = BearerToken.from_file(str(path))
    assert SECRET not in repr(token) and SECRET not in str(token)
    assert repr(token) == f"BearerToken(<hidden>, path='{path}')"


@pytest.mark.parametrize("header, accepted", [
    (f"Bearer {SECRET}", True),
    (f"bearer {SECRET}", True),  # the scheme is case-insensitive (RFC 7235)
    (f"  Bearer   {SECRET}  ", True),
    (None, False),
    ("", False),
    ("Bearer", False),
    ("Bearer ", False),
    (SECRET, False),
    (f"Basic {SECRET}", False),
    (f"Bearer {SECRET}x", False),
    (f"Bearer {SECRET[:-1]}", False),
    (f"Bearer {SECRET.upper()}", False),
    ("Bearer k3y-0f-th3-t3st-servé", False),
    ("Bearer k3y-0f-th3-t3st-serv€", False),  # not latin-1: refused, not an exception
])
def test_accepts_only_the_exact_bearer_token(header, accepted):
    assert BearerToken(SECRET).accepts(header) is accepted


def test_bad_token_files_are_one_line_errors(tmp_path):
    missing = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError) as error:
        BearerToken.from_file(missing)
    assert str(error.value) == (f"token file '{missing}' not found; write one with e.g. "
                                f"'openssl rand -hex 32 > {missing}'.")
    empty = tmp_path / "empty"
    for text in ("", "\n"):
        empty.write_text(text)
        with pytest.raises(ValueError) as error:
            BearerToken.from_file(str(empty))
        assert str(error.value) == (f"token file '{empty}' is empty; write one with e.g. "
                                    f"'openssl rand -hex 32 > {empty}'.")
    spaced = tmp_path / "spaced"
    for text in ("two words", "two\nlines\n", "tok\n\n", "tökén"):
        spaced.write_text(text)
        with pytest.raises(ValueError) as error:
            BearerToken.from_file(str(spaced))
        assert str(error.value) == (
            f"token file '{spaced}' holds spaces, control or non-ASCII characters, which an "
            f"Authorization header cannot carry; write one with e.g. 'openssl rand -hex 32 > "
            f"{spaced}'.")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError) as error:
        BearerToken.from_file(str(binary))
    assert str(error.value) == (f"token file '{binary}' is not text; write one with e.g. "
                                f"'openssl rand -hex 32 > {binary}'.")
    with pytest.raises(ValueError, match="^the token is empty.$"):
        BearerToken("")
    with pytest.raises(OSError, match=r"^cannot read token file '.*' \(Is a directory\); check "
                                      "its permissions.$"):
        BearerToken.from_file(str(tmp_path))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost",
                                  "LOCALHOST"])
def test_loopback_hosts_need_no_token(host):
    assert is_loopback(host)
    assert ServerConfig(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.7", "example.com",
                                  "fe80::1"])
def test_a_non_loopback_host_without_a_token_is_refused(host):
    assert not is_loopback(host)
    with pytest.raises(ValueError) as error:
        ServerConfig(host=host)
    assert str(error.value) == (
        f"refusing to listen on {host} without a token: anyone who reaches it could call the "
        "model; pass --token-file FILE, or --allow-unauthenticated when a proxy or firewall "
        "guards it.")
    assert ServerConfig(host=host, access=AccessConfig(token_file="t")).host == host
    assert ServerConfig(host=host, access=AccessConfig(allow_unauthenticated=True)).host == host


def test_access_config_is_validated():
    message = ("give both --tls-cert and --tls-key (the certificate and its private key) or "
               "neither.")
    with pytest.raises(ValueError, match=re.escape(message)):
        AccessConfig(tls_cert="cert.pem")
    with pytest.raises(ValueError, match=re.escape(message)):
        AccessConfig(tls_key="key.pem")
    with pytest.raises(ValueError, match="token_file must be a file path or None, got ''"):
        AccessConfig(token_file="")
    with pytest.raises(ValueError, match="allow_unauthenticated must be True or False"):
        AccessConfig(allow_unauthenticated="yes")
    with pytest.raises(ValueError, match="access must be an AccessConfig, got"):
        ServerConfig(access={"token_file": "t"})


GUARDED = [("GET", "/v1/models/toy", None), ("GET", "/v1/models/toy/metadata", None),
           ("POST", "/v1/models/toy:predict", {"instances": ["a"]}),
           ("GET", "/monitoring/metrics", None), ("GET", "/v2/unknown", None),
           ("DELETE", "/v1/models/toy", None)]
NO_TOKEN = ("this server needs a token: send 'Authorization: Bearer <token>' with the token in "
            "the server's --token-file.")
BAD_TOKEN = "the bearer token is not accepted; send the token in the server's --token-file."


@pytest.mark.parametrize("method, path, body", GUARDED, ids=[p for _, p, _ in GUARDED])
def test_every_route_needs_the_token(guarded, method, path, body):
    url = guarded.url + path
    for headers, message, challenge in [
            ({}, NO_TOKEN, 'Bearer realm="keras-attention"'),
            ({"Authorization": f"Basic {SECRET}"}, NO_TOKEN, 'Bearer realm="keras-attention"'),
            (bearer(WRONG), BAD_TOKEN, 'Bearer realm="keras-attention", error="invalid_token"')]:
        code, answer, response_headers = call(url, body, method=method, headers=headers)
        assert (code, answer) == (401, {"error": message})
        assert response_headers["WWW-Authenticate"] == challenge
        assert response_headers["Content-Type"] == "application/json"
    code, _, _ = call(url, body, method=method, headers=bearer(SECRET))
    assert code == (404 if path == "/v2/unknown" else 405 if method == "DELETE" else 200)


def test_health_stays_open_for_load_balancers(guarded):
    # /v1/health is served where it is implemented; here: it never asks for the token.
    code, answer, _ = call(guarded.url + "/v1/health")
    assert code != 401 and answer != {"error": NO_TOKEN}


def test_the_token_never_reaches_the_log(toy_dir, token_file):
    log = io.StringIO()
    config = ServerConfig(port=0, access=AccessConfig(token_file=token_file))
    with Server(toy_dir, config, log_stream=log) as running:  # stop() drains: every line is in
        url = running.url + "/v1/models/toy:predict"
        assert call(url, {"instances": ["a"]}, headers=bearer(SECRET))[0] == 200
        assert call(url, {"instances": ["a"]}, headers=bearer(WRONG))[0] == 401
        assert call(url + f"?token={WRONG}", {"instances": ["a"]})[0] == 401
        assert call(running.url + f"/v1/models/{WRONG}", headers=bearer(SECRET))[0] == 404
    # A line is written after its answer is sent, so the next request's may come first.
    records = sorted((json.loads(line) for line in log.getvalue().splitlines()),
                     key=lambda r: r["status"])
    assert [(r["status"], r["path"]) for r in records] == [
        (200, "/v1/models/toy:predict"), (401, "/v1/models/toy:predict"),
        (401, "/v1/models/toy:predict"), (404, f"/v1/models/{WRONG}")]
    assert SECRET not in log.getvalue()
    # Only the 404 shows WRONG: it names the path that was asked for.
    assert [WRONG in json.dumps(r) for r in records] == [False, False, False, True]


def test_tls_serves_https_and_drops_plain_http(toy_dir, certs, token_file):
    access = AccessConfig(token_file=token_file, tls_cert=certs["cert"], tls_key=certs["key"])
    log = io.StringIO()
    with Server(toy_dir, ServerConfig(port=0, access=access), log_stream=log) as running:
        assert running.url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=certs["cert"])
        request = urllib.request.Request(running.url + "/v1/models/toy:predict",
                                         data=json.dumps({"instances": ["ab"]}).encode(),
                                         headers=bearer(SECRET))
        with urllib.request.urlopen(request, context=trusting, timeout=60) as response:
            assert json.loads(response.read()) == {"predictions": [{"outputs": "AB",
                                                                    "lengths": 2}]}
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(running.url + "/v1/models/toy", timeout=60)
        old = ssl.create_default_context(cafile=certs["cert"])
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            urllib.request.urlopen(running.url + "/v1/models/toy", context=old, timeout=60)
        plain = running.url.replace("https://", "http://") + "/v1/models/toy"
        with pytest.raises((urllib.error.URLError, ConnectionError, http_client_errors())):
            urllib.request.urlopen(plain, timeout=60)
        # The server still serves after the failed handshakes.
        with urllib.request.urlopen(urllib.request.Request(
                running.url + "/v1/models/toy", headers=bearer(SECRET)), context=trusting,
                timeout=60) as response:
            assert response.status == 200
        # A dropped connection's line is written by its own thread, maybe after the client
        # gave up: wait (bounded) for the three.
        deadline = time.monotonic() + 60
        while log.getvalue().count('"client"') < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    dropped = [r["error"] for r in records if "client" in r]
    assert len(dropped) == 3 and all(e.startswith("connection dropped: SSLError: ")
                                     for e in dropped), dropped
    assert any("TLSV1_ALERT_UNKNOWN_CA" in e for e in dropped)  # the client refused our cert
    assert any("HTTP_REQUEST" in e for e in dropped)  # plain HTTP on the HTTPS port
    assert sorted((r["method"], r["status"]) for r in records if "method" in r) == [
        ("GET", 200), ("POST", 200)]


def http_client_errors():
    import http.client
    return http.client.HTTPException


def test_tls_file_errors_are_one_line(toy_dir, certs, tmp_path):
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello\n")
    cert, key = certs["cert"], certs["key"]
    cases = [
        (cert, certs["other"], f"TLS key '{certs['other']}' does not match certificate "
                               f"'{cert}'; pass the private key the certificate was made for."),
        (cert, certs["encrypted"], f"TLS key '{certs['encrypted']}' is encrypted; pass an "
                                   f"unencrypted key ('openssl pkey -in {certs['encrypted']} "
                                   "-out plain.key')."),
        (str(not_pem), key, f"TLS certificate '{not_pem}' is not a PEM certificate (no "
                            "'-----BEGIN CERTIFICATE-----' line); pass one with --tls-cert."),
        (cert, str(not_pem), f"TLS key '{not_pem}' is not a PEM key (no 'PRIVATE KEY-----' "
                             "line); pass one with --tls-key."),
        (key, key, f"TLS certificate '{key}' is not a PEM certificate (no "
                   "'-----BEGIN CERTIFICATE-----' line); pass one with --tls-cert."),
        (str(tmp_path / "none.pem"), key, f"TLS certificate '{tmp_path / 'none.pem'}' not "
                                          "found; pass a PEM file with --tls-cert."),
        (cert, str(tmp_path / "none.pem"), f"TLS key '{tmp_path / 'none.pem'}' not found; "
                                           "pass a PEM file with --tls-key."),
    ]
    for tls_cert, tls_key, message in cases:
        config = ServerConfig(port=0, access=AccessConfig(tls_cert=tls_cert, tls_key=tls_key))
        with pytest.raises(OSError if "not found" in message else ValueError) as error:
            Server(toy_dir, config, log_stream=io.StringIO())
        assert str(error.value) == message


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_cli_refuses_an_open_network_bind_and_bad_access_files(toy_dir, tmp_path):
    result = invoke("serve", toy_dir, "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 1
    assert result.output == (
        "Error: refusing to listen on 0.0.0.0 without a token: anyone who reaches it could "
        "call the model; pass --token-file FILE, or --allow-unauthenticated when a proxy or "
        "firewall guards it.\n")
    result = invoke("serve", toy_dir, "--port", "0", "--tls-cert", "c.pem")
    assert result.exit_code == 1
    assert result.output == ("Error: give both --tls-cert and --tls-key (the certificate and its "
                             "private key) or neither.\n")
    missing = str(tmp_path / "token")
    result = invoke("serve", toy_dir, "--port", "0", "--token-file", missing)
    assert result.exit_code == 1
    assert result.output == (f"Error: token file '{missing}' not found; write one with e.g. "
                             f"'openssl rand -hex 32 > {missing}'.\n")
    result = invoke("serve", toy_dir, "--read-timeout", "0")
    assert result.exit_code == 2 and "--read-timeout" in result.output


def test_cli_help_lists_the_access_options():
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    for flag in ("--token-file", "--tls-cert", "--tls-key", "--allow-unauthenticated",
                 "--read-timeout"):
        assert flag in result.output


def test_cli_banner_curl_reads_the_token_file_and_works(toy_dir, token_file, certs,
                                                        monkeypatch):
    answers = []

    def serve_once(self):
        self.start()  # a background thread instead, so stop() also shuts it down
        answers.append(self.url)
        raise KeyboardInterrupt

    monkeypatch.setattr(Server, "serve_forever", serve_once)
    result = invoke("serve", toy_dir, "--port", "0", "--host", "0.0.0.0", "--token-file",
                    token_file, "--tls-cert", certs["cert"], "--tls-key", certs["key"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    curl = result.output.splitlines()[1]
    endpoint = f"{answers[0]}/v1/models/toy"
    assert endpoint.startswith("https://0.0.0.0:")
    assert curl == ("try: curl -d '{\"instances\": [\"the first of may two thousand and nine\"]}' "
                    f"{endpoint}:predict -H \"Authorization: Bearer $(cat {token_file})\" "
                    f"--cacert {certs['cert']}")


def test_the_printed_curl_runs_against_a_guarded_https_server(toy_dir, token_file, certs,
                                                              monkeypatch):
    echoed, answers = [], []
    echo = click.echo

    def recording_echo(message=None, **kwargs):
        echoed.append(message)
        echo(message, **kwargs)

    def serve_and_curl(self):
        self.start()
        command = echoed[1].removeprefix("try: ") + " --silent --show-error --max-time 60"
        answers.append(subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                                      timeout=90))
        raise KeyboardInterrupt

    monkeypatch.setattr(click, "echo", recording_echo)
    monkeypatch.setattr(Server, "serve_forever", serve_and_curl)
    result = invoke("serve", toy_dir, "--port", "0", "--token-file", token_file,
                    "--tls-cert", certs["cert"], "--tls-key", certs["key"])
    assert result.exit_code == 0, result.output
    assert json.loads(answers[0].stdout) == {"predictions": [{
        "outputs": "THE FIRST OF MAY TWO THOUSAND AND NINE", "lengths": 38}]}, answers[0].stderr


def test_grpc_needs_the_token_and_serves_tls_with_the_same_certificate(toy_dir, certs,
                                                                          token_file):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    import tensorflow as tf

    access = AccessConfig(token_file=token_file, tls_cert=certs["cert"], tls_key=certs["key"])
    config = ServerConfig(port=0, grpc_port=0, access=access)
    with Server(toy_dir, config, log_stream=io.StringIO()) as running:
        with open(certs["cert"], "rb") as stream:
            trusted = grpc.ssl_channel_credentials(root_certificates=stream.read())
        address = running.grpc_address.replace("127.0.0.1", "localhost")
        with grpc.secure_channel(address, trusted) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "toy"
            request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(["ab"]))
            for metadata in (None, [("authorization", f"Bearer {WRONG}")]):
                with pytest.raises(grpc.RpcError) as refused:
                    stub.Predict(request, timeout=60, metadata=metadata)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert refused.value.details() == (
                    "missing or wrong bearer token; send the metadata ('authorization', "
                    "'Bearer <the --token-file token>').")
            response = stub.Predict(request, timeout=60,
                                    metadata=[("authorization", f"Bearer {SECRET}")])
            assert tf.make_ndarray(response.outputs["outputs"]).tolist() == [b"AB"]
        with grpc.insecure_channel(running.grpc_address) as plain:
            with pytest.raises(grpc.RpcError) as dropped:
                prediction_service_pb2_grpc.PredictionServiceStub(plain).Predict(
                    request, timeout=10, metadata=[("authorization", f"Bearer {SECRET}")])
            assert dropped.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_printed_grpc_client_sends_the_token_and_trusts_the_certificate(toy_dir, certs,
                                                                             token_file):
    from keras_attention.serving.grpc_service import client_example

    access = AccessConfig(token_file=token_file, tls_cert=certs["cert"], tls_key=certs["key"])
    with Server(toy_dir, ServerConfig(port=0, grpc_port=0, access=access),
                log_stream=io.StringIO()) as running:
        code = client_example(running.grpc_address, running.model, "ab", access)
        assert SECRET not in code  # read from the file when it runs, never printed
        printed = []
        exec(code, {"print": printed.append})  # the program the banner prints
    assert list(printed[0].outputs["lengths"].int_val) == [2]
