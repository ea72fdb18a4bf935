"""Lazy package attributes: ``import pmed.survival`` loads no scikit-survival until it is used."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[list[str], Callable, Callable]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for a package whose names live in submodules.

    ``modules`` maps each submodule (``"metrics"`` for ``package.metrics``) to the public names it
    defines; the first access to a name imports its submodule and caches the value in the package.
    """
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return sorted(where), __getattr__, __dir__
