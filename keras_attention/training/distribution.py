"""Data-parallel training: ``tf.distribute`` strategies for ``model.fit``.

``make_strategy(name)`` picks one of ``STRATEGIES``:

- ``"default"``: no distribution (``tf.distribute.get_strategy()``);
- ``"mirrored"``: one machine, every local GPU (or, without a GPU, every
  logical CPU device that ``split_cpu`` configured) holds a replica;
- ``"multi_worker"``: several machines (or processes), each started with the
  ``TF_CONFIG`` environment variable that describes the cluster and its own
  place in it; gradients are all-reduced across workers.

Build and compile the model inside ``strategy.scope()``. For
``"multi_worker"`` Keras 3's ``model.fit`` needs ``prepare_for_fit`` (see
there), and only the chief should write files: give the other workers
``worker_directory(output_dir, strategy)``.

Every worker must see the same batches in the same order (same data, same
``BatchingConfig.seed``, same ``keras.utils.set_random_seed``): ``fit``
splits each global batch among the workers (auto-sharding by data), so the
batch size or ``batch_tokens`` is the global one.
"""

import json
import os
import types

import tensorflow as tf

from keras_attention import validation
from keras_attention.constants import DISTRIBUTIONS as STRATEGIES

TF_CONFIG = "TF_CONFIG"
_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def make_strategy(name="default"):
    """The ``tf.distribute.Strategy`` called ``name`` (one of ``STRATEGIES``)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=_local_replica_devices())
    if name == "multi_worker":
        read_tf_config()  # a clear error before TensorFlow's own
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown distribution strategy {name!r}; choose one of {STRATEGIES}.")


def _local_replica_devices():
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return [device.name for device in gpus]
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def split_cpu(count):
    """Split the first CPU into ``count`` logical devices (so ``"mirrored"``
    has ``count`` replicas without a GPU: tests, debugging). Must run before
    TensorFlow initializes its devices, i.e. before the first op; returns the
    logical CPU devices."""
    validation.check_positive_int("count", count)
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        raise RuntimeError(
            f"cannot split the CPU into {count} devices: TensorFlow has already initialized "
            "its devices; call split_cpu at the start of the process, before any TensorFlow op."
        ) from None
    return tf.config.list_logical_devices("CPU")


def read_tf_config():
    """The validated ``TF_CONFIG`` of this process as a dict (cluster and task)."""
    raw = os.environ.get(TF_CONFIG)
    if not raw:
        raise ValueError(
            f"the multi_worker strategy needs the {TF_CONFIG} environment variable; set it on "
            f"every worker, e.g. {TF_CONFIG}='{_TF_CONFIG_EXAMPLE}'."
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{TF_CONFIG} is not valid JSON ({error.msg} at character {error.pos}); "
            f"it should look like '{_TF_CONFIG_EXAMPLE}'."
        ) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster.get("worker") and not cluster.get("chief"):
        raise ValueError(
            f"{TF_CONFIG} has no cluster with a 'worker' list of host:port addresses; "
            f"it should look like '{_TF_CONFIG_EXAMPLE}'."
        )
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses
        ):
            raise ValueError(
                f"{TF_CONFIG} cluster '{job}' must be a list of 'host:port' strings, got "
                f"{addresses!r}."
            )
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ValueError(
            f"{TF_CONFIG} task {task!r} must name a job of the cluster "
            f"({sorted(cluster)}) as its 'type'; e.g. \"task\": {{\"type\": \"worker\", "
            "\"index\": 0}."
        )
    index = task.get("index")
    size = len(cluster[task["type"]])
    if not validation.is_int(index) or not 0 <= index < size:
        raise ValueError(
            f"{TF_CONFIG} task index {index!r} is not in 0..{size - 1} for the "
            f"{size} '{task['type']}' address(es) of the cluster."
        )
    return config


def _task(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """Whether this process writes the run's files: always, except for the
    non-chief workers of a multi-worker cluster (the chief is the 'chief'
    task, or worker 0 when the cluster has none)."""
    task_type, task_id = _task(strategy)
    if task_type is None:
        return True
    has_chief = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


def worker_directory(directory, strategy):
    """Where this process writes the files of a run in ``directory``: the
    chief writes to ``directory`` itself, every other worker to its own
    ``directory/.worker-<index>`` (its copies are identical and only serve its
    own restart; delete them after training)."""
    if is_chief(strategy):
        return directory
    _, task_id = _task(strategy)
    return os.path.join(directory, f".worker-{task_id}")


def prepare_for_fit(model, strategy):
    """Let ``model.fit``/``evaluate`` run under a multi-worker
    ``MultiWorkerMirroredStrategy`` (a no-op for other strategies). Call it
    after ``model.compile`` inside ``strategy.scope()``; returns ``model``.

    Keras 3 (``keras/src/backend/tensorflow/trainer.py``, keras#20585,
    keras#20329) fails there twice:

    1. before the first step ``fit`` builds metrics and optimizer from one
       batch that it *mean-reduces across workers* first; a collective reduce
       takes one tensor, not the ``{"encoder_tokens", "decoder_tokens"}``
       dict. Fix: build from this worker's own part of the batch (only its
       shapes and dtypes are used).
    2. after each step it reduces the logs with ``strategy.reduce("MEAN", v,
       axis=0)``, which fails on scalars. Fix: steps return their logs as
       shape ``(1,)`` tensors; the reduce gives the mean over workers, a
       scalar again.
    """
    if not is_multi_worker(strategy):
        return model

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda value: strategy.experimental_local_results(value)[0], next(batches)
                )
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = types.MethodType(maybe_symbolic_build, model)
    model.train_step = _logs_as_vectors(model.train_step)
    model.test_step = _logs_as_vectors(model.test_step)
    return model


def is_multi_worker(strategy):
    """Whether ``strategy`` all-reduces across several worker processes."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        _task(strategy)[0] is not None
    )


def _logs_as_vectors(step):
    def as_vector(value):
        return tf.reshape(value, [1]) if value.shape.rank == 0 else value

    def vector_logs_step(data):
        return tf.nest.map_structure(as_vector, step(data))

    return vector_logs_step
