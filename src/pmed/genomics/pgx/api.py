"""The ``pgx`` domain's public surface for the rest of pmed: run it, and read its outputs back.

:func:`run_pgx` is the entry point (``run_<domain>`` contract of :mod:`pmed.result`);
:func:`read_block` is the block reader :func:`pmed.cohort.read_block` uses for a folder written by
:meth:`PgxResult.write <pmed.genomics.pgx.call.PgxResult.write>` (its ``provenance.json`` names the
``pgx`` domain), so that a study can name ``pmed pgx call``'s output folder as a block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pmed.cohort import Block
from pmed.errors import InputError, PmedWarning, format_rows
from pmed.genomics.pgx.call import METHOD, PgxResult, features_table, run_pgx

__all__ = ["run_pgx", "PgxResult", "read_block", "CALLS_FILE"]

#: The file of an output folder that the block is built from.
CALLS_FILE = "calls.tsv"
# the columns ``features_table`` needs; a file without them is not a pgx calls table
_NEEDED = ("sample", "gene", "diplotypes", "phenotype", "activity_score")


def _provenance(folder: Path) -> dict[str, Any]:
    prov = folder / "provenance.json"
    if not prov.is_file():
        return {}
    try:
        data = json.loads(prov.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        import warnings

        warnings.warn(f"{prov}: provenance.json cannot be read ({type(exc).__name__}); the block "
                      "is read without it", PmedWarning, stacklevel=3)
        return {}
    return data if isinstance(data, dict) else {}


def read_block(path: str | Path) -> Block | None:
    """Read a ``pmed pgx call`` output folder (or its ``calls.tsv``) as the Cohort ``pgx`` block.

    Parameters
    ----------
    path
        The output folder written by :meth:`PgxResult.write`, or the ``calls.tsv`` in it.

    Returns
    -------
    pmed.cohort.Block or None
        The same patient × features table as :meth:`PgxResult.to_block` (``{GENE}_diplotype``,
        ``{GENE}_phenotype``, ``{GENE}_activity_score``), with the run's provenance; ``None``
        for any other file (``features.csv``, ``recommendations.tsv`` …), which the caller then
        reads as a plain table.

    Raises
    ------
    InputError
        When ``calls.tsv`` has the calls columns but cannot be parsed, or lists one sample and
        gene twice.
    """
    import pandas as pd

    from pmed.io import open_text

    path = Path(path)
    calls_path = path / CALLS_FILE if path.is_dir() else path
    if calls_path.name != CALLS_FILE or not calls_path.is_file():
        return None
    try:
        with open_text(calls_path, errors="replace", newline=None) as fh:
            calls = pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return None
    except (pd.errors.ParserError, EOFError, OSError) as exc:
        raise InputError(f"the PGx calls table cannot be parsed ({type(exc).__name__})",
                         file=calls_path, fix="re-run `pmed pgx call` to rewrite the folder") from None
    if not set(_NEEDED) <= set(calls.columns):
        return None
    dup = calls.duplicated(["sample", "gene"])
    if dup.any():
        rows = (dup[dup].index + 2).tolist()  # +1 header, +1 one-based
        raise InputError("a sample and gene are listed twice in the PGx calls table",
                         file=calls_path, where=f"lines {format_rows(rows)}",
                         fix="re-run `pmed pgx call` to rewrite the folder")
    data = features_table(calls)
    prov = _provenance(calls_path.parent)
    options = prov.get("options") if isinstance(prov.get("options"), dict) else {}
    versions = calls["data_version"].unique().tolist() if "data_version" in calls else []
    block_prov: dict[str, Any] = {
        "domain": "pgx",
        "reader": "pmed.genomics.pgx.api.read_block",
        "file": str(calls_path),
        "method": prov.get("method", METHOD),
        "data_version": prov.get("data_version", versions[0] if len(versions) == 1 else None),
        "missing_to_ref": bool(options.get("missing_to_ref", False)),
    }
    if isinstance(prov.get("build_check"), dict):
        block_prov["build_check"] = prov["build_check"].get("status")
    for key in ("inputs", "options", "commit", "created"):
        if key in prov:
            block_prov[key] = prov[key]
    return Block(data, block_prov)
