"""``keras-attention export``: a trained model folder -> a versioned,
string-in/string-out SavedModel for TF Serving (greedy or beam search in the
graph), a TFLite greedy or beam search model (``--format tflite``):
string -> string with TF Text custom ops when the tokenizers allow it, else
ids -> ids; or a CTranslate2 model folder (``--format ctranslate2``)."""

import json
import os
import subprocess
import sys

import click

from cli.errors import user_errors
from cli.translate import FiniteFloatRange, _with_strategy
from keras_attention.app.decoder import decoding_config
from keras_attention.constants import (
    BEAM_STOPPINGS,
    CTRANSLATE2_QUANTIZATIONS,
    EXPORT_FORMATS,
    TFLITE_IO,
    TFLITE_QUANTIZATIONS,
)

QUANTIZATIONS = {"tflite": TFLITE_QUANTIZATIONS, "ctranslate2": CTRANSLATE2_QUANTIZATIONS}


def _check_in_fresh_process(export_path, probes, expected):
    """Run the export's ``serving_default`` in a new Python process that
    imports only tensorflow and tensorflow_text; a ClickException when its
    outputs differ from ``expected``."""
    script = (
        "import json, sys; import tensorflow as tf; import tensorflow_text;"
        "s = tf.saved_model.load(sys.argv[1]).signatures['serving_default'];"
        "out = s(inputs=tf.constant(json.loads(sys.stdin.read())))['outputs'].numpy();"
        "print(json.dumps([t.decode('utf-8') for t in out]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, export_path],
        input=json.dumps(probes), capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if result.returncode != 0:
        raise click.ClickException(
            "reloading the export failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
        )
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    different = sum(a != b for a, b in zip(reloaded, expected))
    if different:
        raise click.ClickException(
            f"the reloaded export disagrees with the in-memory model on {different} of "
            f"{len(probes)} probe(s); report this with the model folder."
        )


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Trained model folder (with model.keras), as 'keras-attention train' writes.")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Export folder; the model goes to OUTPUT/VERSION/ (the TF Serving layout).")
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="Version folder number  [default: one above the highest in OUTPUT, or 1]")
@click.option("--overwrite", is_flag=True,
              help="Replace OUTPUT/VERSION if it exists (atomically); without it an "
                   "existing version is an error.")
@click.option("--format", "export_format", type=click.Choice(EXPORT_FORMATS), default="saved_model",
              show_default=True, help="Export format.")
@click.option("--strategy", type=click.Choice(("greedy", "beam", "sample")), default=None,
              help="Decoding built into the graph (sample is refused: exports are "
                   "deterministic).  [default: greedy; beam with --beam-size/--n-best]")
@click.option("--beam-size", type=click.IntRange(min=1), default=None,
              help="Beams per input (implies --strategy beam).  [default: 4]")
@click.option("--length-penalty", type=FiniteFloatRange(min=0.0), default=None,
              help="GNMT length penalty alpha (beam).  [default: 0.6]")
@click.option("--beam-stopping", type=click.Choice(BEAM_STOPPINGS), default=None,
              help="When beam search stops: early (no alive beam beats the n-best finished "
                   "ones at its current length) or exact (at any length).  [default: early]")
@click.option("--n-best", type=click.IntRange(min=1), default=None,
              help="Hypotheses returned by the n_best signature (beam).  [default: 1]")
@click.option("--max-length", type=click.IntRange(min=1), default=None,
              help="Most generated tokens.  [default: the model's limit]")
@click.option("--max-batch-size", default=64, show_default=True, type=click.IntRange(min=1),
              help="Most inputs per request; larger batches fail with a clear error.")
@click.option("--quantize", type=click.Choice(sorted(set(TFLITE_QUANTIZATIONS)
                                                      | set(CTRANSLATE2_QUANTIZATIONS))),
              default=None,
              help="TFLite weights (--format tflite): none (float32), float16, dynamic "
                   "(the converter's int8 dynamic range) or int8 (every weight stored once, "
                   "tied embeddings once; smallest). CTranslate2 weights (--format "
                   "ctranslate2): none, int8, int8_float32, int16, float16 or bfloat16.  "
                   "[default: none]")
@click.option("--io", "tflite_io", type=click.Choice(TFLITE_IO), default=None,
              help="TFLite model inputs/outputs: text (a string in, its translation out; "
                   "tokenizers inside as TF Text custom ops; SentencePiece unigram "
                   "tokenizers without lowercase/normalization) or ids (ids in, ids out, "
                   "builtin ops only).  [default: text when the tokenizers allow it, else ids]")
@click.option("--xla", is_flag=True,
              help="SavedModel: compile the search with XLA inside the graph (TF Serving: "
                   "--xla_cpu_compilation_enabled=true): faster decoding on CPU once "
                   "compiled (README, Decoding speed), but the first request of each shape "
                   "bucket (batch padded to a power of two, source to a multiple of 16 "
                   "tokens) compiles for seconds.")
@click.option("--probe", "probes", multiple=True,
              help="Input to check after exporting: the export, reloaded in a fresh "
                   "process, must give the in-memory model's output (repeatable).")
@click.option("--warmup-input", "warmup_inputs", multiple=True,
              help="SavedModel: a sample input for the warmup records "
                   "(VERSION/assets.extra/tf_serving_warmup_requests), which TF Serving and "
                   "'keras-attention serve' run once when they load the version, so the first "
                   "request is not slow (repeatable).  [default: a few source lines of the "
                   "run's validation, else training, data when MODEL sits in a run folder "
                   "with its config.yaml; else generic texts]")
@user_errors
def export(model_path, output_dir, version, overwrite, export_format, strategy, beam_size,
           length_penalty, beam_stopping, n_best, max_length, max_batch_size, quantize, tflite_io,
           xla, probes, warmup_inputs):
    """Export a trained model: a SavedModel (strings in, strings out) or TFLite.

    Tokenization, the encoder, cached greedy or beam search and
    detokenization all run in the graph, so TF Serving (or any TensorFlow
    program that imports tensorflow_text) serves it as is. Its decoding
    starts from the one stored with the model folder (its recipe's length
    limits, n-gram blocking, length penalty: what translate/summarize use);
    the options here override single fields. Signatures:
    serving_default (inputs -> outputs, scores), n_best (inputs -> outputs
    and scores of shape (batch, n_best)) and ids (source_ids -> ids, scores).
    An existing OUTPUT/VERSION is never replaced without --overwrite.
    TF Serving's conventions come with it: warmup records (see
    --warmup-input) and OUTPUT/batching_parameters.txt, the text proto of
    --batching_parameters_file sized to the export (max batch size, one
    batch thread per CPU core here, a 2 ms timeout; rewritten by the
    export of the highest version).

    --format tflite writes OUTPUT/VERSION/model.tflite (greedy or beam
    search with the same decoding as the SavedModel: the stored one, the
    options here overriding fields; one output per input, up to
    --max-length tokens) with the tokenizers and keras_attention.json beside it: with --io text a
    string (1,) -> {outputs (1,), ids} model whose tokenizers run as TF Text
    custom ops (register tensorflow_text's TFLite ops in the interpreter);
    with --io ids source ids (1, max_sequence_length) -> generated ids
    (1, --max-length), TFLite builtin ops only, tokenizing in the app.

    --format ctranslate2 writes OUTPUT/VERSION/ as a CTranslate2 model
    (pip install 'keras-attention[ctranslate2]'), several times faster on CPU,
    with our tokenizers beside it: translate, summarize and evaluate --model
    OUTPUT decode with it (any strategy; the decoding given here is stored as
    its default). Not for copy-attention models.

    \b
    Examples:
      keras-attention export --model runs/dates/model --output saved_models/dates
      keras-attention export --model runs/de-en/model --output saved_models/de-en \\
        --version 2 --beam-size 4 --length-penalty 0.6 --n-best 4 --probe "ein Haus"
      keras-attention export --model runs/de-en/model --output saved_models/de-en \\
        --beam-size 4 --xla --probe "ein Haus"
      keras-attention export --model runs/de-en/model --output tflite/de-en \\
        --format tflite --quantize int8 --beam-size 4 --probe "ein Haus"
      keras-attention export --model runs/dates/model --output tflite/dates \\
        --format tflite --io ids --quantize dynamic --probe "5 apr 1917"
      keras-attention export --model runs/dates/model --output ct2/dates \\
        --format ctranslate2 --quantize int8 --beam-size 4 --probe "5 apr 1917"
    """
    batch_size_given = (click.get_current_context().get_parameter_source("max_batch_size")
                        is not click.core.ParameterSource.DEFAULT)
    _check_format_options(export_format, n_best, quantize, tflite_io,
                          batch_size_given, xla, beam_stopping)  # before TensorFlow
    if warmup_inputs and export_format != "saved_model":
        raise click.UsageError(f"--warmup-input applies to --format saved_model (TF Serving's "
                               f"warmup records); drop it for --format {export_format}.")
    decoding = {name: value for name, value in (
        ("strategy", strategy), ("beam_size", beam_size), ("length_penalty", length_penalty),
        ("beam_stopping", beam_stopping), ("n_best", n_best),
        ("max_length", max_length)) if value is not None}
    _with_strategy(decoding)  # flags of two strategies: a usage error before TensorFlow
    from keras_attention.export import next_version, version_directory

    config = decoding_config(decoding)  # before loading: bad flags fail fast
    version = next_version(output_dir) if version is None else version
    # Before loading the model: a bad or existing version fails fast.
    folder = version_directory(output_dir, version, overwrite=overwrite)
    if export_format == "ctranslate2":
        return _export_ctranslate2(model_path, folder, overwrite, decoding,
                                   quantize or "none", probes)
    if export_format == "tflite":
        return _export_tflite(model_path, folder, overwrite, decoding, quantize or "none",
                              tflite_io, probes)

    import tensorflow as tf

    from keras_attention.export import TextToTextModule, export_saved_model
    from keras_attention.models import load_trained_model

    trained = load_trained_model(model_path)
    # Unset options start from the decoding stored with the folder (its recipe's).
    config = decoding_config(decoding, trained.metadata.get("decoding"))
    module = TextToTextModule(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                              config=config, max_batch_size=max_batch_size, jit_compile=xla)
    warmup, warmup_source = _warmup_texts(model_path, warmup_inputs)
    path = export_saved_model(module, output_dir, version=version, overwrite=overwrite,
                              metadata={"task": trained.task, "format": export_format,
                                        "source_model": os.path.abspath(model_path)},
                              warmup_inputs=warmup)
    compiled = " compiled with XLA" if xla else ""
    click.echo(f"exported {config.strategy} search{compiled} ({trained.task}) to {path}")
    click.echo(f"warmup records from {warmup_source}; batching parameters in "
               f"{os.path.join(output_dir, 'batching_parameters.txt')}")
    if probes:
        probes = list(probes)[:max_batch_size]
        expected = [t.decode("utf-8") for t in module.serve(tf.constant(probes))["outputs"].numpy()]
        _check_in_fresh_process(path, probes, expected)
        click.echo(f"reloaded in a fresh process: same outputs on {len(probes)} probe(s)")
        for probe, output in zip(probes, expected):
            click.echo(f"  {probe!r} -> {output!r}")
    example = json.dumps(["your input sentence"])
    click.echo(
        "Try it (saved_model_cli with the TF Text ops loaded):\n"
        '  python -c "import sys, tensorflow_text; from tensorflow.python.tools import '
        'saved_model_cli; sys.exit(saved_model_cli.main())" '
        f"run --dir {path} --tag_set serve --signature_def serving_default "
        f"--input_exprs 'inputs={example}'"
    )


def _warmup_texts(model_path, given):
    """``(texts or None, where they come from)`` for the warmup records:
    ``given``, else the first sources of the run's validation (else
    training) corpus when ``model_path`` sits in a run folder whose
    config.yaml still reads, else ``None`` (generic texts)."""
    from keras_attention.app.run_data import run_pairs

    if given:
        return list(given), f"{len(given)} --warmup-input text(s)"
    pairs, where = run_pairs(model_path, 200)
    if pairs:
        return [source for source, _ in pairs], where
    return None, "generic texts (no run data found; see --warmup-input)"


def _check_format_options(export_format, n_best, quantize, tflite_io, batch_size_given, xla,
                          beam_stopping):
    """Usage errors of options that belong to another --format."""
    if xla and export_format != "saved_model":
        raise click.UsageError(f"--xla applies to --format saved_model; --format "
                               f"{export_format} has its own runtime. Drop --xla.")
    if beam_stopping == "exact" and export_format == "ctranslate2":
        raise click.UsageError("--beam-stopping exact applies to --format saved_model or "
                               "tflite; CTranslate2 stops beam search early.")
    if tflite_io is not None and export_format != "tflite":
        raise click.UsageError("--io applies to --format tflite; drop it or add --format tflite.")
    if export_format == "saved_model":
        if quantize is not None:
            raise click.UsageError("--quantize applies to --format tflite or ctranslate2; drop "
                                   "it or add --format tflite / --format ctranslate2.")
        return
    if quantize is not None and quantize not in QUANTIZATIONS[export_format]:
        raise click.UsageError(
            f"--quantize {quantize} is not a {export_format} quantization; choose one of "
            f"{', '.join(QUANTIZATIONS[export_format])}.")
    if export_format == "tflite" and n_best not in (None, 1):
        raise click.UsageError(
            "--format tflite returns one output per input; drop --n-best or use "
            "--format saved_model (its n_best signature).")
    if export_format == "ctranslate2" and batch_size_given:
        raise click.UsageError("--max-batch-size applies to SavedModels; a CTranslate2 "
                               "folder takes batches of any size.")


def _export_ctranslate2(model_path, folder, overwrite, decoding, quantize, probes):
    """Write the CTranslate2 folder; with probes, decode them with it and
    with the in-memory model, and fail on a difference (float32 weights)."""
    from keras_attention.decoding.text import TextGenerator
    from keras_attention.export.ctranslate2 import CTranslate2Translator, export_ctranslate2
    from keras_attention.models import load_trained_model

    trained = load_trained_model(model_path)
    config = decoding_config(decoding, trained.metadata.get("decoding"))
    path = export_ctranslate2(trained, folder, quantization=quantize, overwrite=overwrite,
                              metadata={"decoding": config.changes(),
                                        "source_model": os.path.abspath(model_path)})
    click.echo(f"exported CTranslate2 model ({trained.task}, quantize {quantize}; decoding "
               f"{config.strategy} stored, flags of translate override it) to {path}")
    if probes:
        probes = list(probes)
        outputs = [h[0].text for h in CTranslate2Translator(path, config=config).generate(probes)]
        expected = TextGenerator(trained, config=config).best(probes)
        _report_probes("the CTranslate2 model", "CTranslate2", probes, outputs, expected,
                       exact=quantize == "none")
    click.echo(f"Decode with it: keras-attention translate --model {path} --input FILE")


def _export_tflite(model_path, folder, overwrite, decoding, quantize, tflite_io, probes):
    """Write the TFLite folder (the stored decoding, ``decoding`` overriding
    fields); with probes, decode them with the file and in memory."""
    from keras_attention.export.tflite import (
        MODEL_FILE,
        check_tflite_decoding,
        compare_with_model,
        export_tflite_folder,
        text_model_problem,
    )
    from keras_attention.models import load_trained_model

    trained = load_trained_model(model_path)
    config = decoding_config(decoding, trained.metadata.get("decoding"))
    check_tflite_decoding(config)
    problem = text_model_problem(trained)
    if tflite_io is None:
        tflite_io = "ids" if problem else "text"
        if problem:
            click.echo(f"no string -> string TFLite model: {problem.rstrip('.')}; writing the "
                       "ids -> ids one")
    elif tflite_io == "text" and problem:
        raise ValueError(problem)
    export_tflite_folder(trained, folder, config, quantize=quantize, io=tflite_io,
                         overwrite=overwrite)
    path = os.path.join(folder, MODEL_FILE)
    kind = "string -> string" if tflite_io == "text" else "ids -> ids"
    click.echo(f"exported {kind} {config.strategy} search ({trained.task}, quantize {quantize}, "
               f"{os.path.getsize(path)} bytes) to {path}")
    if probes:
        outputs, expected = compare_with_model(trained, path, list(probes), config)
        _report_probes("the TFLite model", "TFLite interpreter", list(probes), outputs,
                       expected, exact=quantize == "none")


def _report_probes(model, runner, probes, outputs, expected, exact):
    """Print how many probe ``outputs`` equal the in-memory model's
    ``expected`` ones, then each probe's output; with ``exact`` (float32
    weights) a difference is an error."""
    same = sum(a == b for a, b in zip(outputs, expected))
    if exact and same < len(probes):
        raise click.ClickException(
            f"{model} disagrees with the in-memory model on {len(probes) - same} of "
            f"{len(probes)} probe(s); report this with the model folder.")
    click.echo(f"{runner}: same outputs as the in-memory model on {same} of "
               f"{len(probes)} probe(s)")
    for probe, output in zip(probes, outputs):
        click.echo(f"  {probe!r} -> {output!r}")
