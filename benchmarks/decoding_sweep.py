"""Choose decoding settings on the validation split, then score the test split
once with the choice; print one JSON object.

    python benchmarks/decoding_sweep.py --model runs/samsum/model --recipe recipes/samsum.yaml \\
        --grid length_penalty=0.6,1.0,2.0 --grid min_length=0,10 [--beam-size 4] \\
        [--select rougeLsum] [--validation-limit N] [--test-limit N] [--batch-size 64] \\
        [--output runs/samsum/sweep]

The base settings are the recipe's ``evaluation.decoding`` (beam search of
``--beam-size`` when given). Every combination of the ``--grid`` values
(``DecodingConfig`` fields: ``length_penalty``, ``min_length``,
``no_repeat_ngram_size``, ``beam_size`` ...) decodes the recipe's
``data.validation`` with ``evaluate_test_set``; the one with the highest
``--select`` metric (default: the metric training keeps the best checkpoint
by, BLEU or ROUGE-L) then decodes ``data.test``. The test split is never used
to choose, so its score is an honest held-out number. Progress goes to
stderr; with ``--output`` the JSON goes to ``<output>/sweep.json`` and the
test outputs to ``<output>/test_hypotheses.txt``.
"""

import argparse
import dataclasses
import itertools
import json
import os

from _common import progress


def parse_grid(items, decoding):
    """``{field: [values]}`` from ``field=v1,v2`` strings, each value of the
    type of ``decoding``'s field (an int field takes ints, a float field
    floats, ``beam_stopping`` its names)."""
    # "float", "float | None" ... (the annotations name the type).
    kinds = {field.name: float if "float" in str(field.type)
             else str if "str" in str(field.type) else int
             for field in dataclasses.fields(decoding)}
    fields = set(kinds)
    grid = {}
    for item in items:
        name, separator, values = item.partition("=")
        if not separator or not values:
            raise ValueError(f"--grid {item!r} is not FIELD=V1,V2,...; "
                             "e.g. --grid length_penalty=0.6,1.0.")
        if name not in fields:
            raise ValueError(f"--grid {name!r} is not a decoding setting; use one of "
                             f"{', '.join(sorted(fields - {'strategy', 'seed'}))}.")
        kind = kinds[name]
        try:
            grid[name] = [kind(value) for value in values.split(",")]
        except ValueError:
            raise ValueError(f"--grid {name}: {values!r} are not {kind.__name__} values.") from None
    return grid


def combinations(decoding, grid):
    """Every ``DecodingConfig`` of the grid over ``decoding`` with its settings dict."""
    names = list(grid)
    for values in itertools.product(*(grid[name] for name in names)):
        settings = dict(zip(names, values))
        yield settings, decoding.replace(**settings)


def select_metric(config, select):
    """The metric to maximize: ``select``, else the one training monitors."""
    from keras_attention.evaluation.metrics import ROUGE_TYPES

    metric = select or config.monitor.removeprefix("val_")
    allowed = ("bleu", "chrf") if config.task == "translation" else ROUGE_TYPES
    if metric not in allowed:
        raise ValueError(f"--select {metric!r} is not a {config.task} test metric; "
                         f"use one of {', '.join(allowed)}.")
    return metric


def run(args):
    from keras_attention.evaluation.scoring import evaluate_test_set
    from keras_attention.models import load_trained_model
    from keras_attention.training import load_config

    config = load_config(args.recipe, args.set)
    for split in ("validation", "test"):
        if getattr(config.data, split) is None:
            raise ValueError(f"{args.recipe} has no data.{split}; the sweep chooses on the "
                             "validation split and reports the test split.")
    decoding = config.evaluation.decoding
    if args.beam_size is not None:
        decoding = decoding.replace(strategy="beam", beam_size=args.beam_size)
    grid = parse_grid(args.grid, decoding)
    metric = select_metric(config, args.select)
    trained = load_trained_model(args.model)

    def evaluate(corpus, decoding_config, limit):
        return evaluate_test_set(trained, corpus, decoding_config, task=config.task,
                                 limit=limit, batch_size=args.batch_size)

    rows, validation_set, validation_sentences = [], None, None
    for settings, candidate in combinations(decoding, grid):
        scores = evaluate(config.data.validation, candidate, args.validation_limit)
        validation_set, validation_sentences = scores["test_set"], scores["sentences"]
        rows.append({"settings": settings, "metric": scores["metric"],
                     "decode_seconds": round(scores["decode_seconds"], 1)})
        progress(f"validation {settings}: {metric} {scores['metric'][metric]:.2f}")
    best = max(rows, key=lambda row: row["metric"][metric])  # the first of equals
    chosen = decoding.replace(**best["settings"])
    progress(f"chosen {best['settings']}; decoding the test split")
    test = evaluate(config.data.test, chosen, args.test_limit)
    report = {
        "model": args.model,
        "recipe": args.recipe,
        "task": config.task,
        "select": metric,
        "validation_set": validation_set,
        "validation_sentences": validation_sentences,
        "validation": rows,
        "chosen": best["settings"],
        "test_set": test["test_set"],
        "sentences": test["sentences"],
        "metric": test["metric"],
        "signature": test["signature"],
        "decoding": test["decoding"],
        "decode_seconds": round(test["decode_seconds"], 1),
    }
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "test_hypotheses.txt"), "w", encoding="utf-8") as f:
            f.writelines(h.replace("\n", " ") + "\n" for h in test["hypotheses"])
        with open(os.path.join(args.output, "sweep.json"), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="trained model folder, e.g. runs/x/model")
    parser.add_argument("--recipe", required=True,
                        help="the recipe it was trained with (its data.validation, data.test "
                             "and evaluation.decoding)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override, e.g. evaluation.decoding.max_length=64")
    parser.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                        help="decoding values to try, e.g. length_penalty=0.6,1.0 (repeatable; "
                             "every combination is tried)")
    parser.add_argument("--beam-size", type=int, default=None,
                        help="beam search of this size as the base setting")
    parser.add_argument("--select", default=None,
                        help="validation metric to maximize (default: the recipe's monitor)")
    parser.add_argument("--validation-limit", type=int, default=None,
                        help="decode only the first N validation pairs")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="score only the first N test pairs")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences decoded together")
    parser.add_argument("--output", default=None,
                        help="folder for sweep.json and test_hypotheses.txt")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        report = run(args)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    print(json.dumps(report))


if __name__ == "__main__":
    main()
