"""TF Serving's gRPC ``PredictionService`` over ``grpcio``, so TF Serving's
gRPC clients (``tensorflow_serving.apis.prediction_service_pb2_grpc
.PredictionServiceStub``) work unchanged.

- ``Predict``: ``model_spec`` name, version and ``signature_name`` (empty:
  ``serving_default``) checked as TF Serving does; ``inputs`` are
  ``TensorProto``s (``tf.make_tensor_proto``), of the signature's dtypes (no
  casting, as TF Serving); ``output_filter`` picks outputs; the response's
  ``model_spec`` names the model, version and signature answered.
- ``GetModelMetadata``: ``metadata_field: "signature_def"`` gives the
  ``SignatureDefMap`` of ``saved_model.pb`` packed in an ``Any``, with the
  signatures the REST metadata lists.
- ``Classify``, ``Regress``, ``MultiInference``: ``UNIMPLEMENTED``.

Errors are one-line messages with a status code. Inside, a refusal is the
REST side's ``RequestError`` (an HTTP status), mapped by ``GRPC_CODES``: 400
INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND
(model, version, signature), 413 RESOURCE_EXHAUSTED (``--max-batch``,
``--max-string-length``; a message over ``--max-body-bytes`` is refused by
grpcio itself with RESOURCE_EXHAUSTED), 501 UNIMPLEMENTED, 500 INTERNAL.
``RequestMetrics`` records each call under that HTTP-equivalent status (200
when OK), so REST and gRPC count alike; the JSON log line has ``"method":
"gRPC"``, the RPC's path and ``grpc_code``.

Access: ``authorize(metadata) -> bool`` (``metadata``: the call's invocation
metadata as a dict) runs first in every call, refusing with 401
UNAUTHENTICATED when it returns false; it may also raise ``RequestError``
(401/403) with its own message. ``grpc_access`` builds it from the server's
bearer token (the ``authorization`` metadata, ``Bearer <token>``, as REST's
header) and the TLS credentials from its certificate, so ``--token-file``
and ``--tls-cert`` guard gRPC as they guard REST. ``interceptors`` go to
``grpc.server``.
"""

import concurrent.futures
import errno
import os
import socket
import threading
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from keras_attention.export.signatures import DEFAULT_SIGNATURE
from keras_attention.serving.errors import RequestError

SERVICE = "tensorflow.serving.PredictionService"
WORKERS = 16  # RPCs handled at once; TensorFlow runs concurrent signature calls safely
SIGNATURE_DEF = "signature_def"
GRPC_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def signature_def_map(model):
    """The ``SignatureDefMap`` of ``model``'s signatures, as ``saved_model.pb`` holds them."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(model.path, "saved_model.pb"), "rb") as stream:
        saved_model.ParseFromString(stream.read())
    stored = saved_model.meta_graphs[0].signature_def
    result = get_model_metadata_pb2.SignatureDefMap()
    for key in sorted(model.signatures):
        result.signature_def[key].CopyFrom(stored[key])
    return result


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``PredictionService`` for one ``ServedModel``; calls go through
    ``ServedModel.predict_tensors`` as REST ones do.

    Args:
        models: the server's ``ModelVersions``; each call holds the version
            it is answered by (a version switch lets it finish).
        config: the ``ServerConfig`` (``max_batch``, ``max_body_bytes``).
        metrics: the ``RequestMetrics`` every call is recorded in.
        log: called with one JSON-ready dict per call.
        authorize: optional ``authorize(metadata) -> bool``, see the module.
    """

    def __init__(self, models, config, metrics, log, authorize=None):
        self.models = models
        self.config = config
        self._metrics = metrics
        self._log = log
        self._authorize = authorize
        self._signature_defs = {}  # ServedModel.path -> SignatureDefMap, read once a version

    def Predict(self, request, context):  # noqa: N802  (gRPC's method names)
        return self._serve("Predict", self._predict, request, context)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return self._serve("GetModelMetadata", self._metadata, request, context)

    def Classify(self, request, context):  # noqa: N802
        return self._serve("Classify", _unimplemented("Classify"), request, context)

    def Regress(self, request, context):  # noqa: N802
        return self._serve("Regress", _unimplemented("Regress"), request, context)

    def MultiInference(self, request, context):  # noqa: N802
        return self._serve("MultiInference", _unimplemented("MultiInference"), request, context)

    def _serve(self, method, handler, request, context):
        started = time.perf_counter()
        status, response, instances, error = 200, None, 0, None
        try:
            self._check_authorized(context)
            response, instances = handler(request)
        except RequestError as failure:
            status, error = failure.status, failure.message
        except Exception as failure:  # noqa: BLE001  (a server answers, it does not die)
            status = 500
            detail = (str(failure).splitlines() or [""])[0]
            error = f"internal error: {type(failure).__name__}: {detail}"
        latency_ms = (time.perf_counter() - started) * 1000.0
        code = grpc.StatusCode.OK if error is None else GRPC_CODES.get(status,
                                                                       grpc.StatusCode.UNKNOWN)
        self._metrics.record(status, latency_ms, instances)
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "method": "gRPC",
                  "path": f"/{SERVICE}/{method}", "status": status, "grpc_code": code.name,
                  "latency_ms": round(latency_ms, 3), "instances": instances}
        if error is not None:
            record["error"] = error
        self._log(record)
        if error is not None:
            context.abort(code, error)  # raises
        return response

    def _check_authorized(self, context):
        if self._authorize is None:
            return
        metadata = {key: value for key, value in context.invocation_metadata()}
        if not self._authorize(metadata):
            raise RequestError(401, "the call is not authorized; send the credentials this "
                                    "server expects in the call's metadata.")

    def _requested_version(self, spec):
        """The version ``spec`` asks for (``None``: the serving one); 404 for
        another model's name or a version label."""
        name = self.models.name
        if spec.name != name:
            raise RequestError(404, f"model '{spec.name}' not found; this server serves "
                                    f"'{name}' (set model_spec.name).")
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            version = self.models.current.version
            raise RequestError(404, f"model '{name}' version label "
                                    f"'{spec.version_label}' not found; this server has no "
                                    f"labels (set model_spec.version to {version} or "
                                    "leave it unset).")
        return str(spec.version.value) if choice == "version" else None

    @staticmethod
    def _response_spec(response_spec, model, signature_name=None):
        response_spec.name = model.name
        response_spec.version.value = int(model.version)
        if signature_name is not None:
            response_spec.signature_name = signature_name

    def _predict(self, request):
        with self.models.acquire(self._requested_version(request.model_spec)) as model:
            return self._predict_with(model, request)

    def _predict_with(self, model, request):
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature_name not in model.signatures:
            available = ", ".join(sorted(model.signatures))
            raise RequestError(404, f"signature '{signature_name}' not found; available: "
                                    f"{available}.")
        outputs_spec = model.output_specs(signature_name)
        unknown = sorted(set(request.output_filter) - set(outputs_spec))
        if unknown:
            raise RequestError(400, f"output_filter names {unknown}, not outputs of signature "
                                    f"'{signature_name}' ({sorted(outputs_spec)}).")
        tensors = {alias: self._tensor(proto, f"input '{alias}'")
                   for alias, proto in sorted(request.inputs.items())}
        outputs, count = model.predict_tensors(signature_name, tensors,
                                               max_batch=self.config.max_batch)
        response = predict_pb2.PredictResponse()
        self._response_spec(response.model_spec, model, signature_name)
        for alias in request.output_filter or sorted(outputs):
            tensor = outputs[alias]
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(tensor.numpy(),
                                                                  dtype=tensor.dtype))
        return response, count

    def _tensor(self, proto, where):
        """A ``TensorProto`` as a tensor; malformed or oversized ones are refused."""
        try:
            dtype = tf.dtypes.as_dtype(proto.dtype)
        except TypeError:
            raise RequestError(400, f"{where} has no valid dtype ({proto.dtype}); build it with "
                                    "tf.make_tensor_proto(values, dtype=...).") from None
        sizes = [dim.size for dim in proto.tensor_shape.dim]
        if any(size < 0 for size in sizes):
            raise RequestError(400, f"{where} has shape {sizes}; a TensorProto's dimensions "
                                    "are sizes >= 0.")
        # One value may fill a whole shape; bound the expansion by the message limit.
        limit = self.config.max_body_bytes
        if int(np.prod(sizes, dtype=np.float64)) > limit:
            raise RequestError(413, f"{where} has shape {sizes}, more than {limit} values "
                                    "(--max-body-bytes); send fewer examples.")
        try:
            return tf.constant(tf.make_ndarray(proto), dtype=dtype)
        except (TypeError, ValueError) as error:
            detail = (str(error).splitlines() or [""])[0]
            raise RequestError(400, f"{where} is not a valid {dtype.name} TensorProto "
                                    f"({detail}); build it with tf.make_tensor_proto.") from None

    def _metadata(self, request):
        with self.models.acquire(self._requested_version(request.model_spec)) as model:
            return self._metadata_of(model, request)

    def _metadata_of(self, model, request):
        fields = list(request.metadata_field)
        if not fields:
            raise RequestError(400, "metadata_field is empty; ask for 'signature_def'.")
        unsupported = sorted(set(fields) - {SIGNATURE_DEF})
        if unsupported:
            raise RequestError(400, f"metadata_field {unsupported} is not served; ask for "
                                    "'signature_def'.")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        self._response_spec(response.model_spec, model)
        if model.path not in self._signature_defs:
            self._signature_defs[model.path] = signature_def_map(model)
        response.metadata[SIGNATURE_DEF].Pack(self._signature_defs[model.path])
        return response, 0


def _unimplemented(method):
    def refuse(request):
        raise RequestError(501, f"{method} is not served; this server answers "
                                f"{SERVICE}/Predict and GetModelMetadata.")
    return refuse


class GrpcServer:
    """A ``grpc.server`` with the ``PredictionServicer``, bound on construction
    (``address`` is known, also for port 0), served by ``start()``.

    Args:
        models, config, metrics, log, authorize: as ``PredictionServicer``.
        credentials: ``grpc.ServerCredentials`` to serve TLS with (``None``: plain).
        interceptors: ``grpc.ServerInterceptor``s, run before the servicer.
    """

    def __init__(self, models, config, metrics, log, authorize=None, credentials=None,
                 interceptors=()):
        self.servicer = PredictionServicer(models, config, metrics, log, authorize=authorize)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=WORKERS, thread_name_prefix="keras-attention-grpc")
        options = [("grpc.so_reuseport", 0),  # a port in use is an error, not silently shared
                   ("grpc.max_receive_message_length", config.max_body_bytes)]
        self._server = grpc.server(self._executor, interceptors=list(interceptors),
                                   options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self.servicer,
                                                                          self._server)
        host = f"[{config.host}]" if ":" in config.host else config.host
        try:
            address = f"{host}:{config.grpc_port}"
            port = (self._server.add_insecure_port(address) if credentials is None
                    else self._server.add_secure_port(address, credentials))
        except RuntimeError:
            port = 0
        if not port:
            self._executor.shutdown(wait=False)
            raise _bind_error(config.host, config.grpc_port)
        self.address = f"{host}:{port}"
        self._started = False
        self._stopped = None
        self._lock = threading.Lock()

    def start(self):
        with self._lock:
            if not self._started:
                self._server.start()
                self._started = True
        return self

    def stop(self, grace):
        """Refuse new calls now; the running ones get ``grace`` seconds (see ``wait``)."""
        self._stopped = self._server.stop(grace)
        return self

    def wait(self, timeout):
        """Wait (at most ``timeout`` seconds) for ``stop`` to finish; whether it did."""
        stopped = self._stopped.wait(timeout) if self._stopped is not None else True
        self._executor.shutdown(wait=False)  # idle workers exit; a running call finishes
        return stopped


def grpc_access(config, access):
    """``(authorize, credentials)`` for ``GrpcServer`` from the server's
    ``AccessConfig`` and its loaded ``Access``: the bearer token in the
    ``authorization`` metadata (as REST's header), the same TLS certificate."""
    authorize = None
    if access.token is not None:
        token = access.token

        def authorize(metadata):
            if not token.accepts(metadata.get("authorization")):
                raise RequestError(401, "missing or wrong bearer token; send the metadata "
                                        "('authorization', 'Bearer <the --token-file token>').")
            return True
    credentials = None
    if config.tls_cert is not None:
        with open(config.tls_key, "rb") as key, open(config.tls_cert, "rb") as cert:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
    return authorize, credentials


def _bind_error(host, port):
    """Why grpcio could not bind (it only says that it failed): in use, or another cause."""
    try:
        with socket.create_server((host, port), family=socket.AF_INET6 if ":" in host
                                  else socket.AF_INET):
            reason = None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return OSError(f"gRPC port {port} on {host} is already in use; pick another with "
                           "--grpc-port (0 picks a free one).")
        reason = error.strerror
    return OSError(f"cannot listen for gRPC on {host}:{port}"
                   f"{f' ({reason})' if reason else ''}; check --host and --grpc-port.")


def client_example(address, model, text, access=None):
    """A one-line Python program that sends ``text`` to ``model``'s
    ``serving_default`` with TF Serving's own stub (as ``serve --grpc-port``
    prints it); with ``access`` (an ``AccessConfig``) it reads the token
    file into the call's metadata and trusts the TLS certificate."""
    specs = (model.input_specs(DEFAULT_SIGNATURE) if DEFAULT_SIGNATURE in model.signatures
             else {"inputs": None})
    channel = f"grpc.insecure_channel({address!r})"
    if access is not None and access.tls_cert is not None:
        channel = (f"grpc.secure_channel({address.replace('127.0.0.1', 'localhost')!r}, "
                   "grpc.ssl_channel_credentials(open("
                   f"{os.path.abspath(access.tls_cert)!r}, 'rb').read()))")
    metadata = ""
    if access is not None and access.token_file is not None:
        metadata = (", metadata=[('authorization', 'Bearer ' + open("
                    f"{os.path.abspath(access.token_file)!r}).read().strip())]")
    return ("import grpc, tensorflow as tf; from tensorflow_serving.apis import predict_pb2, "
            "prediction_service_pb2_grpc as api; request = predict_pb2.PredictRequest(); "
            f"request.model_spec.name = {model.name!r}; request.inputs[{sorted(specs)[0]!r}]"
            f".CopyFrom(tf.make_tensor_proto([{text!r}])); print(api.PredictionServiceStub("
            f"{channel}).Predict(request, timeout=60{metadata}))")
