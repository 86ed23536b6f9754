"""TF Serving's files in an export: warmup records (PredictionLog TFRecord)
and ``batching_parameters.txt`` (the BatchingParameters text proto)."""

import os
import types

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)
from tensorflow_serving.apis import prediction_log_pb2

from keras_attention.export import export_saved_model
from keras_attention.export.batching import BATCHING_FILE, BatchingParameters
from keras_attention.export.warmup import (
    WARMUP_FILE,
    pick_warmup_texts,
    read_warmup_requests,
    write_warmup_requests,
)
from keras_attention.serving import ServedModel

from .conftest import SENTENCES


@pytest.fixture(scope="module")
def exported(text_module, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("warm") / "dates")
    return directory, export_saved_model(text_module, directory, version=1,
                                         warmup_inputs=SENTENCES + ["", "  "])


def _records(version_directory):
    logs = []
    for record in tf.data.TFRecordDataset(os.path.join(version_directory, WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


def test_warmup_records_are_prediction_logs_of_every_signature(exported, text_module):
    _, path = exported
    logs = _records(path)
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log"] * 12
    requests = [log.predict_log.request for log in logs]
    assert [r.model_spec.signature_name for r in requests] == [
        "serving_default", "serving_default", "n_best", "n_best", "ids", "ids",
        "source_lengths", "source_lengths", "prefix", "prefix", "alignments", "alignments"]
    # Signatures of two string inputs get the texts as both.
    assert sorted(requests[9].inputs) == ["inputs", "prefixes"]
    assert sorted(requests[11].inputs) == ["inputs", "outputs"]
    by_length = sorted(SENTENCES, key=len)  # blank inputs dropped, shortest first
    short = tf.make_ndarray(requests[0].inputs["inputs"]).tolist()
    full = [t.decode() for t in tf.make_ndarray(requests[1].inputs["inputs"])]
    assert short == [b"5 apr 1917"]
    assert full[:4] == by_length and len(full) == 5
    assert len(full[4].split()) >= text_module.max_input_length  # cut to the model's limit
    assert text_module.source_tokens(tf.constant(full[4:])).row_lengths()[0] >= 16
    ids = tf.make_ndarray(requests[5].inputs["source_ids"])
    np.testing.assert_array_equal(ids, text_module.encode_text(tf.constant(full)).numpy())


def test_warmup_requests_run_against_the_export_with_the_modules_outputs(exported, text_module):
    _, path = exported
    loaded = tf.saved_model.load(path)
    requests = read_warmup_requests(path)
    assert len(requests) == 12
    methods = {"serving_default": text_module.serve, "n_best": text_module.n_best,
               "ids": text_module.ids, "source_lengths": text_module.source_lengths,
               "prefix": text_module.prefix, "alignments": text_module.alignments}
    for signature, inputs in requests:
        tensors = {key: tf.constant(value) for key, value in inputs.items()}
        result = loaded.signatures[signature](**tensors)
        expected = methods[signature](*tensors.values())
        assert sorted(result) == sorted(expected)
        for key in expected:
            if result[key].dtype.is_floating:
                np.testing.assert_allclose(result[key].numpy(), expected[key].numpy(), atol=1e-5)
            else:
                np.testing.assert_array_equal(result[key].numpy(), expected[key].numpy())
    # The server runs each once at load, before it serves.
    assert ServedModel(path).warmup_requests == 12


def test_pick_warmup_texts_spreads_over_lengths():
    texts = [f"{'w ' * n}".strip() for n in range(1, 11)] + ["", " ", "w"]
    assert pick_warmup_texts(texts, 4) == ["w", "w w w w", "w w w w w w w", " ".join("w" * 10)]
    assert pick_warmup_texts(["b", "a", "b"]) == ["a", "b"]
    assert pick_warmup_texts([" ", ""]) == []


def test_no_warmup_inputs_write_no_records(text_module, tmp_path):
    path = export_saved_model(text_module, str(tmp_path / "m"), warmup_inputs=[])
    assert not os.path.exists(os.path.join(path, "assets.extra"))
    assert read_warmup_requests(path) == []
    assert ServedModel(path).warmup_requests == 0


def test_bad_warmup_files_fail_the_load_in_one_line(exported, tmp_path):
    _, source = exported
    path = str(tmp_path / "1")  # the export's graph, with a warmup file of our own
    os.makedirs(os.path.join(path, "assets.extra"))
    for name in ("saved_model.pb", "variables"):
        os.symlink(os.path.join(source, name), os.path.join(path, name))
    warmup = os.path.join(path, WARMUP_FILE)
    with open(warmup, "wb") as f:
        f.write(b"not a tfrecord")
    with pytest.raises(ValueError) as error:
        ServedModel(path)
    assert str(error.value) == (f"'{warmup}' is not a TFRecord file; write it with "
                                "write_warmup_requests or delete it.")
    write_warmup_requests(path, [("nope", {"inputs": np.array([b"x"], dtype=object)})])
    with pytest.raises(ValueError) as error:
        ServedModel(path)
    assert str(error.value) == (f"warmup request 1 of '{warmup}' names signature 'nope', which "
                                "the model lacks; export again or delete the file.")
    write_warmup_requests(path, [("ids", {"source_ids": np.array([[99999]], dtype=np.int32)})])
    with pytest.raises(ValueError) as error:
        ServedModel(path)
    assert str(error.value).startswith(f"warmup request 1 of '{warmup}' failed: source_ids "
                                       "must be < the source vocabulary size")
    with tf.io.TFRecordWriter(warmup) as writer:
        writer.write(prediction_log_pb2.PredictionLog(
            classify_log=prediction_log_pb2.ClassifyLog()).SerializeToString())
    with pytest.raises(ValueError, match="warmup record 1 of .* is a classify_log; only "
                                         "predict_log requests are replayed."):
        ServedModel(path)


# BatchingParameters, as tensorflow_serving/servables/tensorflow/
# session_bundle_config.proto defines it. The tensorflow-serving-api wheel
# ships only the apis/ protos, so the message is built from the .proto's
# field numbers and types here (the real module is used where installed).
_BATCHING_FIELDS = [
    (1, "max_batch_size", ".google.protobuf.Int64Value"),
    (2, "batch_timeout_micros", ".google.protobuf.Int64Value"),
    (3, "max_enqueued_batches", ".google.protobuf.Int64Value"),
    (4, "num_batch_threads", ".google.protobuf.Int64Value"),
    (5, "thread_pool_name", ".google.protobuf.StringValue"),
    (6, "allowed_batch_sizes", None),
    (7, "pad_variable_length_inputs", None),
]


def batching_parameters_class():
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        pass
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving", syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"])
    message = file.message_type.add(name="BatchingParameters")
    for number, name, type_name in _BATCHING_FIELDS:
        if type_name:
            message.field.add(name=name, number=number, label=field.LABEL_OPTIONAL,
                              type=field.TYPE_MESSAGE, type_name=type_name)
        elif name == "allowed_batch_sizes":
            message.field.add(name=name, number=number, label=field.LABEL_REPEATED,
                              type=field.TYPE_INT64)
        else:
            message.field.add(name=name, number=number, label=field.LABEL_OPTIONAL,
                              type=field.TYPE_BOOL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def _parse(text):
    return text_format.Parse(text, batching_parameters_class()())


def test_batching_parameters_file_parses_with_the_export_values(exported):
    directory, _ = exported
    assert sorted(os.listdir(directory)) == ["1", BATCHING_FILE]
    with open(os.path.join(directory, BATCHING_FILE)) as f:
        parsed = _parse(f.read())
    threads = len(os.sched_getaffinity(0))
    assert parsed.max_batch_size.value == 64  # the module's max_batch_size
    assert parsed.batch_timeout_micros.value == 1000
    assert parsed.num_batch_threads.value == threads
    assert parsed.max_enqueued_batches.value == 4 * threads
    assert list(parsed.allowed_batch_sizes) == []  # no padding without XLA
    assert sorted(f.name for f, _ in parsed.ListFields()) == [
        "batch_timeout_micros", "max_batch_size", "max_enqueued_batches", "num_batch_threads"]


@pytest.mark.parametrize("size, allowed", [(8, [1, 2, 4, 8]), (6, [1, 2, 4, 6]), (1, [1])])
def test_xla_exports_allow_the_graphs_batch_buckets(size, allowed):
    module = types.SimpleNamespace(max_batch_size=size, jit_compile=True)
    parameters = BatchingParameters.for_module(module, num_batch_threads=3)
    parsed = _parse(parameters.to_text())
    assert list(parsed.allowed_batch_sizes) == allowed
    assert (parsed.max_batch_size.value, parsed.num_batch_threads.value,
            parsed.max_enqueued_batches.value) == (size, 3, 12)


def test_batching_parameters_are_validated():
    with pytest.raises(ValueError, match="max_batch_size must be a positive integer, got 0"):
        BatchingParameters(max_batch_size=0)
    with pytest.raises(ValueError) as error:
        BatchingParameters(max_batch_size=8, allowed_batch_sizes=(4, 2, 8))
    assert str(error.value) == ("allowed_batch_sizes must be increasing positive integers ending "
                                "with max_batch_size 8, got (4, 2, 8).")
    with pytest.raises(ValueError, match="ending with max_batch_size 8"):
        BatchingParameters(max_batch_size=8, allowed_batch_sizes=(1, 4))


def test_only_the_highest_version_rewrites_the_batching_file(text_module, tmp_path):
    directory = str(tmp_path / "m")
    export_saved_model(text_module, directory, version=2, warmup_inputs=[])
    path = os.path.join(directory, BATCHING_FILE)
    with open(path, "w") as f:
        f.write("marker\n")
    export_saved_model(text_module, directory, version=1, warmup_inputs=[])
    with open(path) as f:
        assert f.read() == "marker\n"  # version 1 is not the one served
    export_saved_model(text_module, directory, version=3, warmup_inputs=[])
    with open(path) as f:
        assert _parse(f.read()).max_batch_size.value == 64
