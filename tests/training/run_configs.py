"""Tiny run configs for the training tests (seconds on a CPU)."""

import yaml

TINY = {
    "task": "translation",
    "data": {"train": {"format": "dates", "size": 192, "seed": 0},
             "validation": {"format": "dates", "size": 16, "seed": 1}},
    "vocabulary": {"type": "char"},
    "model": {"preset": "tiny", "changes": {
        "hidden_dim": 32, "intermediate_dim": 64, "num_heads": 2,
        "num_encoder_layers": 1, "num_decoder_layers": 1, "max_sequence_length": 64}},
    "batching": {"batch_size": 64, "max_source_tokens": 60, "max_target_tokens": 12,
                 "bucket_boundaries": []},
    "optimizer": {"learning_rate": 0.003, "schedule": "noam", "warmup_steps": 3},
    "training": {"epochs": 2},
    "evaluation": {"max_sentences": 16, "batch_size": 16, "decoding": {"max_length": 12}},
    "output": {"keep_checkpoints": 5},
}


def quiet(*args):
    """A ``print_fn`` for ``train`` that prints nothing."""


def write_config(path, output_dir, changes=None):
    """Write TINY (sections updated with ``changes``) to ``path``."""
    config = {key: (dict(value) if isinstance(value, dict) else value)
              for key, value in TINY.items()}
    config["output"] = dict(config["output"], directory=str(output_dir))
    for section, values in (changes or {}).items():
        if values is None:
            config[section] = None
        elif isinstance(values, dict):
            config[section] = dict(config.get(section) or {}, **values)
        else:
            config[section] = values
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return str(path)
