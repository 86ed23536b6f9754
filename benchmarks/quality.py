"""Train a recipe for a bounded time or number of steps, score its test split,
print one JSON object.

    python benchmarks/quality.py --recipe recipes/aeslc.yaml [--set KEY=VALUE ...]
        [--minutes N | --steps N] [--test-limit N] [--beam-size 4 --length-penalty 0.6]
        [--batch-size 64] [--output runs/quality/aeslc]

Trains with ``keras_attention.training.train`` (the usual run directory:
config.yaml, vocab/, checkpoints/, logs/ for TensorBoard, model/), bounded by
``training.time_limit_minutes`` (``--minutes``) or ``training.max_steps``
(``--steps``); the run stops at the end of a step and its best validation
weights (else the last) go into model/. Then decodes the recipe's
``data.test`` with ``evaluate_test_set`` (the recipe's
``evaluation.decoding``, or beam search with ``--beam-size``) and scores it:
sacreBLEU BLEU + chrF for translation, ROUGE-1/2/L/Lsum for summarization.

Without ``--minutes``/``--steps`` on a machine without a GPU, the reduced
CPU reference applies (``CPU_REFERENCE``: 40 minutes of training and a
per-recipe test limit, so training, validation and test decoding fit in 60
minutes on 2 cores); with a GPU the recipe trains in full. Progress goes to
stderr; stdout holds only the JSON, which is also written to
``<output>/quality.json`` with the hypotheses in ``<output>/test_hypotheses.txt``.
"""

import argparse
import dataclasses
import json
import os
import time

from _common import REPOSITORY, cpu_cores, cpu_name, progress

# The reduced reference on a CPU, per recipe: training minutes, test sentences
# (None: the whole test split) and overrides that suit a few hundred steps (a
# shorter warmup, fewer validation sentences), applied before --set.
CPU_REFERENCE = {
    "multi30k_en_de": {"minutes": 40, "test_limit": None,
                       "overrides": ["optimizer.warmup_steps=400"]},
    "tatoeba_en_es": {"minutes": 40, "test_limit": 1000,
                      "overrides": ["optimizer.warmup_steps=500",
                                    "evaluation.max_sentences=300"]},
    # Dropout 0.3 pays off only after ~20 epochs; 40 CPU minutes give about 6.
    "samsum": {"minutes": 40, "test_limit": 300,
               "overrides": ["optimizer.warmup_steps=300", "evaluation.max_sentences=100",
                             "model.changes.dropout=0.1"]},
    "aeslc": {"minutes": 40, "test_limit": 500,
              "overrides": ["optimizer.warmup_steps=300", "evaluation.max_sentences=100"]},
}
DEFAULT_CPU_REFERENCE = {"minutes": 40, "test_limit": 500, "overrides": []}


def device_description():
    """The GPU names, else the CPU model name and the cores this process may use."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
                 for gpu in gpus]
        return {"kind": "gpu", "name": ", ".join(names), "count": len(gpus)}
    return {"kind": "cpu", "name": cpu_name(), "cores": cpu_cores()}


def budget(args, recipe_name, device):
    """``{"minutes", "steps", "test_limit", "cpu_reference", "overrides"}`` of
    this run: the arguments, or ``CPU_REFERENCE`` on a CPU when neither
    ``--minutes`` nor ``--steps`` is given."""
    if args.minutes is not None or args.steps is not None or device["kind"] == "gpu":
        return {"minutes": args.minutes, "steps": args.steps, "test_limit": args.test_limit,
                "cpu_reference": False, "overrides": []}
    reference = CPU_REFERENCE.get(recipe_name, DEFAULT_CPU_REFERENCE)
    test_limit = args.test_limit if args.test_limit is not None else reference["test_limit"]
    return {"minutes": reference["minutes"], "steps": None, "test_limit": test_limit,
            "cpu_reference": True, "overrides": list(reference["overrides"])}


def decoding_config(config, args):
    """The recipe's validation decoding, switched to beam search by ``--beam-size``."""
    decoding = config.evaluation.decoding
    if args.beam_size is not None:
        decoding = decoding.replace(strategy="beam", beam_size=args.beam_size)
    if args.length_penalty is not None:
        decoding = decoding.replace(length_penalty=args.length_penalty)
    return decoding


def run(args):
    import keras
    import tensorflow as tf

    from keras_attention.evaluation.scoring import evaluate_test_set
    from keras_attention.models import load_trained_model
    from keras_attention.training import load_config, train

    recipe_name = os.path.splitext(os.path.basename(args.recipe))[0]
    device = device_description()
    limits = budget(args, recipe_name, device)
    minutes, steps, test_limit = limits["minutes"], limits["steps"], limits["test_limit"]
    output = args.output or os.path.join(
        "runs", "quality", f"{recipe_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    overrides = limits["overrides"] + list(args.set)
    if minutes is not None:
        overrides.append(f"training.time_limit_minutes={minutes}")
    if steps is not None:
        overrides.append(f"training.max_steps={steps}")
    overrides.append(f"output.directory={output}")
    config = load_config(args.recipe, overrides)
    if config.data.test is None:
        raise SystemExit(f"error: {args.recipe} has no data.test; add a test corpus to the "
                         "recipe or with --set data.test.format=... .")
    decoding = decoding_config(config, args)
    progress(f"{recipe_name}: training on {device['name']} "
             f"(minutes {minutes}, steps {steps}) into {output}")

    started = time.perf_counter()
    result = train(config, verbose=0, print_fn=progress)
    train_seconds = time.perf_counter() - started

    progress(f"decoding the test split ({test_limit or 'all'} sentences, {decoding.strategy})")
    trained = load_trained_model(result.model_directory)
    started = time.perf_counter()
    scores = evaluate_test_set(trained, config.data.test, decoding, task=config.task,
                               limit=test_limit, batch_size=args.batch_size)
    eval_seconds = time.perf_counter() - started

    report = {
        "recipe": os.path.relpath(os.path.abspath(args.recipe), REPOSITORY),
        "task": config.task,
        "test_set": scores["test_set"],
        "sentences": scores["sentences"],
        "truncated_sources": scores["truncated_sources"],
        "metric": scores["metric"],
        "signature": scores["signature"],
        "steps": result.steps,
        "epochs": result.epochs,
        "steps_per_epoch": result.steps_per_epoch,
        "stop_reason": result.stop_reason,
        "best_validation": result.best,
        "train_wall_seconds": round(train_seconds, 1),
        "fit_seconds": round(result.train_seconds, 1),
        "tokens_per_second": round(result.tokens_per_second, 1),
        "eval_wall_seconds": round(eval_seconds, 1),
        "decode_seconds": round(scores["decode_seconds"], 1),
        "device": device,
        "backend": f"keras {keras.__version__} ({keras.backend.backend()}), "
                   f"tensorflow {tf.__version__}",
        "precision": config.training.precision,
        "parameters": int(trained.model.count_params()),
        "model": {"preset": config.model.preset, "changes": config.model.changes},
        "decoding": dataclasses.asdict(decoding),
        "budget": {key: limits[key] for key in ("minutes", "steps", "test_limit",
                                                "cpu_reference")},
        "overrides": overrides,
        "output": os.path.abspath(output),
    }
    with open(os.path.join(output, "test_hypotheses.txt"), "w", encoding="utf-8") as f:
        f.writelines(h.replace("\n", " ") + "\n" for h in scores["hypotheses"])
    with open(os.path.join(output, "quality.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, help="recipe file, e.g. recipes/aeslc.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. model.changes.copy_attention=true "
                             "(repeatable)")
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument("--minutes", type=float, default=None,
                       help="training time limit (training.time_limit_minutes)")
    bound.add_argument("--steps", type=int, default=None,
                       help="training step limit (training.max_steps)")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="score only the first N test pairs")
    parser.add_argument("--beam-size", type=int, default=None,
                        help="decode the test split with beam search of this size")
    parser.add_argument("--length-penalty", type=float, default=None,
                        help="GNMT length penalty alpha for beam search")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="test sentences decoded together")
    parser.add_argument("--output", default=None,
                        help="run directory (default runs/quality/<recipe>-<time>)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        report = run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        raise SystemExit(f"error: {error}") from None
    print(json.dumps(report))


if __name__ == "__main__":
    main()
