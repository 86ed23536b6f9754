"""Reading the inputs of translate, summarize and evaluate: text files or
stdin (one input per line, ``.gz`` ok; lines end at ``\\n`` only, as
``keras_attention.lines`` reads them) or JSON Lines records, whose string
fields may hold line breaks (a SAMSum dialogue has one per turn)."""

import json
import os

import click

from keras_attention.lines import decode_lines, read_lines

FIELD_HELP = ("Read JSON Lines and take this field of each record (texts with line "
              "breaks, e.g. dialogues: 'dialogue' in ../shared/data/samsum/*.jsonl.gz).")


def read_text_file(path, option):
    """Lines of a UTF-8 text file (``.gz`` ok), or of stdin for ``-``;
    one-line errors when it is missing, empty, not UTF-8 or broken gzip
    (naming the file and the line)."""
    if path == "-":
        stdin = click.get_binary_stream("stdin")
        lines = [text for _, text in decode_lines(stdin, "stdin", kind="input")]
        name = f"{option} stdin"
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{option} file '{path}' not found; check the path.")
        lines = [text for _, text in read_lines(path)]
        name = f"{option} file '{path}'"
    if not lines:
        raise ValueError(f"{name} is empty; give one line per sentence.")
    return lines


def record_fields(lines, field, name):
    """The string ``field`` of each JSON Lines record in ``lines``; a
    one-line error names the first line that is not a JSON object with it."""
    texts = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name}: line {number} is not JSON ({error.msg}); give one "
                             "JSON object per line, or drop the field option for plain "
                             "text.") from None
        if not isinstance(record, dict) or field not in record:
            fields = ", ".join(record) if isinstance(record, dict) else "none"
            raise ValueError(f"{name}: line {number} has no field '{field}' (fields: "
                             f"{fields}); name one of them.")
        if not isinstance(record[field], str):
            raise ValueError(f"{name}: line {number}: field '{field}' is "
                             f"{type(record[field]).__name__}, not text; name a text field.")
        texts.append(record[field])
    return texts


def check_not_empty(texts, name, field=None):
    """``texts``; a one-line error names the first empty one."""
    empty = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if empty:
        what, fix = (("line", "remove empty lines, one input per line") if field is None else
                     (f"'{field}' of line", f"remove records with an empty '{field}'"))
        raise ValueError(f"{name}: {what} {empty[0]} is empty ({len(empty)} empty "
                         f"input(s)); {fix}.")
    return texts


def read_inputs(lines, name, field=None):
    """The inputs in ``lines`` (a text file's lines): the lines themselves,
    or with ``field`` that field of each JSON record; none may be empty.
    Surrounding whitespace is dropped, as the corpus readers drop it from
    training pairs (66 SAMSum test dialogues end in a line break)."""
    texts = lines if field is None else record_fields(lines, field, name)
    return [text.strip() for text in check_not_empty(texts, name, field)]
