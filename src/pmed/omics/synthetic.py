"""A small synthetic single-cell component for the synthetic cohort.

Each patient contributes a few hundred PBMC-like cells (plus rare epithelial/circulating tumour
cells) whose counts are drawn from cell-type expression programs built on the shipped marker
genes. Responders have a shifted composition (more CD8 T and NK cells, fewer classical monocytes
and CTCs), so patient-level features derived by the pipeline (cell-type shares, signature means)
carry signal for a response model. Two processing batches add a multiplicative batch effect.

Everything is simulated from a seed; nothing is read or downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import require

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["CELL_TYPES", "RESPONSE_SHIFT", "CTC_MARKERS", "simulate_single_cell",
           "single_cell_features", "make_omics_block", "write_omics_features"]

#: Simulated cell types with their baseline share of cells.
CELL_TYPES: dict[str, float] = {
    "CD4 T cells": 0.30,
    "CD8 T cells": 0.14,
    "NK cells": 0.08,
    "B cells": 0.12,
    "CD14+ Monocytes": 0.26,
    "FCGR3A+ Monocytes": 0.07,
    "Epithelial/CTC": 0.03,
}

#: Log-odds shift of each cell type's share in responders, per unit of ``effect``.
RESPONSE_SHIFT: dict[str, float] = {
    "CD8 T cells": 0.8,
    "NK cells": 0.5,
    "CD14+ Monocytes": -0.5,
    "Epithelial/CTC": -1.0,
}

#: Marker set of the epithelial/CTC type (used with the shipped PBMC markers to annotate).
CTC_MARKERS = {"Epithelial/CTC": ["EPCAM", "KRT8", "KRT18", "KRT19"]}


def _programs(rng: np.random.Generator, n_background: int) -> tuple[list[str], np.ndarray]:
    from pmed.omics.cluster import load_markers

    markers = load_markers("pbmc")
    markers = {t: markers.get(t, []) for t in CELL_TYPES if t in markers} | CTC_MARKERS
    genes = list(dict.fromkeys(g for t in CELL_TYPES for g in markers.get(t, [])))
    genes += [f"BG{i:04d}" for i in range(n_background)]
    base = rng.lognormal(mean=-0.5, sigma=1.0, size=len(genes))
    mu = np.tile(base, (len(CELL_TYPES), 1))
    col = {g: i for i, g in enumerate(genes)}
    for t_i, t in enumerate(CELL_TYPES):
        for g in markers.get(t, []):
            mu[t_i, col[g]] *= 12.0
    # each type also differs on a random quarter of background genes
    bg = np.arange(len(genes) - n_background, len(genes))
    for t_i in range(len(CELL_TYPES)):
        pick = rng.choice(bg, size=n_background // 4, replace=False)
        mu[t_i, pick] *= rng.lognormal(0.0, 0.7, size=len(pick))
    mu /= mu.sum(axis=1, keepdims=True)
    return genes, mu


def simulate_single_cell(
    patient_ids: Sequence[str],
    responder: Sequence[int] | np.ndarray,
    *,
    cells_per_patient: int = 200,
    effect: float = 1.0,
    n_background: int = 200,
    n_batches: int = 2,
    dispersion: float = 0.2,
    seed: int = 0,
) -> anndata.AnnData:
    """Simulate single-cell counts for each patient, with responders' composition shifted.

    Parameters
    ----------
    patient_ids
        Patient IDs.
    responder
        1 for responders, 0 otherwise (same order as ``patient_ids``).
    cells_per_patient
        Mean cells per patient (Poisson-distributed, at least 50).
    effect
        Multiplier of :data:`RESPONSE_SHIFT` (0 = no composition difference).
    n_background
        Genes without marker role.
    n_batches
        Processing batches patients are assigned to (multiplicative gene effects).
    dispersion
        Negative-binomial dispersion of the counts.
    seed
        Random seed.

    Returns
    -------
    anndata.AnnData
        Raw counts (CSR, also in ``layers['counts']``); ``obs``: ``patient_id``, ``batch``,
        ``responder``, ``true_cell_type``.
    """
    ad = require("anndata", extra="omics")

    rng = np.random.default_rng(seed)
    ids = [str(p) for p in patient_ids]
    resp = np.asarray(responder, dtype=int)
    if len(ids) != len(resp):
        from pmed.errors import InputError

        raise InputError(f"{len(ids)} patient IDs but {len(resp)} response values",
                         fix="give one response value per patient")
    genes, mu = _programs(rng, n_background)
    types = list(CELL_TYPES)
    logit0 = np.log(np.array([CELL_TYPES[t] for t in types]))
    shift = np.array([RESPONSE_SHIFT.get(t, 0.0) for t in types]) * effect
    batch_fx = rng.lognormal(0.0, 0.25, size=(n_batches, len(genes)))
    batches = rng.integers(0, n_batches, size=len(ids))
    blocks, obs = [], []
    for p, r, b in zip(ids, resp, batches, strict=True):
        alpha = np.exp(logit0 + shift * r)
        props = rng.dirichlet(60.0 * alpha / alpha.sum())
        n = max(50, int(rng.poisson(cells_per_patient)))
        ct = rng.choice(len(types), size=n, p=props)
        lib = rng.lognormal(np.log(2500), 0.35, size=n)
        m = mu[ct] * batch_fx[b] * lib[:, None]
        lam = rng.gamma(1.0 / dispersion, m * dispersion)
        blocks.append(sparse.csr_matrix(rng.poisson(lam).astype(np.float32)))
        obs.append(pd.DataFrame({"patient_id": p, "batch": f"batch{b + 1}", "responder": int(r),
                                 "true_cell_type": np.asarray(types)[ct]}))
    X = sparse.vstack(blocks, format="csr")
    o = pd.concat(obs, ignore_index=True)
    o.index = [f"cell{i:06d}" for i in range(len(o))]
    adata = ad.AnnData(X=X, obs=o, var=pd.DataFrame(index=pd.Index(genes)))
    adata.layers["counts"] = X.copy()
    adata.uns["pmed_synthetic"] = {"seed": seed, "effect": effect, "cells_per_patient": cells_per_patient,
                                   "response_shift": RESPONSE_SHIFT}
    return adata


def single_cell_features(
    adata: anndata.AnnData,
    *,
    patient_key: str = "patient_id",
    markers: Any = None,
) -> pd.DataFrame:
    """Patient-level features from raw single-cell counts: fast per-cell marker annotation.

    Normalises (counts per 10,000, ``log1p``), labels each cell by its highest marker-set score
    (shipped PBMC markers plus :data:`CTC_MARKERS` by default), scores the shipped signatures and
    summarises per patient (:func:`pmed.omics.patient.patient_features`).

    Parameters
    ----------
    adata
        Cells with raw counts (``layers['counts']``); a copy is processed.
    patient_key
        ``obs`` column of patient IDs.
    markers
        Marker set (default PBMC + epithelial/CTC).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``patient_id``.
    """
    sc = require("scanpy", extra="omics")

    from pmed.omics.cluster import annotate, load_markers
    from pmed.omics.patient import patient_features, signature_scores

    a = adata.copy()
    if "counts" in a.layers:
        a.X = a.layers["counts"].copy()
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sets = load_markers(markers) if markers is not None else load_markers("pbmc") | CTC_MARKERS
    annotate(a, sets, groupby=None)
    signature_scores(a)
    return patient_features(a, patient_key=patient_key)


def make_omics_block(
    patient_ids: Sequence[str],
    responder: Sequence[int] | np.ndarray,
    *,
    cells_per_patient: int = 150,
    effect: float = 1.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate cells and return the patient-level ``omics`` block with its provenance.

    Parameters
    ----------
    patient_ids, responder, cells_per_patient, effect, seed
        See :func:`simulate_single_cell`.

    Returns
    -------
    features : pandas.DataFrame
        Indexed by patient ID; add with ``cohort.add_block("omics", features, provenance=prov)``.
    provenance : dict
    """
    adata = simulate_single_cell(patient_ids, responder, cells_per_patient=cells_per_patient,
                                 effect=effect, seed=seed)
    feats = single_cell_features(adata)
    prov = {"generator": "pmed.omics.synthetic", "seed": seed, "effect": effect,
            "n_cells": int(adata.n_obs), "cells_per_patient": cells_per_patient}
    return feats, prov


def write_omics_features(
    patients: pd.DataFrame,
    path: str | Path,
    *,
    response_col: str = "response",
    id_col: str = "patient_id",
    cells_per_patient: int = 100,
    effect: float = 1.0,
    seed: int = 0,
) -> Path:
    """Simulate the single-cell component for a patient table and write its ``omics`` block.

    Parameters
    ----------
    patients
        Table with the patient ID (column ``id_col`` or the index) and the binary response.
    path
        CSV/TSV/Parquet written (``patient_id`` as a plain column, as ``pmed run`` reads blocks).
    response_col, id_col
        Column names.
    cells_per_patient, effect, seed
        See :func:`simulate_single_cell`.

    Returns
    -------
    pathlib.Path
    """
    from pmed.errors import InputError
    from pmed.io import write_table

    ids = patients[id_col] if id_col in patients.columns else pd.Series(patients.index)
    if response_col not in patients.columns:
        raise InputError(f"response column {response_col!r} not in the patient table",
                         where=f"columns {list(patients.columns)[:20]}",
                         fix="pass response_col= naming the binary response")
    resp = pd.to_numeric(patients[response_col], errors="coerce").fillna(0).astype(int).to_numpy()
    feats, _ = make_omics_block(ids.astype(str).tolist(), resp, cells_per_patient=cells_per_patient,
                                effect=effect, seed=seed)
    feats.index.name = "patient_id"
    write_table(feats.reset_index(), path, index=False)
    return Path(path)
