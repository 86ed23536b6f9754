"""Decoding speed on real text: ours vs CTranslate2 on the same weights; prints JSON.

The real-text mode of ``decode_speed.py``. For a trained model folder and a
test set (default: Multi30k test2016 en->de, 1,000 sentences), in one run:

- ``ours``: ``TextGenerator`` (one ``tf.function`` per batch shape);
- ``ours_xla``: the same compiled with XLA (``--xla``);
- ``saved_model``: the string-in/string-out export (``SavedModelTranslator``),
  exported for each search into a temporary folder; ``saved_model_xla``: the
  same exported with XLA inside the graph (``export --xla``);
- ``tflite``: the ids -> ids TFLite export (float32, ``TFLiteDecoder``, one
  interpreter call per sentence, tokenizing in Python), at batch 1 only;
- ``ctranslate2_fp32`` / ``ctranslate2_int8``: ``export_ctranslate2`` of the
  same weights (``--quantize none`` / ``int8``), decoded by
  ``CTranslate2Translator`` with our tokenizers on ``--threads`` threads;

each with greedy search and beam search (``--beam-size``, length penalty
0.6), at batch 32 over the first ``--sentences`` test sentences and at
batch 1 over the first ``--batch1-sentences``. Each path runs in its own
Python process, one after the other (in one process, CTranslate2 decoding
after TensorFlow decoding ran 2-3x slower). Every figure is warm: each
batch is decoded once untimed first (tracing, XLA compilation), then the
whole set is timed once. Reported per path: sentences/s, ms/sentence,
sacreBLEU against the references, words per output and how many outputs
equal ``ours``; and
the ratios ``ours / ctranslate2_fp32`` (sentences/s), with the machine's
float32 matmul peak measured in the same run.

    python benchmarks/decode_speed_text.py --model runs/m30k/model \\
        [--source ../shared/data/multi30k/test_2016_flickr.en.gz \\
         --references ../shared/data/multi30k/test_2016_flickr.de.gz] \\
        [--sentences 1000] [--batch1-sentences 100] [--paths ours ctranslate2_fp32] [--quick]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import machine, matmul_flop_per_s, progress

import tensorflow as tf

from export import DEFAULT_REFERENCES, DEFAULT_SOURCE, read_lines, timed
from keras_attention.decoding import DecodingConfig
from keras_attention.decoding.text import TextGenerator
from keras_attention.evaluation.metrics import bleu
from keras_attention.export import (
    SavedModelTranslator,
    TextToTextModule,
    export_saved_model,
)
from keras_attention.export.ctranslate2 import (
    CTranslate2Translator,
    export_ctranslate2,
)
from keras_attention.export.tflite import TFLiteDecoder, export_tflite
from keras_attention.models.saving import load_trained_model

PATHS = ("ours", "ours_xla", "saved_model", "saved_model_xla", "tflite", "ctranslate2_fp32",
         "ctranslate2_int8")
BATCH1_ONLY = ("tflite",)  # one interpreter call per sentence whatever the batch
OVER_CTRANSLATE2 = ("ours", "ours_xla", "saved_model", "saved_model_xla", "tflite")


def decoders(trained, config, paths, folder, threads):
    """``name -> translate(texts) -> texts`` for the requested ``paths``."""
    def generator(jit_compile):
        generator = TextGenerator(trained, config=config, truncate=True, jit_compile=jit_compile)
        return lambda texts: [h[0].text for h in generator.generate(texts, len(texts))]

    def saved_model(jit_compile):
        module = TextToTextModule(trained.model, trained.source_tokenizer,
                                  trained.target_tokenizer, config=config, max_batch_size=64,
                                  jit_compile=jit_compile)
        name = f"sm_{config.strategy}" + ("_xla" if jit_compile else "")
        translator = SavedModelTranslator(export_saved_model(module, os.path.join(folder, name)))
        return lambda texts: translator(texts, len(texts))

    def tflite():
        limit = trained.model.config.max_sequence_length
        path = export_tflite(trained, os.path.join(folder, f"{config.strategy}.tflite"), config)
        decoder = TFLiteDecoder(path)

        def translate(texts):
            ids = trained.source_tokenizer.tokenize(tf.constant(texts))[:, :limit]
            outputs = decoder(ids.to_tensor(0).numpy())
            return [t.decode("utf-8") for t in trained.target_tokenizer.detokenize(outputs).numpy()]
        return translate

    def ctranslate2(quantization):
        path = os.path.join(folder, f"ct2_{quantization}")
        if not os.path.exists(path):
            export_ctranslate2(trained, path, quantization=quantization)
        translator = CTranslate2Translator(path, config=config, truncate=True,
                                           intra_threads=threads)
        return lambda texts: [h[0].text for h in translator.generate(texts, len(texts))]

    makers = {"ours": lambda: generator(False), "ours_xla": lambda: generator(True),
              "saved_model": lambda: saved_model(False),
              "saved_model_xla": lambda: saved_model(True), "tflite": tflite,
              "ctranslate2_fp32": lambda: ctranslate2("none"),
              "ctranslate2_int8": lambda: ctranslate2("int8")}
    return {name: makers[name]() for name in paths}


def searches(beam_size):
    return {"greedy": DecodingConfig(),
            f"beam{beam_size}": DecodingConfig(strategy="beam", beam_size=beam_size)}


def batches(args, sentences):
    """``(batch size, sentences)`` pairs timed for each path."""
    return [(batch, count) for batch, count in ((32, sentences), (1, args.batch1_sentences))
            if count]


def worker(args):
    """Decode with one path (``args.worker``) and write ``{search: {batch:
    {"ms": ms per sentence, "outputs": [...]}}}`` to ``args.result``."""
    trained = load_trained_model(args.model)
    sources = read_lines(args.source, args.sentences)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for search, config in searches(args.beam_size).items():
            translate = decoders(trained, config, [args.worker], folder, args.threads)[args.worker]
            results[search] = {}
            for batch, count in batches(args, len(sources)):
                if batch != 1 and args.worker in BATCH1_ONLY:
                    continue
                started = time.perf_counter()
                ms, outputs = timed(translate, sources[:count], batch)
                results[search][str(batch)] = {"ms": ms, "outputs": outputs}
                progress(f"{search} batch {batch} {args.worker}: {1000.0 / ms:.1f} sentences/s "
                         f"({time.perf_counter() - started:.0f}s with warm-up)")
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(results, f)


def run_worker(args, name, folder):
    """``worker`` for path ``name`` in a fresh Python process: each path gets
    the cores to itself, with no thread pools or allocations of the others
    (CTranslate2 after TensorFlow decoding in the same process ran 2-3x slower).
    A ``--quick`` smoke run, whose timings mean nothing, runs it in this process."""
    result = os.path.join(folder, f"{name}.json")
    if args.quick:
        worker(argparse.Namespace(**{**vars(args), "worker": name, "result": result}))
        with open(result, encoding="utf-8") as f:
            return json.load(f)
    command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--result", result,
               "--model", args.model, "--source", args.source,
               "--sentences", str(args.sentences), "--batch1-sentences", str(args.batch1_sentences),
               "--beam-size", str(args.beam_size), "--threads", str(args.threads)]
    subprocess.run(command, check=True)
    with open(result, encoding="utf-8") as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="trained model folder (RUN/model)")
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--references", default=DEFAULT_REFERENCES)
    parser.add_argument("--sentences", type=int, default=1000, help="sentences at batch 32")
    parser.add_argument("--batch1-sentences", type=int, default=100,
                        help="sentences at batch 1 (0: skip batch 1)")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="CTranslate2 intra-op threads (TensorFlow uses every core)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 16 sentences, 4 at batch 1, every path in this "
                             "process (the timings are not isolated)")
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.sentences, args.batch1_sentences = 16, 4
    if args.worker:
        return worker(args)
    trained = load_trained_model(args.model)
    sources = read_lines(args.source, args.sentences)
    references = read_lines(args.references, args.sentences)
    report = {
        **machine(tf), "matmul_fp32_gflops": round(matmul_flop_per_s(repeats=5) / 1e9, 1),
        "model": os.path.abspath(args.model),
        "parameters": trained.model.count_params(),
        "precision": trained.model.dtype_policy.name, "sentences": len(sources),
        "ctranslate2_threads": args.threads,
        "timing": "warm: each path in its own process, every batch decoded once untimed, "
                  "then the whole set timed once",
        "results": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        decoded = {name: run_worker(args, name, folder) for name in args.paths}
    for search in searches(args.beam_size):
        for batch, count in batches(args, len(sources)):
            row = {"search": search, "batch": batch, "sentences": count}
            runs = {name: results[search][str(batch)] for name, results in decoded.items()
                    if str(batch) in results[search]}
            for name, run in runs.items():
                outputs = run["outputs"]
                row[name] = {
                    "sentences_per_s": round(1000.0 / run["ms"], 2),
                    "ms_per_sentence": round(run["ms"], 2),
                    "bleu": round(bleu(outputs, references[:count]).score, 2),
                    "words_per_output": round(sum(len(o.split()) for o in outputs) / count, 1),
                }
                if "ours" in runs:
                    row[name]["same_as_ours"] = sum(
                        a == b for a, b in zip(outputs, runs["ours"]["outputs"]))
            for name in OVER_CTRANSLATE2:
                if name in runs and "ctranslate2_fp32" in runs:
                    row[f"{name}_over_ctranslate2_fp32"] = round(
                        runs["ctranslate2_fp32"]["ms"] / runs[name]["ms"], 3)
            report["results"].append(row)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
