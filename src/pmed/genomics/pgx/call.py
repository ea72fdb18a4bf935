"""End-to-end PGx calling: VCF → named-allele calls → phenotypes → recommendations → files."""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import pandas as pd

from pmed.errors import InputError
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

__all__ = [
    "PgxResult",
    "SampleResult",
    "call_vcf",
    "call_genotypes",
    "call_cohort",
    "read_outside_calls",
    "write_results",
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


@dataclass
class SampleResult:
    """Everything called for one sample."""

    sample: str
    genes: dict[str, GeneCall] = field(default_factory=dict)
    phenotypes: dict[str, list[Phenotype]] = field(default_factory=dict)
    outside: dict[str, str] = field(default_factory=dict)
    recommendations: list[Recommendation] = field(default_factory=list)


@dataclass
class PgxResult:
    """Calls and recommendations for every sample of a VCF.

    Attributes
    ----------
    samples
        Per-sample results, in VCF order.
    data_version
        Version of the definitions/guidelines used (also in every table row).
    source
        The VCF read.
    """

    samples: list[SampleResult]
    data_version: str
    source: str = ""
    vcf_warnings: dict[str, list[str]] = field(default_factory=dict)

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
        Gene → diplotype with gene prefixes removed (``CYP2D6*3/CYP2D6*4`` → ``*3/*4``).

    Raises
    ------
    InputError
        A line without a gene and a diplotype or phenotype, with its line number.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("outside call file not found", file=path, fix="check the path")
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip() or not (cols[1].strip() or len(cols) > 2):
            raise InputError(
                "an outside call needs a gene and a diplotype separated by a tab",
                file=path, where=f"line {n}", fix="write e.g. 'CYP2D6<TAB>*1/*4'",
            )
        gene = cols[0].strip()
        dip = cols[1].strip()
        dip = re.sub(rf"\b{re.escape(gene)}(?=\*)", "", dip)
        dip = re.sub(r"(?<![\w*])[A-Z]\*(?=\d)", "*", dip) if gene.startswith("HLA") else dip
        # two calls for one gene (a collision) are kept as equally good alternatives
        out[gene] = f"{out[gene]} | {dip}" if gene in out else dip
    return out


def _outside_phenotypes(gene: str, dip: str) -> list[Phenotype]:
    if " | " in dip:
        return [p for d in dip.split(" | ") for p in _outside_phenotypes(gene, d)]
    alleles = tuple(a.strip() for a in dip.split("/")) if "/" in dip else (dip.strip(),)
    if gene == "CYP2D6":
        # sub-alleles (*1.001) are looked up by their core allele
        core = tuple(re.sub(r"^(\*\d+)\.\d+", r"\1", a) for a in alleles)
        return [phenotype_for(gene, core)]
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
            if (gene, j) not in geno.calls:
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

    Returns
    -------
    PgxResult
    """
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
            empty.append(sample)
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
    if require_calls and empty:
        raise InputError(
            f"sample(s) {', '.join(empty[:5])}{' …' if len(empty) > 5 else ''} have no genotype "
            "call at any pharmacogene position",
            file=geno.source or None,
            fix="check that the VCF covers the GRCh38 pharmacogene positions (chr prefixes are "
            "fine) and that the sample's genotypes are not all './.'",
        )
    return PgxResult(
        samples=results, data_version=data_version(), source=geno.source,
        vcf_warnings=geno.warnings,
    )


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
    """Call pharmacogenes from a GRCh38 VCF (single- or multi-sample).

    Parameters
    ----------
    vcf
        Path of the VCF (plain, gzip or bgzip; with a tabix index only the gene regions are
        read when ``cyvcf2`` is installed).
    samples, genes
        Restrict the samples / genes called.
    missing_to_ref, top_candidate_only, recommendations, require_calls
        See :func:`call_genotypes`.
    outside_calls
        A PharmCAT outside-call TSV or a ``{gene: diplotype}`` mapping.

    Returns
    -------
    PgxResult
        ``.calls_table()``, ``.recommendations_table()``, ``.to_dict()``.

    Examples
    --------
    >>> res = call_vcf("sample.vcf.gz", missing_to_ref=True)  # doctest: +SKIP
    >>> res.calls_table().query("gene == 'CYP2C19'")  # doctest: +SKIP
    """
    geno = read_pgx_vcf(vcf, genes=genes, samples=samples)
    if outside_calls is not None and not isinstance(outside_calls, dict):
        outside_calls = read_outside_calls(outside_calls)
    return call_genotypes(
        geno, genes=genes, missing_to_ref=missing_to_ref, top_candidate_only=top_candidate_only,
        outside_calls=outside_calls, recommendations=recommendations,
        require_calls=require_calls,
    )


def call_cohort(
    vcf_path: str | PathLike,
    *,
    genes: list[str] | None = None,
    missing_to_ref: bool = False,
) -> pd.DataFrame:
    """PGx features for a cohort: one row per patient (VCF sample), for ``Cohort.add_block``.

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
    res = call_vcf(vcf_path, genes=genes, missing_to_ref=missing_to_ref,
                   recommendations=False, require_calls=False)
    calls = res.calls_table()
    present = calls.loc[~calls["diplotypes"].isin(["no data"]), "gene"].unique().tolist()
    calls = calls[calls["gene"].isin(present)]
    frames = {}
    for col, src in (("diplotype", "diplotypes"), ("phenotype", "phenotype")):
        frames[col] = calls.pivot(index="sample", columns="gene", values=src)
    score = calls.pivot(index="sample", columns="gene", values="activity_score")
    out = pd.DataFrame(index=pd.Index(res_samples(res), name="patient_id"))
    for gene in present:
        out[f"{gene}_diplotype"] = frames["diplotype"][gene].reindex(out.index)
        out[f"{gene}_phenotype"] = frames["phenotype"][gene].reindex(out.index)
        sc = pd.to_numeric(score[gene].reindex(out.index), errors="coerce")
        if sc.notna().any():
            out[f"{gene}_activity_score"] = sc
    out.attrs["provenance"] = {
        "source": str(vcf_path),
        "method": "pmed.genomics.pgx named allele matcher (PharmCAT semantics)",
        "data_version": res.data_version,
        "missing_to_ref": missing_to_ref,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return out


def res_samples(res: PgxResult) -> list[str]:
    """Sample IDs of a result, in VCF order."""
    return [s.sample for s in res.samples]


def write_results(
    result: PgxResult, out_dir: str | PathLike, *, html: bool = False
) -> dict[str, Path]:
    """Write ``calls.tsv``, ``recommendations.tsv`` and ``pgx.json`` into ``out_dir``.

    Files are written atomically; the data version is a column of both tables and a key of
    the JSON. With ``html=True`` each sample's report section is written to
    ``pgx_<n>.html`` (numbered in VCF order, so no patient identifier is in a file name).

    Returns
    -------
    dict
        Name → path of each file written.
    """
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
