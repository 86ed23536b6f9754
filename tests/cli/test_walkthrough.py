"""The README's "Train, decode, evaluate" walk-through, run as written.

The commands are read from the README's code block, so the README cannot
drift from what is tested: each ``keras-attention ...`` line runs through the
CLI in a fresh folder holding ``recipes/dates.yaml``, the ``python -c`` line
runs as Python, ``echo X | keras-attention ...`` feeds X on stdin. A line of
any other form fails the test (teach ``_run`` about it first).
"""

import os
import re
import shlex
import shutil

import pytest
from click.testing import CliRunner

from cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADING = "### Train, decode, evaluate: a walk-through"


def walkthrough_commands():
    """The shell commands of the walk-through's code block (continuation
    lines joined, comments dropped), each as a list of words."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index(HEADING):]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True)
            for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _run(words):
    """Run one walk-through command; returns the click result (None for the
    python line)."""
    stdin = None
    if words[0] == "echo":
        bar = words.index("|")
        stdin, words = " ".join(words[1:bar]) + "\n", words[bar + 1:]
    if words[:2] == ["python", "-c"] and len(words) == 3:
        exec(compile(words[2], "README walk-through", "exec"), {})
        return None
    assert words[0] == "keras-attention", f"walk-through line of unknown form: {words}"
    result = CliRunner().invoke(main, words[1:], input=stdin)
    assert result.exit_code == 0, f"{shlex.join(words)}:\n{result.output}"
    return result


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


@pytest.fixture
def in_fresh_checkout(tmp_path, monkeypatch):
    os.makedirs(tmp_path / "recipes")
    shutil.copy(os.path.join(ROOT, "recipes", "dates.yaml"), tmp_path / "recipes")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_walkthrough_trains_a_model_that_does_what_it_shows(in_fresh_checkout):
    commands = walkthrough_commands()
    assert [c[1] if c[0] == "keras-attention" else c[0] for c in commands] == [
        "train", "python", "translate", "evaluate", "echo", "attention", "average"]
    results = [_run(words) for words in commands]
    train, _, translate, evaluate, n_best, attention, average = results

    assert train.stdout.splitlines()[-1].startswith("trained 3 epoch(s), ")
    sources, references, hypotheses = (_lines(f) for f in ("src.txt", "ref.txt", "hyp.txt"))
    assert len(sources) == len(references) == len(hypotheses) == 300
    exact = float(re.search(r"^exact match = ([\d.]+)$", evaluate.stdout, re.M).group(1))
    assert exact == round(100 * sum(h == r for h, r in zip(hypotheses, references)) / 300, 2)
    assert exact >= 95, evaluate.stdout  # the bar; 98.67 on 2 Xeon cores

    best = n_best.stdout.splitlines()
    assert len(best) == 3 and best[0].startswith("0 ||| 1990-05-03 ||| "), n_best.stdout
    with open("att.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "-> " in average.stdout and os.path.isdir(os.path.join("runs", "dates", "averaged"))
    averaged = _run(["echo", "the third of may nineteen ninety", "|", "keras-attention",
                     "translate", "--model", "runs/dates/averaged"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\n", averaged.stdout), averaged.stdout
