"""Train a recipe with Keras' JAX backend on a machine without TensorFlow.

The GPU machines lent to this project carry JAX but no TensorFlow, and
TensorFlow's wheels are too large to bring along. ``keras_attention``'s layers
and ``Transformer`` are written in ``keras.ops`` only, so the same model trains
there under ``KERAS_BACKEND=jax``. This script splits a quality run into three
steps:

1. ``prepare`` (here, TensorFlow): read the recipe, build its vocabulary,
   tokenize the training and validation pairs with the recipe's length policy,
   and write a job folder: ``job.json`` (model config, optimizer, budget) and
   ``data.npz`` (token ids, no padding).
2. ``train`` (on the accelerator, no TensorFlow): fixed-shape length buckets
   (``keras_attention.data.buckets``: one XLA compilation per bucket),
   ``model.fit`` for a wall-clock budget, checkpoint averaging over the last
   epochs; writes an ``.npz`` with the chosen weights (float16, to fit the
   transfer limit; split over ``NAME.partN.npz`` files of at most 15 MiB for
   larger models), the per-epoch history and the validation losses of the
   candidates.
3. ``finish`` (here, TensorFlow): load the weights into the same model on the
   TensorFlow backend, save a trained model folder (model + tokenizers),
   write the history as TensorBoard scalars, and score the recipe's test split
   with sacreBLEU / ROUGE (``evaluate_test_set``); prints JSON.

    python benchmarks/quality_jax.py prepare --recipe recipes/multi30k_en_de.yaml --job gpu_jobs/m30k
    KERAS_BACKEND=jax python benchmarks/quality_jax.py train --job gpu_jobs/m30k --minutes 7 --output m30k.npz
    python benchmarks/quality_jax.py finish --job gpu_jobs/m30k --weights m30k.npz --output runs/m30k_gpu
"""

import argparse
import dataclasses
import json
import os
import time

import numpy as np
from _common import REPOSITORY, cpu_cores, cpu_name, progress

from keras_attention.data.buckets import IdPairs, bucket_shapes, plan_batches, rows_per_batch

BOUNDARIES = (16, 32, 64, 128, 256, 512, 1024)  # one XLA compilation per bucket shape


# ---------------------------------------------------------------------------
# prepare (TensorFlow machine)
# ---------------------------------------------------------------------------

def _token_ids(pairs_dataset, source_tokenizer, target_tokenizer, batching):
    """``IdPairs`` of a split with the recipe's tokenizers and length policy."""
    from keras_attention.data import batching as steps

    ids = pairs_dataset.apply(steps.tokenize_batches(source_tokenizer, target_tokenizer))
    limit = (steps.truncate if batching.too_long == "truncate" else steps.filter_by_length)
    ids = ids.apply(limit(batching.max_source_tokens, batching.max_target_tokens))
    sources, targets = [], []
    for source, target in ids:
        sources += source.to_list()
        targets += target.to_list()
    return IdPairs(
        [i for s in sources for i in s], [len(s) for s in sources],
        [i for t in targets for i in t], [len(t) for t in targets],
    )


def _save_corpus(arrays, prefix, corpus):
    dtype = np.int16 if max(corpus.source_flat.max(initial=0),
                            corpus.target_flat.max(initial=0)) < 2**15 else np.int32
    arrays[f"{prefix}_source"] = corpus.source_flat.astype(dtype)
    arrays[f"{prefix}_source_lengths"] = corpus.source_lengths.astype(np.int32)
    arrays[f"{prefix}_target"] = corpus.target_flat.astype(dtype)
    arrays[f"{prefix}_target_lengths"] = corpus.target_lengths.astype(np.int32)


def _load_corpus(arrays, prefix):
    return IdPairs(arrays[f"{prefix}_source"], arrays[f"{prefix}_source_lengths"],
                  arrays[f"{prefix}_target"], arrays[f"{prefix}_target_lengths"])


def prepare(args):
    from keras_attention.data import save_tokenizer
    from keras_attention.training import load_config
    from keras_attention.training.train import build_tokenizers

    config = load_config(args.recipe, args.set)
    if config.data.validation is None or config.data.test is None:
        raise SystemExit(f"error: {args.recipe}: the job needs data.validation and data.test; "
                         "add them to the recipe.")
    if config.optimizer.schedule != "noam":
        raise SystemExit(f"error: {args.recipe}: a job trains for a time budget, so its "
                         "schedule must not depend on the run's length; add "
                         "--set optimizer.schedule=noam.")
    train_corpus = config.data.train.pairs()
    train_corpus.scan()
    progress(f"building the {config.vocabulary.type} vocabulary ...")
    source_tokenizer, target_tokenizer = build_tokenizers(config.vocabulary, train_corpus)
    os.makedirs(os.path.join(args.job, "vocab"), exist_ok=True)
    save_tokenizer(source_tokenizer, os.path.join(args.job, "vocab"), "source")
    save_tokenizer(target_tokenizer, os.path.join(args.job, "vocab"), "target")

    arrays = {}
    for split, corpus_config in (("train", config.data.train),
                                 ("validation", config.data.validation)):
        progress(f"tokenizing {split} ...")
        corpus = _token_ids(corpus_config.pairs().dataset(), source_tokenizer,
                            target_tokenizer, config.batching)
        _save_corpus(arrays, split, corpus)
        progress(f"  {len(corpus)} pairs, {int(corpus.source_lengths.sum())} source and "
                 f"{int(corpus.target_lengths.sum())} target tokens")
    np.savez_compressed(os.path.join(args.job, "data.npz"), **arrays)

    model_config = config.model.transformer_config(
        source_tokenizer.vocabulary_size, target_tokenizer.vocabulary_size)
    o = config.optimizer
    job = {
        "name": os.path.basename(os.path.normpath(args.job)),
        "recipe": os.path.relpath(args.recipe, REPOSITORY),
        "overrides": list(args.set),
        "task": config.task,
        "model": model_config.to_dict(),
        "precision": config.training.precision,
        "label_smoothing": config.training.label_smoothing,
        "seed": config.training.seed,
        "optimizer": {"learning_rate": o.learning_rate, "warmup_steps": o.warmup_steps,
                      "beta_1": o.beta_1, "beta_2": o.beta_2, "epsilon": o.epsilon,
                      "clipnorm": o.clipnorm},
        "batch_tokens": args.batch_tokens or config.batching.batch_tokens or 4096,
        "max_source_tokens": config.batching.max_source_tokens,
        "max_target_tokens": config.batching.max_target_tokens,
        "max_epochs": args.max_epochs or config.training.epochs,
        "average_last": args.average_last,
        "boundaries": args.boundaries,
    }
    with open(os.path.join(args.job, "job.json"), "w") as f:
        json.dump(job, f, indent=1)
    print(json.dumps(job))


# ---------------------------------------------------------------------------
# train (accelerator machine: keras + jax, no TensorFlow)
# ---------------------------------------------------------------------------

def _device_name():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}: {getattr(device, 'device_kind', device)}"
    return f"cpu: {cpu_name()}, {cpu_cores()} cores"


def train(args):
    import keras

    # The model, loss and schedule modules need Keras alone (no TensorFlow).
    from keras_attention.models.transformer import Transformer
    from keras_attention.training.losses import SequenceCrossEntropy
    from keras_attention.training.schedules import NoamSchedule

    with open(os.path.join(args.job, "job.json")) as f:
        job = json.load(f)
    arrays = np.load(os.path.join(args.job, "data.npz"))
    train_corpus, validation_corpus = (_load_corpus(arrays, "train"),
                                       _load_corpus(arrays, "validation"))
    shapes = bucket_shapes(job["max_source_tokens"], job["max_target_tokens"],
                           job["boundaries"])
    keras.utils.set_random_seed(job["seed"])
    rng = np.random.default_rng(job["seed"])

    class Batches(keras.utils.PyDataset):
        def __init__(self, corpus, shuffle):
            super().__init__()
            self.corpus, self.shuffle = corpus, shuffle
            self.on_epoch_end()

        def on_epoch_end(self):
            self.batches = plan_batches(self.corpus, shapes, job["batch_tokens"],
                                        rng if self.shuffle else None)

        def __len__(self):
            return len(self.batches)

        def __getitem__(self, index):
            bucket, rows = self.batches[index]
            return self.corpus.padded_batch(rows, *shapes[bucket],
                                            rows_per_batch(job["batch_tokens"], max(shapes[bucket])))

    train_data = Batches(train_corpus, shuffle=True)
    validation_data = Batches(validation_corpus, shuffle=False)
    model = Transformer(job["model"], dtype=job["precision"])
    o = job["optimizer"]
    model.compile(
        optimizer=keras.optimizers.Adam(
            NoamSchedule(o["learning_rate"], o["warmup_steps"]), beta_1=o["beta_1"],
            beta_2=o["beta_2"], epsilon=o["epsilon"], clipnorm=o["clipnorm"]),
        loss=SequenceCrossEntropy(job["label_smoothing"]),
    )
    real_tokens = int(train_corpus.source_lengths.sum() + 2 * len(train_corpus)
                      + train_corpus.target_lengths.sum())
    progress(f"[{job['name']}] {_device_name()}; {model.count_params():,} parameters; "
             f"{len(train_data)} batches per epoch; shapes {shapes}")

    budget = args.minutes * 60
    started = time.time()
    history, kept = [], []
    best = {"val_loss": float("inf")}

    class Budget(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.time() - self.epoch_started
            entry = {"epoch": epoch + 1, "seconds": round(seconds, 2),
                     "real_tokens_per_second": round(real_tokens / seconds),
                     "learning_rate": float(keras.ops.convert_to_numpy(
                         self.model.optimizer.learning_rate)),
                     **{k: float(v) for k, v in (logs or {}).items()}}
            history.append(entry)
            progress(f"[{job['name']}] " + json.dumps(entry))
            weights = [w.copy() for w in self.model.get_weights()]
            kept.append(weights)
            del kept[:-job["average_last"]]
            if entry["val_loss"] < best["val_loss"]:
                best.update(val_loss=entry["val_loss"], epoch=epoch + 1, weights=weights)
            # Stop when the next epoch would end past the budget; the first
            # epoch's time is mostly XLA compilation, so it only counts itself.
            elapsed = time.time() - started
            if elapsed + (seconds if epoch > 0 else 0) > budget:
                self.model.stop_training = True

    model.fit(train_data, validation_data=validation_data, epochs=job["max_epochs"],
              callbacks=[Budget()], verbose=0)
    train_seconds = time.time() - started

    candidates = {
        f"last {len(kept)} averaged": [np.mean(ws, axis=0) for ws in zip(*kept)],
        f"best epoch ({best['epoch']})": best["weights"],
        f"last epoch ({len(history)})": kept[-1],
    }
    losses = {}
    for name, weights in candidates.items():
        model.set_weights(weights)
        losses[name] = float(model.evaluate(validation_data, verbose=0))
    chosen = min(losses, key=losses.get)
    model.set_weights([w.astype(np.float16) for w in candidates[chosen]])
    losses[f"{chosen}, float16"] = float(model.evaluate(validation_data, verbose=0))
    summary = {
        "job": job, "device": _device_name(), "backend": keras.backend.backend(),
        "keras": keras.__version__, "epochs": len(history),
        "steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "train_seconds": round(train_seconds, 1), "validation_loss": losses,
        "chosen": chosen, "parameters": model.count_params(), "history": history,
    }
    progress(f"[{job['name']}] " + json.dumps({k: summary[k] for k in (
        "epochs", "steps", "train_seconds", "validation_loss", "chosen")}))
    write_weights(args.output, summary, [w.astype(np.float16) for w in candidates[chosen]],
                  int(args.shard_mb * 2**20))


def shard_paths(output, count):
    """``output`` (``name.npz``), then ``name.part1.npz``, ``name.part2.npz``, ..."""
    stem = output[:-len(".npz")] if output.endswith(".npz") else output
    return [output] + [f"{stem}.part{i}.npz" for i in range(1, count)]


def write_weights(output, summary, weights, shard_bytes):
    """Weights ``w0000``, ``w0001``, ... in files of at most about
    ``shard_bytes`` each (the device tool brings back files of up to 16 MiB);
    the first file also holds the summary and the shard count. Each file is
    written to a temporary name and renamed."""
    shards, size = [[]], 0
    for index, weight in enumerate(weights):
        if shards[-1] and size + weight.nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(index)
        size += weight.nbytes
    summary = {**summary, "weight_shards": len(shards)}
    for number, (path, indices) in enumerate(zip(shard_paths(output, len(shards)), shards)):
        arrays = {f"w{i:04d}": weights[i] for i in indices}
        if number == 0:
            arrays["summary"] = np.array(json.dumps(summary))
        partial = path[:-len(".npz")] + ".partial.npz"
        np.savez(partial, **arrays)
        os.replace(partial, path)


def read_weights(path):
    """``(summary, weights)`` from ``write_weights``' files; a missing shard
    is a one-line error."""
    with np.load(path) as first:
        summary = json.loads(str(first["summary"]))
    arrays = {}
    for shard in shard_paths(path, summary.get("weight_shards", 1)):
        if not os.path.exists(shard):
            raise SystemExit(f"error: {shard} is missing: the weights of {path} come in "
                             f"{summary['weight_shards']} files; copy them all next to it.")
        with np.load(shard) as data:
            arrays.update({k: data[k] for k in data.files if k.startswith("w")})
    return summary, [arrays[f"w{i:04d}"].astype(np.float32) for i in range(len(arrays))]


# ---------------------------------------------------------------------------
# finish (TensorFlow machine)
# ---------------------------------------------------------------------------

def finish(args):
    import keras
    import tensorflow as tf

    from keras_attention.data import load_tokenizer
    from keras_attention.evaluation.scoring import evaluate_test_set
    from keras_attention.models import Transformer, TrainedModel, save_trained_model
    from keras_attention.training import load_config

    summary, weights = read_weights(args.weights)
    job = summary["job"]
    model = Transformer(job["model"], dtype=job["precision"])
    model.set_weights(weights)
    vocab = os.path.join(args.job, "vocab")
    trained = TrainedModel(model, load_tokenizer(vocab, "source"),
                           load_tokenizer(vocab, "target"), task=job["task"])
    config = load_config(os.path.join(REPOSITORY, job["recipe"]), job["overrides"])
    save_trained_model(trained, os.path.join(args.output, "model"), extra={
        "decoding": config.evaluation.decoding.changes(), "training": {
        "backend": summary["backend"], "device": summary["device"],
        "epochs": summary["epochs"], "steps": summary["steps"],
        "weights": summary["chosen"] + " (shipped as float16)", "job": job}})

    for split, keys in (("train", ("loss", "real_tokens_per_second", "learning_rate")),
                        ("validation", ("val_loss",))):
        writer = tf.summary.create_file_writer(os.path.join(args.output, "logs", split))
        with writer.as_default():
            for entry in summary["history"]:
                for key in keys:
                    tf.summary.scalar(f"epoch_{key}", entry[key], step=entry["epoch"])
        writer.flush()

    # The recipe's evaluation decoding (length limits, n-gram blocking), as beam search.
    decoding = dataclasses.replace(config.evaluation.decoding, strategy="beam",
                                   beam_size=args.beam_size, length_penalty=args.length_penalty)
    if args.max_length_ratio is not None:
        decoding = dataclasses.replace(decoding, max_length_ratio=args.max_length_ratio,
                                       max_length_offset=args.max_length_offset)
    started = time.time()
    scores = evaluate_test_set(trained, config.data.test, decoding, task=job["task"],
                               limit=args.test_limit, batch_size=args.batch_size)
    result = {
        "recipe": job["recipe"], "overrides": job["overrides"], "task": job["task"],
        **{k: v for k, v in scores.items() if k != "hypotheses"},
        "steps": summary["steps"], "epochs": summary["epochs"],
        "train_wall_seconds": summary["train_seconds"],
        "eval_wall_seconds": round(time.time() - started, 1),
        "device": summary["device"], "backend": summary["backend"],
        "eval_device": f"{cpu_name()}, {cpu_cores()} cores",
        "precision": job["precision"], "parameters": summary["parameters"],
        "weights": summary["chosen"], "validation_loss": summary["validation_loss"],
        "keras": keras.__version__,
    }
    if "hypotheses" in scores:
        with open(os.path.join(args.output, "test_hypotheses.txt"), "w") as f:
            f.writelines(h + "\n" for h in scores["hypotheses"])
    with open(os.path.join(args.output, "quality.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="tokenize a recipe into a job folder")
    p.add_argument("--recipe", required=True)
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    p.add_argument("--job", required=True, help="job folder to write")
    p.add_argument("--batch-tokens", type=int, default=None)
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--average-last", type=int, default=5)
    p.add_argument("--boundaries", type=lambda s: [int(x) for x in s.split(",")],
                   default=list(BOUNDARIES),
                   help="bucket lengths, comma-separated (fewer: fewer compilations)")
    t = commands.add_parser("train", help="train a job (KERAS_BACKEND=jax, no TensorFlow)")
    t.add_argument("--job", required=True)
    t.add_argument("--minutes", type=float, required=True, help="wall-clock training budget")
    t.add_argument("--output", required=True,
                   help=".npz with weights and history (larger models: NAME.partN.npz beside it)")
    t.add_argument("--shard-mb", type=float, default=15.0,
                   help="most MiB of weights per file (default 15: the device tool's limit is 16)")
    f = commands.add_parser("finish", help="load the weights, save the model, score the test split")
    f.add_argument("--job", required=True)
    f.add_argument("--weights", required=True)
    f.add_argument("--output", required=True)
    f.add_argument("--beam-size", type=int, default=4)
    f.add_argument("--length-penalty", type=float, default=0.6)
    f.add_argument("--max-length-ratio", type=float, default=None)
    f.add_argument("--max-length-offset", type=int, default=10)
    f.add_argument("--test-limit", type=int, default=None)
    f.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    {"prepare": prepare, "train": train, "finish": finish}[args.command](args)


if __name__ == "__main__":
    main()
