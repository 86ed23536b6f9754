"""``keras-attention serve``: a local TF Serving REST API for an exported model."""

import json

import click

from cli.errors import user_errors


@click.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 exposes the server to the network.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (TF Serving's REST port); 0 picks a free one.")
@click.option("--name", default=None,
              help="Model name in the URLs.  [default: the model folder's name]")
@click.option("--max-body-bytes", default=1 << 20, show_default=True, type=click.IntRange(min=1),
              help="Largest request body accepted (413 above it).")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(min=1),
              help="Most instances in one predict request (413 above it); "
                   "--max-batch-size limits a merged call.")
@click.option("--max-string-length", default=4096, show_default=True,
              type=click.IntRange(min=1), help="Most characters in one input string.")
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
def serve(model_dir, host, port, name, max_body_bytes, max_batch, max_string_length, batching,
          max_batch_size, batch_timeout_ms, num_batch_threads):
    """Serve an exported SavedModel over the TF Serving REST API.

    MODEL_DIR is a model folder such as saved_models/demo (its highest
    numbered version is served). Endpoints: GET /v1/models/NAME (status),
    GET /v1/models/NAME/metadata, POST /v1/models/NAME:predict with
    {"instances": [...]} or {"inputs": ...}, GET /monitoring/metrics (JSON
    counters). One JSON log line per request goes to stderr; Ctrl-C stops.
    Concurrent requests are merged into one model call (--no-batching turns
    it off).

    \b
    Example:
      keras-attention serve saved_models/demo --port 8501
      curl -d '{"instances": ["12 dec 1999"]}' localhost:8501/v1/models/demo:predict
    """
    from keras_attention.serving import RequestBatching, Server, ServerConfig

    merged = RequestBatching(max_batch_size=max_batch_size, batch_timeout_ms=batch_timeout_ms,
                             num_batch_threads=num_batch_threads) if batching else None
    config = ServerConfig(host=host, port=port, max_body_bytes=max_body_bytes,
                          max_batch=max_batch, max_string_length=max_string_length,
                          batching=merged)
    server = Server(model_dir, config, name=name)
    model = server.model
    endpoint = f"{server.url}/v1/models/{model.name}"
    body = json.dumps({"instances": ["the first of may two thousand and nine"]})
    click.echo(f"serving '{model.name}' version {model.version} from {model.path} at {endpoint}")
    click.echo(f"try: curl -d '{body}' {endpoint}:predict")
    click.echo("Ctrl-C stops the server.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    click.echo("stopped.")
