"""Corpus options shared by the data commands: one way to name a corpus."""

import functools

import click


def corpus_options(command):
    """Add ``--aligned SRC TGT`` | ``--tsv FILE`` | ``--jsonl FILE`` (+ column /
    field choice and ``--limit``) and pass ``open_corpus``: a function that
    returns the ``PairSource``. The options are checked first; the reader
    (and TensorFlow) is imported only when the command calls it, after its
    own checks, so usage errors come at once."""

    @click.option("--aligned", nargs=2, type=click.Path(dir_okay=False), default=None,
                  metavar="SOURCE TARGET", help="Two line-aligned text files (.gz ok).")
    @click.option("--tsv", type=click.Path(dir_okay=False), default=None,
                  help="Tab-separated file (.gz ok); see --columns.")
    @click.option("--columns", nargs=2, type=int, default=(0, 1), show_default=True,
                  metavar="SRC TGT", help="TSV columns of source and target.")
    @click.option("--skip-header", is_flag=True, help="TSV: the first line is a header.")
    @click.option("--jsonl", type=click.Path(dir_okay=False), default=None,
                  help="JSON Lines file (.gz ok); see --fields.")
    @click.option("--fields", nargs=2, default=None, metavar="SRC TGT",
                  help="JSON Lines fields of source and target, e.g. dialogue summary.")
    @click.option("--limit", type=click.IntRange(min=1), default=None,
                  help="Read only the first N records.")
    @functools.wraps(command)
    def wrapper(aligned, tsv, columns, skip_header, jsonl, fields, limit, **kwargs):
        chosen = [name for name, value in (("--aligned", aligned), ("--tsv", tsv),
                                           ("--jsonl", jsonl)) if value]
        if len(chosen) != 1:
            raise click.UsageError(
                "name exactly one corpus with --aligned SOURCE TARGET, --tsv FILE or "
                f"--jsonl FILE (got {', '.join(chosen) or 'none'})."
            )
        if jsonl and not fields:
            raise click.UsageError("--jsonl needs --fields SOURCE_FIELD TARGET_FIELD.")

        def open_corpus():
            from keras_attention.data import aligned_pairs, jsonl_pairs, tsv_pairs

            if aligned:
                return aligned_pairs(*aligned, limit=limit)
            if tsv:
                return tsv_pairs(tsv, *columns, skip_header=skip_header, limit=limit)
            return jsonl_pairs(jsonl, *fields, limit=limit)

        return command(open_corpus=open_corpus, **kwargs)

    return wrapper
