"""``ServerConfig``: where the server listens and how large a request may be."""

import dataclasses

from keras_attention import validation
from keras_attention.serving.auth import AccessConfig
from keras_attention.serving.batching import RequestBatching
from keras_attention.serving.health import HealthConfig


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and how large a request may be.

    Args:
        host: interface to bind; ``127.0.0.1`` keeps the server local.
        port: TCP port; ``0`` picks a free one (see ``Server.url``).
        max_body_bytes: largest request body accepted (413 above it); also
            the largest gRPC message (RESOURCE_EXHAUSTED above it).
        max_batch: most instances in one predict request (413 above it).
        max_string_length: most characters in one input string (413 above it).
        health: a ``HealthConfig``: when ``/v1/health`` reports degraded.
        log_text: also log predict inputs and outputs (and error messages
            that quote them), masked by ``serving.redact.mask_text``.
        grpc_port: also serve TF Serving's gRPC ``PredictionService`` on this
            port (TF Serving's is 8500; ``0`` picks a free one, see
            ``Server.grpc_address``); ``None`` (default): no gRPC.
        poll_seconds: how often a model folder is checked for a new version
            (loaded, then switched to; ``versions.py``); ``0`` never.
        read_timeout: seconds a connection may send nothing (idle keep-alive,
            stalled headers) and the most a request body may take (408).
        access: an ``AccessConfig`` (token, TLS; a non-loopback ``host`` needs a token).
        batching: a ``RequestBatching`` merging concurrent requests of a
            signature into one call, or ``None`` to run each request alone.
    """

    host: str = "127.0.0.1"
    port: int = 8501
    max_body_bytes: int = 1 << 20
    max_batch: int = 64
    max_string_length: int = 4096
    health: HealthConfig = dataclasses.field(default_factory=HealthConfig)
    log_text: bool = False
    grpc_port: int | None = None
    poll_seconds: float = 10.0
    read_timeout: float = 30.0
    access: AccessConfig = dataclasses.field(default_factory=AccessConfig)
    batching: RequestBatching | None = RequestBatching()

    def __post_init__(self):
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"host must be a non-empty string, got {self.host!r}.")
        validation.check_int("port", self.port, 0, 65536,
                             what="an integer in [0, 65535] (0 picks a free one)")
        for field in ("max_body_bytes", "max_batch", "max_string_length"):
            validation.check_positive_int(field, getattr(self, field))
        if not isinstance(self.health, HealthConfig):
            raise ValueError(f"health must be a HealthConfig, got {self.health!r}.")
        if not isinstance(self.log_text, bool):
            raise ValueError(f"log_text must be True or False, got {self.log_text!r}.")
        validation.check_int("grpc_port", self.grpc_port, 0, 65536, optional=True,
                             what="an integer in [0, 65535] (0 picks a free one) or None")
        if self.grpc_port and self.grpc_port == self.port:
            raise ValueError(f"grpc_port and port are both {self.port}; give gRPC its own port "
                             "(TF Serving uses 8500 for gRPC and 8501 for REST).")
        validation.check_non_negative_number("poll_seconds", self.poll_seconds)
        validation.check_positive_number("read_timeout", self.read_timeout)
        if not isinstance(self.access, AccessConfig):
            raise ValueError(f"access must be an AccessConfig, got {self.access!r}.")
        self.access.check_host(self.host)
        if self.batching is not None and not isinstance(self.batching, RequestBatching):
            raise ValueError(f"batching must be a RequestBatching or None, got "
                             f"{type(self.batching).__name__}.")
