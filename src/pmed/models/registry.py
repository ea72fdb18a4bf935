"""The model registry: a study file names a family, the registry builds its estimator.

Every family of :mod:`pmed.models.zoo` (``linear``, ``lightgbm``, …) is registered here, and so
are the two PyTorch families ``grud`` (:class:`pmed.timeseries.grud.GRUDClassifier`) and ``cnn``
(:class:`pmed.imaging.train.ImageClassifier`), whose factories import PyTorch only when a
model is built. A package or a user adds a family with :func:`register_model`::

    from pmed.models import register_model

    def my_factory(*, task, params, seed, X):
        from sklearn.neighbors import KNeighborsClassifier
        return KNeighborsClassifier(**params)

    register_model("knn", my_factory, description="k nearest neighbours", tasks=("binary",))

after which a study can say ``models: [{family: knn}]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pmed.errors import OptionError, StudyError

__all__ = ["ModelFamily", "register_model", "get_family", "registered_families", "FamilyDescriptions"]

#: ``factory(*, task, params, seed, X) -> estimator`` (the final step of the pipeline)
Factory = Callable[..., Any]


@dataclass(frozen=True)
class ModelFamily:
    """One registered family.

    Attributes
    ----------
    name
        What a study file writes in ``models[].family``.
    factory
        ``factory(*, task, params, seed, X)`` returning the unfitted final estimator. It may raise
        :class:`~pmed.errors.StudyError` when ``X`` cannot feed it (e.g. no time-series columns).
    description
        One line for docs and error messages.
    tasks
        The targets it handles (``"binary"``, ``"continuous"``, ``"survival"``).
    preprocessor
        ``preprocessor(X) -> transformer`` fitted before the model inside each fold, or ``None``
        for pmed's standard imputation/scaling/one-hot encoding
        (:func:`pmed.models.zoo.make_preprocessor`).
    class_weight
        Whether the binary estimator takes ``class_weight`` (so that a study's
        ``imbalance.weighting`` can reach it).
    """

    name: str
    factory: Factory
    description: str
    tasks: tuple[str, ...] = ("binary", "continuous")
    preprocessor: Callable[[Any], Any] | None = None
    class_weight: bool = False


_REGISTRY: dict[str, ModelFamily] = {}


def register_model(
    family: str,
    factory: Factory,
    *,
    description: str = "",
    tasks: tuple[str, ...] = ("binary", "continuous"),
    preprocessor: Callable[[Any], Any] | None = None,
    class_weight: bool = False,
    replace: bool = False,
) -> ModelFamily:
    """Register a model family so that study files (and :func:`pmed.models.make_model`) can name it.

    Parameters
    ----------
    family
        The name used in a study's ``models[].family``.
    factory
        ``factory(*, task, params, seed, X)`` → unfitted estimator; import heavy libraries
        inside it, so that registering costs nothing.
    description
        One line shown in docs and in the error listing the known families.
    tasks
        Which targets the family handles (``"survival"``: a time-to-event outcome, fitted with
        a structured ``(event, time)`` array, :func:`pmed.survival.make_surv_y`).
    preprocessor
        ``preprocessor(X)`` → the transformer fitted before the model (default: pmed's standard
        preprocessing).
    class_weight
        Whether its binary estimator accepts ``class_weight``.
    replace
        Allow replacing an already registered family.

    Returns
    -------
    ModelFamily

    Raises
    ------
    OptionError
        When the name is taken (and ``replace`` is false), empty, or the factory is not callable.
    """
    if not isinstance(family, str) or not family.strip():
        raise OptionError(f"a model family needs a non-empty name, got {family!r}", fix="pass a string")
    if not callable(factory):
        raise OptionError(f"the factory of family {family!r} is not callable",
                          fix="pass a function factory(*, task, params, seed, X)")
    bad = [t for t in tasks if t not in ("binary", "continuous", "survival")]
    if bad or not tasks:
        raise OptionError(f"family {family!r}: tasks must be among 'binary', 'continuous', 'survival'; "
                          f"got {tasks!r}",
                          fix="pass tasks=('binary',) and/or 'continuous', or ('survival',)")
    if family in _REGISTRY and not replace:
        raise OptionError(f"model family {family!r} is already registered",
                          fix="choose another name, or pass replace=True")
    entry = ModelFamily(family, factory, description, tuple(tasks), preprocessor, class_weight)
    _REGISTRY[family] = entry
    return entry


def get_family(family: str) -> ModelFamily:
    """The registered :class:`ModelFamily` called ``family``.

    Raises
    ------
    StudyError
        When no family has that name (the message lists the known ones).
    """
    try:
        return _REGISTRY[family]
    except (KeyError, TypeError):
        raise StudyError(f"unknown model family {family!r}",
                         fix=f"use one of: {', '.join(_REGISTRY)}") from None


def registered_families() -> dict[str, ModelFamily]:
    """A copy of the registry, in registration order."""
    return dict(_REGISTRY)


class FamilyDescriptions(Mapping[str, str]):
    """Read-only live view ``family → description`` of the registry (:data:`pmed.models.FAMILIES`).

    A family registered later shows up here too, so a study can name it.
    """

    def __getitem__(self, key: str) -> str:
        return _REGISTRY[key].description

    def __iter__(self) -> Iterator[str]:
        return iter(list(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"FAMILIES({dict(self)!r})"
