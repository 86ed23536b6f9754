"""``keras-attention vocab`` and ``keras-attention data inspect``."""

import json
import os

import click

from cli.corpus import corpus_options
from cli.errors import user_errors
from keras_attention.constants import NORMALIZATION_FORMS, TOKENIZER_TYPES


def _tokenizer_class(kind):
    from keras_attention import data

    return {
        "wordpiece": data.WordPieceTokenizer,
        "sentencepiece": data.SentencePieceTokenizer,
        "word": data.WordTokenizer,
        "char": data.CharacterTokenizer,
    }[kind]


def _sides(corpus, side):
    """Texts of the chosen side(s), as a generator over the corpus."""
    for source, target in corpus:
        if side in ("source", "both"):
            yield source
        if side in ("target", "both"):
            yield target


def _check_normalization(kind, normalization):
    if normalization and kind in ("word", "char"):
        raise ValueError(f"--normalization is not available for --type {kind}.")


def _build_options(kind, size, lowercase, normalization, model_type):
    _check_normalization(kind, normalization)
    if kind in ("word", "char"):
        return {"lowercase": lowercase}
    options = {"vocabulary_size": size, "lowercase": lowercase, "normalization": normalization}
    if kind == "sentencepiece":
        options["model_type"] = model_type
    return options


@click.command()
@user_errors
@corpus_options
@click.option("--side", type=click.Choice(["source", "target", "both"]), default="both",
              show_default=True, help="Which texts to learn from ('both' = shared vocabulary).")
@click.option("--type", "kind", type=click.Choice(TOKENIZER_TYPES), default="sentencepiece",
              show_default=True, help="Tokenizer kind.")
@click.option("--size", type=click.IntRange(min=20), default=8000, show_default=True,
              help="Vocabulary size (wordpiece/sentencepiece), reserved tokens included.")
@click.option("--model-type", type=click.Choice(["unigram", "bpe"]), default="unigram",
              show_default=True, help="SentencePiece algorithm.")
@click.option("--lowercase", is_flag=True, help="Lowercase text before tokenizing.")
@click.option("--normalization", type=click.Choice(NORMALIZATION_FORMS),
              default=None, help="Unicode normalization before tokenizing (subword types).")
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="Vocabulary file to write (a .model file for sentencepiece).")
def vocab(open_corpus, side, kind, size, model_type, lowercase, normalization, output):
    """Learn a tokenizer vocabulary from a corpus.

    Reserved ids: [PAD]=0 [START]=1 [END]=2 [UNK]=3.

    \b
    Examples:
      keras-attention vocab --aligned ../shared/data/multi30k/train.en.gz \\
        ../shared/data/multi30k/train.de.gz --side both --size 8000 --output vocab.model
      keras-attention vocab --tsv ../shared/data/spa-eng/spa.txt.gz --side source \\
        --type wordpiece --size 8000 --output vocab.en.txt
    """
    options = _build_options(kind, size, lowercase, normalization, model_type)
    corpus = open_corpus()
    stats = corpus.scan()
    count = stats.pairs * (2 if side == "both" else 1)
    cls = _tokenizer_class(kind)
    with click.progressbar(_sides(corpus, side), length=count, label="reading texts",
                           file=click.get_text_stream("stderr")) as texts:
        try:
            tokenizer = cls.build(texts, **options)
        except ValueError as error:  # the corpus does not suit the options: name it
            raise ValueError(f"{corpus.name} (--side {side}): {error}") from error
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    tokenizer.save(output)
    dropped = f", {stats.dropped_empty} empty pair(s) dropped" if stats.dropped_empty else ""
    click.echo(f"wrote {output}: {tokenizer.vocabulary_size} tokens ({kind}) learned from "
               f"{count} texts{dropped}")


def _load(path, kind, lowercase, normalization):
    options = {"lowercase": lowercase}
    if kind in ("wordpiece", "sentencepiece"):
        options["normalization"] = normalization
    return _tokenizer_class(kind).load(path, **options)


def _guess_kind(path, kind):
    if kind:
        return kind
    return "sentencepiece" if path.endswith(".model") else "wordpiece"


@click.group()
def data():
    """Look at corpora before training."""


@data.command()
@user_errors
@corpus_options
@click.option("--source-vocab", type=click.Path(dir_okay=False), default=None,
              help="Source vocabulary: adds token lengths and the OOV rate.")
@click.option("--target-vocab", type=click.Path(dir_okay=False), default=None,
              help="Target vocabulary (defaults to --source-vocab, a shared vocabulary).")
@click.option("--type", "kind", type=click.Choice(TOKENIZER_TYPES), default=None,
              help="Vocabulary kind (default: sentencepiece for .model files, else wordpiece).")
@click.option("--lowercase", is_flag=True, help="The vocabulary was built with --lowercase.")
@click.option("--normalization", type=click.Choice(NORMALIZATION_FORMS),
              default=None, help="The vocabulary was built with this normalization.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect(open_corpus, source_vocab, target_vocab, kind, lowercase, normalization, as_json):
    """Count pairs, token lengths (histogram) and the out-of-vocabulary rate.

    \b
    Example:
      keras-attention data inspect --aligned ../shared/data/multi30k/val.en.gz \\
        ../shared/data/multi30k/val.de.gz --source-vocab vocab.model
    """
    if target_vocab and not source_vocab:
        raise click.UsageError("--target-vocab needs --source-vocab FILE; for a shared "
                               "vocabulary give --source-vocab alone.")
    target_vocab = target_vocab or source_vocab
    for path in filter(None, (source_vocab, target_vocab)):
        _check_normalization(_guess_kind(path, kind), normalization)
    from keras_attention.data.statistics import side_statistics

    corpus = open_corpus()
    stats = corpus.scan()
    report = {"corpus": corpus.name, "pairs": stats.pairs, "records": stats.records,
              "dropped_empty": stats.dropped_empty,
              "characters": {"source": {"max": stats.max_source_chars,
                                        "mean": round(stats.mean_source_chars, 1)},
                             "target": {"max": stats.max_target_chars,
                                        "mean": round(stats.mean_target_chars, 1)}}}
    if source_vocab:
        for side, path, index in (("source", source_vocab, 0), ("target", target_vocab, 1)):
            tokenizer = _load(path, _guess_kind(path, kind), lowercase, normalization)
            side_stats = side_statistics((pair[index] for pair in corpus), tokenizer)
            report[f"{side}_tokens"] = {
                "vocabulary": path,
                "tokens": side_stats.tokens,
                "oov_rate": round(side_stats.unknown_rate, 6),
                "max": side_stats.max_length,
                "mean": round(side_stats.mean_length, 2),
                "percentiles": side_stats.percentiles,
                "histogram": [{"from": lo, "below": hi, "count": n}
                              for (lo, hi), n in side_stats.histogram],
            }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{report['corpus']}: {stats.pairs} pairs ({stats.dropped_empty} empty dropped)")
    for side in ("source", "target"):
        chars = report["characters"][side]
        click.echo(f"  {side} characters: max {chars['max']}, mean {chars['mean']}")
        tokens = report.get(f"{side}_tokens")
        if tokens:
            click.echo(f"  {side} tokens: {tokens['tokens']} total, OOV rate "
                       f"{tokens['oov_rate']:.4%}, mean {tokens['mean']}, max {tokens['max']}, "
                       f"p50/p90/p99 {'/'.join(str(v) for v in tokens['percentiles'].values())}")
            peak = max(b["count"] for b in tokens["histogram"]) or 1
            for b in tokens["histogram"]:
                bar = "#" * round(40 * b["count"] / peak)
                click.echo(f"    {b['from']:>4}-{b['below'] - 1:<4} {b['count']:>8} {bar}")
