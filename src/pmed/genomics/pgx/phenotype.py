"""Diplotype → allele functions, phenotype, activity score and guideline lookup keys.

The tables are PharmCAT 3.1.1's CPIC phenotype files (CYP2D6 from PharmCAT 2.12.0) and
PharmCAT 2.12.0's DPWG files. Rules that are not in a table:

- DPYD uses the two lowest-function haplotypes found (PharmCAT's DPYD rule);
- RYR1 has no table in the data: any non-reference allele gives "Malignant Hyperthermia
  Susceptibility", two reference alleles "Uncertain Susceptibility" (CPIC's rule, as for CACNA1S);
- G6PD has no phenotype table in the data: only an all-reference call (``B (reference)``, one
  copy in a male, two in a female) is given a phenotype, "Normal"; any other G6PD call is
  reported as ``n/a`` (the allele classes needed are not in the data).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pmed.genomics.pgx._data import phenotypes

__all__ = ["Phenotype", "phenotype_for", "diplotype_key", "allele_function"]


@dataclass
class Phenotype:
    """Phenotype of one diplotype.

    Attributes
    ----------
    gene, diplotype
        Gene and the diplotype used (``"a/b"``; for DPYD the two lowest-function alleles).
    phenotype
        CPIC phenotype (``"n/a"`` when the data have no table entry).
    activity_score
        Activity score when the gene has one (CYP2C9, DPYD, CYP2D6), else ``None``.
    lookup
        ``{"CPIC": key, "DPWG": key}`` used to match guideline recommendations.
    functions
        Function of each allele.
    """

    gene: str
    diplotype: str
    phenotype: str
    activity_score: str | None = None
    lookup: dict[str, str | None] = field(default_factory=dict)
    functions: list[str | None] = field(default_factory=list)
    alleles: tuple[str, ...] = ()


def diplotype_key(alleles: tuple[str, ...] | list[str]) -> str:
    """Order-free key of a diplotype (``"*1/*2"`` and ``"*2/*1"`` give the same key)."""
    return "/".join(sorted(a for a in alleles if a is not None))


def allele_function(gene: str, allele: str, source: str = "CPIC") -> str | None:
    """Function of one named allele (``None`` when unknown)."""
    table = phenotypes()[source].get(gene)
    if table is None:
        return None
    entry = table["alleles"].get(allele)
    return None if entry is None else entry["function"]


def _activity(gene: str, allele: str) -> float:
    table = phenotypes()["CPIC"].get(gene, {"alleles": {}})
    entry = table["alleles"].get(allele)
    try:
        return float(entry["activity"]) if entry and entry["activity"] is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


def lowest_function_pair(gene: str, haplotypes: list[str]) -> tuple[str, str]:
    """The two lowest-activity haplotypes of a list (PharmCAT's DPYD rule)."""
    ranked = sorted(haplotypes, key=lambda a: (_activity(gene, a), a))
    if len(ranked) == 1:
        return ranked[0], ranked[0]
    return ranked[0], ranked[1]


def phenotype_for(gene: str, alleles: tuple[str, ...] | list[str]) -> Phenotype:
    """Look up the phenotype of a diplotype (or a haploid call).

    Parameters
    ----------
    gene
        Gene symbol.
    alleles
        One allele (haploid) or two.

    Returns
    -------
    Phenotype
    """
    alleles = tuple(a for a in alleles if a is not None)
    key = diplotype_key(alleles)
    cpic = phenotypes()["CPIC"].get(gene)
    dpwg = phenotypes()["DPWG"].get(gene)
    functions = [allele_function(gene, a) for a in alleles]
    pheno, score, lookup_cpic, lookup_dpwg = "n/a", None, None, None
    if cpic is not None:
        row = cpic["diplotypes"].get(key)
        if row is None and len(alleles) == 1:
            row = cpic["diplotypes"].get(diplotype_key(alleles * 2))
        if row is not None:
            pheno, score, lookup_cpic = row["phenotype"], row["activity_score"], row["lookup"]
    elif gene == "G6PD":
        if alleles and all(a == "B (reference)" for a in alleles):
            pheno = lookup_cpic = "Normal"
    elif gene in ("RYR1",):
        susceptible = any(not a.lower().startswith("reference") for a in alleles)
        pheno = (
            "Malignant Hyperthermia Susceptibility" if susceptible else "Uncertain Susceptibility"
        )
        lookup_cpic = pheno
    if dpwg is not None:
        row = dpwg["diplotypes"].get(key)
        lookup_dpwg = row["lookup"] if row is not None else None
    # the DPWG tables (PharmCAT 2.12.0) predate some alleles (e.g. CYP2C19 *38): fall back to
    # the CPIC key, which uses the same phenotype vocabulary
    if lookup_dpwg is None:
        lookup_dpwg = lookup_cpic
    return Phenotype(
        gene=gene,
        diplotype="/".join(alleles),
        phenotype=pheno or "n/a",
        activity_score=score,
        lookup={"CPIC": lookup_cpic, "DPWG": lookup_dpwg},
        functions=functions,
        alleles=alleles,
    )


def allele_counts(alleles: tuple[str, ...] | list[str]) -> dict[str, float]:
    """Allele → count, the form of PharmCAT's diplotype lookup keys."""
    return {k: float(v) for k, v in Counter(a for a in alleles if a is not None).items()}
