"""Load test of ``keras-attention serve``, batched vs unbatched, concurrent clients; prints JSON.

Starts two ``keras_attention.serving.Server``s on free ports in this process
(background threads): one with dynamic batching (``--max-batch-size``,
``--batch-timeout-ms``, ``--num-batch-threads``), one without. For each
``--clients`` count, the unbatched then the batched server get
``--requests`` row-format predict requests in total from that many client
threads over ``urllib`` (a new connection each, as simple clients do), one
generated date per request (``keras_attention.data.date_pairs``), after
``--warmup`` untimed ones; ``--rounds`` times over, interleaved, each row
giving the medians (these machines are shared and noisy). Each row reports
errors (must be 0) and their kinds, requests/s, client-side p50/p90/p99
latency, the server's mean latency (its ``/monitoring/metrics`` sum over the
timed requests), the mean rows per signature call (batched) and the exact
match of the served outputs with the references; ``ratios`` gives batched /
unbatched requests/s and p99 per client count.

The clients share this process (and its GIL) with the servers, so the
figures include the client side's Python time too; ``--client-process``
runs them in a process of their own (``_load_client.py``, no TensorFlow).

The model is ``--model`` (default ``saved_models/demo``); when it does not
exist, ``keras-attention demo`` trains and exports one into a temporary
folder first (``--demo-train-size``, ``--demo-epochs``).

    python benchmarks/serve_load.py [--model saved_models/demo] [--clients 1 8 32] [--requests 300]
        [--rounds 3] [--max-batch-size 32] [--batch-timeout-ms 1]
"""

import argparse
import collections
import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import _load_client
from _common import REPOSITORY, machine, progress

import numpy as np
import tensorflow as tf

from keras_attention.data import date_pairs
from keras_attention.serving import RequestBatching, Server, ServerConfig


ERRORS = collections.Counter()  # client-side failures by kind, per row


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


def run_load(url, texts, clients, client_process):
    """``(results, seconds)`` of ``_load_client.run_load``, in this process
    or (``client_process``) in a separate Python process without TensorFlow,
    so the clients' Python does not take the server's GIL."""
    if not client_process:
        return _load_client.run_load(url, texts, clients, ERRORS)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_load_client.py")
    done = subprocess.run([sys.executable, script], input=json.dumps(
        {"url": url, "texts": texts, "clients": clients}), capture_output=True, text=True,
        check=True)
    answer = json.loads(done.stdout)
    ERRORS.update(answer["errors"])
    return [tuple(result) for result in answer["results"]], answer["seconds"]


def load_row(server, texts, targets, clients, warmup, client_process):
    """One row of the table: ``clients`` threads sending ``texts`` to ``server``."""
    url = f"{server.url}/v1/models/{server.model.name}:predict"
    run_load(url, warmup, clients, client_process)
    sizes = []
    if server.model.batcher is not None:
        server.model.batcher.on_batch = lambda signature, size: sizes.append(size)
    ERRORS.clear()
    before = server.metrics.snapshot()
    results, seconds = run_load(url, texts, clients, client_process)
    after = server.metrics.snapshot()
    if server.model.batcher is not None:
        server.model.batcher.on_batch = None
    server_ms = after["latency_ms"]["sum"] - before["latency_ms"]["sum"]
    served = after["requests_total"] - before["requests_total"]
    latencies = np.array([latency for latency, output in results if output is not None])
    outputs = [output for _, output in results]
    correct = sum(output == target for output, target in zip(outputs, targets))
    return {
        "mode": "batched" if server.model.batcher is not None else "unbatched",
        "clients": clients,
        "requests": len(texts),
        "errors": sum(output is None for output in outputs),
        "error_kinds": dict(ERRORS),
        "server_errors": after["errors_total"] - before["errors_total"],
        "seconds": round(seconds, 3),
        "requests_per_s": round(len(texts) / seconds, 1),
        "latency_ms": {q: round(float(np.percentile(latencies, int(q[1:]))), 2)
                       for q in ("p50", "p90", "p99")} if len(latencies) else None,
        "server_mean_latency_ms": round(server_ms / max(1, served), 2),
        "mean_batch_rows": round(float(np.mean(sizes)), 2) if sizes else None,
        "exact_match": round(correct / len(texts), 4),
    }


def median_row(rounds):
    """One row from several rounds: medians of the rates and latencies, sums of errors."""
    row = dict(rounds[0])
    median = lambda values: round(float(np.median(values)), 2)  # noqa: E731
    row["rounds"] = len(rounds)
    for key in ("errors", "server_errors"):
        row[key] = sum(r[key] for r in rounds)
    row["error_kinds"] = dict(sum((collections.Counter(r["error_kinds"]) for r in rounds),
                                  collections.Counter()))
    row["requests_per_s"] = median([r["requests_per_s"] for r in rounds])
    row["requests_per_s_rounds"] = [r["requests_per_s"] for r in rounds]
    latencies = [r["latency_ms"] for r in rounds if r["latency_ms"]]
    row["latency_ms"] = {q: median([lat[q] for lat in latencies])
                         for q in ("p50", "p90", "p99")} if latencies else None
    row["server_mean_latency_ms"] = median([r["server_mean_latency_ms"] for r in rounds])
    sizes = [r["mean_batch_rows"] for r in rounds if r["mean_batch_rows"] is not None]
    row["mean_batch_rows"] = median(sizes) if sizes else None
    row["exact_match"] = median([r["exact_match"] for r in rounds])
    del row["seconds"]
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(REPOSITORY, "saved_models", "demo"))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per row")
    parser.add_argument("--warmup", type=int, default=16, help="untimed requests first")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; each row gives their medians")
    parser.add_argument("--max-batch-size", type=int, default=RequestBatching.max_batch_size)
    parser.add_argument("--batch-timeout-ms", type=float,
                        default=RequestBatching.batch_timeout_ms)
    parser.add_argument("--num-batch-threads", type=int,
                        default=RequestBatching.num_batch_threads)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--client-process", action="store_true",
                        help="run the clients in a separate process (no shared GIL)")
    parser.add_argument("--demo-train-size", type=int, default=2000)
    parser.add_argument("--demo-epochs", type=int, default=2)
    args = parser.parse_args()
    batching = RequestBatching(max_batch_size=args.max_batch_size,
                               batch_timeout_ms=args.batch_timeout_ms,
                               num_batch_threads=args.num_batch_threads)

    rows = []
    with tempfile.TemporaryDirectory() as scratch, open(os.devnull, "w") as log:
        model = args.model
        trained_here = not os.path.isdir(model)
        if trained_here:
            model = demo_model(scratch, args.demo_train_size, args.demo_epochs)
        pairs = date_pairs(args.requests + args.warmup, seed=args.seed)
        warmup = [s for s, _ in pairs[: args.warmup]]
        texts, targets = zip(*pairs[args.warmup :])
        with Server(model, ServerConfig(port=0, batching=None), log_stream=log) as unbatched, \
                Server(model, ServerConfig(port=0, batching=batching), log_stream=log) as batched:
            for _ in range(args.rounds):
                for clients in args.clients:
                    for server in (unbatched, batched):
                        rows.append(load_row(server, list(texts), targets, clients, warmup,
                                             args.client_process))
                        progress(json.dumps(rows[-1]))
            path = batched.model.path

    rows = [median_row([r for r in rows if r["clients"] == clients and r["mode"] == mode])
            for clients in args.clients for mode in ("unbatched", "batched")]
    ratios = {}
    for clients in args.clients:
        plain, merged = (next(r for r in rows if r["clients"] == clients and r["mode"] == mode)
                         for mode in ("unbatched", "batched"))
        ratios[str(clients)] = {
            "requests_per_s": round(merged["requests_per_s"] / plain["requests_per_s"], 2),
            "p99": round(merged["latency_ms"]["p99"] / plain["latency_ms"]["p99"], 2)
            if merged["latency_ms"] and plain["latency_ms"] else None,
        }
    errors = sum(r["errors"] + r["server_errors"] for r in rows)
    print(json.dumps({
        "benchmark": "serve_load",
        "model": os.path.relpath(path, REPOSITORY) if not trained_here
        else f"demo trained here ({args.demo_train_size} pairs, {args.demo_epochs} epochs)",
        "batching": dataclasses.asdict(batching),
        "instances_per_request": 1,
        "client_process": args.client_process,
        "rows": rows,
        "ratios_batched_over_unbatched": ratios,
        "errors": errors,
        "device": "cpu",
        **machine(tf),
    }, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
