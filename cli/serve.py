"""``keras-attention serve``: a local TF Serving REST API for an exported model."""

import json
import shlex

import click

from cli.errors import user_errors


@click.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 exposes the server to the network (then "
                   "--token-file or --allow-unauthenticated is needed).")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (TF Serving's REST port); 0 picks a free one.")
@click.option("--name", default=None,
              help="Model name in the URLs.  [default: the model folder's name]")
@click.option("--max-body-bytes", default=1 << 20, show_default=True, type=click.IntRange(min=1),
              help="Largest request body (413 above it) or gRPC message accepted.")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(min=1),
              help="Most instances in one predict request (413 above it).")
@click.option("--max-string-length", default=4096, show_default=True,
              type=click.IntRange(min=1), help="Most characters in one input string.")
@click.option("--log-text", is_flag=True,
              help="Also log each predict request's inputs and outputs and full error "
                   "messages, with e-mail addresses as <email> and runs of 2+ digits as "
                   "<digits>. Off, the log holds no input or output text.")
@click.option("--health-max-error-rate", default=None,
              type=click.FloatRange(0, 1, max_open=True),
              help="GET /v1/health answers 503 degraded when the share of 5xx answers "
                   "(4xx do not count) in the window is above this.  [default: no limit]")
@click.option("--health-max-p99-ms", default=None, type=click.FloatRange(0, min_open=True),
              help="GET /v1/health answers 503 degraded when the p99 latency in the window "
                   "is above this many milliseconds.  [default: no limit]")
@click.option("--health-window-seconds", default=60.0, show_default=True,
              type=click.FloatRange(0, min_open=True),
              help="The health window: requests answered in the last this many seconds.")
@click.option("--grpc-port", default=None, type=click.IntRange(0, 65535),
              help="Also serve TF Serving's gRPC PredictionService (Predict, GetModelMetadata) "
                   "on this port (TF Serving uses 8500); 0 picks a free one.  [default: off]")
@click.option("--poll-seconds", default=10.0, show_default=True, type=click.FloatRange(min=0),
              help="Check MODEL_DIR this often for a new version folder: it is loaded "
                   "(warmup included) while the old one serves, then replaces it without a "
                   "restart; 0 never checks (nor for a version folder).")
@click.option("--read-timeout", default=30.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds a connection may stay silent, and the most a request body may take "
                   "(408); a stalled client is dropped.")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding a bearer token: every request but /v1/health must send "
                   "'Authorization: Bearer <token>' (401 otherwise).")
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None,
              help="PEM certificate to serve HTTPS with (with --tls-key); or put a TLS proxy "
                   "in front.")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None,
              help="The certificate's unencrypted PEM private key.")
@click.option("--allow-unauthenticated", is_flag=True,
              help="Listen on a non-loopback --host without --token-file (a proxy or firewall "
                   "guards the server).")
@user_errors
def serve(model_dir, host, port, name, max_body_bytes, max_batch, max_string_length, log_text,
          health_max_error_rate, health_max_p99_ms, health_window_seconds, grpc_port,
          poll_seconds, read_timeout, token_file, tls_cert, tls_key, allow_unauthenticated):
    """Serve an exported SavedModel over the TF Serving REST API.

    MODEL_DIR is a model folder such as saved_models/demo (its highest
    numbered version is served; a newer one is picked up while serving,
    see --poll-seconds). Endpoints: GET /v1/models/NAME (status),
    GET /v1/models/NAME/metadata, POST /v1/models/NAME:predict with
    {"instances": [...]} or {"inputs": ...}, GET /monitoring/metrics (JSON
    counters), GET /monitoring/prometheus/metrics (Prometheus text), GET
    /v1/health (ok or degraded). One JSON log line per request goes to
    stderr; Ctrl-C or SIGTERM stops (requests being handled finish first).
    String inputs may be {"b64": "<base64>"} (bytes); string outputs named
    *_bytes come back so. --grpc-port adds TF Serving's gRPC API, for
    tensorflow_serving.apis.prediction_service_pb2_grpc.PredictionServiceStub.

    \b
    Example:
      keras-attention serve saved_models/demo --port 8501
      curl -d '{"instances": ["12 dec 1999"]}' localhost:8501/v1/models/demo:predict
      keras-attention serve saved_models/demo --grpc-port 8500
    """
    from keras_attention.serving import AccessConfig, HealthConfig, Server, ServerConfig
    from keras_attention.serving.signals import stop_on_signals

    # SIGINT and SIGTERM stop the server, also one started with SIGINT ignored (cmd & in a script).
    click.get_current_context().with_resource(stop_on_signals())
    health = HealthConfig(max_error_rate=health_max_error_rate, max_p99_ms=health_max_p99_ms,
                          window_seconds=health_window_seconds)
    access = AccessConfig(token_file=token_file, tls_cert=tls_cert, tls_key=tls_key,
                          allow_unauthenticated=allow_unauthenticated)
    config = ServerConfig(host=host, port=port, max_body_bytes=max_body_bytes,
                          max_batch=max_batch, max_string_length=max_string_length,
                          health=health, log_text=log_text, grpc_port=grpc_port,
                          poll_seconds=poll_seconds, read_timeout=read_timeout, access=access)
    server = Server(model_dir, config, name=name)
    model = server.model
    endpoint = f"{server.url}/v1/models/{model.name}"
    body = json.dumps({"instances": ["the first of may two thousand and nine"]})
    click.echo(f"serving '{model.name}' version {model.version} from {model.path} at {endpoint}")
    click.echo(f"try: curl -d '{body}' {endpoint}:predict{_curl_options(token_file, tls_cert)}")
    if server.grpc_address is not None:
        from keras_attention.serving.grpc_service import client_example

        code = client_example(server.grpc_address, model, json.loads(body)["instances"][0])
        click.echo(f"gRPC (TF Serving's PredictionService) at {server.grpc_address}")
        click.echo(f'try: python -c "{code}"')
    click.echo("Ctrl-C stops the server.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    click.echo("stopped.")


def _curl_options(token_file, tls_cert):
    """The banner's curl options for a token (read by the shell, never printed) and TLS."""
    options = ""
    if token_file is not None:
        options += f' -H "Authorization: Bearer $(cat {shlex.quote(token_file)})"'
    if tls_cert is not None:
        options += f" --cacert {shlex.quote(tls_cert)}"
    return options
