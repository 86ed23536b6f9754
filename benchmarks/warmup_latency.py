"""First-request latency of a served export with and without its warmup records; prints JSON.

TF Serving (and ``keras-attention serve``) runs an export's
``assets.extra/tf_serving_warmup_requests`` once at load, before the version
is AVAILABLE. This measures what that buys: in fresh processes (no caches
shared), ``ServedModel`` loads the export (replaying the records when they
are there), then times its first and second predict request of one input.
"with_warmup" is the export as written, "without_warmup" a copy without
``assets.extra/``; each is run ``--runs`` times and the medians reported.

The export is ``--model`` (an export folder with warmup records), else an
untrained tiny Transformer on date vocabularies exported here (greedy, or
``--beam-size N``; ``--xla`` compiles the search: its first request of a
shape bucket compiles for seconds).

    python benchmarks/warmup_latency.py [--model saved_models/demo] [--runs 3] [--xla]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from _common import REPOSITORY, machine, progress

import tensorflow as tf

from keras_attention.export import resolve_version
from keras_attention.export.warmup import WARMUP_FILE

PROBE = "the twenty third of march nineteen ninety four"
_TIMED = """
import json, sys, time
started = time.perf_counter()
from keras_attention.serving import ServedModel
model = ServedModel(sys.argv[1])
loaded = time.perf_counter()
times = []
for _ in range(2):
    t = time.perf_counter()
    model.predict({"instances": [sys.argv[2]]})
    times.append((time.perf_counter() - t) * 1000.0)
print(json.dumps({"load_s": loaded - started, "warmup_requests": model.warmup_requests,
                  "first_ms": times[0], "second_ms": times[1]}))
"""


def export_tiny(directory, beam_size, xla):
    """An untrained tiny Transformer (date vocabularies) exported to ``directory``."""
    import keras

    from keras_attention.data import CharacterTokenizer, WordTokenizer, date_pairs
    from keras_attention.decoding import DecodingConfig
    from keras_attention.export import TextToTextModule, export_saved_model
    from keras_attention.models import Transformer

    keras.utils.set_random_seed(7)
    pairs = date_pairs(500, seed=3)
    source = WordTokenizer.build([s for s, _ in pairs])
    target = CharacterTokenizer.build([t for _, t in pairs])
    model = Transformer.from_preset(
        "tiny", encoder_vocabulary_size=source.vocabulary_size,
        decoder_vocabulary_size=target.vocabulary_size, max_sequence_length=32)
    config = (DecodingConfig(strategy="beam", beam_size=beam_size) if beam_size
              else DecodingConfig(strategy="greedy"))
    module = TextToTextModule(model, source, target, config=config, max_batch_size=16,
                              jit_compile=xla)
    return export_saved_model(module, directory, warmup_inputs=[s for s, _ in pairs[:50]])


def timed_run(path):
    result = subprocess.run([sys.executable, "-c", _TIMED, path, PROBE], capture_output=True,
                            text=True, cwd=REPOSITORY,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), check=False)
    if result.returncode != 0:
        raise SystemExit(f"the timed process failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an export with warmup records")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--beam-size", type=int, default=None)
    parser.add_argument("--xla", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        if args.model:
            warm = resolve_version(args.model)
            if not os.path.exists(os.path.join(warm, WARMUP_FILE)):
                raise SystemExit(f"'{warm}' has no {WARMUP_FILE}; export it again.")
            model = os.path.relpath(warm, REPOSITORY)
        else:
            progress("exporting an untrained tiny model")
            warm = export_tiny(os.path.join(scratch, "tiny"), args.beam_size, args.xla)
            strategy = f"beam {args.beam_size}" if args.beam_size else "greedy"
            model = f"untrained tiny, {strategy}" + (", XLA" if args.xla else "")
        cold = os.path.join(scratch, "cold")
        shutil.copytree(warm, cold)
        shutil.rmtree(os.path.join(cold, "assets.extra"))
        figures = {}
        for name, path in (("with_warmup", warm), ("without_warmup", cold)):
            runs = []
            for run in range(args.runs):
                progress(f"{name}: run {run + 1}/{args.runs}")
                runs.append(timed_run(path))
            figures[name] = {key: round(statistics.median(r[key] for r in runs), 3)
                             for key in ("load_s", "first_ms", "second_ms")}
            figures[name]["warmup_requests"] = runs[0]["warmup_requests"]
    print(json.dumps({
        "benchmark": "warmup_latency",
        "model": model,
        "runs": args.runs,
        **figures,
        "first_request_speedup": round(figures["without_warmup"]["first_ms"]
                                       / figures["with_warmup"]["first_ms"], 1),
        "device": "cpu",
        **machine(tf),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
