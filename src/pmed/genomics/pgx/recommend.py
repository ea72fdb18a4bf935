"""Match CPIC and DPWG guideline recommendations to a sample's phenotypes.

For every guideline, a recommendation matches when each gene of its lookup key agrees with the
sample: a phenotype or activity-score key (``"Poor Metabolizer"``, ``"1.5"``), an allele-count
key (``{"*3": 2.0}``) or an allele-status key (``"*57:01 positive"``). When a gene has several
equally good diplotypes, each one is looked up and the recommendation is flagged ambiguous.
Ambiguity notes follow PharmCAT's message rules (``messages.json``: gene + diplotype + drug).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pmed.genomics.pgx._data import guidelines, messages
from pmed.genomics.pgx.phenotype import Phenotype, allele_counts

__all__ = ["Recommendation", "recommend", "drug_messages"]


@dataclass
class Recommendation:
    """One matched guideline recommendation for one drug."""

    drug: str
    source: str
    guideline: str
    genes: list[str]
    lookup: dict
    phenotypes: dict[str, str]
    classification: str | None
    text: str
    implications: list[str]
    population: str | None = None
    url: str | None = None
    ambiguous: bool = False
    warnings: list[str] = field(default_factory=list)


def _key_matches(value, pheno: Phenotype, source: str) -> bool:
    if isinstance(value, dict):
        return {k: float(v) for k, v in value.items()} == allele_counts(pheno.alleles)
    if isinstance(value, str) and (value.endswith(" positive") or value.endswith(" negative")):
        allele = value.rsplit(" ", 1)[0]
        present = allele in pheno.alleles
        return present == value.endswith(" positive")
    key = pheno.lookup.get(source)
    if key is None:
        return False
    if key == value:
        return True
    try:
        return float(key) == float(value)
    except (TypeError, ValueError):
        return False


def drug_messages(gene: str, diplotypes: list[str], drug: str | None = None) -> list[str]:
    """PharmCAT ambiguity/warning messages that apply to a gene's call (and a drug)."""
    out = []
    for rule in messages():
        mt = rule.get("matches") or {}
        if mt.get("gene") != gene:
            continue
        dips = mt.get("dips") or []
        if not dips:
            continue
        if not any(d in dips or "/".join(reversed(d.split("/"))) in dips
                            for d in diplotypes):
            continue
        drugs = mt.get("drugs") or []
        if drug is not None and drugs and drug not in drugs:
            continue
        if mt.get("hapsCalled") or mt.get("hapsMissing") or mt.get("variantsMissing"):
            continue
        out.append(rule["message"])
    return out


def recommend(calls: dict[str, list[Phenotype]]) -> list[Recommendation]:
    """Recommendations for one sample.

    Parameters
    ----------
    calls
        Gene → phenotypes of its equally good diplotypes (usually one).

    Returns
    -------
    list of Recommendation
        Every matched recommendation of every CPIC and DPWG guideline whose genes were called.
    """
    out: list[Recommendation] = []
    for gl in guidelines():
        genes = [g for g in gl["genes"] if g]
        if not any(calls.get(g) for g in genes):
            continue
        ambiguous = any(len(calls.get(g) or []) > 1 for g in genes)
        seen: set[str] = set()
        # a recommendation keyed by the exact diplotype (DPWG, e.g. CYP2C9 {"*3": 2}) is more
        # specific than one keyed by the phenotype: when one matches, the other is dropped
        specific = any(
            isinstance(v, dict) and all(
                calls.get(g) and any(_key_matches(v, p, gl["source"]) for p in calls[g])
                for g, v in rec["lookup"].items()
            )
            for rec in gl["recommendations"] if rec["lookup"]
            for v in rec["lookup"].values()
        )
        for rec in gl["recommendations"]:
            if specific and not any(isinstance(v, dict) for v in rec["lookup"].values()):
                continue
            lk = rec["lookup"]
            if not lk or not all(calls.get(g) for g in lk):
                continue
            hit = True
            used: dict[str, str] = {}
            for g, value in lk.items():
                matched = [p for p in calls[g] if _key_matches(value, p, gl["source"])]
                if not matched:
                    hit = False
                    break
                used[g] = value if isinstance(value, str) and value.endswith(
                    (" positive", " negative")) else matched[0].phenotype
            if not hit or rec["id"] in seen:
                continue
            seen.add(rec["id"])
            for drug in rec["drugs"] or gl["drugs"]:
                warns = []
                for g in lk:
                    warns += drug_messages(g, [p.diplotype for p in calls[g]], drug)
                out.append(
                    Recommendation(
                        drug=drug,
                        source=gl["source"],
                        guideline=gl["name"],
                        genes=list(lk),
                        lookup=lk,
                        phenotypes=used,
                        classification=rec["classification"],
                        text=rec["text"],
                        implications=list(rec["implications"]),
                        population=rec["population"],
                        url=gl.get("url"),
                        ambiguous=ambiguous,
                        warnings=warns,
                    )
                )
    return out
