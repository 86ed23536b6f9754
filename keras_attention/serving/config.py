"""``ServerConfig``: where the server listens and how large a request may be."""

import dataclasses

from keras_attention import validation
from keras_attention.serving.batching import RequestBatching


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and how large a request may be.

    Args:
        host: interface to bind; ``127.0.0.1`` keeps the server local.
        port: TCP port; ``0`` picks a free one (see ``Server.url``).
        max_body_bytes: largest request body accepted (413 above it).
        max_batch: most instances in one predict request (413 above it).
        max_string_length: most characters in one input string (413 above it).
        batching: a ``RequestBatching`` merging concurrent requests of a
            signature into one call, or ``None`` to run each request alone.
    """

    host: str = "127.0.0.1"
    port: int = 8501
    max_body_bytes: int = 1 << 20
    max_batch: int = 64
    max_string_length: int = 4096
    batching: RequestBatching | None = RequestBatching()

    def __post_init__(self):
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"host must be a non-empty string, got {self.host!r}.")
        validation.check_int("port", self.port, 0, 65536,
                             what="an integer in [0, 65535] (0 picks a free one)")
        for field in ("max_body_bytes", "max_batch", "max_string_length"):
            validation.check_positive_int(field, getattr(self, field))
        if self.batching is not None and not isinstance(self.batching, RequestBatching):
            raise ValueError(f"batching must be a RequestBatching or None, got "
                             f"{type(self.batching).__name__}.")
