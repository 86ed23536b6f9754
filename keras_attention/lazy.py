"""Packages whose names are imported on first use (PEP 562), so that a
module without TensorFlow (``keras_attention.models.transformer``,
``keras_attention.data.buckets``) imports without it, while ``from
keras_attention.data import BatchingConfig`` works as before.

In a package's ``__init__.py``::

    from keras_attention.lazy import lazy_package

    __all__ = lazy_package(__name__, {"keras_attention.data.batching": ("BatchingConfig",)})
"""

import importlib
import sys
import types


class _LazyPackage(types.ModuleType):
    """A package module whose exported names import their module when first read."""

    def __getattr__(self, name):
        module = self._lazy_exports.get(name)
        if module is None:
            if name.startswith("__"):
                raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
            try:  # a submodule not imported yet, as ``package.submodule``
                return importlib.import_module(f"{self.__name__}.{name}")
            except ModuleNotFoundError as error:
                if error.name != f"{self.__name__}.{name}":
                    raise
                raise AttributeError(
                    f"module {self.__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), name)
        setattr(self, name, value)
        return value

    def __setattr__(self, name, value):
        # Importing a submodule binds it on its package: an export of the
        # same name from that submodule (``training.train``, the function)
        # keeps the name.
        if (isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}"
                and self._lazy_exports.get(name) == value.__name__):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._lazy_exports))


def lazy_package(name, exports):
    """Make the package ``name`` (its ``__init__`` calls this with
    ``__name__``) import ``exports``, ``{module: names}``, on first use;
    returns the exported names, for ``__all__``."""
    package = sys.modules[name]
    package._lazy_exports = {export: module for module, names in exports.items()
                             for export in names}
    package.__class__ = _LazyPackage
    return [export for names in exports.values() for export in names]
