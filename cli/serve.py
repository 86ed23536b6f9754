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
              help="Most instances in one predict request (413 above it); "
                   "--max-batch-size limits a merged call.")
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
@click.option("--batching/--no-batching", default=True, show_default=True,
              help="Dynamic batching: merge concurrent requests of a signature into one "
                   "model call (grouped by input length), split back per request.")
@click.option("--max-batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Dynamic batching: most instances in one merged model call, from all "
                   "concurrent requests together (capped at the export's own max batch "
                   "size); --max-batch limits one request.")
@click.option("--batch-timeout-ms", default=1.0, show_default=True,
              type=click.FloatRange(min=0),
              help="Dynamic batching: longest a merged call waits for more requests.")
@click.option("--num-batch-threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="Dynamic batching: merged calls run at the same time.")
@user_errors
def serve(model_dir, name, **settings):
    """Serve an exported SavedModel over the TF Serving REST API.

    MODEL_DIR is a model folder such as saved_models/demo (its highest
    numbered version is served; a newer one is picked up while serving,
    see --poll-seconds). Endpoints: GET /v1/models/NAME (status),
    GET /v1/models/NAME/metadata, POST /v1/models/NAME:predict with
    {"instances": [...]} or {"inputs": ...}, GET /monitoring/metrics (JSON
    counters), GET /monitoring/prometheus/metrics (Prometheus text), GET
    /v1/health (ok or degraded). One JSON log line per request goes to
    stderr; Ctrl-C or SIGTERM stops (requests being handled finish first).
    Concurrent requests are merged into one model call (--no-batching turns
    it off). String inputs may be {"b64": "<base64>"} (bytes); string
    outputs named *_bytes come back so. --grpc-port adds TF Serving's gRPC
    API, for tensorflow_serving.apis.prediction_service_pb2_grpc.PredictionServiceStub.

    \b
    Example:
      keras-attention serve saved_models/demo --port 8501
      curl -d '{"instances": ["12 dec 1999"]}' localhost:8501/v1/models/demo:predict
      keras-attention serve saved_models/demo --grpc-port 8500
      keras-attention serve saved_models/demo --host 0.0.0.0 --token-file token
      keras-attention serve saved_models/demo --tls-cert cert.pem --tls-key key.pem
    """
    from keras_attention.serving import Server
    from keras_attention.serving.signals import stop_on_signals

    # SIGINT and SIGTERM stop the server, also one started with SIGINT ignored (cmd & in a script).
    click.get_current_context().with_resource(stop_on_signals())
    config = _server_config(settings)
    server = Server(model_dir, config, name=name)
    model = server.model
    endpoint = f"{server.url}/v1/models/{model.name}"
    body = json.dumps({"instances": ["the first of may two thousand and nine"]})
    click.echo(f"serving '{model.name}' version {model.version} from {model.path} at {endpoint}")
    click.echo(f"try: curl -d '{body}' {endpoint}:predict{_curl_options(config.access)}")
    if server.grpc_address is not None:
        from keras_attention.serving.grpc_service import client_example

        code = client_example(server.grpc_address, model, json.loads(body)["instances"][0],
                              config.access)
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


def _curl_options(access):
    """The banner's curl options for a token (read by the shell, never printed) and TLS."""
    options = ""
    if access.token_file is not None:
        options += f' -H "Authorization: Bearer $(cat {shlex.quote(access.token_file)})"'
    if access.tls_cert is not None:
        options += f" --cacert {shlex.quote(access.tls_cert)}"
    return options


def _server_config(settings):
    """The ``ServerConfig`` of the command's options, grouped as its parts are."""
    from keras_attention.serving import AccessConfig, HealthConfig, RequestBatching, ServerConfig

    def take(*names):
        return {key: settings.pop(key) for key in names}

    health = take("health_max_error_rate", "health_max_p99_ms", "health_window_seconds")
    access = take("token_file", "tls_cert", "tls_key", "allow_unauthenticated")
    batching = take("batching", "max_batch_size", "batch_timeout_ms", "num_batch_threads")
    merged = RequestBatching(**batching) if batching.pop("batching") else None
    return ServerConfig(**settings, batching=merged, access=AccessConfig(**access),
                        health=HealthConfig(**{key.removeprefix("health_"): value
                                               for key, value in health.items()}))
