"""Package data of :mod:`pmed.genomics.pgx`: allele definitions, phenotypes, guidelines.

The JSON files under ``data/`` are rebuilt from ``../shared/data/pgx`` by
``scripts/build_pgx_data.py``; they are loaded once and cached.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pmed.errors import DataNotFoundError

__all__ = [
    "MATCHER_GENES",
    "EXTRA_GENES",
    "ALL_GENES",
    "load_json",
    "definitions",
    "phenotypes",
    "guidelines",
    "messages",
    "data_version",
]

#: Genes called from a VCF by the named allele matcher (PharmCAT 3.1.1's list).
MATCHER_GENES: tuple[str, ...] = (
    "ABCG2", "CACNA1S", "CFTR", "CYP2B6", "CYP2C19", "CYP2C9", "CYP3A4", "CYP3A5", "CYP4F2",
    "DPYD", "G6PD", "IFNL3", "NAT2", "NUDT15", "RYR1", "SLCO1B1", "TPMT", "UGT1A1", "VKORC1",
)
#: Genes pmed calls beyond PharmCAT's list: CYP2C8 from PyPGx 0.26.0's allele table.
EXTRA_GENES: tuple[str, ...] = ("CYP2C8",)
#: Every gene the matcher calls by default.
ALL_GENES: tuple[str, ...] = MATCHER_GENES + EXTRA_GENES


@cache
def load_json(name: str) -> Any:
    """Load one JSON file of the package data (cached).

    Parameters
    ----------
    name
        File name inside ``pmed/genomics/pgx/data``, e.g. ``"definitions.json"``.

    Returns
    -------
    object
        The parsed JSON.
    """
    try:
        text = resources.files("pmed.genomics.pgx").joinpath("data", name).read_text("utf-8")
    except FileNotFoundError as exc:  # pragma: no cover - broken install
        raise DataNotFoundError(
            f"pmed's pharmacogenomics data file {name!r} is missing",
            fix="reinstall pmed, or rebuild it with `python scripts/build_pgx_data.py`",
        ) from exc
    return json.loads(text)


def definitions() -> dict:
    """Allele definitions per gene (``{"version", "genes": {GENE: {...}}}``)."""
    return load_json("definitions.json")


def phenotypes() -> dict:
    """Phenotype tables: ``{"CPIC": {GENE: table}, "DPWG": {GENE: table}}``."""
    return load_json("phenotypes.json")


def guidelines() -> list[dict]:
    """CPIC and DPWG guideline annotations with their recommendations."""
    return load_json("guidelines.json")


def messages() -> list[dict]:
    """PharmCAT's reporter message rules (ambiguity notes and warnings)."""
    return load_json("messages.json")


def data_version() -> str:
    """The version string of the PGx data, written into every output."""
    return load_json("VERSION.json")["pmed_pgx_data"]
