"""Ancestry-aware scores from files: a reference panel's genotypes and population labels.

The genotypes of a reference panel (e.g. 1000 Genomes with super-population labels) place the
target samples on the panel's principal components (:class:`~pmed.genomics.prs.ancestry.
AncestryReference`), give each its most similar population, and let every score be reported
relative to that population (:func:`~pmed.genomics.prs.ancestry.adjust_scores`). As in
pgsc_calc, targets and reference are scored on the same variants: scoring-file rows matched in
both.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError, format_rows
from pmed.genomics.prs.match import complement
from pmed.genomics.prs.scorefile import read_failure
from pmed.genomics.prs.targets import Target

__all__ = ["read_populations", "shared_pca_variants", "read_sample_matrix", "AncestryResult",
           "ancestry_analysis"]


def read_populations(reference: Target, populations: str | Path | None, column: str) -> pd.Series:
    """Population label of each reference sample, from a table (``IID`` + ``column``) or the ``.psam``."""
    if populations is None:
        psam = reference.path.with_suffix(".psam")
        if not psam.exists():
            raise InputError("no population labels for the reference panel", file=reference.path,
                             fix="give --ref-populations FILE (columns IID and the population "
                                 "column) or a .psam with that column")
        populations = psam
    try:
        df = pd.read_csv(populations, sep=None, engine="python", dtype=str,
                         encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, ValueError, csv.Error, EOFError, zlib.error) as e:
        # (ParserError is a ValueError; a cut-short .gz an EOFError)
        raise read_failure(Path(populations), e, what="population table",
                           fix="give a tab- or comma-separated table with a header line (IID and "
                               "the population column)") from e
    df.columns = [c.lstrip("#") for c in df.columns]
    if "IID" not in df.columns or column not in df.columns:
        from pmed.genomics.prs.scorefile import columns_found

        raise InputError(f"the population table needs columns IID and {column[:40]!r}",
                         file=populations, where=f"line 1 (columns found: {columns_found(list(df.columns))})",
                         fix="name the population column with --population-column")
    pops = df.set_index("IID")[column]
    if pops.index.duplicated().any():  # .loc below would give such a sample two labels
        lines = (np.flatnonzero(pops.index.duplicated(keep=False)) + 2).tolist()
        raise InputError(f"{int(pops.index.duplicated().sum())} sample ID(s) appear more than "
                         "once in the population table", file=populations,
                         where=f"lines {format_rows(lines)}", fix="give one label per sample")
    ids = reference.samples["IID"]
    missing = np.flatnonzero(~ids.isin(pops.index).to_numpy())
    if len(missing):  # counts and places, never the IDs
        raise InputError(f"{len(missing)} of the {len(ids)} reference samples have no population "
                         "label", file=populations,
                         where=f"reference samples number {format_rows((missing + 1).tolist())}",
                         fix="label every sample of the reference panel (column IID)")
    return pops.loc[reference.samples["IID"]]


def shared_pca_variants(reference: Target, target: Target, *, max_variants: int = 20000,
                        seed: int = 0) -> pd.DataFrame:
    """Biallelic, strand-unambiguous SNVs present in both (same or swapped REF/ALT), thinned.

    Returns ``var_ref``, ``var_tgt`` (record indices) and ``swap`` (target ALT = reference REF).
    """
    def snv(v):
        ok = (v["n_alt"] == 1) & v["ref"].str.len().eq(1) & v["alt"].str.len().eq(1)
        ok &= complement(v["ref"]).ne(v["alt"]).fillna(False).to_numpy(dtype=bool)
        return v.loc[ok, ["chr", "pos", "ref", "alt", "var_idx"]]

    r, t = snv(reference.variants), snv(target.variants)
    m = r.merge(t, on=["chr", "pos"], suffixes=("_r", "_t"))
    same = (m["ref_r"] == m["ref_t"]) & (m["alt_r"] == m["alt_t"])
    swap = (m["ref_r"] == m["alt_t"]) & (m["alt_r"] == m["ref_t"])
    m = m[same | swap].assign(swap=swap[same | swap])
    m = m.drop_duplicates(["chr", "pos"], keep=False)
    if len(m) > max_variants:  # evenly spaced along the genome, not random: keeps coverage
        m = m.iloc[np.linspace(0, len(m) - 1, max_variants).astype(int)]
    return m.rename(columns={"var_idx_r": "var_ref", "var_idx_t": "var_tgt"})[
        ["chr", "pos", "var_ref", "var_tgt", "swap"]].reset_index(drop=True)


def read_sample_matrix(target: Target, var_idx: np.ndarray, *, swap: np.ndarray | None = None,
                       block: int = 4096) -> np.ndarray:
    """Samples × variants ALT dosages (float32, NaN missing) for a modest number of variants."""
    order = np.argsort(var_idx, kind="stable")
    out = np.empty((target.n_samples, len(var_idx)), dtype=np.float32)
    sorted_idx = np.asarray(var_idx)[order]
    for s, B in target.iter_blocks(sorted_idx, np.ones(len(sorted_idx), np.int64), block):
        G = B.astype(np.float32)
        G[(B < 0) if B.dtype == np.int8 else np.isnan(B)] = np.nan
        out[:, order[s: s + len(B)]] = G.T
    if swap is not None and swap.any():
        out[:, swap] = 2 - out[:, swap]
    return out


@dataclass
class AncestryResult:
    """Outputs of :func:`ancestry_analysis`."""

    model: object  # fitted AncestryReference
    assignment: pd.DataFrame  # targets: PCs, RF_P_*, MostSimilarPop …
    adjusted: pd.DataFrame  # long: IID, PGS, REFERENCE, SUM, MostSimilarPop, percentile…, Z…
    n_pca_variants: int


def ancestry_analysis(reference: Target, populations: pd.Series, target: Target,
                      ref_scores: pd.DataFrame, target_scores: pd.DataFrame, *,
                      n_components: int = 10, n_pcs: int = 4, max_variants: int = 20000,
                      seed: int = 0) -> AncestryResult:
    """PCA of the reference, projection and population assignment of the targets, adjusted scores.

    ``ref_scores`` / ``target_scores`` are long ``IID, PGS, SUM`` tables (from
    :func:`~pmed.genomics.prs.score_targets`).
    """
    from pmed.genomics.prs.ancestry import AncestryReference, adjust_scores

    shared = shared_pca_variants(reference, target, max_variants=max_variants, seed=seed)
    if len(shared) < 100:
        raise InputError(f"only {len(shared)} SNVs are shared by the reference panel and the genotypes",
                         file=reference.path,
                         fix="use a reference panel genotyped on the same build and sites "
                             "(at least a few thousand common SNVs in common)")
    G_ref = read_sample_matrix(reference, shared["var_ref"].to_numpy())
    G_tgt = read_sample_matrix(target, shared["var_tgt"].to_numpy(), swap=shared["swap"].to_numpy())
    model = AncestryReference(n_components=n_components, seed=seed).fit(G_ref, populations.to_numpy())
    assignment = model.predict(G_tgt)
    assignment.index = target.samples["IID"].to_numpy()
    assignment.index.name = "IID"
    ref_pcs = model.pcs_.set_axis(reference.samples["IID"].to_numpy(), axis=0)
    pops = pd.Series(populations.to_numpy(), index=ref_pcs.index)
    pc_cols = [c for c in assignment.columns if c.startswith("PC")]
    adjusted = adjust_scores(
        ref_scores[["IID", "PGS", "SUM"]], ref_pcs, pops,
        target_scores[["IID", "PGS", "SUM"]], assignment[pc_cols], assignment["MostSimilarPop"],
        n_pcs=min(n_pcs, n_components), include_reference=True)
    return AncestryResult(model, assignment, adjusted, len(shared))
