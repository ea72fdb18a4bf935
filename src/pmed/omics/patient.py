"""From cells to patients: composition, pseudobulk, differential expression, signature scores.

- :func:`composition`: share of each cell type per patient/sample;
- :func:`pseudobulk`: summed raw counts per sample (and cell type);
- :func:`pseudobulk_de`: PyDESeq2 on pseudobulk counts, e.g. responders vs non-responders or
  stimulated vs control (paired designs such as ``~patient + condition`` allowed), giving a
  biomarker table with Wald p-values and Benjamini–Hochberg FDR;
- :func:`signature_scores`: gene-signature scores per cell (scanpy ``score_genes``) averaged per
  patient; :data:`SIGNATURES` ships the epithelial/CTC signature (EPCAM, KRT8, KRT18, KRT19) and an
  interferon signature;
- :func:`patient_features` + :func:`add_to_cohort`: one row per patient to join a
  :class:`~pmed.cohort.Cohort` as the ``omics`` block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from pmed.errors import InputError, ValidationError, require
from pmed.omics._compat import resolve_seed
from pmed.omics._tables import short_list
from pmed.omics.metadata import check_obs_key

if TYPE_CHECKING:  # pragma: no cover
    import anndata

    from pmed.cohort import Cohort

__all__ = ["SIGNATURES", "composition", "pseudobulk", "pseudobulk_de", "signature_scores",
           "patient_features", "bulk_features", "add_to_cohort"]

#: Shipped gene signatures (HGNC symbols).
SIGNATURES: dict[str, list[str]] = {
    # epithelial / circulating tumour cell signature (EpCAM and cytokeratins 8/18/19)
    "epithelial_ctc": ["EPCAM", "KRT8", "KRT18", "KRT19"],
    # type-I interferon response (ISGs; Schoggins 2011, Kang 2018)
    "interferon": ["ISG15", "IFI6", "IFIT1", "IFIT3", "MX1", "ISG20", "IFITM3", "OAS1", "LY6E"],
}


def composition(adata: anndata.AnnData, *, sample_key: str, cell_type_key: str = "cell_type",
                proportions: bool = True) -> pd.DataFrame:
    """Cell-type composition per sample (or patient).

    Parameters
    ----------
    adata
        Cells.
    sample_key
        ``obs`` column of the sample/patient.
    cell_type_key
        ``obs`` column of cell types.
    proportions
        Return shares (rows sum to 1) instead of counts.

    Returns
    -------
    pandas.DataFrame
        Samples × cell types.
    """
    check_obs_key(adata, sample_key, what="sample key")
    check_obs_key(adata, cell_type_key, what="cell-type key")
    tab = pd.crosstab(adata.obs[sample_key].astype(str), adata.obs[cell_type_key].astype(str))
    tab.index.name = sample_key
    tab.columns.name = None
    if proportions:
        tab = tab.div(tab.sum(axis=1), axis=0)
    return tab


def pseudobulk(
    adata: anndata.AnnData,
    *,
    sample_key: str,
    cell_type_key: str | None = None,
    layer: str = "counts",
    min_cells: int = 10,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum raw counts per sample (and cell type).

    Parameters
    ----------
    adata
        Cells with raw counts in ``layers[layer]``.
    sample_key
        ``obs`` column of the sample.
    cell_type_key
        Also split by this column (one pseudobulk profile per sample × cell type).
    layer
        Layer of raw counts (``"X"`` for ``X``).
    min_cells
        Profiles built from fewer cells are dropped.

    Returns
    -------
    counts : pandas.DataFrame
        Profiles × genes (integer counts); index ``sample`` or ``sample|cell_type``.
    meta : pandas.DataFrame
        Per profile: ``sample``, ``cell_type`` (if split), ``n_cells``, plus every ``obs`` column
        constant within the sample (patient, condition, batch…).
    """
    check_obs_key(adata, sample_key, what="sample key")
    if layer != "X" and layer not in adata.layers:
        raise InputError(f"layer {layer!r} of raw counts not found",
                         fix="keep raw counts in layers['counts'] (pmed readers do)")
    X = sparse.csr_matrix(adata.X if layer == "X" else adata.layers[layer])
    keys = adata.obs[sample_key].astype(str)
    if cell_type_key is not None:
        check_obs_key(adata, cell_type_key, what="cell-type key")
        keys = keys + "|" + adata.obs[cell_type_key].astype(str)
    codes, uniq = pd.factorize(keys, sort=True)
    G = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                          shape=(len(uniq), len(codes)))
    summed = np.asarray((G @ X).todense())
    n_cells = np.bincount(codes, minlength=len(uniq))
    counts = pd.DataFrame(np.rint(summed).astype(np.int64), index=pd.Index(uniq, name="profile"),
                          columns=adata.var_names.astype(str))
    meta = pd.DataFrame(index=counts.index)
    meta["sample"] = [u.split("|")[0] for u in uniq]
    if cell_type_key is not None:
        meta["cell_type"] = [u.split("|", 1)[1] for u in uniq]
    meta["n_cells"] = n_cells
    # sample-level covariates: obs columns constant within every sample
    obs = adata.obs.copy()
    obs["_s"] = adata.obs[sample_key].astype(str).to_numpy()
    for c in obs.columns:
        if c in ("_s", sample_key, cell_type_key) or c in meta.columns:
            continue
        if obs[c].dtype.kind == "f":
            continue
        per = obs.groupby("_s", observed=True)[c].nunique(dropna=False)
        if (per == 1).all():
            first = obs.groupby("_s", observed=True)[c].first()
            meta[c] = meta["sample"].map(first.astype(str)).to_numpy()
    keep = meta["n_cells"].to_numpy() >= min_cells
    return counts[keep], meta[keep]


def pseudobulk_de(
    counts: pd.DataFrame,
    meta: pd.DataFrame,
    *,
    condition: str,
    test: str,
    reference: str,
    covariates: Sequence[str] = (),
    min_total_counts: int = 10,
    alpha: float = 0.05,
    n_cpus: int = 1,
) -> pd.DataFrame:
    """Differential expression between two conditions on pseudobulk counts (PyDESeq2).

    The design is ``~ covariates + condition`` (for paired samples put the patient column in
    ``covariates``). Genes with fewer than ``min_total_counts`` counts over all profiles are
    dropped before fitting.

    Parameters
    ----------
    counts, meta
        From :func:`pseudobulk` (same index).
    condition
        Column of ``meta`` with the groups compared.
    test, reference
        The group tested and the reference group: log2 fold changes are ``test`` over
        ``reference``.
    covariates
        Further columns of ``meta`` in the design (patient for paired designs, batch…).
    min_total_counts
        Gene filter.
    alpha
        FDR level used by DESeq2's independent filtering.
    n_cpus
        Processes PyDESeq2 may use.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene, sorted by p-value: ``rank, base_mean, log2fc, lfc_se, stat, pval, fdr``
        (``fdr`` is DESeq2's BH-adjusted p-value after independent filtering; NaN for genes it
        filtered out) and ``design``.

    Raises
    ------
    ValidationError
        A group has no profile, or too few profiles to estimate dispersion.
    """
    require("pydeseq2", extra="omics", feature="pseudobulk differential expression")
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    for c in [condition, *covariates]:
        if c not in meta.columns:
            raise InputError(f"column {c!r} not in the pseudobulk metadata",
                             where=f"columns {short_list(meta.columns)}",
                             fix="pass a sample-level obs column (constant within each sample)")
    keep = meta[condition].astype(str).isin([test, reference])
    m = meta.loc[keep, [condition, *covariates]].astype(str).copy()
    c = counts.loc[keep]
    problems = []
    for lv in (test, reference):
        if (m[condition] == lv).sum() == 0:
            problems.append(f"no profile with {condition} = {lv!r}")
    n_coef = 1 + 1 + sum(m[cv].nunique() - 1 for cv in covariates)
    if len(m) <= n_coef:
        problems.append(f"{len(m)} profiles for {n_coef} coefficients: no residual degrees of freedom")
    if problems:
        raise ValidationError(problems, fix="add samples or drop covariates from the design")
    c = c.loc[:, c.sum(axis=0) >= min_total_counts]
    design = "~" + " + ".join([*covariates, condition])
    m[condition] = pd.Categorical(m[condition], categories=[reference, test])
    inference = DefaultInference(n_cpus=n_cpus)
    dds = DeseqDataSet(counts=c, metadata=m, design=design, refit_cooks=True, inference=inference,
                       quiet=True)
    dds.deseq2()
    st = DeseqStats(dds, contrast=[condition, test, reference], alpha=alpha, inference=inference,
                    quiet=True)
    st.summary()
    r = st.results_df.rename(columns={"baseMean": "base_mean", "log2FoldChange": "log2fc",
                                      "lfcSE": "lfc_se", "pvalue": "pval", "padj": "fdr"})
    r = r.sort_values(["pval", "stat"], ascending=[True, False], na_position="last")
    r.insert(0, "rank", np.arange(1, len(r) + 1))
    r.index.name = "gene"
    r["design"] = f"{design}; {test} vs {reference}"
    return r


def signature_scores(
    adata: anndata.AnnData,
    signatures: Mapping[str, Sequence[str]] | None = None,
    *,
    min_genes: int = 1,
    seed: int = 0,
    random_state: int | None = None,
) -> dict[str, list[str]]:
    """Score gene signatures per cell (``scanpy.tl.score_genes``: mean minus a matched control set).

    Parameters
    ----------
    adata
        Cells with log-normalised ``X``; scores go to ``obs['sig_<name>']``.
    signatures
        Name → genes; default :data:`SIGNATURES`.
    min_genes
        Signatures with fewer genes present are skipped (recorded in the return value).
    seed
        Seed of the control-gene draw.
    random_state
        Deprecated alias of ``seed``.

    Returns
    -------
    dict
        Name → genes used (empty list when skipped).
    """
    seed = resolve_seed(seed, random_state, "signature_scores")
    sc = require("scanpy", extra="omics")

    signatures = SIGNATURES if signatures is None else signatures
    from pmed.omics.cluster import _symbol_map

    used: dict[str, list[str]] = {}
    sym = _symbol_map(adata.var_names)
    for name, genes in signatures.items():
        g = list(dict.fromkeys(sym[x] for x in genes if x in sym))
        used[name] = g if len(g) >= min_genes else []
        if not used[name]:
            continue
        sc.tl.score_genes(adata, g, score_name=f"sig_{name}", random_state=seed,
                          ctrl_size=min(50, max(1, adata.n_vars - len(g))))
    return used


def _safe(name: object) -> str:
    """Column-name-safe form of a cell-type name (``CD14+ Monocytes`` → ``CD14pos_Monocytes``)."""
    return re.sub(r"[^0-9A-Za-z]+", "_", str(name).replace("+", "pos")).strip("_")


def patient_features(
    adata: anndata.AnnData,
    *,
    patient_key: str,
    cell_type_key: str = "cell_type",
    signature_prefix: str = "sig_",
) -> pd.DataFrame:
    """One row per patient: cell-type shares, mean signature scores and cell count.

    Parameters
    ----------
    adata
        Annotated cells (signature scores in ``obs['sig_*']`` if computed).
    patient_key
        ``obs`` column of the patient ID.
    cell_type_key
        ``obs`` column of cell types.
    signature_prefix
        Prefix of signature-score columns averaged per patient.

    Returns
    -------
    pandas.DataFrame
        Indexed by patient ID: ``frac_<cell type>``, ``<signature>_mean``, ``n_cells``.
    """
    comp = composition(adata, sample_key=patient_key, cell_type_key=cell_type_key)
    comp.columns = ["frac_" + _safe(c) for c in comp.columns]
    sig_cols = [c for c in adata.obs.columns if c.startswith(signature_prefix)]
    pid = adata.obs[patient_key].astype(str)
    parts = [comp]
    if sig_cols:
        means = adata.obs[sig_cols].groupby(pid.to_numpy()).mean()
        means.columns = [c[len(signature_prefix):] + "_mean" for c in sig_cols]
        parts.append(means)
    out = pd.concat(parts, axis=1)
    out["n_cells"] = pid.value_counts().reindex(out.index).to_numpy()
    out.index = out.index.astype(str)
    out.index.name = "patient_id"
    return out


def bulk_features(
    bulk: pd.DataFrame,
    *,
    signatures: Mapping[str, Sequence[str]] | None = None,
    genes: Sequence[str] = (),
    sample_to_patient: Mapping[str, str] | pd.Series | None = None,
    counts: bool = True,
) -> pd.DataFrame:
    """Patient-level features from a bulk expression table (samples × genes).

    Counts are converted to log2(CPM + 1) (``counts=True``); each signature's score is the mean
    z-score (across samples) of its genes present; listed ``genes`` are kept as columns.

    Parameters
    ----------
    bulk
        From :func:`pmed.omics.readers.read_bulk`.
    signatures
        Name → genes; default :data:`SIGNATURES`.
    genes
        Genes kept as individual features (``expr_<gene>``).
    sample_to_patient
        Maps sample IDs to patient IDs; several samples of a patient are averaged. Default: the
        sample ID is the patient ID.
    counts
        The table holds raw counts (else it is used as given, already on a log scale).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``patient_id``: ``<signature>_score`` and ``expr_<gene>``.
    """
    x = bulk.astype(float)
    if counts:
        lib = x.sum(axis=1).replace(0, np.nan)
        x = np.log2(x.div(lib, axis=0) * 1e6 + 1)
    z = (x - x.mean()) / x.std(ddof=0).replace(0, np.nan)
    signatures = SIGNATURES if signatures is None else signatures
    out = pd.DataFrame(index=x.index)
    for name, gs in signatures.items():
        present = [g for g in gs if g in z.columns]
        if present:
            out[f"{name}_score"] = z[present].mean(axis=1)
    missing = [g for g in genes if g not in x.columns]
    if missing:
        raise InputError(f"{len(missing)} gene(s) not in the bulk table: {short_list(missing)}",
                         fix="check the gene names (symbols vs Ensembl IDs)")
    for g in genes:
        out[f"expr_{g}"] = x[g]
    if sample_to_patient is not None:
        mapping = pd.Series(sample_to_patient).astype(str)
        absent = [s for s in out.index if s not in mapping.index]
        if absent:
            # a count: the samples' names may be patients' IDs
            raise ValidationError([f"{len(absent)} samples have no patient"],
                                  fix="map every sample to its patient")
        out = out.groupby(mapping.reindex(out.index).to_numpy()).mean()
    out.index = out.index.astype(str)
    out.index.name = "patient_id"
    return out


def add_to_cohort(cohort: Cohort, features: pd.DataFrame, *, name: str = "omics",
                  allow_missing: bool = False, provenance: Mapping[str, Any] | None = None) -> Cohort:
    """Join patient-level omics features to a :class:`~pmed.cohort.Cohort` as a block.

    Kept for older code: ``cohort.add_block("omics", run_omics(...).to_block())`` does the same
    with the run's full provenance.

    Parameters
    ----------
    cohort
        The cohort (changed in place and returned).
    features
        From :func:`patient_features`, indexed by patient ID.
    name
        Block name (default the standard ``"omics"``).
    allow_missing
        Patients without single-cell data get an all-missing row instead of an error.
    provenance
        Extra provenance recorded with the block.

    Returns
    -------
    pmed.cohort.Cohort
    """
    from pmed.cohort import Block

    prov = {"domain": "omics", "modality": "single-cell RNA-seq", "producer": "pmed.omics",
            "n_features": int(features.shape[1])}
    prov.update(provenance or {})
    return cohort.add_block(name, Block(features, prov), allow_missing=allow_missing)
