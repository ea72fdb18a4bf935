"""Named-allele matching with PharmCAT's semantics (re-implemented, vectorised).

For one gene and one sample:

1. Positions without a call are *missing*: they are dropped from the sample and from every
   definition; a named allele whose defining positions are all missing is dropped, and every
   allele's score is recomputed over the positions left (PharmCAT ``MatchData``).
2. Blank cells of a non-reference allele default to the reference allele's base (PharmCAT's
   "assume reference"); IUPAC codes (wobbles) match any base they stand for.
3. A pair of alleles is a diplotype when some assignment of the sample's alleles to the two
   chromosomes, consistent with the phasing (``|`` genotypes, ``PS`` phase sets), makes one
   chromosome match the first allele and the other chromosome the second — the same set that
   PharmCAT's permutation matching returns, found here without enumerating permutations.
4. A diplotype's score is the sum of its alleles' scores (number of defined positions); by
   default only the top-scoring diplotypes are kept, so unphased data give every equally good
   alternative.
5. Genes whose undocumented variants PharmCAT treats as reference (CACNA1S, DPYD, G6PD,
   NUDT15, RYR1, TPMT) do so here too, with a warning; elsewhere an undocumented allele makes
   the gene uncallable.
6. DPYD and RYR1 follow PharmCAT's lowest-function logic: when the data are not effectively
   phased (or no exact diplotype exists) each variant haplotype found is reported and the
   phenotype uses the two lowest-function ones.
7. Haploid calls (chrX of a male sample: G6PD) give a single haplotype.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np

from pmed.genomics.pgx._data import definitions

__all__ = ["GeneModel", "GeneCall", "gene_model", "match_gene", "IUPAC"]

#: IUPAC nucleotide codes → the bases they stand for.
IUPAC: dict[str, str] = {
    "A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT",
    "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}

#: Allele of the unknown strand of a half-missing genotype (``C|.``), lowest-function genes only.
UNKNOWN = "."

#: Genes whose undocumented variation PharmCAT treats as the reference allele.
UNDOCUMENTED_AS_REFERENCE = frozenset({"CACNA1S", "DPYD", "G6PD", "NUDT15", "RYR1", "TPMT"})
#: Genes called by the lowest-function (haplotype-list) logic when not effectively phased.
LOWEST_FUNCTION_GENES = frozenset({"DPYD", "RYR1"})


@dataclass
class GeneModel:
    """A gene's definitions compiled for matching.

    Attributes
    ----------
    gene, chromosome
        Symbol and GRCh38 chromosome.
    names
        Named alleles as reported (sub-alleles such as SLCO1B1 ``*45.001`` under their core
        name ``*45``, as PharmCAT reports them).
    positions
        Definition positions (int64 array, definition order).
    defined
        ``(n_alleles, n_positions)`` bool: the allele's definition gives a base there.
    raw
        ``(n_alleles, n_positions)`` object array of definition strings (``None`` blank).
    ref_index
        Row of the reference allele.
    """

    gene: str
    chromosome: str
    positions: np.ndarray
    names: list[str]
    defined: np.ndarray
    raw: np.ndarray
    ref_index: int
    ignored_positions: frozenset[tuple[int, str]]
    ignored_alleles: frozenset[str]
    priorities: dict[str, str]
    variants: list[dict]


@cache
def gene_model(gene: str) -> GeneModel:
    """Compile (once) the allele definitions of ``gene``."""
    gd = definitions()["genes"][gene]
    positions = np.array([v["position"] for v in gd["variants"]], dtype=np.int64)
    sub = gd.get("suballeles", {})
    names = [sub.get(a["name"], a["name"]) for a in gd["alleles"]]
    raw = np.array([a["alleles"] for a in gd["alleles"]], dtype=object)
    defined = np.vectorize(lambda x: x is not None, otypes=[bool])(raw)
    ref_index = next(i for i, a in enumerate(gd["alleles"]) if a["reference"])
    ex = gd["exemptions"]
    return GeneModel(
        gene=gene,
        chromosome=gd["chromosome"],
        positions=positions,
        names=names,
        defined=defined,
        raw=raw,
        ref_index=ref_index,
        ignored_positions=frozenset((int(p), r) for p, r in ex["ignored_positions"]),
        ignored_alleles=frozenset(ex["ignored_alleles"]),
        priorities=dict(ex["unphased_priorities"]),
        variants=gd["variants"],
    )


@dataclass
class GeneCall:
    """The matcher's result for one gene of one sample.

    Attributes
    ----------
    diplotypes
        Equally good (top-scoring) diplotypes as ``(allele1, allele2)``; ``allele2`` is
        ``None`` for a haploid call. Empty when nothing matched.
    scores
        Score of each diplotype.
    haplotypes
        Lowest-function genes not effectively phased: every variant haplotype found (a
        homozygous one twice).
    missing_positions
        Definition positions without a call.
    phased, effectively_phased
        Phasing of the data (effectively phased: at most one heterozygous phase block).
    no_data
        True when the sample has no call at any of the gene's positions.
    warnings
        Human-readable notes (undocumented alleles, missing positions, ...).
    """

    gene: str
    diplotypes: list[tuple[str, str | None]] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    haplotypes: list[str] = field(default_factory=list)
    missing_positions: list[int] = field(default_factory=list)
    phased: bool = False
    effectively_phased: bool = False
    no_data: bool = False
    uncallable: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def called(self) -> bool:
        """Whether a diplotype (or haplotype list) was found."""
        return bool(self.diplotypes or self.haplotypes)


def _allowed(allele: str | None, sample_allele: str) -> bool:
    if allele is None:
        return True
    if allele == sample_allele:
        return True
    if len(allele) == 1 and len(sample_allele) == 1 and allele in IUPAC:
        return sample_allele in IUPAC[allele]
    return False


_ACCEPT: dict[tuple, np.ndarray] = {}
_KNOWN: dict[tuple[str, int], frozenset] = {}


def _known(m: GeneModel, j: int) -> frozenset:
    key = (m.gene, j)
    out = _KNOWN.get(key)
    if out is None:
        out = _KNOWN[key] = frozenset({m.raw[m.ref_index, j], *m.variants[j]["alts"]})
    return out


def _filled_column(m: GeneModel, j: int) -> list:
    ref = m.raw[m.ref_index, j]
    if ref is not None and len(ref) == 1 and ref not in "ACGT":
        ref = m.variants[j]["ref"]
    return [m.raw[i, j] if (m.raw[i, j] is not None or i == m.ref_index) else ref
            for i in range(len(m.names))]


def _accept(m: GeneModel, j: int, allele: str, assume_reference: bool) -> np.ndarray:
    """Which named alleles accept ``allele`` at definition position ``j`` (cached)."""
    key = (m.gene, j, allele, assume_reference)
    out = _ACCEPT.get(key)
    if out is None:
        col = _filled_column(m, j) if assume_reference else list(m.raw[:, j])
        out = np.array([_allowed(x, allele) for x in col], dtype=bool)
        if len(_ACCEPT) < 200_000:
            _ACCEPT[key] = out
    return out


def match_gene(
    gene: str,
    sample: dict[int, tuple[str | None, str | None, bool, object]],
    *,
    top_candidate_only: bool = True,
    assume_reference: bool = True,
) -> GeneCall:
    """Call one gene for one sample.

    Parameters
    ----------
    gene
        Gene symbol.
    sample
        ``{definition_index: (allele1, allele2, phased, phase_set)}`` (index into the gene's
        definition positions) in the definition's allele strings; ``allele2`` is ``None`` for a
        haploid call; a position absent from the mapping (or with ``allele1`` ``None``) is
        missing.
    top_candidate_only
        Keep only the top-scoring diplotypes (PharmCAT's default) or return every match.
    assume_reference
        Blank definition cells mean the reference base (PharmCAT's default).

    Returns
    -------
    GeneCall
    """
    m = gene_model(gene)
    call = GeneCall(gene=gene)
    avail: list[int] = []
    s_alleles: list[tuple[str, str | None]] = []
    phased_flags: list[bool] = []
    ps_labels: list[object] = []
    for j, p in enumerate(m.positions.tolist()):
        if (p, m.variants[j]["ref"]) in m.ignored_positions:
            continue
        obs = sample.get(j)
        if obs is None or obs[0] is None:
            call.missing_positions.append(p)
            continue
        a1, a2, ph, ps = obs
        known = _known(m, j)
        novel = [a for a in (a1, a2) if a is not None and a != UNKNOWN and a not in known]
        if novel:
            if gene in UNDOCUMENTED_AS_REFERENCE:
                call.warnings.append(
                    f"undocumented allele {'/'.join(novel)} at {m.chromosome}:{p} treated as "
                    "reference"
                )
                ref = m.variants[j]["ref"]
                a1 = ref if a1 in novel else a1
                a2 = ref if a2 in novel else a2
            else:
                call.warnings.append(
                    f"undocumented allele {'/'.join(novel)} at {m.chromosome}:{p}: gene not callable"
                )
                call.uncallable = True
        avail.append(j)
        s_alleles.append((a1, a2))
        phased_flags.append(bool(ph))
        ps_labels.append(ps)
    if not avail:
        call.no_data = True
        return call
    if call.uncallable:
        return call
    haploid = all(a2 is None for _, a2 in s_alleles)
    # phased: every heterozygous position is phased (homozygous ones carry no phase)
    call.phased = all(
        ph for ph, (a1, a2) in zip(phased_flags, s_alleles, strict=True) if a2 is not None and a1 != a2
    )

    # --- allele table restricted to the available positions
    keep_rows = [
        i for i, n in enumerate(m.names) if n not in m.ignored_alleles
    ]
    raw = m.raw[np.ix_(keep_rows, avail)]
    defined = m.defined[np.ix_(keep_rows, avail)]
    names = [m.names[i] for i in keep_rows]
    ref_row = keep_rows.index(m.ref_index)
    scores = defined.sum(axis=1)
    rows = [i for i in range(len(names)) if scores[i] > 0 or i == ref_row]
    n_pos = len(avail)
    # match matrices: does allele i accept sample allele 1 / 2 at position k?
    rows_arr = np.asarray(keep_rows)
    m1 = np.empty((len(names), n_pos), dtype=bool)
    m2 = np.empty((len(names), n_pos), dtype=bool)
    for k, (a1, a2) in enumerate(s_alleles):
        j = avail[k]
        m1[:, k] = _accept(m, j, a1, assume_reference)[rows_arr]
        m2[:, k] = m1[:, k] if a2 is None or a2 == a1 else _accept(
            m, j, a2, assume_reference)[rows_arr]

    # phase blocks over heterozygous positions
    het = [k for k, (a1, a2) in enumerate(s_alleles) if a2 is not None and a1 != a2]
    het_set = set(het)
    hom = [k for k in range(n_pos) if k not in het_set]
    blocks: dict[object, list[int]] = {}
    for k in het:
        if phased_flags[k]:
            key = ("ps", ps_labels[k]) if ps_labels[k] is not None else ("phased",)
        else:
            key = ("unphased", k)
        blocks.setdefault(key, []).append(k)
    block_list = list(blocks.values())
    call.effectively_phased = len(block_list) <= 1

    hom_ok = m1[:, hom].all(axis=1) if hom else np.ones(len(names), dtype=bool)
    if haploid:
        cand = [i for i in rows if hom_ok[i]]
        best = max((int(scores[i]) for i in cand), default=None)
        for i in sorted(cand, key=lambda i: (-scores[i], names[i])):
            if top_candidate_only and scores[i] != best:
                continue
            call.diplotypes.append((names[i], None))
            call.scores.append(int(scores[i]))
        return call

    # orientation-wise block matches: ok[b][o][i] -> allele i matches strand o of block b
    ok = []
    for b in block_list:
        o0 = m1[:, b].all(axis=1)
        o1 = m2[:, b].all(axis=1)
        ok.append((o0, o1))
    cand_mask = hom_ok.copy()
    for o0, o1 in ok:
        cand_mask &= o0 | o1
    cand = [i for i in rows if cand_mask[i]]

    pairs: list[tuple[int, int]] = []
    if cand and ok:
        c = np.asarray(cand)
        a0 = np.stack([o0[c] for o0, _ in ok])  # blocks x candidates
        a1 = np.stack([o1[c] for _, o1 in ok])
        good = ((a0[:, :, None] & a1[:, None, :]) | (a1[:, :, None] & a0[:, None, :])).all(axis=0)
        for x, y in zip(*np.nonzero(np.triu(good)), strict=True):
            pairs.append((cand[x], cand[y]))
    elif cand:
        pairs = [(i, j) for x, i in enumerate(cand) for j in cand[x:]]

    if gene in LOWEST_FUNCTION_GENES:
        if call.effectively_phased and len(pairs) == 1:
            pass  # an exact diplotype: report it like any gene
        elif call.effectively_phased or call.phased:
            return _strand_combinations(call, names, ref_row, s_alleles, raw, defined, rows,
                                        block_list)
        else:
            return _haplotype_list(call, names, ref_row, s_alleles, raw, defined, rows, het,
                                   block_list, phased_flags, (m, avail, rows_arr))

    pair_scores = [int(scores[i] + scores[j]) for i, j in pairs]
    order = sorted(range(len(pairs)), key=lambda q: (-pair_scores[q], names[pairs[q][0]]))
    best = pair_scores[order[0]] if order else None
    for q in order:
        if top_candidate_only and pair_scores[q] != best:
            continue
        i, j = pairs[q]
        a, b = sorted((names[i], names[j]), key=_allele_sort_key)
        if (a, b) in call.diplotypes:  # two sub-alleles of one core allele
            continue
        call.diplotypes.append((a, b))
        call.scores.append(pair_scores[q])
    if len(call.diplotypes) > 1 and not call.phased and m.priorities:
        key = "|".join(sorted(f"{a}/{b}" for a, b in call.diplotypes))
        pick = m.priorities.get(key)
        if pick is not None:
            a, b = pick.split("/")
            idx = [f"{x}/{y}" for x, y in call.diplotypes].index(pick)
            call.diplotypes = [(a, b)]
            call.scores = [call.scores[idx]]
            call.warnings.append(f"unphased ambiguity {key} resolved to {pick} (PharmCAT rule)")
    return call


def _variant_cols(raw, defined, ref_row, i) -> list[int]:
    return [k for k in np.flatnonzero(defined[i]) if raw[i, k] != raw[ref_row, k]]


def _remove_sub_haplotypes(found: list[int], raw, defined, ref_row) -> list[int]:
    """Keep the most specific haplotypes: drop one whose (observed) variants are a strict
    subset of another's; of two with the same observed variants keep the simpler definition."""
    keep = []
    for i in found:
        di = set(_variant_cols(raw, defined, ref_row, i))
        sub = False
        for j in found:
            if j == i:
                continue
            dj = set(_variant_cols(raw, defined, ref_row, j))
            if not all(raw[i, k] == raw[j, k] for k in di & dj):
                continue
            if di < dj:
                sub = True
                break
            n_i, n_j = int((raw[i] != None).sum()), int((raw[j] != None).sum())  # noqa: E711
            if di == dj and (n_i, i) > (n_j, j):
                sub = True
                break
        if not sub:
            keep.append(i)
    return keep


def _hgvs_order(name: str) -> tuple:
    import re

    m = re.search(r"c\.(-?\d+)", name)
    return (int(m.group(1)) if m else 10**9, name)


def combination_name(parts: list[str]) -> str:
    """PharmCAT's name of a combination of haplotypes on one chromosome (``[a + b]``)."""
    parts = sorted(parts, key=_hgvs_order)
    return parts[0] if len(parts) == 1 else "[" + " + ".join(parts) + "]"


def _strand_combinations(call, names, ref_row, s_alleles, raw, defined, rows, blocks,
                         max_blocks: int = 12) -> GeneCall:
    """Phased (or effectively phased) lowest-function genes: name what each strand carries."""
    from itertools import product

    n_pos = len(s_alleles)
    variant_rows = [i for i in rows if i != ref_row and _variant_cols(raw, defined, ref_row, i)]
    free = blocks[1:] if blocks else []
    if len(free) > max_blocks:
        call.warnings.append(f"{len(blocks)} phase blocks: too many to enumerate")
        call.uncallable = True
        return call
    seen: dict[tuple[str, str], None] = {}
    for flips in product((0, 1), repeat=len(free)):
        orient = {}
        for b in blocks[:1]:
            for k in b:
                orient[k] = 0
        for f, b in zip(flips, free, strict=True):
            for k in b:
                orient[k] = f
        strands = []
        for side in (0, 1):
            seq = []
            for k in range(n_pos):
                a1, a2 = s_alleles[k]
                o = orient.get(k, 0)
                seq.append(a1 if (o == 0) == (side == 0) else a2)
            # a strand allele "." (half-missing genotype such as C|.) is unknown on this
            # strand only: definitions are judged on the positions the strand shows
            known = np.array([a != UNKNOWN for a in seq], dtype=bool)
            hits = []
            for i in variant_rows:
                cols = [k for k in np.flatnonzero(defined[i]) if known[k]]
                if not any(raw[i, k] != raw[ref_row, k] for k in cols):
                    continue
                if all(_allowed(raw[i, k], seq[k]) for k in cols):
                    hits.append(i)
            hits = _remove_sub_haplotypes(hits, raw, defined & known[None, :], ref_row)
            strands.append(combination_name([names[i] for i in hits]) if hits else names[ref_row])
        pair = tuple(sorted(strands, key=_allele_sort_key))
        seen[pair] = None
    call.diplotypes = list(seen)
    call.scores = [0] * len(call.diplotypes)
    return call


def _haplotype_list(call, names, ref_row, s_alleles, raw, defined, rows, het, blocks,
                    phased_flags, ctx) -> GeneCall:
    """Lowest-function genes: list every variant haplotype whose defining alleles are present."""
    n = len(names)
    variant = defined & (raw != raw[ref_row][None, :])  # cells that differ from the reference
    m, avail, rows_arr = ctx
    h1 = np.empty((n, len(s_alleles)), dtype=bool)
    h2 = np.zeros((n, len(s_alleles)), dtype=bool)
    for k, (a1, a2) in enumerate(s_alleles):
        h1[:, k] = _accept(m, avail[k], a1, False)[rows_arr]
        if a2 is not None:
            h2[:, k] = _accept(m, avail[k], a2, False)[rows_arr]
    present = ((h1 | h2) | ~defined).all(axis=1) & variant.any(axis=1)
    homozygous = ((h1 & h2) | ~defined).all(axis=1)
    ph_het = np.zeros(len(s_alleles), dtype=bool)
    for k in het:
        ph_het[k] = phased_flags[k]
    if ph_het.any():  # phased heterozygous positions must agree on one strand
        on1 = (h1 | ~defined | ~ph_het[None, :]).all(axis=1)
        on2 = (h2 | ~defined | ~ph_het[None, :]).all(axis=1)
        present &= on1 | on2
    row_ok = np.zeros(n, dtype=bool)
    row_ok[[i for i in rows if i != ref_row]] = True
    idx = np.flatnonzero(present & row_ok)
    # drop haplotypes whose variants are a strict subset of another found one's
    if len(idx) > 1:
        v = variant[idx].astype(np.int32)
        sizes = v.sum(axis=1)
        inter = v @ v.T
        sub = (inter == sizes[:, None]) & (sizes[None, :] > sizes[:, None])
        keep = []
        for a, i in enumerate(idx):
            js = np.flatnonzero(sub[a])
            cols = np.flatnonzero(variant[i])
            if any((raw[idx[b], cols] == raw[i, cols]).all() for b in js):
                continue
            keep.append(i)
        idx = np.array(keep, dtype=int)
    found: list[str] = []
    for i in idx:
        found.append(names[i])
        if homozygous[i]:
            found.append(names[i])
    if not found:
        call.diplotypes = [(names[ref_row], names[ref_row])]
        call.scores = [int(defined[ref_row].sum() * 2)]
        return call
    if len(found) == 1:
        found = [names[ref_row], found[0]]
    call.haplotypes = sorted(found, key=_allele_sort_key)
    return call


def _allele_sort_key(name: str) -> tuple:
    """Order alleles like PharmCAT: reference-like names first, then star numbers."""
    import re

    low = name.lower()
    if low.startswith("reference") or "reference" in low:
        return (0, 0, name)
    m = re.match(r"\*(\d+)(.*)", name)
    if m:
        return (1, int(m.group(1)), m.group(2))
    m = re.match(r"\[?c\.(-?\d+)", name)
    if m:
        return (1, int(m.group(1)), name)
    return (2, 0, name)
