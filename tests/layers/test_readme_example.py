"""The README's tagger example ("Our layers in your own Keras model"), run as written."""

import os
import re

import keras
import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def _example():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("### Our layers in your own Keras model"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_tagger_example_learns_and_its_int8_file_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(_example(), "README tagger example", "exec"), namespace)
    loss, accuracy = namespace["tagger"].evaluate(namespace["tokens"], namespace["labels"],
                                                 verbose=0)
    assert accuracy > 0.95, accuracy
    tokens = namespace["tokens"]
    reloaded = keras.saving.load_model(tmp_path / "tagger.keras")
    np.testing.assert_array_equal(np.asarray(reloaded(tokens[:8])),
                                  np.asarray(namespace["tagger"](tokens[:8])))
    assert "[" in capsys.readouterr().out
