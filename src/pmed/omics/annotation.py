"""Marker-set annotation: load a marker set, score it per cell, name clusters after it.

- :func:`load_markers` reads a marker set (the shipped PBMC set, a JSON/YAML/CSV file or a dict);
- :func:`score_marker_sets` scores every marker set per cell (mean z-score of its genes);
- :func:`annotate` names each cluster after the set with the highest mean score.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import InputError
from pmed.omics._tables import short_list

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["load_markers", "score_marker_sets", "annotate", "SHIPPED_MARKER_SETS"]

#: Marker sets shipped in ``pmed/omics/data`` (name → file).
SHIPPED_MARKER_SETS = {"pbmc": "pbmc_markers.json"}


def load_markers(markers: str | Path | Mapping[str, Sequence[str]] | None = "pbmc") -> dict[str, list[str]]:
    """Load a marker set: cell type → marker genes.

    Parameters
    ----------
    markers
        ``"pbmc"`` (shipped set) or ``None`` for it; a mapping; or a file: JSON (``{"markers":
        {...}}`` or a plain mapping), YAML, or CSV/TSV with columns ``cell_type`` and ``gene``.

    Returns
    -------
    dict
        Cell type → list of gene symbols.

    Raises
    ------
    InputError
        Unreadable file or an empty set.
    """
    if markers is None:
        markers = "pbmc"
    if isinstance(markers, Mapping):
        out = {str(k): [str(g) for g in v] for k, v in markers.items()}
    elif isinstance(markers, str) and markers in SHIPPED_MARKER_SETS:
        text = resources.files("pmed.omics").joinpath("data", SHIPPED_MARKER_SETS[markers]).read_text()
        out = {k: list(v) for k, v in json.loads(text)["markers"].items()}
    else:
        path = Path(markers)
        if not path.exists():
            raise InputError("marker set not found", file=path,
                             fix=f"give a JSON/YAML/CSV file or one of {list(SHIPPED_MARKER_SETS)}")
        from pmed.io import open_text

        suf = path.suffix.lower()
        try:
            with open_text(path) as fh:
                if suf == ".json":
                    d = json.load(fh)
                    d = d.get("markers", d)
                elif suf in (".yaml", ".yml"):
                    import yaml

                    d = yaml.safe_load(fh)
                    d = d.get("markers", d)
                else:
                    t = pd.read_csv(fh, sep="," if suf == ".csv" else "\t", dtype=str)
                    if not {"cell_type", "gene"} <= set(t.columns):
                        raise InputError("marker table needs columns cell_type and gene", file=path,
                                         where=f"columns {short_list(t.columns)}",
                                         fix="one row per (cell_type, gene)")
                    d = t.groupby("cell_type", sort=False)["gene"].apply(list).to_dict()
            # inside the try: a list or a number where a mapping of lists belongs is a bad file
            out = {str(k): [str(g) for g in v] for k, v in d.items()}
        except InputError:
            raise
        except Exception as e:  # JSON/YAML/CSV parser errors, bad encoding, wrong structure
            raise InputError(f"cannot read marker set ({type(e).__name__}: {str(e)[:200]})",
                             file=path,
                             fix="JSON {\"markers\": {type: [genes]}}, YAML, or CSV cell_type,gene") from e
    if not out or not any(out.values()):
        raise InputError("the marker set is empty", fix="give at least one cell type with genes")
    return out


def _symbol_map(names: Sequence[str]) -> dict[str, str]:
    """Gene symbol → variable name, also for names made unique as ``SYMBOL_ENSG…`` or ``SYMBOL.1``.

    Exact names win; a decorated name is used for its symbol only when no exact name exists and
    the symbol is not ambiguous.
    """
    exact = {str(n): str(n) for n in names}
    base: dict[str, list[str]] = {}
    for n in names:
        b = re.sub(r"(_ENS[A-Z]*G\d+(\.\d+)?|\.\d+|-\d+)$", "", str(n))
        if b != n:
            base.setdefault(b, []).append(str(n))
    out = dict(exact)
    for b, ns in base.items():
        if b not in out and len(ns) == 1:
            out[b] = ns[0]
    return out


def _source(adata: anndata.AnnData, layer: str | None):
    if layer == "raw" and adata.raw is not None:
        return adata.raw.var_names, adata.raw.X
    return adata.var_names, (adata.X if layer is None else adata.layers[layer])


def score_marker_sets(
    adata: anndata.AnnData,
    markers: Mapping[str, Sequence[str]],
    *,
    min_genes: int = 2,
    layer: str | None = None,
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Per-cell score of each marker set: mean of the z-scored log expression of its genes.

    Gene symbols also match names made unique by appending an Ensembl ID or a number
    (``CD79A_ENSG00000105369``, ``CD79A.1``) when the plain symbol is absent.

    Parameters
    ----------
    adata
        Cells with log-normalised expression in ``X`` (or ``layer``; ``"raw"`` for ``adata.raw``).
    markers
        Cell type → genes.
    min_genes
        Sets with fewer genes present in the data are skipped.
    layer
        Where the log-normalised values are.

    Returns
    -------
    scores : pandas.DataFrame
        Cells × cell types.
    used : dict
        Cell type → variable names used.
    """
    names, X = _source(adata, layer)
    sym = _symbol_map(names)
    used = {t: [sym[g] for g in dict.fromkeys(gs) if g in sym] for t, gs in markers.items()}
    used = {t: list(dict.fromkeys(gs)) for t, gs in used.items() if len(set(gs)) >= min_genes}
    if not used:
        raise InputError(f"no marker set has {min_genes} or more genes in the data",
                         fix="check gene naming (symbols vs Ensembl IDs) or give another marker set")
    genes = sorted({g for gs in used.values() for g in gs})
    sub = X[:, pd.Index(names).get_indexer(genes)]
    M = sub.toarray() if sparse.issparse(sub) else np.asarray(sub, dtype=float)
    sd = M.std(axis=0)
    Z = (M - M.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    col = {g: i for i, g in enumerate(genes)}
    scores = pd.DataFrame({t: Z[:, [col[g] for g in gs]].mean(axis=1) for t, gs in used.items()},
                          index=adata.obs_names)
    return scores, used


def annotate(
    adata: anndata.AnnData,
    markers: str | Path | Mapping[str, Sequence[str]] | None = "pbmc",
    *,
    groupby: str | None = "leiden",
    key_added: str = "cell_type",
    min_genes: int = 2,
    layer: str | None = None,
    cell_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Name clusters (or single cells) after the marker set they score highest on.

    Parameters
    ----------
    adata
        Cells with log-normalised expression; changed in place.
    markers
        Marker set (see :func:`load_markers`); default the shipped PBMC set.
    groupby
        ``obs`` column of clusters: each cluster gets the type with the highest mean score.
        ``None`` labels each cell by its own highest score.
    key_added
        ``obs`` column written (categorical); ``obs[key_added + '_score']`` holds each cell's
        score for its assigned type.
    min_genes
        Marker sets with fewer genes present are skipped.
    layer
        Where log-normalised values are (``None``: ``X``; ``"raw"``: ``adata.raw``).
    cell_types
        Restrict to these types of the marker set (the types expected in the tissue).

    Returns
    -------
    pandas.DataFrame
        Mean score of each type per cluster (clusters × types), also kept in
        ``uns['pmed_annotation']`` with the genes used.
    """
    sets = load_markers(markers)
    if cell_types is not None:
        unknown = [t for t in cell_types if t not in sets]
        if unknown:
            raise InputError(f"{len(unknown)} cell type(s) not in the marker set: {short_list(unknown)}",
                             fix=f"choose among {short_list(sets, 20)} (--cell-types; cell_types=)")
        sets = {t: sets[t] for t in cell_types}
    scores, used = score_marker_sets(adata, sets, min_genes=min_genes, layer=layer)
    if groupby is None:
        best = scores.idxmax(axis=1)
        table = scores.groupby(best).mean()
    else:
        from pmed.omics.metadata import check_obs_key

        check_obs_key(adata, groupby, what="cluster key")
        table = scores.groupby(adata.obs[groupby].astype(str).to_numpy()).mean()
        best = adata.obs[groupby].astype(str).map(table.idxmax(axis=1))
    adata.obs[key_added] = pd.Categorical(best.to_numpy())
    sc = scores.to_numpy()
    col = {t: i for i, t in enumerate(scores.columns)}
    adata.obs[f"{key_added}_score"] = sc[np.arange(len(sc)), [col[t] for t in best.to_numpy()]]
    adata.uns["pmed_annotation"] = {"groupby": groupby or "cell", "genes_used": used,
                                    "skipped_types": [t for t in sets if t not in used]}
    return table

