"""Export formats compared: size, latency and BLEU; prints JSON.

For a trained model folder (``save_trained_model``): exports, into a temporary
folder, the string-in/string-out SavedModel (``TextToTextModule``) and
the ids-in/ids-out TFLite file in float32, float16, dynamic-range
int8 and int8 with tied tables stored once (``export_tflite``) and, when the
tokenizers allow it (SentencePiece unigram), the float32 string -> string
TFLite file (``export_tflite_text``, ``tflite_text_fp32``: batch 1 only;
otherwise ``export_errors`` says why), then reports

- ``sizes``: bytes of the SavedModel folder and of each ``.tflite`` file, with
  ratios to TFLite float32 (goals: float16 <= 0.55x, dynamic and int8 <= 0.3x);
- ``latency_ms_per_sentence`` at batch 1 and batch 32 of the in-memory Keras
  model (``TextGenerator``, greedy), the SavedModel (``SavedModelTranslator``)
  and each TFLite file (``TFLiteDecoder``), all warm (every timed call is run
  once before timing). TFLite takes one sentence per call: its "batch 32"
  runs 32 sentences one by one (said in ``tflite_batch_32``);
- ``bleu``: sacreBLEU (signature included) of each path on the first N lines
  of ``--source``/``--references``, all with the same search (greedy, or
  beam search with ``--beam-size``/``--length-penalty``) and most generated
  tokens, the outputs of each path that equal the Keras model's, and the BLEU
  drop of each quantized TFLite file against TFLite float32 (goal <= 0.5).

TFLite inputs are tokenized with the model's source tokenizer, truncated and
padded to the model's ``max_sequence_length``; its ids are detokenized with the
target tokenizer. The Keras model truncates the same way (``truncate=True``),
the SavedModel does it in its graph.

    python benchmarks/export.py --model runs/x/model [--sentences 200] \\
        [--source ../shared/data/multi30k/test_2016_flickr.en.gz \\
         --references ../shared/data/multi30k/test_2016_flickr.de.gz] \\
        [--max-length 64] [--beam-size 4 --length-penalty 0.6] [--quick]
"""

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from keras_attention.constants import TFLITE_QUANTIZATIONS as QUANTIZATIONS  # noqa: E402
from keras_attention.decoding.text import TextGenerator  # noqa: E402
from keras_attention.evaluation.metrics import bleu  # noqa: E402
from keras_attention.export import (  # noqa: E402
    SavedModelTranslator,
    TextToTextModule,
    TFLiteDecoder,
    export_saved_model,
    export_tflite,
)
from keras_attention.export.tflite import search_config, search_options  # noqa: E402
from keras_attention.export.tflite_text import (  # noqa: E402
    TFLiteText,
    export_tflite_text,
    text_model_problem,
)
from keras_attention.models.saving import load_trained_model  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
DEFAULT_SOURCE = os.path.join(DATA, "multi30k", "test_2016_flickr.en.gz")
DEFAULT_REFERENCES = os.path.join(DATA, "multi30k", "test_2016_flickr.de.gz")
QUICK_SENTENCES = 20
BATCH_SIZES = (1, 32)
TFLITE_NAMES = {"none": "tflite_fp32", "float16": "tflite_float16", "dynamic": "tflite_dynamic",
                "int8": "tflite_int8"}
# The string -> string TFLite file (tokenizers inside), float32, batch 1 only.
TEXT_NAME = "tflite_text_fp32"
GOALS = {"float16_size_ratio": 0.55, "dynamic_size_ratio": 0.3, "int8_size_ratio": 0.3,
         "bleu_drop": 0.5}


def progress(message):
    print(message, file=sys.stderr, flush=True)


def read_lines(path, count):
    """The first ``count`` lines of a plain or ``.gz`` text file, without newlines."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"text file '{path}' not found; pass an existing file "
                                "to --source/--references.")
    opener = gzip.open if path.endswith(".gz") else open
    lines = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if len(lines) == count:
                break
            lines.append(line.rstrip("\n"))
    return lines


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def timed(translate, texts, batch_size):
    """``(ms per sentence, outputs)`` of ``translate(chunk)`` over ``texts``
    in chunks of ``batch_size``; every chunk is run once untimed first."""
    chunks = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
    for chunk in chunks:
        translate(chunk)
    outputs = []
    started = time.perf_counter()
    for chunk in chunks:
        outputs.extend(translate(chunk))
    return 1000.0 * (time.perf_counter() - started) / len(texts), outputs


class TFLiteTexts:
    """Strings in, strings out through a ``TFLiteDecoder`` file and the model's
    tokenizers (inputs truncated and padded to ``max_source_length``)."""

    def __init__(self, path, source_tokenizer, target_tokenizer):
        self.runner = TFLiteDecoder(path)
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer

    def ids(self, texts):
        length = self.runner.max_source_length
        ragged = self.source_tokenizer.tokenize(tf.constant(list(texts)))[:, :length]
        return ragged.to_tensor(0, shape=[None, length]).numpy()

    def __call__(self, texts):
        output = self.runner(self.ids(texts))
        return [t.decode("utf-8") for t in self.target_tokenizer.detokenize(output).numpy()]


def interpreter_ms(path, source_tokenizer, sources):
    """Warm ms per sentence of the TFLite interpreter alone (ids tokenized
    beforehand, one call per sentence, no detokenizing)."""
    texts = TFLiteTexts(path, source_tokenizer, None)
    ids = texts.ids(sources)
    texts.runner(ids[:1])
    started = time.perf_counter()
    for row in ids:
        texts.runner(row[None])
    return 1000.0 * (time.perf_counter() - started) / len(ids)


def export_all(trained, directory, config):
    """Export the SavedModel and the TFLite files with ``config``'s search
    into ``directory``; returns ``({name: path}, {name: export seconds},
    {name: error})``."""
    paths, seconds = {}, {}
    max_length = config.max_length
    search = search_options(config)
    progress(f"exporting SavedModel ({config.strategy})")
    started = time.perf_counter()
    module = TextToTextModule(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                              config=config)
    paths["saved_model"] = export_saved_model(module, os.path.join(directory, "saved_model"))
    seconds["saved_model"] = time.perf_counter() - started
    source_length = trained.model.config.max_sequence_length
    errors = {}
    for quantize in QUANTIZATIONS:
        name = TFLITE_NAMES[quantize]
        progress(f"exporting TFLite ({quantize})")
        started = time.perf_counter()
        try:
            paths[name] = export_tflite(trained, os.path.join(directory, f"{name}.tflite"),
                                        source_length, max_length, quantize=quantize,
                                        **search)
        except Exception as error:  # the converter's errors have no common base class
            errors[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            policy = trained.model.dtype_policy.name
            if policy != "float32":
                errors[name] += (f" (the model computes in {policy}; TFLite builtins need "
                                 "float32 compute: train or rebuild the model in float32)")
            progress(f"TFLite ({quantize}) failed: {errors[name]}")
            continue
        seconds[name] = time.perf_counter() - started
    problem = text_model_problem(trained)
    if problem:
        errors[TEXT_NAME] = problem
        progress(f"no string TFLite model: {problem}")
    else:
        progress("exporting the string -> string TFLite model")
        started = time.perf_counter()
        paths[TEXT_NAME] = export_tflite_text(
            trained, os.path.join(directory, f"{TEXT_NAME}.tflite"), max_length, **search)
        seconds[TEXT_NAME] = time.perf_counter() - started
    return paths, seconds, errors


def sizes(paths, model, model_directory):
    fp32 = os.path.getsize(paths["tflite_fp32"]) if "tflite_fp32" in paths else None
    result = {"float32_weights": {"bytes": 4 * model.count_params()},
              "keras_model_folder": {"bytes": folder_bytes(model_directory)},
              "saved_model_folder": {"bytes": folder_bytes(paths["saved_model"])}}
    for name in TFLITE_NAMES.values():
        if name in paths:
            result[name] = {"bytes": os.path.getsize(paths[name])}
    for entry in result.values():
        entry["ratio_to_tflite_fp32"] = round(entry["bytes"] / fp32, 4) if fp32 else None
    return result


def quantization(scores, sizes_):
    """BLEU drop and size ratio of each quantized TFLite file against float32."""
    fp32_bleu = scores["tflite_fp32"]["score"]
    return {
        name: {
            "bleu_drop": round(fp32_bleu - scores[name]["score"], 2),
            "bleu_drop_within_goal": fp32_bleu - scores[name]["score"] <= GOALS["bleu_drop"],
            "size_ratio": sizes_[name]["ratio_to_tflite_fp32"],
            "size_within_goal": sizes_[name]["ratio_to_tflite_fp32"]
            <= GOALS[f"{quantize}_size_ratio"],
        }
        for quantize, name in TFLITE_NAMES.items() if quantize != "none" and name in scores
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True,
                        help="a trained model folder (keras-attention train's model/)")
    parser.add_argument("--sentences", type=int, default=200,
                        help="first N lines of --source/--references")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="plain or .gz, one per line")
    parser.add_argument("--references", default=DEFAULT_REFERENCES,
                        help="plain or .gz, aligned with --source")
    parser.add_argument("--max-length", type=int, default=64,
                        help="most generated tokens, END included (capped at the model's "
                             "max_sequence_length - 1)")
    parser.add_argument("--beam-size", type=int, default=1,
                        help="1: greedy search (default); more: beam search in every path")
    parser.add_argument("--length-penalty", type=float, default=0.6,
                        help="beam search's GNMT alpha")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SENTENCES} sentences")
    args = parser.parse_args()
    count = QUICK_SENTENCES if args.quick else args.sentences
    if count < 1:
        parser.error(f"--sentences must be >= 1, got {count}.")
    if args.max_length < 1:
        parser.error(f"--max-length must be >= 1, got {args.max_length}.")
    if args.beam_size < 1:
        parser.error(f"--beam-size must be >= 1, got {args.beam_size}.")
    try:
        sources = read_lines(args.source, count)
        references = read_lines(args.references, count)
        trained = load_trained_model(args.model)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    if len(sources) != len(references):
        parser.error(f"--source has {len(sources)} lines but --references has "
                     f"{len(references)}; pass aligned files.")
    model_limit = trained.model.config.max_sequence_length - 1
    max_length = min(args.max_length, model_limit)
    config = search_config(max_length, args.beam_size, args.length_penalty)

    report = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "tensorflow": tf.__version__,
        "model": args.model,
        "source": args.source,
        "references": args.references,
        "sentences": len(sources),
        "decoding": {"strategy": config.strategy, "beam_size": config.beam_size,
                     "length_penalty": config.length_penalty} if config.strategy == "beam"
        else {"strategy": "greedy"},
        "max_length": max_length,
        "max_length_requested": args.max_length,
        "max_source_length": trained.model.config.max_sequence_length,
        "parameters": trained.model.count_params(),
        "goals": GOALS,
    }
    with tempfile.TemporaryDirectory() as directory:
        paths, export_seconds, errors = export_all(trained, directory, config)
        if errors:
            report["export_errors"] = errors
        report["export_seconds"] = {k: round(v, 2) for k, v in export_seconds.items()}
        report["sizes"] = sizes(paths, trained.model, args.model)

        generator = TextGenerator(trained, config=config, truncate=True)
        translator = SavedModelTranslator(paths["saved_model"])
        runners = {
            "keras": lambda batch_size: (lambda texts: generator.best(texts, batch_size)),
            "saved_model": lambda batch_size: (lambda texts: translator(texts, batch_size)),
        }
        tflite_names = [name for name in TFLITE_NAMES.values() if name in paths]
        for name in tflite_names:
            texts = TFLiteTexts(paths[name], trained.source_tokenizer, trained.target_tokenizer)
            runners[name] = lambda batch_size, texts=texts: texts
        if TEXT_NAME in paths:
            text_model = TFLiteText(paths[TEXT_NAME])
            runners[TEXT_NAME] = lambda batch_size: text_model

        latency, outputs = {}, {}
        for name, make in runners.items():
            latency[name] = {}
            for batch_size in BATCH_SIZES if name != TEXT_NAME else BATCH_SIZES[:1]:
                progress(f"timing {name} at batch {batch_size}")
                ms, texts = timed(make(batch_size), sources, batch_size)
                latency[name][f"batch_{batch_size}"] = round(ms, 3)
                outputs.setdefault(name, {})[batch_size] = texts
        report["latency_ms_per_sentence"] = latency
        report["tflite_batch_32"] = ("TFLite runs one sentence per call: its batch_32 figure "
                                     "is 32 sentences per chunk run one by one")
        report["tflite_interpreter_only_ms_per_sentence"] = {
            name: round(interpreter_ms(paths[name], trained.source_tokenizer, sources), 3)
            for name in tflite_names
        }

    keras_outputs = outputs["keras"][1]
    scores = {}
    for name, by_batch in outputs.items():
        result = bleu(by_batch[1], references)
        scores[name] = {
            "score": round(result.score, 2),
            "signature": result.signature,
            "same_as_keras": sum(a == b for a, b in zip(by_batch[1], keras_outputs)),
            "batch_1_equals_batch_32": by_batch[1] == by_batch[32] if 32 in by_batch else None,
        }
    report["bleu"] = scores
    report["bleu_outputs"] = "batch 1 outputs; same_as_keras counts identical sentences"
    if "tflite_fp32" in scores:
        report["quantization"] = quantization(scores, report["sizes"])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
