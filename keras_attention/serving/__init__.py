"""Serving exported models over TF Serving's REST API: ``Server`` (socket,
threads, stop), ``ServerConfig``, ``ServedModel`` (JSON <-> signature calls),
``RequestMetrics``, ``ModelVersions`` (new versions picked up and switched
to while serving); the HTTP routes live in ``http.py``."""

from keras_attention.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "keras_attention.serving.auth": ("AccessConfig", "BearerToken"),
    "keras_attention.serving.batching": ("Batcher", "RequestBatching"),
    "keras_attention.serving.config": ("ServerConfig",),
    "keras_attention.serving.errors": ("RequestError",),
    "keras_attention.serving.health": ("HealthConfig",),
    "keras_attention.serving.metrics": ("RequestMetrics",),
    "keras_attention.serving.model": ("ServedModel",),
    "keras_attention.serving.server": ("Server",),
    "keras_attention.serving.versions": ("ModelVersions",),
})
