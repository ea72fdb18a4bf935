"""From a section to the patient: tissue-compartment shares, immune infiltration of the tumour,
the length of the tumour–immune interface and how much tumour and immune cells border each other.

Every spot (Visium) or cell (MERFISH, Xenium, CosMx) gets a *compartment* — tumour, immune,
stroma, adipose, vessel or other — from its domain's marker genes (spots) or from its cell type
(cells, :data:`CELL_TYPE_COMPARTMENTS`). The features are then computed on the spatial graph, so
they mean the same on both kinds of data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import OptionError

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["COMPARTMENTS", "CELL_TYPE_COMPARTMENTS", "compartments_of_cells", "compartments_of_domains",
           "section_features"]

COMPARTMENTS = ("tumour", "immune", "stroma", "adipose", "vessel")

# Cell-type names (lower case, as cell typing tools and atlases spell them) → compartment.
CELL_TYPE_COMPARTMENTS: dict[str, str] = {
    **dict.fromkeys(["epithelial", "tumor", "tumour", "cancer", "malignant", "carcinoma", "luminal",
                     "basal"], "tumour"),
    **dict.fromkeys(["lymphocyte", "t cell", "t cells", "b cell", "b cells", "nk", "nk cell", "myeloid",
                     "macrophage", "monocyte", "dendritic", "plasma", "mast", "neutrophil", "immune",
                     "cd4", "cd8"], "immune"),
    **dict.fromkeys(["fibroblast", "fibroblasts", "stroma", "stromal", "caf", "myofibroblast",
                     "smooth muscle", "pericyte"], "stroma"),
    **dict.fromkeys(["adipocyte", "adipose", "fat"], "adipose"),
    **dict.fromkeys(["vascular", "endothelial", "endothelium", "vessel"], "vessel"),
}


def compartments_of_cells(labels: pd.Series | np.ndarray, mapping: Mapping[str, str] | None = None) -> np.ndarray:
    """The compartment of each cell from its cell type (``"other"`` for types not in ``mapping``).

    A type matches when its lower-case name equals a key of ``mapping`` or starts with it
    followed by a space or punctuation (``"T cells CD8"`` → ``"t cells"``), and otherwise when a
    key is a word of it.
    """
    mapping = CELL_TYPE_COMPARTMENTS if mapping is None else {k.lower(): v for k, v in mapping.items()}
    out = {}
    for t in pd.unique(np.asarray(labels, dtype=object)):
        name = str(t).lower().strip()
        hit = mapping.get(name)
        if hit is None:
            words = name.replace("_", " ").replace("-", " ").split()
            hit = next((mapping[k] for k in sorted(mapping, key=len, reverse=True)
                        if name.startswith(k + " ") or k in words), "other")
        out[t] = hit
    return np.array([out[t] for t in np.asarray(labels, dtype=object)], dtype=object)


def compartments_of_domains(domain_table: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """The compartment of each spot: its domain's in :func:`pmed.spatial.domain_markers`'s table
    (the compartment whose markers the domain expresses most, or ``"other"``)."""
    comp = domain_table["compartment"].to_dict()
    return np.array([comp[d] for d in np.asarray(labels)], dtype=object)


def section_features(adata: anndata.AnnData, compartments: np.ndarray, *, spacing: float | None = None,
                     immune_score: np.ndarray | None = None, n_perms: int = 200, seed: int = 0) -> dict[str, Any]:
    """Patient-level spatial features of one section.

    Parameters
    ----------
    adata
        Spots or cells with the spatial graph in ``obsp['spatial_connectivities']`` (built when
        absent) and coordinates in ``obsm['spatial']``.
    compartments
        Each observation's compartment (:func:`compartments_of_cells` or
        :func:`compartments_of_domains`).
    spacing
        Length one graph edge stands for, in µm (Visium: 100 µm between spot centres; cells: the
        median edge length of the graph is used when not given, converted with the coordinates'
        units, assumed µm).
    immune_score
        Optional per-observation immune level (an immune marker score or deconvolved immune
        proportion); its mean within tumour observations is reported as
        ``immune_in_tumour``.
    n_perms
        Permutations of the tumour–immune neighbourhood enrichment.

    Returns
    -------
    dict
        ``share_<compartment>`` (of observations), ``tumour_immune_interface_mm`` (edges joining
        a tumour and an immune observation × spacing), ``interface_per_tumour`` (those edges per
        tumour observation), ``immune_next_to_tumour`` (share of tumour observations with an
        immune neighbour), ``tumour_immune_enrichment_z`` (neighbourhood-enrichment z of the
        pair; positive: immune cells mix into the tumour, negative: kept out) and, with
        ``immune_score``, ``immune_in_tumour`` (its mean over tumour observations) and
        ``immune_in_tumour_vs_rest`` (that mean minus the mean elsewhere).
    """
    comp = np.asarray(compartments, dtype=object)
    if len(comp) != adata.n_obs:
        raise OptionError(f"{len(comp)} compartments for {adata.n_obs} observations")
    if "spatial_connectivities" not in adata.obsp:
        from pmed.spatial.graph import spatial_neighbors

        spatial_neighbors(adata)
    W = sparse.csr_matrix(adata.obsp["spatial_connectivities"])
    rows, cols = W.nonzero()
    if spacing is None:
        if "array_row" in adata.obs.columns:
            spacing = 100.0  # Visium spot centres
        else:
            xy = np.asarray(adata.obsm["spatial"], dtype=float)
            spacing = float(np.median(np.linalg.norm(xy[rows] - xy[cols], axis=1))) if len(rows) else 0.0
    feats: dict[str, Any] = {f"share_{c}": float(np.mean(comp == c)) for c in (*COMPARTMENTS, "other")}
    tum, imm = comp == "tumour", comp == "immune"
    pair = tum[rows] & imm[cols]  # each undirected edge counted once in this direction
    n_edges = int(pair.sum())
    feats["tumour_immune_interface_mm"] = n_edges * spacing / 1000.0
    feats["interface_per_tumour"] = n_edges / tum.sum() if tum.any() else float("nan")
    has_imm = np.bincount(rows[pair], minlength=adata.n_obs) > 0
    feats["immune_next_to_tumour"] = float(has_imm[tum].mean()) if tum.any() else float("nan")
    feats["tumour_immune_enrichment_z"] = float("nan")
    if tum.any() and imm.any() and n_perms > 0:
        from pmed.spatial.stats import neighborhood_enrichment

        tmp = adata.obs[[]].copy()
        tmp["_compartment"] = pd.Categorical(comp)
        view = type(adata)(obs=tmp, obsp={"spatial_connectivities": W})
        z, _ = neighborhood_enrichment(view, "_compartment", n_perms=n_perms, seed=seed)
        feats["tumour_immune_enrichment_z"] = float(z.loc["tumour", "immune"])
    if immune_score is not None:
        s = np.asarray(immune_score, dtype=float)
        if tum.any() and (~tum).any():
            feats["immune_in_tumour"] = float(np.nanmean(s[tum]))
            feats["immune_in_tumour_vs_rest"] = float(np.nanmean(s[tum]) - np.nanmean(s[~tum]))
    return feats
