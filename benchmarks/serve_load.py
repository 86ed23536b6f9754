"""Load test of ``keras-attention serve``: concurrent clients, one sentence each; prints JSON.

Starts ``keras_attention.serving.Server`` on a free port in this
process (a background thread), then ``--clients`` threads send
``--requests`` row-format predict requests in total over ``urllib`` (a new
connection each, as simple clients do), one generated date per
request (``keras_attention.data.date_pairs``). Reports errors (must be 0),
requests/s, client-side p50/p90/p99 latency, the server's mean latency (its
``/monitoring/metrics`` sum over the timed requests), and
the exact match of the served outputs with the references.

The model is ``--model`` (default ``saved_models/demo``); when it does not
exist, ``keras-attention demo`` trains and exports one into a temporary
folder first (``--demo-train-size``, ``--demo-epochs``).

    python benchmarks/serve_load.py [--model saved_models/demo] [--clients 8] [--requests 500]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from _common import REPOSITORY, machine

import numpy as np
import tensorflow as tf

from keras_attention.data import date_pairs
from keras_attention.serving import Server, ServerConfig

def demo_model(directory, train_size, epochs):
    """Train and export the demo model into ``directory``; returns its path."""
    output = os.path.join(directory, "demo")
    result = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--output", output, "--train-size", str(train_size),
         "--epochs", str(epochs), "--min-accuracy", "0"],
        cwd=REPOSITORY, stdout=sys.stderr, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if result.returncode != 0:
        raise SystemExit(f"'keras-attention demo' failed (exit {result.returncode}, see above); "
                         "pass an exported model with --model.")
    return output


def predict(url, text):
    """``(latency_ms, output or None)`` of one row-format request."""
    body = json.dumps({"instances": [text]}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            prediction = json.loads(response.read())["predictions"][0]
    except (urllib.error.URLError, OSError, KeyError, ValueError):
        return (time.perf_counter() - started) * 1000.0, None
    latency = (time.perf_counter() - started) * 1000.0
    return latency, prediction["outputs"] if isinstance(prediction, dict) else prediction


def run_load(url, texts, clients):
    results = [None] * len(texts)

    def client(worker):
        for i in range(worker, len(texts), clients):
            results[i] = predict(url, texts[i])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(REPOSITORY, "saved_models", "demo"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=16, help="untimed requests first")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--demo-train-size", type=int, default=4000)
    parser.add_argument("--demo-epochs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        trained_here = not os.path.isdir(model)
        if trained_here:
            model = demo_model(scratch, args.demo_train_size, args.demo_epochs)
        pairs = date_pairs(args.requests + args.warmup, seed=args.seed)
        warmup, timed = pairs[: args.warmup], pairs[args.warmup :]
        with open(os.devnull, "w") as log, Server(model, ServerConfig(port=0),
                                                   log_stream=log) as server:
            url = f"{server.url}/v1/models/{server.model.name}:predict"
            run_load(url, [s for s, _ in warmup], args.clients)
            before = server.metrics.snapshot()
            results, seconds = run_load(url, [s for s, _ in timed], args.clients)
            after = server.metrics.snapshot()

    server_ms = after["latency_ms"]["sum"] - before["latency_ms"]["sum"]
    served = after["requests_total"] - before["requests_total"]
    latencies = np.array([latency for latency, output in results if output is not None])
    outputs = [output for _, output in results]
    errors = sum(output is None for output in outputs)
    correct = sum(output == target for output, (_, target) in zip(outputs, timed))
    print(json.dumps({
        "benchmark": "serve_load",
        "model": os.path.relpath(server.model.path, REPOSITORY) if not trained_here
        else f"demo trained here ({args.demo_train_size} pairs, {args.demo_epochs} epochs)",
        "clients": args.clients,
        "requests": len(timed),
        "instances_per_request": 1,
        "errors": errors,
        "server_errors": after["errors_total"] - before["errors_total"],
        "seconds": round(seconds, 3),
        "requests_per_s": round(len(timed) / seconds, 1),
        "latency_ms": {q: round(float(np.percentile(latencies, int(q[1:]))), 2)
                       for q in ("p50", "p90", "p99")} if len(latencies) else None,
        "server_mean_latency_ms": round(server_ms / max(1, served), 2),
        "exact_match": round(correct / len(timed), 4),
        "device": "cpu",
        **machine(tf),
    }, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
