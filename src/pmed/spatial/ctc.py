"""Circulating tumour cells (CTCs): score single blood cells for an epithelial, CD45-negative profile.

The CellSearch definition of a CTC (the only FDA-cleared CTC assay; Allard et al. 2004,
Clin Cancer Res 10:6897; Cristofanilli et al. 2004, NEJM 351:781) is a nucleated cell that is
EpCAM+ and cytokeratin (CK8/18/19)+ and CD45-. In single-cell RNA data of blood the same logic
is: high expression of an epithelial signature (EPCAM, KRT8, KRT18, KRT19, E-cadherin, claudins)
and low expression of a pan-leukocyte signature (PTPRC = CD45 and other genes every leukocyte
expresses). CTCs that went through epithelial-to-mesenchymal transition (EMT) lose EpCAM and
gain vimentin, N-cadherin, ZEB1, SLUG (SNAI2), TWIST1 and fibronectin (Yu et al. 2013, Science
339:580); the mesenchymal score flags them.

- :func:`ctc_scores` scores each cell (``scanpy.tl.score_genes`` through
  :func:`pmed.omics.patient.signature_scores`), turns the scores into robust z-scores against the
  blood background (all cells of the sample) and calls CTCs;
- :func:`ctc_sample_summary` gives one row per sample: cells, CTC calls, CTCs per 10,000 cells,
  the highest CTC score and the share of EMT-high CTCs, the per-patient features of a Cohort block.

anndata/scanpy come with the ``omics`` extra and are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import InputError, NotFoundError, OptionError, require

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = [
    "EPITHELIAL",
    "MESENCHYMAL",
    "LEUKOCYTE",
    "PLATELET",
    "ERYTHROCYTE",
    "CTC_SIGNATURES",
    "ctc_scores",
    "ctc_sample_summary",
]

#: Epithelial / CTC signature: EpCAM and cytokeratins 8, 18, 19 (the CellSearch antigens) plus
#: E-cadherin (CDH1), claudins 4 and 7 and cytokeratin 7, epithelial genes of carcinoma CTCs in
#: single-cell RNA studies (e.g. Ting et al. 2014, Cell Rep 8:1905; Aceto et al. 2014, Cell 158:1110).
EPITHELIAL: tuple[str, ...] = ("EPCAM", "KRT8", "KRT18", "KRT19", "CDH1", "CLDN4", "CLDN7", "KRT7")

#: Mesenchymal / EMT signature (Yu et al. 2013, Science 339:580; Lambert et al. 2017, Cell 168:670):
#: vimentin, N-cadherin, ZEB1, SLUG, TWIST1, fibronectin. Leukocytes express VIM too, so the score
#: is read against the blood background (z-score), where the other five genes carry the signal.
MESENCHYMAL: tuple[str, ...] = ("VIM", "CDH2", "ZEB1", "SNAI2", "TWIST1", "FN1")

#: Pan-leukocyte signature: PTPRC (CD45, the CellSearch exclusion antigen; all its isoforms are one
#: gene) and genes every leukocyte lineage expresses: L-plastin (LCP1), coronin 1A (CORO1A),
#: LAPTM5, CD53, CD52 and HCLS1.
LEUKOCYTE: tuple[str, ...] = ("PTPRC", "LCP1", "CORO1A", "LAPTM5", "CD53", "CD52", "HCLS1")

#: Platelet contamination (platelet-bound cells, free platelets in the droplet): PPBP (CXCL7), PF4,
#: GNG11, TUBB1, ITGA2B (CD41).
PLATELET: tuple[str, ...] = ("PPBP", "PF4", "GNG11", "TUBB1", "ITGA2B")

#: Erythrocyte contamination (haemoglobin mRNA of red cells and reticulocytes).
ERYTHROCYTE: tuple[str, ...] = ("HBB", "HBA1", "HBA2")

#: The default signatures of :func:`ctc_scores` (name → genes). ``epithelial`` and ``leukocyte``
#: make the call; ``mesenchymal`` flags EMT; the contaminant scores are reported only.
CTC_SIGNATURES: dict[str, tuple[str, ...]] = {
    "epithelial": EPITHELIAL,
    "mesenchymal": MESENCHYMAL,
    "leukocyte": LEUKOCYTE,
    "platelet": PLATELET,
    "erythrocyte": ERYTHROCYTE,
}

_REQUIRED = ("epithelial", "leukocyte")


def _looks_like_counts(X) -> bool:
    """Non-negative whole numbers (some above zero): raw counts, not log-normalised values."""
    vals = X.data if sparse.issparse(X) else np.asarray(X).ravel()
    vals = vals[:200_000]
    if vals.size == 0 or not np.any(vals > 0):
        return False
    return bool(np.all(vals >= 0) and np.allclose(vals, np.round(vals)))


def _robust_z(values: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """(x − median) / (1.4826 · MAD) within each group; the SD is the scale when the MAD is ~0.

    The median and MAD ignore the few CTCs among thousands of blood cells; when most cells share
    one value (an epithelial score that is zero in nearly every leukocyte) the MAD is zero and
    the standard deviation of the group (floored at 1e-3) is used instead.
    """
    out = np.zeros_like(values, dtype=float)
    keys = np.zeros(values.size, dtype=int) if groups is None else pd.factorize(groups)[0]
    for g in np.unique(keys):
        m = keys == g
        x = values[m]
        med = np.median(x)
        scale = 1.4826 * np.median(np.abs(x - med))
        if scale < 1e-3:
            scale = max(float(np.std(x)), 1e-3)
        out[m] = (x - med) / scale
    return out


def ctc_scores(
    adata: anndata.AnnData,
    *,
    signatures: Mapping[str, Sequence[str]] | None = None,
    layer: str | None = None,
    seed: int = 0,
    sample_key: str | None = None,
    normalize: bool | None = None,
    epithelial_z: float = 3.0,
    leukocyte_z: float = 0.0,
    min_epithelial_genes: int = 2,
    emt_z: float = 2.0,
) -> pd.DataFrame:
    """Score each cell for a CTC profile (epithelial-high, leukocyte-low) and call CTCs.

    Each signature is scored with ``scanpy.tl.score_genes`` (mean log expression of the genes
    present minus that of expression-matched control genes; via
    :func:`pmed.omics.patient.signature_scores`, with coarser expression bins when a small gene
    panel leaves no control gene in a bin). The scores are then made robust z-scores
    against the cells of the same sample (median and 1.4826·MAD; see ``_robust_z``): blood is
    the background, CTCs are the outliers.

    ``ctc_score = z(epithelial) − z(leukocyte)``. A cell is called a CTC (``ctc_call``) when

    - ``z(epithelial) >= epithelial_z`` (default 3: three robust SDs above the blood),
    - ``z(leukocyte) <= leukocyte_z`` (default 0: less leukocyte RNA than the median cell of
      the sample, i.e. CD45-low), and
    - at least ``min_epithelial_genes`` different epithelial genes are detected (default 2, or
      the number present if fewer): one stray count of one gene — ambient RNA, a segmentation
      spill-over — is not an epithelial cell; CellSearch too asks for two epithelial antigens.

    This is the CellSearch rule EpCAM+/CK+/CD45− read against the blood of the same sample.
    ``emt_high`` marks called CTCs with ``z(mesenchymal) >= emt_z``.

    Parameters
    ----------
    adata
        Cells (blood, or any tissue whose cells are the background). Raw counts or
        log-normalised values in ``X`` (or ``layer``); gene symbols as variable names (names
        made unique as ``PTPRC_ENSG…`` or ``PTPRC.1`` match too).
    signatures
        Name → genes replacing the defaults of :data:`CTC_SIGNATURES` for the names given
        (other names are added and reported as ``<name>_score``). ``epithelial`` and
        ``leukocyte`` are always scored.
    layer
        Layer holding the values (``None``: ``X``).
    seed
        Seed of the control-gene draw of ``score_genes``.
    sample_key
        ``obs`` column of the sample: z-scores are computed within each sample (each blood
        draw is its own background). ``None``: all cells are one background.
    normalize
        ``True``: the values are counts; normalise each cell to 10,000 and ``log1p``.
        ``False``: they are log-normalised already. ``None`` (default): counts when they are
        non-negative whole numbers.
    epithelial_z, leukocyte_z
        Call thresholds on the robust z-scores (defaults 3 and 0; see Notes).
    min_epithelial_genes
        Fewest epithelial signature genes detected (value > 0) in a called cell; capped at the
        number of epithelial genes present in the data.
    emt_z
        Mesenchymal z-score from which a called CTC counts as EMT-high.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``obs_names``: ``<name>_score`` (raw ``score_genes`` score) for each
        signature with genes present, ``epithelial_z``, ``leukocyte_z``, ``mesenchymal_z``,
        ``n_epithelial_genes`` (epithelial genes detected), ``ctc_score``, ``ctc_call`` (bool)
        and ``emt_high`` (bool). ``attrs['genes']`` holds
        signature → genes found in the data (empty list: none present, not scored) and
        ``attrs['thresholds']`` the thresholds used.

    Raises
    ------
    InputError
        None of the epithelial (or leukocyte) genes are in the data; empty data.
    NotFoundError
        ``sample_key`` or ``layer`` missing.
    OptionError
        A signature that is not a list of gene names.

    Notes
    -----
    The thresholds were checked on the Kang et al. (2018) PBMCs with real breast-carcinoma
    epithelial profiles (Visium spots thinned to single-cell depth) spiked in, and on MERFISH
    lung-cancer leukocytes with the tumour's epithelial cells spiked in (see
    ``tests/spatial/test_spatial_ctc.py`` for the sensitivities and false-positive rates seen).
    Because the background is the sample itself, a sample made mostly of tumour cells is not a
    blood sample and its z-scores mean little; score blood (or a leukocyte-rich sample).
    When the epithelial genes are zero in nearly all background cells, the MAD is zero and the
    scale falls back to the standard deviation, so z-scores of CTCs can be large (tens).
    """
    ad = require("anndata", extra="omics", feature="CTC scoring")
    from pmed.omics.annotation import _symbol_map
    from pmed.omics.patient import signature_scores

    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"the data are empty ({adata.n_obs} cells × {adata.n_vars} genes)",
                         fix="give cells and genes")
    sigs: dict[str, tuple[str, ...]] = dict(CTC_SIGNATURES)
    for name, genes in (signatures or {}).items():
        if isinstance(genes, str) or not isinstance(genes, Sequence | set | frozenset):
            raise OptionError(f"signature {name!r} must be a list of gene symbols, got {type(genes).__name__}",
                              where=f"signatures[{name!r}]", fix='e.g. {"epithelial": ["EPCAM", "KRT8"]}')
        sigs[str(name)] = tuple(str(g) for g in genes)
    if sample_key is not None and sample_key not in adata.obs.columns:
        raise NotFoundError(f"sample key {sample_key!r} is not a column of the cell metadata",
                            where=f"obs columns: {list(adata.obs.columns)[:8]}",
                            fix="pass one of the obs columns, or sample_key=None for one background")
    if sample_key is not None and adata.obs[sample_key].isna().any():
        n_na = int(adata.obs[sample_key].isna().sum())
        raise InputError(f"sample key {sample_key!r} is missing for {n_na} of {adata.n_obs} cells",
                         where=f"obs column {sample_key!r}", fix="fill it or drop those cells")
    if layer is not None and layer not in adata.layers:
        raise NotFoundError(f"layer {layer!r} not found", where=f"layers: {list(adata.layers)}",
                            fix="pass one of the layers, or layer=None for X")

    sym = _symbol_map(adata.var_names)
    for name in _REQUIRED:
        if not any(g in sym for g in sigs[name]):
            raise InputError(
                f"none of the {name} signature genes are in the data, so CTCs cannot be scored",
                where=f"{name} genes looked for: {list(sigs[name])}; data has {adata.n_vars} genes "
                      f"({list(adata.var_names[:4])} …)",
                fix="use gene symbols as variable names (map Ensembl IDs first), keep these genes "
                    "when subsetting (e.g. to highly variable genes), or pass signatures={...}")

    X = adata.X if layer is None else adata.layers[layer]
    if normalize is None:
        normalize = _looks_like_counts(X)
    X = X.astype(np.float32, copy=True) if sparse.issparse(X) else np.array(X, dtype=np.float32)
    work = ad.AnnData(X=X, obs=pd.DataFrame(index=adata.obs_names.copy()),
                      var=pd.DataFrame(index=adata.var_names.copy()))
    if normalize:
        sc = require("scanpy", extra="omics", feature="CTC scoring")
        sc.pp.normalize_total(work, target_sum=1e4)
        sc.pp.log1p(work)

    used: dict[str, list[str]] = {}
    for name, genes in sigs.items():
        try:
            used.update(signature_scores(work, {name: genes}, min_genes=1, seed=seed))
        except RuntimeError:
            # small panels: with 25 expression bins the signature genes' bin holds no other gene
            # ("No control genes found in any cut"); score again with coarser bins (≥ 20 genes each)
            sc = require("scanpy", extra="omics", feature="CTC scoring")
            g = list(dict.fromkeys(sym[x] for x in genes if x in sym))
            sc.tl.score_genes(work, g, score_name=f"sig_{name}", random_state=seed,
                              n_bins=max(2, min(25, work.n_vars // 20)),
                              ctrl_size=min(50, max(1, work.n_vars - len(g))))
            used[name] = g
    out = pd.DataFrame(index=adata.obs_names.copy())
    for name, genes in used.items():
        if genes:
            out[f"{name}_score"] = work.obs[f"sig_{name}"].to_numpy(dtype=float)
    groups = None if sample_key is None else adata.obs[sample_key].astype(str).to_numpy()
    for name in ("epithelial", "leukocyte", "mesenchymal"):
        if f"{name}_score" in out:
            out[f"{name}_z"] = _robust_z(out[f"{name}_score"].to_numpy(), groups)
        else:
            out[f"{name}_z"] = np.nan
    epi_cols = work.var_names.get_indexer(used["epithelial"])
    E = X[:, epi_cols]
    n_det = np.asarray((E > 0).sum(axis=1)).ravel().astype(int)
    out["n_epithelial_genes"] = n_det
    out["ctc_score"] = out["epithelial_z"] - out["leukocyte_z"]
    need = min(int(min_epithelial_genes), len(used["epithelial"]))
    out["ctc_call"] = ((out["epithelial_z"] >= epithelial_z) & (out["leukocyte_z"] <= leukocyte_z)
                       & (n_det >= need))
    out["emt_high"] = out["ctc_call"] & (out["mesenchymal_z"].fillna(-np.inf) >= emt_z)
    out.attrs["genes"] = {k: list(v) for k, v in used.items()}
    out.attrs["thresholds"] = {"epithelial_z": epithelial_z, "leukocyte_z": leukocyte_z,
                               "min_epithelial_genes": need, "emt_z": emt_z}
    return out


def ctc_sample_summary(scores: pd.DataFrame, sample_ids: Sequence | pd.Series | str) -> pd.DataFrame:
    """One row per sample: cells, CTC calls, CTCs per 10,000 cells, highest score, EMT share.

    Parameters
    ----------
    scores
        Output of :func:`ctc_scores` (needs ``ctc_score`` and ``ctc_call``; ``emt_high`` when
        present).
    sample_ids
        Sample of each cell: a column name of ``scores``, a :class:`pandas.Series` indexed like
        ``scores`` (e.g. ``adata.obs['sample_id']``) or a sequence in the order of ``scores``.

    Returns
    -------
    pandas.DataFrame
        Indexed by sample: ``n_cells``, ``n_ctc``, ``ctc_per_10k`` (CTC calls per 10,000
        cells), ``max_ctc_score``, ``emt_high_fraction`` (EMT-high share of the CTC calls; NaN
        with no call).

    Raises
    ------
    NotFoundError
        ``sample_ids`` names a column that is not there.
    InputError
        Missing score columns, sample IDs of the wrong length or with missing values.
    """
    missing = [c for c in ("ctc_score", "ctc_call") if c not in scores.columns]
    if missing:
        raise InputError(f"scores lack column(s) {missing}",
                         where=f"columns: {list(scores.columns)[:8]}",
                         fix="pass the table returned by ctc_scores()")
    if isinstance(sample_ids, str):
        if sample_ids not in scores.columns:
            raise NotFoundError(f"sample key {sample_ids!r} is not a column of the scores",
                                where=f"columns: {list(scores.columns)[:8]}",
                                fix="add the sample column to the scores (scores[key] = adata.obs[key]) "
                                    "or pass the sample IDs themselves")
        ids = scores[sample_ids]
    elif isinstance(sample_ids, pd.Series):
        absent = ~scores.index.isin(sample_ids.index)
        if absent.any():
            raise InputError(f"{int(absent.sum())} of {len(scores)} scored cells are not in the sample IDs",
                             where=f"cells such as {list(scores.index[absent][:3])}",
                             fix="pass adata.obs[<sample key>] of the same cells")
        ids = sample_ids[~sample_ids.index.duplicated()].reindex(scores.index)
    else:
        ids = pd.Series(list(sample_ids), index=scores.index) if len(sample_ids) == len(scores) else None
        if ids is None:
            raise InputError(f"{len(sample_ids)} sample IDs for {len(scores)} cells",
                             fix="give one sample ID per scored cell")
    if ids.isna().any():
        raise InputError(f"sample ID missing for {int(ids.isna().sum())} of {len(scores)} cells",
                         fix="fill the sample IDs or drop those cells")
    ids = ids.astype(str)
    call = scores["ctc_call"].astype(bool)
    emt = scores["emt_high"].astype(bool) if "emt_high" in scores.columns else pd.Series(False, index=scores.index)
    g = pd.DataFrame({"sample": ids.to_numpy(), "call": call.to_numpy(), "emt": (emt & call).to_numpy(),
                      "score": scores["ctc_score"].to_numpy(dtype=float)}).groupby("sample", sort=True)
    out = pd.DataFrame({
        "n_cells": g.size(),
        "n_ctc": g["call"].sum().astype(int),
        "max_ctc_score": g["score"].max(),
        "n_emt": g["emt"].sum().astype(int),
    })
    out["ctc_per_10k"] = out["n_ctc"] / out["n_cells"] * 1e4
    out["emt_high_fraction"] = (out["n_emt"] / out["n_ctc"]).where(out["n_ctc"] > 0)
    out.index.name = "sample"
    return out[["n_cells", "n_ctc", "ctc_per_10k", "max_ctc_score", "emt_high_fraction"]]
