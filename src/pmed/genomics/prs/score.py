"""Compute polygenic scores from matched variants, streaming the genotypes in variant blocks.

For each sample and score (plink2 ``--score`` semantics, checked against plink2 in the tests)::

    SUM   = Σ weight × effect-allele dosage    (dominant: min(dosage, 1); recessive: max(dosage − 1, 0))
    DENOM = 2 × number of scored variants      (plink2's DENOM, pgsc_calc's DENOM)
    AVG   = SUM / DENOM

Missing genotypes are mean-imputed from the cohort's allele frequency p (plink2's default;
2p for an additive effect, p for a dominant or recessive one, as plink2), from the scoring
file's ``allelefrequency_effect`` (``impute="file"``), or count as zero (``impute="none"``,
plink2's ``no-mean-imputation``).

How it is computed: each target file's matched alleles form a plan, a matrix ``A`` (alleles ×
scores) of ±weights on the ALT dosage plus a constant for effects on the REF allele, so a block
of ALT dosages ``G`` contributes ``Aᵀ G`` (one BLAS call: float32 with the weights split in
three parts for hard calls, exact; float64 for dosages). Missing calls are set to 0 in the
product and corrected afterwards from where they were (a sparse or a dense 0/1 matrix), and
dominant/recessive pairs are handled apart. A block's result depends only
on its own variants and samples, so the same function runs per block locally or per
(variant block × sample chunk) task on a Dask cluster, and the pieces are summed.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from pmed.errors import InputError, OptionError, PmedWarning
from pmed.genomics.prs.targets import Target
from pmed.progress import Reporter, as_reporter

__all__ = ["score_targets", "ScorePlan", "make_plans", "score_block", "block_stats"]

IMPUTE = ("mean", "file", "none")


def check_impute(impute: str) -> None:
    """Refuse an unknown imputation before any genotype is read."""
    if impute not in IMPUTE:
        raise OptionError(f"unknown imputation {impute!r}", fix=f"use one of {', '.join(IMPUTE)}")


def resolve_n_jobs(n_jobs: int | None, threads: int | None, *, default: int = 1) -> int:
    """``n_jobs``, or the deprecated ``threads`` when only that was given (with a warning)."""
    if threads is not None:
        warnings.warn("threads= is deprecated; use n_jobs=", PmedWarning, stacklevel=3)
        if n_jobs in (None, default):
            n_jobs = threads
    n_jobs = default if n_jobs is None else n_jobs
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise OptionError(f"n_jobs={n_jobs!r} must be a positive integer",
                          fix="give the number of threads to use (1 or more)")
    return int(n_jobs)


@dataclass
class ScorePlan:
    """The matched alleles of one target file, as arrays for block-wise scoring."""

    file: int
    scores: list[str]
    var_idx: np.ndarray  # (n_u,) increasing
    allele_idx: np.ndarray  # (n_u,)
    A: np.ndarray  # (n_u, n_s) float64 coefficient of the ALT dosage (0 for dominant/recessive)
    const: np.ndarray  # (n_s,) Σ 2·w over additive effects on the REF allele
    effect_is_alt: np.ndarray  # (n_u, n_s) bool, meaningful where the pair exists
    present: np.ndarray  # (n_u, n_s) bool: the score uses this allele
    kind: np.ndarray  # (n_u, n_s) int8: 0 additive, 1 dominant, 2 recessive
    weight: np.ndarray  # (n_u, n_s) float64
    file_af: np.ndarray  # (n_u, n_s) float64 effect-allele frequency from the file (NaN if none)
    n_variants: np.ndarray = field(default=None)  # (n_s,) variants per score in this file

    @property
    def n_alleles(self) -> int:
        return len(self.var_idx)


def make_plans(matched: pd.DataFrame, scores: Sequence[str]) -> list[ScorePlan]:
    """Turn matched rows (from :func:`~pmed.genomics.prs.match_variants`) into one plan per file."""
    scores = list(scores)
    s_index = {s: i for i, s in enumerate(scores)}
    plans = []
    kinds = {"additive": 0, "dominant": 1, "recessive": 2}
    files = matched["file"].to_numpy()
    score_idx = _lookup(matched["score"], s_index)
    kind_idx = _lookup(matched["effect_type"], kinds)
    for f in np.unique(files):
        sel = files == f
        d = matched if sel.all() else matched.loc[sel]
        combined = d["var_idx"].to_numpy(np.int64) * 256 + d["allele_idx"].to_numpy(np.int64)
        if np.all(combined[1:] > combined[:-1]):  # one score in file order: already unique, sorted
            uniq, u = combined, np.arange(len(combined))
        else:
            uniq, u = np.unique(combined, return_inverse=True)  # sorted by (var_idx, allele_idx)
        keys = pd.DataFrame({"var_idx": uniq // 256, "allele_idx": uniq % 256})
        s = score_idx[sel]
        n_u, n_s = len(keys), len(scores)
        w = d["weight"].to_numpy(dtype=np.float64)
        alt = d["effect_is_alt"].to_numpy(dtype=bool)
        k = kind_idx[sel].astype(np.int8)
        weight = np.zeros((n_u, n_s))
        weight[u, s] = w
        eia = np.zeros((n_u, n_s), bool)
        eia[u, s] = alt
        present = np.zeros((n_u, n_s), bool)
        present[u, s] = True
        kind = np.zeros((n_u, n_s), np.int8)
        kind[u, s] = k
        af = np.full((n_u, n_s), np.nan)
        af[u, s] = d["af"].to_numpy(dtype=np.float64)
        A = np.where(present & (kind == 0), np.where(eia, weight, -weight), 0.0)
        const = np.where(present & (kind == 0) & ~eia, 2 * weight, 0.0).sum(axis=0)
        plans.append(ScorePlan(
            file=int(f), scores=scores, var_idx=keys["var_idx"].to_numpy(np.int64),
            allele_idx=keys["allele_idx"].to_numpy(np.int64), A=A, const=const,
            effect_is_alt=eia, present=present, kind=kind, weight=weight, file_af=af,
            n_variants=present.sum(axis=0)))
    return plans


def _lookup(col: pd.Series, index: dict) -> np.ndarray:
    """Map a (categorical) column through a dict, per category rather than per row."""
    c = col.array if isinstance(col.dtype, pd.CategoricalDtype) else pd.Categorical(col.astype(object))
    lut = np.array([index.get(str(x), -1) for x in c.categories] + [-1], dtype=np.int64)
    return lut[np.asarray(c.codes)]


#: Rows per exact float32 product (see :func:`_exact_split`).
EXACT_ROWS = 1024


def _exact_split(a: np.ndarray) -> np.ndarray:
    """Split weights into three float32 parts whose products with dosages sum exactly.

    Each part holds, per score column, integer multiples of one power of two with at most 12
    significant bits. A hardcall dosage is 0, 1 or 2, so every partial sum of up to
    :data:`EXACT_ROWS` products is an integer below 2**24 times that power of two: exactly
    representable in float32 whatever order BLAS adds in. The three parts cover 36 bits of each
    column's largest weight, so float32 speed gives the result of double-precision arithmetic.
    """
    a = np.asarray(a, dtype=np.float64)
    top = np.abs(a).max(axis=0)
    top[top == 0] = 1.0
    q = np.exp2(np.ceil(np.log2(top)) - 11)  # |a / q| ≤ 2**11
    parts = []
    r = a
    for _ in range(3):
        p = np.round(r / q) * q
        parts.append(p.astype(np.float32))
        r = r - p
        q = q / 4096.0
    return np.concatenate(parts, axis=1)


def _exact_product(A: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``Aᵀ G`` in double precision from float32 BLAS calls (exact for hardcall dosages)."""
    n_s = A.shape[1]
    out = np.zeros((n_s, G.shape[1]))
    for s in range(0, G.shape[0], EXACT_ROWS):
        W = _exact_split(A[s: s + EXACT_ROWS])
        prod = W.T @ G[s: s + EXACT_ROWS]  # (3 n_s, n_samples) float32, exact
        out += prod[:n_s].astype(np.float64)
        out += prod[n_s: 2 * n_s]
        out += prod[2 * n_s:]
    return out


class Workspace:
    """Reusable float buffers: blocks are converted into memory already touched, which is
    several times faster than allocating a fresh array per block."""

    def __init__(self) -> None:
        self._f: dict[tuple[str, type], np.ndarray] = {}

    def floats(self, shape: tuple[int, int], key: str = "G", dtype=np.float32) -> np.ndarray:
        buf = self._f.get((key, dtype))
        if buf is None or buf.size < shape[0] * shape[1]:
            buf = self._f[(key, dtype)] = np.empty(shape[0] * shape[1], dtype=dtype)
        return buf[: shape[0] * shape[1]].reshape(shape)

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        return self.floats(shape, key="mask", dtype=np.bool_)


#: Above this share of missing calls in a block, they are kept as a dense 0/1 matrix and their
#: correction is one more exact product; below it, as positions and a sparse correction (which
#: costs in proportion to the missing calls: cheaper up to about 1.5 %, measured per block).
DENSE_MISSING = 0.015


@dataclass
class Block:
    """One block of dosages ready for the products: missing calls set to 0 in ``G``, and where
    they were: row-major flat positions (sorted), or a dense 0/1 float32 matrix ``M`` when they
    are many. A complete block has neither."""

    G: np.ndarray  # (rows × samples) float32 hardcalls, or float64 dosages
    missing: np.ndarray  # flat positions of the missing calls (empty when dense or complete)
    M: np.ndarray | None = None  # (rows × samples) 1.0 where the call is missing, when dense

    @property
    def has_missing(self) -> bool:
        return self.M is not None or len(self.missing) > 0

    @cached_property
    def indptr(self) -> np.ndarray:
        """Where each row's missing calls start in :attr:`missing` (CSR row pointers)."""
        n_rows, n = self.G.shape
        return np.searchsorted(self.missing, np.arange(n_rows + 1, dtype=np.int64) * n)

    @cached_property
    def missing_rows(self) -> np.ndarray:
        """The variant (row) of each missing call."""
        return np.repeat(np.arange(self.G.shape[0], dtype=np.int64), np.diff(self.indptr))

    @cached_property
    def missing_cols(self) -> np.ndarray:
        """The sample (column) of each missing call."""
        return self.missing - self.missing_rows * self.G.shape[1]

    def missing_per_row(self) -> np.ndarray:
        if self.M is not None:  # integer sums below 2**24: exact in float32
            n = self.M.shape[1]
            ones = np.ones(n, np.float32)
            return (self.M @ ones).astype(np.int64) if n < 2**24 else self.M.sum(axis=1, dtype=np.int64)
        return np.diff(self.indptr)

    def missing_in_row(self, r: int) -> np.ndarray:
        if self.M is not None:
            return self.M[r] > 0
        flag = np.zeros(self.G.shape[1], dtype=bool)
        flag[self.missing_cols[self.indptr[r]: self.indptr[r + 1]]] = True
        return flag


def _prepare(B: np.ndarray, ws: Workspace | None = None) -> Block:
    """Dosages with missing calls set to 0, and where they were, in a few passes over the block.

    Hardcalls (int8, missing negative) become float32, whose products stay exact (see
    :func:`_exact_split`); dosages (missing NaN or negative) become float64, which BLAS
    multiplies in double precision. A float64 block (a reader's own buffer) is used in place.
    Missing calls are found once; up to :data:`DENSE_MISSING` of the block they are kept as
    positions (everything that depends on them is then computed from the positions alone),
    above it as a dense 0/1 matrix.
    """
    ws = ws or Workspace()
    flag = ws.mask(B.shape)
    if B.dtype == np.int8:
        np.less(B, 0, out=flag)
        G = ws.floats(B.shape)
        G[...] = B
    else:
        np.greater_equal(B, 0, out=flag)  # False for NaN and for pgenlib's -9
        np.logical_not(flag, out=flag)
        if B.dtype == np.float64 and B.flags.c_contiguous:
            G = B
        else:
            G = ws.floats(B.shape, dtype=np.float64)
            G[...] = B
    n_missing = np.count_nonzero(flag)
    if n_missing == 0:
        return Block(G, np.empty(0, np.int64))
    if n_missing > DENSE_MISSING * flag.size:
        np.fmax(G, 0, out=G)  # missing (negative or NaN) → 0; dosages are never negative
        M = ws.floats(B.shape, key="M")
        M[...] = flag
        return Block(G, np.empty(0, np.int64), M)
    missing = np.flatnonzero(flag)
    G.reshape(-1)[missing] = 0
    return Block(G, missing)


def _product(A: np.ndarray, block: Block) -> np.ndarray:
    """``Aᵀ G`` (scores × samples) in double precision."""
    if block.G.dtype == np.float64:
        return A.T @ block.G
    return _exact_product(A, block.G)


def _nonlinear(plan: ScorePlan, rows: slice):
    """Dominant/recessive (row, score) pairs inside ``rows``."""
    r, c = np.nonzero(plan.present[rows] & (plan.kind[rows] > 0))
    return r, c


def _transform(plan: ScorePlan, rows: slice, r: int, c: int, block: Block) -> np.ndarray:
    """The dominant/recessive coding of row ``r`` for score ``c`` (0 where the call is missing)."""
    g = block.G[r]
    e = g if plan.effect_is_alt[rows][r, c] else 2 - g
    f = np.minimum(e, 1) if plan.kind[rows][r, c] == 1 else np.maximum(e - 1, 0)
    return np.where(block.missing_in_row(r), 0, f) if block.has_missing else f


def block_stats(plan: ScorePlan, B: np.ndarray, rows: slice, *, _prepared: Block | None = None,
                ws: Workspace | None = None):
    """Per allele of the block: Σ ALT dosage and the number of called samples. Summed over
    sample chunks they give the cohort frequencies used for mean imputation."""
    block = _prepared if _prepared is not None else _prepare(B, ws)
    G = block.G
    n = G.shape[1]
    if G.dtype == np.float32 and 2 * n < 2**24:  # integer sums below 2**24: exact in float32
        alt_sum = (G @ np.ones(n, np.float32)).astype(np.float64)
    elif G.dtype == np.float64:
        alt_sum = G @ np.ones(n)
    else:
        alt_sum = G.sum(axis=1, dtype=np.float64)
    return alt_sum, n - block.missing_per_row()


def imputed_contribution(plan: ScorePlan, rows: slice, mean_alt, impute: str) -> np.ndarray:
    """Contribution of one missing call to each score, per allele of the block (n_rows × n_s).

    As plink2 does: an additive effect gets the effect allele's expected dosage 2p, a dominant
    or recessive one the frequency p itself (plink2 treats those codings as one copy, checked
    against plink2 in ``tests/genomics/prs/test_prs_missing.py``); p is the cohort's frequency
    among called samples (``"mean"``) or the file's ``allelefrequency_effect`` (``"file"``).
    """
    eia, kind = plan.effect_is_alt[rows], plan.kind[rows]
    w, present = plan.weight[rows], plan.present[rows]
    if impute == "mean":
        two_p = np.where(eia, mean_alt[:, None], 2 - mean_alt[:, None])
    elif impute == "file":
        af = plan.file_af[rows]
        if np.isnan(af[present]).any():
            raise InputError(
                "imputing from the file (--impute file) needs allelefrequency_effect for every "
                "scored variant",
                fix="use the cohort's allele frequencies (--impute mean, the default) or add the "
                    "column")
        if ((af[present] < 0) | (af[present] > 1)).any():  # NaN-free here; inf falls out too
            raise InputError(
                f"{int(((af[present] < 0) | (af[present] > 1)).sum())} allelefrequency_effect "
                "value(s) lie outside [0, 1]: they cannot impute a missing call",
                fix="give frequencies between 0 and 1, or impute from the cohort "
                    "(--impute mean, the default)")
        two_p = 2 * af
    elif impute == "none":
        two_p = np.zeros_like(w)
    else:
        check_impute(impute)
    contrib = np.where(kind == 0, w * two_p, w * two_p / 2)
    return np.where(present, np.nan_to_num(contrib), 0.0)


def score_block(plan: ScorePlan, B: np.ndarray, rows: slice, *, impute: str = "mean",
                stats=None, ws: Workspace | None = None) -> np.ndarray:
    """Scores (n_samples × n_s) contributed by one block of ALT dosages ``B`` (plan rows × samples).

    ``B`` is int8 hardcalls (missing negative) or float dosages (NaN or negative missing); it is
    a reader's buffer, and a C-contiguous float64 block is used in place (its missing calls
    become 0). ``stats`` are the cohort's :func:`block_stats` for these rows, computed from
    ``B`` itself when it holds every sample. The constant of REF-allele effects is not included (see :func:`score_targets`).
    """
    block = _prepare(B, ws)
    partial = _product(plan.A[rows], block)  # (n_s, n); missing calls count as ALT dosage 0
    for r, c in zip(*_nonlinear(plan, rows), strict=True):
        partial[c] += plan.weight[rows][r, c] * _transform(plan, rows, r, c, block)
    if block.has_missing:
        alt_sum, n_called = stats if stats is not None else block_stats(plan, B, rows, _prepared=block)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_alt = alt_sum / n_called
        contrib = imputed_contribution(plan, rows, mean_alt, impute)
        # a missing call entered as ALT dosage 0 (nothing for dominant/recessive pairs) while the
        # constant 2w of a REF effect is added for every sample: take it back, add the imputed
        # value, from where the missing calls are (see _at_missing)
        kind, eia, present = plan.kind[rows], plan.effect_is_alt[rows], plan.present[rows]
        held = np.where(present & (kind == 0) & ~eia, 2 * plan.weight[rows], 0.0)
        partial += _at_missing(block, contrib - held)
    return partial.T


def _at_missing(block: Block, C: np.ndarray) -> np.ndarray:
    """Σ over each sample's missing calls of ``C[row]`` (scores × samples): ``Cᵀ M`` for the
    0/1 matrix ``M`` of missing calls, dense (an exact product), or sparse (touching only the
    missing calls)."""
    if block.M is not None:
        return _exact_product(C, block.M)
    n = block.G.shape[1]
    if C.shape[1] <= 4:  # a few scores: one bincount each beats building a sparse matrix
        rows, cols = block.missing_rows, block.missing_cols
        return np.stack([np.bincount(cols, weights=C[rows, s], minlength=n) for s in range(C.shape[1])])
    from scipy import sparse  # here: importing scipy.sparse costs every run ~10 MB

    M = sparse.csr_matrix((np.ones(len(block.missing)), block.missing_cols, block.indptr),
                          shape=block.G.shape)
    return np.asarray(M.T @ C).T


def score_targets(
    targets: Sequence[Target],
    matched: pd.DataFrame,
    scores: Sequence[str],
    *,
    impute: str = "mean",
    block_size: int | None = None,
    n_jobs: int = 1,
    progress: Reporter | bool | Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Score every sample on every score; long table ``[FID,] IID, PGS, SUM, DENOM, AVG``.

    Parameters
    ----------
    targets
        Opened genotype files (same samples), indexed by the ``file`` column of ``matched``.
    matched
        Matched rows (``MatchResult.matched``).
    scores
        Score names, in output order (scores without any matched variant get SUM 0, DENOM 0).
    impute
        ``"mean"`` (cohort allele frequency, plink2's default), ``"file"`` (the scoring file's
        ``allelefrequency_effect``) or ``"none"``.
    block_size
        Variants per block (default: :func:`auto_block_size`, about 2.5 million genotypes);
        memory is about ``6 × block_size × n_samples`` bytes.
    n_jobs
        Worker threads, each streaming its share of the variants with its own reader (PLINK
        inputs; a VCF is read in one sequential pass).
    progress
        A :class:`pmed.progress.Reporter` (or ``True`` for a bar) advanced by the variants of
        each block; a function called with (variants done, variants total) is still accepted.
    threads
        Deprecated name of ``n_jobs``.
    """
    n_jobs = resolve_n_jobs(n_jobs, threads)
    check_impute(impute)
    n = targets[0].n_samples
    plans = make_plans(matched, scores)
    total_sum = np.zeros((n, len(scores)))
    denom = np.zeros(len(scores))
    n_total = sum(p.n_alleles for p in plans)
    done = [0]
    lock = threading.Lock()
    callback = progress if callable(progress) and not isinstance(progress, Reporter) else None
    reporter = as_reporter(None if callback is not None else progress)
    reporter.start(n_total, "scoring variants")

    def advance(k: int) -> None:
        with lock:
            done[0] += k
            reporter.advance(n=k)
            if callback is not None:
                callback(done[0], n_total)

    from threadpoolctl import threadpool_limits

    # BLAS threads fight over these thin products (M = 3 × scores): parallelise over blocks instead
    with threadpool_limits(1):
        for plan in plans:
            target = targets[plan.file]
            total_sum += plan.const[None, :]
            denom += 2.0 * plan.n_variants
            rows_per_block = block_size or auto_block_size(n)
            if n_jobs > 1 and target.kind in ("pgen", "bed", "array") and plan.n_alleles > rows_per_block:
                bounds = np.linspace(0, plan.n_alleles, n_jobs + 1).astype(int)
                parts = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
                with ThreadPoolExecutor(n_jobs) as ex:
                    futs = [ex.submit(_score_rows, target.fork(), plan, part, rows_per_block,
                                      impute, advance) for part in parts]
                    for f in futs:
                        total_sum += f.result()
            else:
                total_sum += _score_rows(target, plan, slice(0, plan.n_alleles), rows_per_block,
                                         impute, advance)
    return _long_table(targets[0].samples, list(scores), total_sum, denom)


def _score_rows(target: Target, plan: ScorePlan, part: slice, rows_per_block: int, impute: str,
                advance: Callable[[int], None]) -> np.ndarray:
    """Scores from the plan rows in ``part``, streamed in blocks (one thread's share)."""
    acc = np.zeros((target.n_samples, len(plan.scores)))
    ws = Workspace()
    blocks = target.iter_blocks(plan.var_idx[part], plan.allele_idx[part], rows_per_block)
    for start, B in blocks:
        rows = slice(part.start + start, part.start + start + len(B))
        acc += score_block(plan, B, rows, impute=impute, ws=ws)
        advance(len(B))
    return acc


def auto_block_size(n_samples: int) -> int:
    """Variants per block: about 2.5 million genotypes, so that a block stays in cache (and,
    for few samples, blocks long enough that the per-block work in Python stays small)."""
    return int(np.clip(2_500_000 // max(n_samples, 1), 64, 4 * EXACT_ROWS))


def _long_table(samples: pd.DataFrame, scores: list[str], sums: np.ndarray, denom: np.ndarray) -> pd.DataFrame:
    n, k = sums.shape
    out = pd.DataFrame({
        "IID": np.tile(samples["IID"].to_numpy(), k),
        "PGS": np.repeat(scores, n),
        "SUM": sums.T.reshape(-1),
        "DENOM": np.repeat(denom, n),
    })
    with np.errstate(invalid="ignore", divide="ignore"):
        out["AVG"] = out["SUM"] / out["DENOM"]
    if "FID" in samples.columns:
        out.insert(0, "FID", np.tile(samples["FID"].to_numpy(), k))
    return out
