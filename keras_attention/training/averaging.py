"""Checkpoint averaging: the element-wise mean of the weights of a run's last
epochs, often a little better than the last epoch alone (Vaswani et al.,
2017, averaged the last 5 or 20 checkpoints).

A run folder (what ``keras-attention train`` writes) holds the trained model
in ``model/`` and the weights after each epoch in
``checkpoints/epoch-0001.weights.h5``, ``epoch-0002.weights.h5``, ...
``average_last`` averages the last N of those into a new model folder
(``averaged/`` by default; the names are ``run_layout``'s).
"""

import os

import h5py
import numpy as np

from keras_attention.atomic import refuse_existing
from keras_attention.models.saving import TrainedModel, load_trained_model, save_trained_model
from keras_attention.training.run_layout import CHECKPOINTS, RunLayout


def average_checkpoints(model, weight_paths):
    """Set ``model``'s weights to the element-wise mean of the ``.weights.h5``
    files in ``weight_paths`` (saved from models of its architecture) and
    return ``model``.

    Means are computed in float64 and cast back to each weight's dtype.
    Weights that are not floating point (counters, seeds) are not averaged:
    they keep the value of the last file.
    """
    weight_paths = list(weight_paths)
    if not weight_paths:
        raise ValueError("no checkpoints to average; pass at least one .weights.h5 file.")
    total = None
    for path in weight_paths:
        weights = _load(model, path)
        if total is None:
            total = [w.astype(np.float64) if _is_float(w) else w for w in weights]
        else:
            total = [t + w if _is_float(w) else w for t, w in zip(total, weights)]
    dtypes = [w.dtype for w in weights]
    model.set_weights(
        [
            (t / len(weight_paths)).astype(dtype) if _is_float(t) else t
            for t, dtype in zip(total, dtypes)
        ]
    )
    return model


def _is_float(array):
    return np.issubdtype(array.dtype, np.floating)


def _load(model, path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint '{path}' not found; pass existing .weights.h5 files.")
    # Keras loads a file with extra layers without a word: compare shapes first.
    stored = _stored_shapes(path)
    expected = sorted(tuple(w.shape) for w in model.weights)
    reason = None
    if len(stored) != len(expected):
        reason = f"it holds {len(stored)} weights, the model has {len(expected)}"
    elif stored != expected:
        reason = "its weight shapes differ from the model's"
    else:
        try:
            model.load_weights(path)
        except (ValueError, KeyError, TypeError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if reason:
        raise ValueError(
            f"checkpoint '{path}' does not match the model's architecture ({reason}); "
            "average only checkpoints of the run the model comes from."
        )
    return model.get_weights()


_NOT_MODEL_WEIGHTS = ("optimizer",)


def _stored_shapes(path):
    shapes = []
    try:
        with h5py.File(path, "r") as f:
            # Checkpoints of a compiled model also hold the optimizer's state;
            # only the model's own weights are averaged.
            for name, group in f.items():
                if name in _NOT_MODEL_WEIGHTS or not isinstance(group, h5py.Group):
                    continue
                group.visititems(
                    lambda _, item: shapes.append(tuple(item.shape))
                    if isinstance(item, h5py.Dataset)
                    else None
                )
    except OSError:
        raise ValueError(
            f"checkpoint '{path}' is not a readable .weights.h5 file; pass files written by "
            "model.save_weights."
        ) from None
    return sorted(shapes)


def average_last(run_dir, last=5, output=None, overwrite=False):
    """Average the last ``last`` epoch checkpoints of the run in ``run_dir``
    into a trained model folder (architecture, tokenizers and task from
    ``run_dir/model``), written atomically to ``output`` (default
    ``run_dir/averaged``). Its metadata lists the averaged files under
    ``averaged_checkpoints``.

    An existing ``output`` (an earlier average, or ``run_dir/model`` itself)
    is a ``FileExistsError`` before anything is loaded, unless
    ``overwrite=True``: then it is replaced.

    Returns ``(output folder, averaged checkpoint paths)``.
    """
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise ValueError(f"last must be a positive number of checkpoints, got {last!r}.")
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(
            f"run folder '{run_dir}' not found; pass the output folder of "
            "'keras-attention train'."
        )
    layout = RunLayout(run_dir)
    checkpoints = list(layout.epoch_checkpoints().values())
    if len(checkpoints) < last:
        raise ValueError(
            f"run '{run_dir}' has {len(checkpoints)} epoch checkpoint(s) in "
            f"{CHECKPOINTS}/ (epoch-NNNN.weights.h5), fewer than the {last} to average; "
            "average fewer or train more epochs."
        )
    output = output or layout.averaged
    if not overwrite:
        refuse_existing(output, "model folder", "--output")
    trained = load_trained_model(layout.model)
    chosen = checkpoints[-last:]
    average_checkpoints(trained.model, chosen)
    metadata = dict(
        trained.metadata,
        averaged_checkpoints=[os.path.join(CHECKPOINTS, os.path.basename(p)) for p in chosen],
    )
    averaged = TrainedModel(
        trained.model,
        trained.source_tokenizer,
        trained.target_tokenizer,
        task=trained.task,
        metadata=metadata,
    )
    return save_trained_model(averaged, output, overwrite=overwrite), chosen
