"""Data sets: a synthetic cohort with known truth, real sets bundled in installed packages,
and loaders by path for the reference data in ``../shared/data``.

:func:`load_dataset` gives any of them by name, which is what a study's ``data.dataset`` uses.
"""

from __future__ import annotations

from typing import Any

from pmed.cohort import Cohort
from pmed.datasets._paths import shared_data_dir
from pmed.datasets.bundled import (
    load_breast_cancer,
    load_diabetes,
    load_gbsg2,
    load_lifelines,
    load_sksurv_breast_cancer,
)
from pmed.datasets.gdsc import gdsc_drugs, load_gdsc, write_gdsc_table
from pmed.errors import InputError

__all__ = [
    "load_dataset",
    "DATASETS",
    "shared_data_dir",
    "load_breast_cancer",
    "load_diabetes",
    "load_gbsg2",
    "load_sksurv_breast_cancer",
    "load_lifelines",
    "load_gdsc",
    "gdsc_drugs",
    "write_gdsc_table",
    "make_synthetic_cohort",
    "write_synthetic_cohort",
]

#: name → loader returning a :class:`~pmed.Cohort`
DATASETS = {
    "breast_cancer": load_breast_cancer,
    "diabetes": load_diabetes,
    "gbsg2": load_gbsg2,
    "sksurv_breast_cancer": load_sksurv_breast_cancer,
    "lifelines": load_lifelines,
    "gdsc": load_gdsc,
}


def load_dataset(name: str, **kwargs: Any) -> Cohort:
    """Load a named data set as a Cohort (``load_dataset("gdsc", drug="Nutlin-3a")``)."""
    if name not in DATASETS:
        raise InputError(f"unknown data set {name!r}", fix=f"use one of: {', '.join(DATASETS)}")
    try:
        return DATASETS[name](**kwargs)
    except TypeError as e:
        raise InputError(f"bad arguments for data set {name!r}: {e}") from None


def __getattr__(name: str):
    # the synthetic generator is only needed by the demo and tests: import it on first use
    if name in ("make_synthetic_cohort", "write_synthetic_cohort"):
        from pmed.datasets import synthetic

        return getattr(synthetic, name)
    raise AttributeError(name)
