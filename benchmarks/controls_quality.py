"""What terminology constraints and ensembles do to translation quality; prints JSON.

On Multi30k test2016 (or ``--source/--references``), beam 4:

- constraints: each reference's rarest noun (German nouns are capitalized:
  its capitalized word after the first, of the fewest occurrences in the
  training references ``--train-target``) as the one constraint of its
  sentence; BLEU and chrF of the plain and the constrained outputs, and how
  many outputs contain their term in each;
- ensembles (with ``--model`` given twice or more): BLEU of each model
  alone and of the ensemble (log-probabilities averaged at every step).

    python benchmarks/controls_quality.py --model runs/a/model [--model runs/b/model]
"""

import argparse
import collections
import json
import os
import re
import time

from _common import REPOSITORY, machine, progress

DATA = os.path.join(os.path.dirname(REPOSITORY), "shared", "data", "multi30k")
WORD = re.compile(r"\w+(?:-\w+)*")


def rarest_nouns(references, train_references):
    """Per reference, its capitalized word after the first of the fewest
    training occurrences (``""``: none)."""
    counts = collections.Counter(word for line in train_references
                                 for word in WORD.findall(line))
    terms = []
    for line in references:
        nouns = [word for word in WORD.findall(line)[1:] if word[:1].isupper()]
        terms.append(min(nouns, key=lambda word: (counts[word], word)) if nouns else "")
    return terms


def _scores(outputs, references):
    from keras_attention.evaluation.metrics import bleu, chrf

    return {"bleu": round(bleu(outputs, references).score, 2),
            "chrf": round(chrf(outputs, references).score, 2)}


def _contains(outputs, terms):
    """Shares of outputs with their term as a word, and as the start of one
    (what the constraint guarantees: its tokens, which may go on into a
    longer word, ``Hut`` in ``Hute``)."""
    given = [(o, t) for o, t in zip(outputs, terms) if t]
    words = sum(t in WORD.findall(o) for o, t in given)
    starts = sum(bool(re.search(r"(?<!\w)" + re.escape(t), o)) for o, t in given)
    return {"as_word": round(words / len(given), 4), "starting_a_word": round(starts / len(given), 4)}


def _decode(generator, sources, **controls):
    started = time.perf_counter()
    outputs = generator.best(sources, batch_size=32, **controls)
    return outputs, round(len(sources) / (time.perf_counter() - started), 2)


def run(model_paths, source, references, train_target, limit=None, beam_size=4,
        constraints=True):
    import keras
    import tensorflow as tf

    from keras_attention.decoding import DecodingConfig
    from keras_attention.decoding.text import TextGenerator
    from keras_attention.lines import read_lines
    from keras_attention.models import load_trained_model

    sources = [text for _, text in read_lines(source)][:limit]
    wanted = [text for _, text in read_lines(references)][:limit]
    terms = rarest_nouns(wanted, (text for _, text in read_lines(train_target)))
    config = DecodingConfig(strategy="beam", beam_size=beam_size)
    models = [load_trained_model(path) for path in model_paths]
    first = TextGenerator(models[0], config=config)
    progress(f"{model_paths[0]}: plain beam {beam_size}")
    plain, plain_speed = _decode(first, sources)
    result = {
        **machine(tf, keras), "sentences": len(sources), "beam_size": beam_size,
        "models": list(model_paths),
        "sentences_with_a_term": sum(bool(t) for t in terms),
        "plain": {**_scores(plain, wanted), "outputs_with_term": _contains(plain, terms),
                  "sentences_per_s": plain_speed},
    }
    if constraints:
        progress("constrained: each reference's rarest noun")
        constrained, speed = _decode(first, sources,
                                     constraints=[[t] if t else [] for t in terms])
        result["constrained"] = {**_scores(constrained, wanted),
                                 "outputs_with_term": _contains(constrained, terms),
                                 "sentences_per_s": speed}
        result["examples"] = [{"term": t, "plain": p, "constrained": c}
                              for t, p, c in list(zip(terms, plain, constrained))[:5]]
    if len(models) > 1:
        alone = [_scores(plain, wanted)]
        for path, trained in zip(model_paths[1:], models[1:]):
            progress(f"{path}: plain beam {beam_size}")
            alone.append(_scores(_decode(TextGenerator(trained, config=config), sources)[0],
                                 wanted))
        progress(f"ensemble of {len(models)}")
        ensemble = TextGenerator(models[0], config=config, ensemble=models[1:])
        outputs, speed = _decode(ensemble, sources)
        result["each_model"] = alone
        result["ensemble"] = {**_scores(outputs, wanted), "sentences_per_s": speed}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True,
                        help="trained model folder (twice or more: also the ensemble)")
    parser.add_argument("--source", default=os.path.join(DATA, "test_2016_flickr.en.gz"))
    parser.add_argument("--references", default=os.path.join(DATA, "test_2016_flickr.de.gz"))
    parser.add_argument("--train-target", default=os.path.join(DATA, "train.de.gz"),
                        help="training references, for the words' frequencies")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences only")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--no-constraints", action="store_true",
                        help="skip the constrained decoding (ensembles only)")
    args = parser.parse_args()
    print(json.dumps(run(args.model, args.source, args.references, args.train_target,
                         args.limit, args.beam_size, not args.no_constraints), indent=1,
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
