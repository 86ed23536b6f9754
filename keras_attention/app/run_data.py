"""The data a trained model folder was trained on, when it sits in its run
folder: ``RUN/config.yaml`` next to ``RUN/model`` (what ``export``'s warmup
records and ``prune``'s head importance read by default)."""

import itertools
import os

from keras_attention.constants import CONFIG_FILE


def run_pairs(model_dir, limit):
    """``(pairs or None, where they come from)``: the first ``limit``
    ``(source, target)`` pairs of the run's validation (else training)
    corpus, or ``None`` when the folder is not in a run folder whose
    config.yaml still reads (moved or changed data)."""
    run_config = os.path.join(os.path.dirname(os.path.abspath(model_dir)), CONFIG_FILE)
    if not os.path.exists(run_config):
        return None, f"no run config ({run_config})"
    from keras_attention.training import load_config

    try:
        corpus = load_config(run_config).data
        split, corpus = (("validation", corpus.validation) if corpus.validation
                         else ("training", corpus.train))
        return list(itertools.islice(corpus.pairs(), limit)), f"the run's {split} data ({run_config})"
    except (OSError, ValueError) as error:
        return None, f"the run's data does not read ({error})"
