"""End-to-end PGx calling: VCF → named-allele calls → phenotypes → recommendations → files.

:func:`run_pgx` is the domain entry point (``run_<domain>`` contract of :mod:`pmed.result`);
:func:`call_vcf`, :func:`call_cohort` and :func:`write_results` are the older names, kept as thin
wrappers around it.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from pmed.cohort import Block
from pmed.errors import InputError, OptionError, format_rows
from pmed.genomics.pgx._data import ALL_GENES, data_version
from pmed.genomics.pgx.matcher import (
    LOWEST_FUNCTION_GENES,
    UNKNOWN,
    GeneCall,
    gene_model,
    match_gene,
)
from pmed.genomics.pgx.phenotype import Phenotype, lowest_function_pair, phenotype_for
from pmed.genomics.pgx.recommend import Recommendation, drug_messages, recommend
from pmed.genomics.pgx.vcf import PgxGenotypes, read_pgx_vcf
from pmed.progress import Reporter, as_reporter
from pmed.result import DomainResult, make_provenance

__all__ = [
    "run_pgx",
    "PgxResult",
    "SampleResult",
    "call_vcf",
    "call_genotypes",
    "call_cohort",
    "read_outside_calls",
    "check_outside_call",
    "known_alleles",
    "write_results",
    "features_table",
    "CALLS_COLUMNS",
    "RECOMMENDATION_COLUMNS",
]

CALLS_COLUMNS = [
    "sample", "gene", "diplotypes", "phenotype", "activity_score", "missing_positions",
    "warnings", "source", "haplotypes", "data_version",
]
RECOMMENDATION_COLUMNS = [
    "sample", "drug", "source", "genes", "phenotypes", "classification", "recommendation",
    "implications", "population", "ambiguous", "warnings", "guideline", "data_version",
]
OUTSIDE_GENES = ("CYP2D6", "HLA-A", "HLA-B", "MT-RNR1")
#: What the Cohort block's features are (its provenance says so too).
METHOD = "pmed.genomics.pgx named allele matcher (PharmCAT semantics)"


@dataclass
class SampleResult:
    """Everything called for one sample."""

    sample: str
    genes: dict[str, GeneCall] = field(default_factory=dict)
    phenotypes: dict[str, list[Phenotype]] = field(default_factory=dict)
    outside: dict[str, str] = field(default_factory=dict)
    recommendations: list[Recommendation] = field(default_factory=list)


@dataclass
class PgxResult(DomainResult):
    """Calls and recommendations for every sample of a VCF (what :func:`run_pgx` returns).

    One result holds every sample of a multi-sample VCF: :meth:`to_block` is the patient ×
    features table for ``Cohort.add_block("pgx", ...)``, :meth:`write` the output folder
    (``calls.tsv``, ``recommendations.tsv``, ``pgx.json``, optional HTML sections,
    ``provenance.json``).

    Attributes
    ----------
    samples
        Per-sample results, in VCF order.
    data_version
        Version of the definitions/guidelines used (also in every table row).
    source
        The VCF read.
    vcf_warnings
        ``{"chr:pos": [messages]}`` about VCF records that could not be matched exactly.
    build_check
        How the genome build was checked (:attr:`PgxGenotypes.build_check
        <pmed.genomics.pgx.vcf.PgxGenotypes.build_check>`): declared in the header, confirmed
        by the REF bases, or not checked.
    ref_issues
        ``{gene: [issue]}``: records whose REF is not GRCh38 (swapped, or unreadable).
    provenance
        Inputs (with SHA-256), options, library versions and commit (:func:`make_provenance`);
        empty for results made by :func:`call_genotypes` alone.
    """

    domain: ClassVar[str] = "pgx"
    block_name: ClassVar[str] = "pgx"

    samples: list[SampleResult]
    data_version: str
    source: str = ""
    vcf_warnings: dict[str, list[str]] = field(default_factory=dict)
    build_check: dict[str, Any] = field(default_factory=dict)
    ref_issues: dict[str, list[dict]] = field(default_factory=dict)
    html: bool = field(default=False, repr=False)
    """Whether :meth:`write` also writes one HTML report section per sample."""

    @property
    def sample_ids(self) -> list[str]:
        """Sample IDs in VCF order."""
        return [s.sample for s in self.samples]

    # -- the domain contract --------------------------------------------------------------
    def to_block(self) -> Block:
        """The patient × features table (:func:`features_table`) for ``Cohort.add_block``.

        Returns
        -------
        pmed.cohort.Block
            Indexed by ``patient_id`` (the VCF sample IDs) with ``{GENE}_diplotype``,
            ``{GENE}_phenotype`` and, where defined, ``{GENE}_activity_score`` columns; genes
            with no data in any sample are left out.
        """
        data = features_table(self.calls_table(), self.sample_ids)
        return Block(data, self._block_provenance())

    def _block_provenance(self) -> dict[str, Any]:
        options = self.provenance.get("options", {})
        prov: dict[str, Any] = {
            "domain": self.domain,
            "source": self.source,
            "method": METHOD,
            "data_version": self.data_version,
            "missing_to_ref": bool(options.get("missing_to_ref", False)),
        }
        if self.build_check:
            prov["build_check"] = self.build_check.get("status")
        for key in ("inputs", "options", "commit", "created"):
            if key in self.provenance:
                prov[key] = self.provenance[key]
        return prov

    def summary(self) -> dict[str, Any]:
        """Counts of what was called (no sample IDs): samples, genes, calls, recommendations.

        Returns
        -------
        dict
            JSON-ready: ``n_samples``, ``genes`` (called from the VCF, with data),
            ``outside_genes``, ``n_gene_calls``, ``n_no_data``, ``n_no_match``,
            ``n_recommendations``, ``n_vcf_warnings``, ``build_check`` (its status),
            ``n_ref_swapped``, ``n_ref_unreadable``, ``data_version`` and, per gene, the count of
            each phenotype (``phenotypes``).
        """
        called: dict[str, dict[str, int]] = {}
        n_calls = n_no_data = n_no_match = 0
        for s in self.samples:
            for gene, gc in s.genes.items():
                if gc.no_data:
                    n_no_data += 1
                    continue
                n_calls += 1
                if not gc.diplotypes and not gc.haplotypes:
                    n_no_match += 1
                phen = " | ".join(dict.fromkeys(p.phenotype for p in s.phenotypes.get(gene, [])))
                counts = called.setdefault(gene, {})
                key = phen or "n/a"
                counts[key] = counts.get(key, 0) + 1
        outside = sorted({g for s in self.samples for g in s.outside})
        return {
            "n_samples": len(self.samples),
            "genes": sorted(called),
            "outside_genes": outside,
            "n_gene_calls": n_calls,
            "n_no_data": n_no_data,
            "n_no_match": n_no_match,
            "n_recommendations": sum(len(s.recommendations) for s in self.samples),
            "n_vcf_warnings": sum(len(v) for v in self.vcf_warnings.values()),
            "build_check": self.build_check.get("status"),
            "n_ref_swapped": sum(i["kind"] == "swapped" for v in self.ref_issues.values()
                                 for i in v),
            "n_ref_unreadable": sum(i["kind"] == "mismatch" for v in self.ref_issues.values()
                                    for i in v),
            "data_version": self.data_version,
            "phenotypes": {g: dict(sorted(c.items())) for g, c in sorted(called.items())},
        }

    def _write_files(self, out: Path) -> dict[str, Path]:
        return _write_tables(self, out, html=self.html)

    def write(self, out: str | PathLike, *, html: bool | None = None) -> dict[str, Path]:
        """Write ``calls.tsv``, ``recommendations.tsv``, ``pgx.json`` and ``provenance.json``.

        Parameters
        ----------
        out
            Output folder (created if needed).
        html
            Also write ``pgx_<n>.html``, one report section per sample with calls (numbered
            in VCF order, so that no patient identifier is in a file name). Default: the
            result's :attr:`html`.

        Returns
        -------
        dict
            Output name → path (``"calls"``, ``"recommendations"``, ``"json"``,
            ``"html_<n>"``, ``"provenance"``).
        """
        if html is None:
            return super().write(out)
        saved, self.html = self.html, html
        try:
            return super().write(out)
        finally:
            self.html = saved

    def calls_table(self) -> pd.DataFrame:
        """One row per sample and gene: the ``calls.tsv`` table."""
        rows = []
        for s in self.samples:
            for gene, gc in s.genes.items():
                phen = s.phenotypes.get(gene, [])
                rows.append(
                    {
                        "sample": s.sample,
                        "gene": gene,
                        "diplotypes": (
                            phen[0].diplotype if gc.haplotypes and phen else _fmt_diplotypes(gc)
                        ),
                        "phenotype": " | ".join(dict.fromkeys(p.phenotype for p in phen)),
                        "activity_score": " | ".join(
                            dict.fromkeys(p.activity_score for p in phen if p.activity_score)
                        ),
                        "missing_positions": len(gc.missing_positions),
                        "warnings": "; ".join(gc.warnings),
                        "source": "matcher",
                        "haplotypes": " + ".join(gc.haplotypes),
                        "data_version": self.data_version,
                    }
                )
            for gene, dip in s.outside.items():
                phen = s.phenotypes.get(gene, [])
                rows.append(
                    {
                        "sample": s.sample, "gene": gene, "diplotypes": dip,
                        "phenotype": " | ".join(p.phenotype for p in phen),
                        "activity_score": " | ".join(
                            p.activity_score for p in phen if p.activity_score
                        ),
                        "missing_positions": 0, "warnings": "", "source": "outside call",
                        "haplotypes": "", "data_version": self.data_version,
                    }
                )
        return pd.DataFrame(rows, columns=CALLS_COLUMNS)

    def recommendations_table(self) -> pd.DataFrame:
        """One row per sample, drug and matched recommendation: ``recommendations.tsv``."""
        rows = []
        for s in self.samples:
            for r in s.recommendations:
                rows.append(
                    {
                        "sample": s.sample,
                        "drug": r.drug,
                        "source": r.source,
                        "genes": ",".join(r.genes),
                        "phenotypes": "; ".join(f"{g}: {p}" for g, p in r.phenotypes.items()),
                        "classification": r.classification,
                        "recommendation": r.text,
                        "implications": " ".join(r.implications),
                        "population": r.population,
                        "ambiguous": r.ambiguous,
                        "warnings": " ".join(dict.fromkeys(r.warnings)),
                        "guideline": r.guideline,
                        "data_version": self.data_version,
                    }
                )
        return pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)

    def to_dict(self) -> dict:
        """JSON-ready form of the calls and the recommendations."""
        return {
            "data_version": self.data_version,
            "source": self.source,
            "build_check": self.build_check,
            "ref_issues": self.ref_issues,
            "calls": self.calls_table().to_dict(orient="records"),
            "recommendations": self.recommendations_table().to_dict(orient="records"),
        }


def _fmt_diplotypes(gc: GeneCall) -> str:
    if gc.uncallable:
        return "uncallable"
    if gc.no_data:
        return "no data"
    if not gc.diplotypes:
        return "no match" if not gc.haplotypes else ""
    return " | ".join(a if b is None else f"{a}/{b}" for a, b in gc.diplotypes)


def read_outside_calls(path: str | PathLike) -> dict[str, str]:
    """Read outside calls in PharmCAT's TSV format (``GENE<TAB>DIPLOTYPE[...]``).

    Parameters
    ----------
    path
        The TSV file. Lines starting with ``#`` and blank lines are skipped.

    Returns
    -------
    dict
        Gene → diplotype with gene prefixes removed (``CYP2D6*3/CYP2D6*4`` → ``*3/*4``) and
        CYP2D6 copy numbers written as the data do (``*1x3`` → ``*1x≥3``).

    Raises
    ------
    InputError
        With the line number: a line without a gene and a diplotype, a phenotype-only line
        (pmed needs the diplotype), a gene pmed knows no outside calls for, or an allele that is
        not in the gene's allele data (``*999``): a call pmed cannot interpret is refused, never
        reported as "n/a".
    """
    from pmed.io import open_text

    path = Path(path)
    if not path.is_file():
        raise InputError("outside call file not found" if not path.exists() else
                         "a folder was given where the outside call file is expected",
                         file=path, fix="check the path")
    out: dict[str, str] = {}
    for n, line in enumerate(_read_lines(path, open_text, what="outside call file"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip() or not (cols[1].strip() or len(cols) > 2):
            raise InputError(
                "an outside call needs a gene and a diplotype separated by a tab",
                file=path, where=f"line {n}", fix="write e.g. 'CYP2D6<TAB>*1/*4'",
            )
        gene = cols[0].strip()
        if not cols[1].strip():
            raise InputError(
                f"the outside call for {_shown(gene)} has a phenotype but no diplotype; pmed "
                "derives phenotypes from diplotypes only", file=path, where=f"line {n}, column 2",
                fix="give the diplotype in column 2 (e.g. 'CYP2D6<TAB>*1/*4')")
        try:
            dip = check_outside_call(gene, cols[1])
        except _OutsideCallError as exc:
            raise InputError(str(exc), file=path, where=f"line {n}", fix=exc.fix) from None
        # two calls for one gene (a collision) are kept as equally good alternatives
        out[gene] = f"{out[gene]} | {dip}" if gene in out else dip
    return out


class _OutsideCallError(ValueError):
    """An outside call pmed cannot interpret; ``fix`` says what would be accepted."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


# HLA alleles are open-ended: two to four fields (``*57:01``, ``*02:01:01:02L``); one field
# (``*57``) cannot tell *57:01 from *57:03, so a "positive"/"negative" lookup would be a guess
_HLA_ALLELE = re.compile(r"\*\d{2,4}(?::\d{2,4}){1,3}[NLSCAQ]?")
_SHOWN = 24  # characters of a value echoed in a message


def _shown(value: str) -> str:
    value = value.strip()
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


@cache
def known_alleles(gene: str) -> frozenset[str]:
    """Allele names pmed's data know for ``gene`` (definitions and phenotype tables).

    Parameters
    ----------
    gene
        A matcher gene, or an outside-call gene with a phenotype table (CYP2D6, MT-RNR1).

    Returns
    -------
    frozenset of str
        Empty for genes without allele data (HLA-A, HLA-B: checked by syntax instead).
    """
    from pmed.genomics.pgx._data import definitions, phenotypes

    names: set[str] = set()
    gd = definitions()["genes"].get(gene)
    if gd is not None:
        names |= {a["name"] for a in gd["alleles"]} | set(gd.get("suballeles", {}).values())
    for source in ("CPIC", "DPWG"):
        table = phenotypes()[source].get(gene)
        if table is not None:
            names |= set(table["alleles"])
    if gene == "MT-RNR1":  # PharmCAT's own example writes "1555A>G" for m.1555A>G
        names |= {a.removeprefix("m.") for a in names}
    return frozenset(names)


def _natural(name: str) -> tuple:
    """Plain star alleles first (*1, *2, *10), then the rest in natural order (*1x2, ...)."""
    return (not re.fullmatch(r"\*\d+", name),
            tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)))


def check_outside_call(gene: str, diplotype: str) -> str:
    """Check one outside call and return its diplotype as pmed reads it.

    Parameters
    ----------
    gene
        The gene (``CYP2D6``, ``HLA-B``, ``MT-RNR1`` or a matcher gene).
    diplotype
        One or two alleles separated by ``/``, with or without gene prefixes
        (``CYP2D6*1/CYP2D6*4``, ``B*57:01/B*08:01``).

    Returns
    -------
    str
        The diplotype without gene prefixes (``*1/*4``), CYP2D6 copy numbers of three or more
        written as the data do (``*1x3`` → ``*1x≥3``).

    Raises
    ------
    ValueError
        For a gene without outside-call support or an allele pmed does not know; the
        message names the gene and the allele (allele names are not patient identifiers) and
        the exception's ``fix`` lists known alleles.
    """
    from pmed.genomics.pgx._data import ALL_GENES

    genes = list(dict.fromkeys([*OUTSIDE_GENES, *ALL_GENES]))
    if gene not in genes:
        raise _OutsideCallError(
            f"outside calls for gene {_shown(gene)} are not supported",
            fix=f"outside calls can be given for {', '.join(genes)}")
    dip = diplotype.strip()
    dip = re.sub(rf"\b{re.escape(gene)}(?=\*)", "", dip)
    dip = re.sub(r"(?<![\w*])[A-Z]\*(?=\d)", "*", dip) if gene.startswith("HLA") else dip
    alleles = [a.strip() for a in dip.split("/")]
    if len(alleles) > 2 or not all(alleles):
        raise _OutsideCallError(
            f"the {gene} outside call {_shown(diplotype)} is not one or two alleles separated "
            "by '/'", fix=f"write e.g. '{gene}<TAB>" + ("*57:01/*58:01'" if gene.startswith(
                "HLA") else "*1/*4'"))
    out = []
    for a in alleles:
        out.append(_check_allele(gene, a))
    return "/".join(out)


def _check_allele(gene: str, allele: str) -> str:
    if gene.startswith("HLA"):
        if _HLA_ALLELE.fullmatch(allele):
            return allele
        raise _OutsideCallError(
            f"{gene} allele {_shown(allele)} in the outside call is not an HLA allele name of "
            "two or more fields", fix="write HLA alleles as e.g. *57:01 or B*57:01 (IPD-IMGT/HLA "
            "nomenclature, at least two fields)")
    known = known_alleles(gene)
    if allele in known:
        return allele
    if gene == "CYP2D6":
        # sub-alleles (*1.001) are looked up by their core allele
        core = re.sub(r"^(\*\d+)\.\d+", r"\1", allele)
        if core in known:
            return allele
        m = re.fullmatch(r"(\*\d+)x(\d+)", allele)
        if m and int(m.group(2)) >= 3 and f"{m.group(1)}x≥3" in known:
            return f"{m.group(1)}x≥3"
    examples = sorted(known, key=_natural)[:6]
    raise _OutsideCallError(
        f"unknown {gene} allele {_shown(allele)} in the outside call",
        fix=f"{gene} alleles pmed knows include {', '.join(examples)} ({len(known)} in all; "
        "PharmCAT's allele definitions and CPIC's allele function tables list them)")


def _read_lines(path: Path, opener, *, what: str) -> list[str]:
    """All lines of a small text file; a corrupt or truncated gzip file is an InputError."""
    import zlib

    try:
        with opener(path, errors="replace", newline=None) as fh:
            return fh.read().splitlines()
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(
            f"the {what} cannot be read ({type(exc).__name__}: the gzip data are truncated or "
            "corrupt)", file=path, fix="re-create or re-download the file",
        ) from None


def _outside_phenotypes(gene: str, dip: str) -> list[Phenotype]:
    from pmed.genomics.pgx._data import definitions, phenotypes

    if " | " in dip:
        return [p for d in dip.split(" | ") for p in _outside_phenotypes(gene, d)]
    alleles = tuple(a.strip() for a in dip.split("/")) if "/" in dip else (dip.strip(),)
    if gene == "CYP2D6":
        # sub-alleles (*1.001) are looked up by their core allele
        core = tuple(re.sub(r"^(\*\d+)\.\d+", r"\1", a) for a in alleles)
        return [phenotype_for(gene, core)]
    if gene != "MT-RNR1" and (gene in definitions()["genes"] or gene in phenotypes()["CPIC"]):
        # a matcher gene called elsewhere (CYP2C19 *2/*17): the same tables as a VCF call;
        # MT-RNR1 stays "n/a" as in PharmCAT, which gives outside MT-RNR1 calls no phenotype
        return [phenotype_for(gene, alleles)]
    ph = Phenotype(gene=gene, diplotype=dip, phenotype="n/a", alleles=alleles,
                   lookup={"CPIC": None, "DPWG": None})
    return [ph]


def _lowest_per_strand(gene: str, dip: tuple) -> tuple:
    """For a strand that carries a combination ``[a + b]``, its lowest-function allele."""
    out = []
    for h in dip:
        if h is not None and h.startswith("[") and h.endswith("]"):
            parts = [x.strip() for x in h[1:-1].split(" + ")]
            h = lowest_function_pair(gene, parts)[0]
        out.append(h)
    return tuple(out)


def _sample_view(geno: PgxGenotypes, gene: str, s: int, missing_to_ref: bool) -> dict:
    m = gene_model(gene)
    out: dict[int, tuple] = {}
    haploid = False
    for p in range(len(m.positions)):
        rec = geno.calls.get((gene, p))
        if rec is None:
            continue
        alleles, gt, phased, ps = rec
        g1, g2 = int(gt[s, 0]), int(gt[s, 1])
        if gene in LOWEST_FUNCTION_GENES and phased[s] and (g1 >= 0) != (g2 >= 0) and g2 != -2:
            # half-missing phased genotype (C|.): the known strand is kept (DPYD, RYR1)
            a1 = alleles[g1] if g1 >= 0 else UNKNOWN
            a2 = alleles[g2] if g2 >= 0 else UNKNOWN
            out[p] = (a1, a2, True, ps[s])
            continue
        if g1 < 0 or g2 == -1:
            continue  # missing (or half-missing) genotype
        if g2 == -2:
            haploid = True
            out[p] = (alleles[g1], None, bool(phased[s]), ps[s])
        else:
            out[p] = (alleles[g1], alleles[g2], bool(phased[s]), ps[s])
    if missing_to_ref:
        for j in range(len(m.positions)):
            # an unreadable record (REF not GRCh38) is not an absent one: never assume reference
            if (gene, j) not in geno.calls and (gene, j) not in geno.unreadable:
                ref = m.variants[j]["ref"]
                out[j] = (ref, None if haploid else ref, False, None)
    return out


def call_genotypes(
    geno: PgxGenotypes,
    *,
    genes: list[str] | None = None,
    missing_to_ref: bool = False,
    top_candidate_only: bool = True,
    outside_calls: dict[str, str] | None = None,
    recommendations: bool = True,
    require_calls: bool = True,
    progress: Reporter | bool | None = None,
) -> PgxResult:
    """Call every gene of every sample of parsed genotypes.

    Parameters
    ----------
    geno
        Output of :func:`~pmed.genomics.pgx.vcf.read_pgx_vcf`.
    genes
        Genes to call (default: all matcher genes present in ``geno``).
    missing_to_ref
        Treat definition positions *absent from the VCF* as homozygous reference (variant-only
        VCFs), for every gene as PharmCAT's ``--missing-to-ref`` does. ``./.`` stays missing.
    top_candidate_only
        Keep only top-scoring diplotypes (PharmCAT's default).
    outside_calls
        Gene → diplotype from another caller (CYP2D6, HLA-A, HLA-B, ...), applied to every
        sample; a matcher gene given here is replaced by the outside call.
    recommendations
        Also match guideline recommendations.
    require_calls
        Raise when a sample has no genotype call at any pharmacogene position.
    progress
        ``True`` for a progress bar, or a :class:`~pmed.progress.Reporter` (one step per
        sample); silent by default.

    Returns
    -------
    PgxResult
        Without provenance (:func:`run_pgx` adds it).
    """
    reporter = as_reporter(progress)
    reporter.start(len(geno.samples), "calling pharmacogenes")
    genes = list(genes) if genes is not None else list(ALL_GENES)
    outside_calls = dict(outside_calls or {})
    results = []
    empty = []
    memo: dict[tuple, tuple] = {}
    rec_memo: dict[tuple, list] = {}
    for s, sample in enumerate(geno.samples):
        sr = SampleResult(sample=sample)
        n_called = 0
        for gene in genes:
            if gene in outside_calls:
                continue
            view = _sample_view(geno, gene, s, missing_to_ref)
            key = (gene, tuple(sorted(view.items(), key=lambda kv: kv[0])))
            hit = memo.get(key)
            if hit is not None:  # the same genotypes as an earlier sample: reuse the call
                gc, phen = copy.deepcopy(hit)
                sr.genes[gene] = gc
                if not gc.no_data:
                    n_called += 1
                    sr.phenotypes[gene] = phen
                continue
            gc = match_gene(gene, view, top_candidate_only=top_candidate_only)
            _apply_ref_issues(gc, geno.ref_issues.get(gene, ()))
            sr.genes[gene] = gc
            if gc.no_data:
                memo[key] = (gc, [])
                continue
            n_called += 1
            if gc.missing_positions and not missing_to_ref:
                gc.warnings.append(f"{len(gc.missing_positions)} definition position(s) missing")
            if gc.haplotypes:
                pair = lowest_function_pair(gene, gc.haplotypes)
                sr.phenotypes[gene] = [phenotype_for(gene, pair)]
                if len(gc.haplotypes) > 2 or not gc.diplotypes:
                    gc.warnings.append(
                        f"haplotypes {', '.join(gc.haplotypes)} found on unphased data; the "
                        f"phenotype uses the two lowest-function ones ({pair[0]}/{pair[1]})"
                    )
            elif gc.diplotypes:
                sr.phenotypes[gene] = [phenotype_for(gene, _lowest_per_strand(gene, d))
                                       for d in gc.diplotypes]
                if len(gc.diplotypes) > 1:
                    gc.warnings.append(
                        f"{len(gc.diplotypes)} equally good diplotypes (unphased data)"
                    )
            msgs = [] if gc.phased else drug_messages(
                gene, [f"{a}/{b}" for a, b in gc.diplotypes if b])
            gc.warnings.extend(m for m in msgs if m not in gc.warnings)
            if len(memo) < 100_000:
                memo[key] = copy.deepcopy((gc, sr.phenotypes.get(gene, [])))
        for gene, dip in outside_calls.items():
            sr.outside[gene] = dip
            sr.phenotypes[gene] = _outside_phenotypes(gene, dip)
        if n_called == 0:
            empty.append(s + 1)
        if recommendations:
            rkey = tuple(sorted(
                (g, tuple((p.diplotype, p.phenotype, p.activity_score,
                           tuple(sorted(p.lookup.items(), key=str))) for p in ps))
                for g, ps in sr.phenotypes.items()
            ))
            if rkey not in rec_memo:
                rec_memo[rkey] = recommend(sr.phenotypes)
            sr.recommendations = list(rec_memo[rkey])
        results.append(sr)
        reporter.advance()
    if require_calls and empty:
        # sample numbers, not IDs: no patient identifier in messages
        raise InputError(
            f"{len(empty)} of {len(geno.samples)} sample(s) have no genotype call at any "
            "pharmacogene position",
            file=geno.source or None,
            where=f"sample(s) number {format_rows(empty)} (1-based, in the order called)",
            fix="check that the VCF covers the GRCh38 pharmacogene positions (chr prefixes are "
            "fine) and that the sample's genotypes are not all './.'",
        )
    return PgxResult(
        samples=results, data_version=data_version(), source=geno.source,
        vcf_warnings=geno.warnings, build_check=dict(geno.build_check),
        ref_issues={g: [dict(i) for i in v] for g, v in geno.ref_issues.items()},
    )


def _apply_ref_issues(gc: GeneCall, issues) -> None:
    """Put a gene's REF problems (:attr:`PgxGenotypes.ref_issues`) into its call.

    A record whose REF is neither GRCh38 nor an ALT cannot be read, and what the gene would be
    without it is unknown (with ``missing_to_ref`` it would even be called reference): the gene
    is not callable, so that no phenotype or recommendation rests on it. A swapped record was
    read by allele sequence: the call stands, with a warning naming the position and the line,
    because a VCF not normalised against GRCh38 deserves a look before the call is used.
    """
    for i in issues:
        where = f"{i['position']}" + (f" (VCF line {i['line']})" if i["line"] else "")
        if i["kind"] == "swapped":
            gc.warnings.append(
                f"REF/ALT swapped at {where}: REF {i['vcf_ref']}, ALT {i['vcf_alt']}, GRCh38 "
                f"{i['grch38_ref']}; genotype read by allele sequence, check the VCF's "
                "normalisation")
        else:
            gc.warnings.append(
                f"REF {i['vcf_ref']} at {where} is not the GRCh38 reference {i['grch38_ref']}: "
                "record unreadable, gene not callable")
            gc.uncallable = True
    if gc.uncallable and any(i["kind"] == "mismatch" for i in issues):
        gc.no_data = False
        gc.diplotypes, gc.scores, gc.haplotypes = [], [], []


def run_pgx(
    vcf: str | PathLike,
    *,
    samples: list[str] | None = None,
    genes: list[str] | None = None,
    missing_to_ref: bool = False,
    top_candidate_only: bool = True,
    outside_calls: str | PathLike | dict[str, str] | None = None,
    recommendations: bool = True,
    require_calls: bool = True,
    progress: Reporter | bool | None = None,
    hash_inputs: bool = True,
) -> PgxResult:
    """Call pharmacogenes from a GRCh38 VCF: the ``pgx`` domain's entry point.

    One call covers every sample of the VCF (a single patient's VCF or a cohort's
    multi-sample VCF): each sample gets named-allele calls, phenotypes, activity scores and,
    unless turned off, CPIC/DPWG recommendations.

    Parameters
    ----------
    vcf
        Path of the VCF (plain, gzip or bgzip; with a ``.tbi``/``.csi`` index beside it only
        the gene regions are read when ``cyvcf2`` is installed).
    samples
        Call only these samples (default: all, in VCF order).
    genes
        Call only these genes (default: every matcher gene,
        :data:`~pmed.genomics.pgx.ALL_GENES`).
    missing_to_ref
        Treat definition positions absent from the VCF as GRCh38 reference (variant-only VCFs),
        as PharmCAT's ``--missing-to-ref``; ``./.`` stays missing.
    top_candidate_only
        Keep only the top-scoring diplotypes (PharmCAT's default).
    outside_calls
        A PharmCAT outside-call TSV (CYP2D6, HLA …) or a ``{gene: diplotype}`` mapping, applied
        to every sample.
    recommendations
        Also match guideline recommendations.
    require_calls
        Raise when a sample has no genotype call at any pharmacogene position.
    progress
        ``True`` for a progress bar, or a :class:`~pmed.progress.Reporter`; silent by default.
    hash_inputs
        Record the SHA-256 of the VCF and of the outside-call file in the provenance (the
        default). Hashing reads the whole file: turn it off for a whole-genome VCF read through
        its tabix index, where the calls themselves read only the gene regions.

    Returns
    -------
    PgxResult
        ``.to_block()`` (patient × features for the Cohort), ``.summary()``, ``.write(out)``,
        ``.calls_table()``, ``.recommendations_table()``.

    Raises
    ------
    OptionError
        Before anything is read: an option of the wrong type (``samples="S1"``,
        ``missing_to_ref="no"``), an empty sample name, an unknown gene, or an outside call
        (mapping) with an unknown gene or allele.
    InputError
        For a missing, truncated or malformed VCF or outside-call file (with its line), an
        unknown allele in the outside-call file, GRCh37 input, a requested sample that is not in
        the VCF, or (``require_calls``) a sample without calls.

    Warns
    -----
    PgxReferenceWarning
        VCF records whose REF is not GRCh38: swapped ones are read by allele sequence, with a
        warning in the gene's call; unreadable ones make the gene not callable.
    PgxBuildWarning
        The VCF declares no genome build and its REFs cannot confirm GRCh38 (the result's
        ``build_check`` says so too).

    Examples
    --------
    >>> res = run_pgx("cohort.vcf.gz", missing_to_ref=True)  # doctest: +SKIP
    >>> cohort.add_block("pgx", res.to_block())  # doctest: +SKIP
    >>> res.write("pgx-out")  # doctest: +SKIP
    """
    samples, genes, outside_calls = _check_options(
        vcf, samples=samples, genes=genes, outside_calls=outside_calls,
        flags={"missing_to_ref": missing_to_ref, "top_candidate_only": top_candidate_only,
               "recommendations": recommendations, "require_calls": require_calls,
               "hash_inputs": hash_inputs})
    reporter = as_reporter(progress)
    reporter.start(None, "reading the VCF")
    outside_path = None
    if outside_calls is not None and not isinstance(outside_calls, dict):
        outside_path = Path(outside_calls)
        outside_calls = read_outside_calls(outside_path)
    geno = read_pgx_vcf(vcf, genes=genes, samples=samples)
    reporter.advance()
    res = call_genotypes(
        geno, genes=genes, missing_to_ref=missing_to_ref, top_candidate_only=top_candidate_only,
        outside_calls=outside_calls, recommendations=recommendations,
        require_calls=require_calls, progress=reporter,
    )
    options: dict[str, Any] = {
        "samples": None if samples is None else len(samples),  # a count: no patient IDs
        "genes": None if genes is None else list(genes),
        "missing_to_ref": missing_to_ref,
        "top_candidate_only": top_candidate_only,
        "outside_calls": (None if outside_calls is None else
                          "file" if outside_path is not None else sorted(outside_calls)),
        "recommendations": recommendations,
        "require_calls": require_calls,
    }
    res.provenance = make_provenance(
        "pgx", inputs={"vcf": Path(vcf), "outside_calls": outside_path}, options=options,
        libraries=["cyvcf2"], hash_inputs=hash_inputs,
    )
    res.provenance["data_version"] = res.data_version
    res.provenance["method"] = METHOD
    res.provenance["build_check"] = res.build_check
    return res


def _check_options(vcf, *, samples, genes, outside_calls, flags: dict[str, Any]):
    """:func:`run_pgx`'s option checks, before any file is read (``OptionError``).

    Returns the samples and genes as lists (or ``None``) and the outside calls checked.
    """
    import numpy as np

    from pmed.genomics.pgx._data import ALL_GENES

    if not isinstance(vcf, (str, PathLike)) or not str(vcf).strip():
        raise OptionError(f"vcf must be a path, not {type(vcf).__name__}",
                          fix="give the path of a GRCh38 VCF")
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise OptionError(f"{name} must be True or False, not {type(value).__name__}",
                              fix=f"pass {name}=True or {name}=False")
    for name, value in (("samples", samples), ("genes", genes)):
        # a bare string would be read letter by letter ("S1" → "S", "1")
        if value is not None and (isinstance(value, (str, bytes)) or not hasattr(value, "__iter__")):
            example = "['S1']" if name == "samples" else "['CYP2C19']"
            raise OptionError(f"{name} must be a list of names, not {type(value).__name__}",
                              fix=f"pass e.g. {name}={example}")
    if samples is not None:
        samples = list(samples)
        bad = [i for i, s in enumerate(samples, 1) if not isinstance(s, str) or not s.strip()]
        if bad or not samples:
            # positions in the list, not the names: no patient identifier in messages
            raise OptionError(
                "samples must be non-empty sample names" + (
                    f" (item(s) {format_rows(bad)} are not)" if bad else " (the list is empty)"),
                fix="name the VCF's sample columns to call, or leave samples out to call all")
    if genes is not None:
        genes = list(genes)
        unknown = [g for g in genes if g not in ALL_GENES]
        if unknown or not genes:
            raise OptionError(
                f"{len(unknown)} unknown gene(s): {', '.join(_shown(str(g)) for g in unknown[:5])}"
                if unknown else "genes is empty",
                fix=f"choose among {', '.join(ALL_GENES)} (outside calls cover CYP2D6 and HLA)")
    if isinstance(outside_calls, dict):
        checked = {}
        for gene, dip in outside_calls.items():
            if not isinstance(gene, str) or not isinstance(dip, str):
                raise OptionError("outside_calls must map gene names to diplotype strings",
                                  fix="pass e.g. {'CYP2D6': '*1/*4'}")
            try:
                checked[gene] = " | ".join(check_outside_call(gene, d) for d in dip.split(" | "))
            except _OutsideCallError as exc:
                raise OptionError(str(exc), fix=exc.fix) from None
        outside_calls = checked
    elif outside_calls is not None and not isinstance(outside_calls, (str, PathLike)):
        raise OptionError(
            f"outside_calls must be a file path or a gene → diplotype mapping, not "
            f"{type(outside_calls).__name__}", fix="pass e.g. 'outside.tsv' or {'CYP2D6': '*1/*4'}")
    return samples, genes, outside_calls


def call_vcf(
    vcf: str | PathLike,
    *,
    samples: list[str] | None = None,
    genes: list[str] | None = None,
    missing_to_ref: bool = False,
    top_candidate_only: bool = True,
    outside_calls: str | PathLike | dict[str, str] | None = None,
    recommendations: bool = True,
    require_calls: bool = True,
) -> PgxResult:
    """Call pharmacogenes from a GRCh38 VCF (single- or multi-sample); see :func:`run_pgx`.

    Kept for existing code: the same as :func:`run_pgx` without a progress reporter and
    without hashing the inputs (the provenance lists their sizes only), so that calling a
    tabix-indexed whole-genome VCF still reads only the gene regions.

    Examples
    --------
    >>> res = call_vcf("sample.vcf.gz", missing_to_ref=True)  # doctest: +SKIP
    >>> res.calls_table().query("gene == 'CYP2C19'")  # doctest: +SKIP
    """
    return run_pgx(
        vcf, samples=samples, genes=genes, missing_to_ref=missing_to_ref,
        top_candidate_only=top_candidate_only, outside_calls=outside_calls,
        recommendations=recommendations, require_calls=require_calls, hash_inputs=False,
    )


def features_table(calls: pd.DataFrame, samples: list[str] | None = None) -> pd.DataFrame:
    """Patient × features from a ``calls.tsv``-shaped table (one row per sample and gene).

    Parameters
    ----------
    calls
        :meth:`PgxResult.calls_table` (or ``calls.tsv`` read back as text).
    samples
        Row order (default: the samples in order of appearance in ``calls``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``patient_id``: ``{GENE}_diplotype``, ``{GENE}_phenotype`` (``" | "``
        between the distinct phenotypes of equally good diplotypes) and, where any sample has
        one, ``{GENE}_activity_score`` (float). Genes with ``"no data"`` in every sample are
        left out.
    """
    if samples is None:
        samples = list(dict.fromkeys(calls["sample"].astype(str)))
    present = calls.loc[~calls["diplotypes"].isin(["no data"]), "gene"].unique().tolist()
    calls = calls[calls["gene"].isin(present)]
    frames = {}
    for col, src in (("diplotype", "diplotypes"), ("phenotype", "phenotype"),
                     ("activity_score", "activity_score")):
        frames[col] = calls.pivot(index="sample", columns="gene", values=src)
    out = pd.DataFrame(index=pd.Index(samples, name="patient_id"))
    for gene in present:
        out[f"{gene}_diplotype"] = frames["diplotype"][gene].reindex(out.index)
        out[f"{gene}_phenotype"] = frames["phenotype"][gene].reindex(out.index)
        sc = pd.to_numeric(frames["activity_score"][gene].reindex(out.index), errors="coerce")
        if sc.notna().any():
            out[f"{gene}_activity_score"] = sc
    return out


def call_cohort(
    vcf_path: str | PathLike,
    *,
    genes: list[str] | None = None,
    missing_to_ref: bool = False,
) -> pd.DataFrame:
    """PGx features for a cohort: one row per patient (VCF sample), for ``Cohort.add_block``.

    Kept for existing code: ``run_pgx(vcf_path, genes=genes, missing_to_ref=missing_to_ref,
    recommendations=False, require_calls=False).to_block()`` gives the same table with its
    provenance.

    Parameters
    ----------
    vcf_path
        Multi-sample GRCh38 VCF whose sample IDs are the patient IDs.
    genes
        Genes to call (default: all matcher genes); genes with no position in the VCF are left
        out of the table.
    missing_to_ref
        Treat positions absent from the VCF as GRCh38 reference. Off by default: a variant-only
        VCF that also omits sites where GRCh38 carries a rare allele (CYP2C19 rs3758581, where
        GRCh38 has the *38 base and *1 carriers are ``G/G``) would otherwise be called
        against the wrong backbone. Without it, absent positions are missing and every equally
        good diplotype is kept (``" | "``-separated), as PharmCAT does.

    Returns
    -------
    pandas.DataFrame
        Indexed by patient ID (``patient_id``) with columns ``{GENE}_diplotype``,
        ``{GENE}_phenotype`` (``" | "`` between the distinct phenotypes of equally good
        diplotypes) and, where defined, ``{GENE}_activity_score`` (float). The attribute
        ``attrs["provenance"]`` records the data version and options.
    """
    t0 = time.perf_counter()
    res = run_pgx(vcf_path, genes=genes, missing_to_ref=missing_to_ref,
                  recommendations=False, require_calls=False, hash_inputs=False)
    out = features_table(res.calls_table(), res.sample_ids)
    out.attrs["provenance"] = {
        "source": str(vcf_path),
        "method": METHOD,
        "data_version": res.data_version,
        "missing_to_ref": missing_to_ref,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return out


def res_samples(res: PgxResult) -> list[str]:
    """Sample IDs of a result, in VCF order."""
    return res.sample_ids


def write_results(
    result: PgxResult, out_dir: str | PathLike, *, html: bool = False
) -> dict[str, Path]:
    """Write ``calls.tsv``, ``recommendations.tsv`` and ``pgx.json`` into ``out_dir``.

    Kept for existing code: ``result.write(out_dir, html=html)`` writes the same files plus
    ``provenance.json``.

    Files are written atomically; the data version is a column of both tables and a key of
    the JSON. With ``html=True`` each sample's report section is written to
    ``pgx_<n>.html`` (numbered in VCF order, so no patient identifier is in a file name).

    Returns
    -------
    dict
        Name → path of each file written.
    """
    return result.write(out_dir, html=html)


def _write_tables(result: PgxResult, out_dir: Path, *, html: bool) -> dict[str, Path]:
    from pmed.io import write_table, write_text_atomic
    from pmed.io.jsonio import to_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "calls": out_dir / "calls.tsv",
        "recommendations": out_dir / "recommendations.tsv",
        "json": out_dir / "pgx.json",
    }
    write_table(result.calls_table(), paths["calls"], index=False)
    write_table(result.recommendations_table(), paths["recommendations"], index=False)
    write_text_atomic(paths["json"], to_json(result.to_dict()))
    if html:
        from pmed.genomics.pgx.report import render_pgx_section

        for n, s in enumerate(result.samples, 1):
            if any(not g.no_data for g in s.genes.values()) or s.outside:
                path = out_dir / f"pgx_{n}.html"
                write_text_atomic(path, render_pgx_section(result, s.sample))
                paths[f"html_{n}"] = path
    return paths
