"""One call from files to scores: read, check builds, match, check overlap, score, write."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import InputError
from pmed.genomics.prs._memory import in_lean_heap
from pmed.genomics.prs.match import MatchResult, check_overlap, match_variants
from pmed.genomics.prs.score import score_targets
from pmed.genomics.prs.scorefile import ScoringFile, normalize_build, read_scorefile
from pmed.genomics.prs.targets import Target, open_targets

__all__ = ["compute_scores", "PRSResult", "scores_to_block", "write_results"]


@dataclass
class PRSResult:
    """Scores and how they were obtained.

    Attributes
    ----------
    scores : DataFrame
        Long form: ``[FID,] IID, PGS, SUM, DENOM, AVG``.
    match : MatchResult
        Per-variant match log and per-score report.
    scorefiles : list of ScoringFile
    provenance : dict
        Inputs, options and counts, for the Cohort block and the output folder.
    """

    scores: pd.DataFrame
    match: MatchResult
    scorefiles: list[ScoringFile]
    provenance: dict = field(default_factory=dict)
    ancestry: object | None = None  # reference.AncestryResult when a reference panel was given


def _target_build(targets: Sequence[Target], given: str | None) -> str | None:
    if given:
        return normalize_build(given)
    builds = {t.genome_build for t in targets if t.genome_build}
    return builds.pop() if len(builds) == 1 else None


def compute_scores(
    targets: str | Path | Sequence[str | Path] | Sequence[Target],
    scorefiles: str | Path | Sequence[str | Path],
    *,
    out: str | Path | None = None,
    min_overlap: float = 0.75,
    keep_ambiguous: bool = False,
    keep_multiallelic: bool = False,
    keep_first_match: bool = False,
    impute: str = "mean",
    dosage_field: str = "GT",
    target_build: str | None = None,
    threads: int = 1,
    block_size: int | None = None,
    scheduler: str | None = None,
    reference: str | Path | None = None,
    reference_populations: str | Path | None = None,
    population_column: str = "SuperPop",
    progress: Callable[[int, int], None] | None = None,
) -> PRSResult:
    """Score genotype files on one or more scoring files.

    Parameters
    ----------
    targets
        Genotype files (``.pgen``, ``.bed``, ``.vcf.gz``, ``.bcf``; glob patterns allowed, e.g.
        one file per chromosome), or already opened :class:`Target` objects.
    scorefiles
        PGS Catalog or plink2-style scoring files; all their scores are computed in one pass.
    out
        When given, ``scores.tsv`` and ``match_report.tsv`` (plus ``match_variants.parquet``, the
        per-variant log, and ``unscorable.tsv``) are written there atomically.
    min_overlap
        Smallest fraction of a score's variants that must be matched (pgsc_calc's default 0.75).
    keep_ambiguous, keep_multiallelic, keep_first_match
        See :func:`~pmed.genomics.prs.match_variants`.
    impute
        Missing genotypes: ``"mean"`` (cohort allele frequency), ``"file"`` (the file's
        ``allelefrequency_effect``) or ``"none"``.
    dosage_field
        VCF field to score: ``"GT"`` hardcalls or ``"DS"`` dosages.
    target_build
        Genome build of the genotypes when their files do not declare it (``GRCh37``/``GRCh38``).
    threads, block_size
        Parallelism and variants per streamed block (default: about 2.5 million genotypes).
    scheduler
        Run on Dask: ``"local"`` (a LocalCluster on this machine) or a scheduler address
        ``tcp://host:8786``. Results are identical to the local run.
    reference
        A reference panel's genotypes (e.g. 1000 Genomes): targets are projected on its
        principal components, assigned their most similar population, and every score is also
        reported relative to it (``scores_adjusted.tsv``: percentile and ``Z_MostSimilarPop``,
        ``Z_norm1``, ``Z_norm2``; see :mod:`pmed.genomics.prs.ancestry`). Targets and reference
        are then scored on the variants matched in both.
    reference_populations, population_column
        Table with ``IID`` and the population column (default: the reference's ``.psam``).
    progress
        Callback (done, total) for progress bars.

    Raises
    ------
    InputError
        Unreadable inputs, a genome-build mismatch, or a score below ``min_overlap``.
    """
    if isinstance(scorefiles, str | Path):
        scorefiles = [scorefiles]
    from concurrent.futures import ThreadPoolExecutor

    given = targets and all(isinstance(t, Target) for t in targets)  # type: ignore[union-attr]
    # scoring files and genotype variant tables are parsed side by side (Arrow releases the GIL)
    with ThreadPoolExecutor(2) as ex:
        fut_targets = None if given else ex.submit(
            open_targets, targets, dosage_field=dosage_field, threads=threads)
        sfs = [read_scorefile(p) for p in scorefiles]
        opened = list(targets) if given else fut_targets.result()  # type: ignore[arg-type]
    _check_unique_scores(sfs)
    tbuild = _target_build(opened, target_build)
    for sf in sfs:
        if sf.genome_build and tbuild and sf.genome_build != tbuild:
            raise InputError(
                f"genome build mismatch: the scoring file is {sf.genome_build}, the genotypes are {tbuild}",
                file=sf.path, where="header line '#genome_build'" if "genome_build" in sf.header else None,
                fix=f"download the harmonized scoring file for {tbuild} from the PGS Catalog "
                    f"(e.g. *_hmPOS_{tbuild}.txt.gz), or lift the genotypes over")
    # one target: its table as it is (a copy would double the largest table of the run)
    variants = opened[0].variants if len(opened) == 1 else pd.concat(
        [t.variants.assign(file=np.int16(i)) for i, t in enumerate(opened)], ignore_index=True)
    scoring = pd.concat([sf.variants for sf in sfs], ignore_index=True)
    unscorable = pd.concat([sf.unscorable for sf in sfs], ignore_index=True)
    result = match_variants(scoring, variants, keep_ambiguous=keep_ambiguous,
                            keep_multiallelic=keep_multiallelic, keep_first_match=keep_first_match,
                            unscorable=unscorable)
    desc = ", ".join(str(t.path) for t in opened[:3]) + (" …" if len(opened) > 3 else "")
    check_overlap(result, min_overlap=min_overlap, targets_desc=desc, target_variants=variants,
                  score_builds={s: sf.genome_build for sf in sfs for s in sf.scores},
                  target_build=tbuild)
    names = [s for sf in sfs for s in sf.scores]
    log_writer = None
    if out is not None and reference is None:
        # the per-variant log is written while the genotypes are scored (zlib releases the GIL)
        import threading

        log_writer = threading.Thread(target=_write_variant_log, args=(result, sfs, Path(out)))
        log_writer.start()
    ref_target = None
    if reference is not None:
        from pmed.genomics.prs.targets import open_target

        ref_target = open_target(reference, threads=threads)
        if len(opened) > 1:
            raise InputError("ancestry analysis needs the genotypes in one file", file=desc,
                             fix="merge the per-chromosome files first (plink2 --pmerge-list)")
        ref_match = match_variants(scoring, ref_target.variants, keep_ambiguous=keep_ambiguous,
                                   keep_multiallelic=keep_multiallelic,
                                   keep_first_match=keep_first_match)
        _restrict_to_reference(result, ref_match)
    matched = result.matched
    if scheduler:
        from pmed.genomics.prs.distributed import score_targets_dask

        scores = score_targets_dask(opened, matched, names, scheduler=scheduler, impute=impute,
                                    block_size=block_size, dosage_field=dosage_field)
    else:
        scores = score_targets(opened, matched, names, impute=impute, block_size=block_size,
                               threads=threads, progress=progress)
    prov = {
        "reader": "pmed.genomics.prs.compute_scores",
        "targets": [str(t.path) for t in opened],
        "scorefiles": [str(sf.path) for sf in sfs],
        "scores": names,
        "genome_build": tbuild,
        "options": {"min_overlap": min_overlap, "keep_ambiguous": keep_ambiguous,
                    "keep_multiallelic": keep_multiallelic, "keep_first_match": keep_first_match,
                    "impute": impute, "dosage_field": dosage_field},
        "n_samples": int(opened[0].n_samples),
        "overlap": dict(zip(result.report["PGS"], result.report["overlap"].round(4), strict=True)),
    }
    res = PRSResult(scores, result, sfs, prov)
    if ref_target is not None:
        from pmed.genomics.prs.reference import ancestry_analysis, read_populations

        pops = read_populations(ref_target, reference_populations, population_column)
        ref_rows = ref_match.matched.merge(matched[["score", "row"]], on=["score", "row"])
        ref_scores = score_targets([ref_target], ref_rows.assign(file=0), names, impute=impute,
                                   block_size=block_size, threads=threads)
        res.ancestry = ancestry_analysis(ref_target, pops, opened[0], ref_scores, scores)
        prov["reference"] = {"file": str(ref_target.path), "population_column": population_column,
                             "n_reference": int(ref_target.n_samples),
                             "n_pca_variants": res.ancestry.n_pca_variants}
    if out is not None:
        if log_writer is not None:
            log_writer.join()
        write_results(res, out, variant_log=log_writer is None)
    return res


def _restrict_to_reference(result: MatchResult, ref_match: MatchResult) -> None:
    """Exclude target matches whose scoring row is not matched in the reference panel too."""
    v = result.variants
    in_ref = pd.MultiIndex.from_frame(ref_match.matched[["score", "row"]])
    ok = pd.MultiIndex.from_frame(v[["score", "row"]]).isin(in_ref)
    drop = (v["match_status"] == "matched").to_numpy() & ~ok
    v.loc[drop, "match_status"] = "excluded"
    v.loc[drop, "exclude_reason"] = "not_in_reference"
    from pmed.genomics.prs.match import _report

    rep = _report(v, None)
    rep["excluded_not_in_reference"] = [int(((v["score"] == s) & (v["exclude_reason"] == "not_in_reference")).sum())
                                        for s in rep["PGS"]]
    old = result.report.set_index("PGS")
    for col in ("unscorable", "n_variants"):
        rep[col] = old.loc[rep["PGS"], col].to_numpy()
    rep["overlap"] = rep["matched"] / rep["n_variants"]
    result.report = rep


def _check_unique_scores(sfs: Sequence[ScoringFile]) -> None:
    seen: dict[str, Path] = {}
    for sf in sfs:
        for s in sf.scores:
            if s in seen:
                raise InputError(f"score name {s!r} appears in two scoring files", file=sf.path,
                                 fix=f"it is also in {seen[s]}; give each score once (rename "
                                     "the pgs_id header of one copy)")
            seen[s] = sf.path


_LOG_COLUMNS = ["score", "row", "rsid", "chr", "pos", "effect_allele", "other_allele", "weight",
                "effect_type", "match_status", "match_type", "exclude_reason", "target_id", "ref", "alt"]


@in_lean_heap
def _write_variant_log(match: MatchResult, scorefiles: Sequence[ScoringFile], out: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pmed.io import atomic_path

    out.mkdir(parents=True, exist_ok=True)
    # Parquet (pandas/duckdb/polars read it) in row groups of 100,000 rows, so the encoder holds
    # one group at a time; dictionary pages only for the coded columns (IDs would overflow them)
    table = pa.Table.from_pandas(match.log(_LOG_COLUMNS), preserve_index=False)
    coded = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    with atomic_path(out / "match_variants.parquet") as tmp:
        pq.write_table(table, tmp, row_group_size=100_000, use_dictionary=coded)
    del table
    unsc = pd.concat([sf.unscorable for sf in scorefiles], ignore_index=True)
    with atomic_path(out / "unscorable.tsv") as tmp:
        unsc.to_csv(tmp, sep="\t", index=False)
    return {"match_variants": out / "match_variants.parquet", "unscorable": out / "unscorable.tsv"}


def write_results(res: PRSResult, out: str | Path, *, variant_log: bool = True) -> dict[str, Path]:
    """Write ``scores.tsv``, ``match_report.tsv``, ``match_variants.parquet``, ``unscorable.tsv``."""
    from pmed.io import atomic_path
    from pmed.io.jsonio import to_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    with atomic_path(out / "scores.tsv") as tmp:
        res.scores.to_csv(tmp, sep="\t", index=False, float_format="%.10g")
    files["scores"] = out / "scores.tsv"
    with atomic_path(out / "match_report.tsv") as tmp:
        res.match.report.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    files["match_report"] = out / "match_report.tsv"
    if variant_log:
        files.update(_write_variant_log(res.match, res.scorefiles, out))
    else:
        files.update({"match_variants": out / "match_variants.parquet",
                      "unscorable": out / "unscorable.tsv"})
    if res.ancestry is not None:
        from pmed.genomics.prs.plots import pca_plot, score_distribution_plot
        from pmed.plots._base import save

        anc = res.ancestry
        with atomic_path(out / "ancestry.tsv") as tmp:
            anc.assignment.to_csv(tmp, sep="\t", float_format="%.6g")
        with atomic_path(out / "scores_adjusted.tsv") as tmp:
            anc.adjusted[~anc.adjusted["REFERENCE"]].to_csv(tmp, sep="\t", index=False,
                                                           float_format="%.6g")
        files["ancestry"] = out / "ancestry.tsv"
        files["scores_adjusted"] = out / "scores_adjusted.tsv"
        ref = anc.model
        pc = [c for c in anc.assignment.columns if c.startswith("PC")]
        files["pca_plot"] = save(pca_plot(ref.pcs_, ref.populations_, anc.assignment[pc],
                                          target_populations=anc.assignment["MostSimilarPop"]),
                                 out / "plots" / "ancestry_pca.png")
        for s in res.provenance["scores"]:
            files[f"dist_{s}"] = save(score_distribution_plot(anc.adjusted, pgs=s, column="SUM"),
                                      out / "plots" / f"{s}_distribution.png")
    with atomic_path(out / "provenance.json") as tmp:
        tmp.write_text(to_json(res.provenance))
    files["provenance"] = out / "provenance.json"
    return files


def scores_to_block(scores: pd.DataFrame, *, value: str = "SUM", prefix: str = "prs_",
                    id_map: Callable[[str], str] | None = None) -> pd.DataFrame:
    """Long scores → a wide patient-indexed table (one column per score) for ``Cohort.add_block``.

    Parameters
    ----------
    scores
        ``scores.tsv`` content (or :attr:`PRSResult.scores`).
    value
        Which column becomes the feature (``SUM``, ``AVG``, or an ancestry-adjusted ``Z_norm2``…).
    prefix
        Prepended to score names so that feature names say what they are.
    id_map
        Maps genotype sample IDs to cohort patient IDs (e.g. strip a ``FID_`` prefix).
    """
    if value not in scores.columns:
        raise InputError(f"the scores table has no column {value!r}",
                         fix=f"choose one of {', '.join(map(str, scores.columns))}")
    wide = scores.pivot(index="IID", columns="PGS", values=value)
    wide.columns = [f"{prefix}{c}" for c in wide.columns]
    wide.index = wide.index.astype(str)
    if id_map is not None:
        wide.index = [id_map(i) for i in wide.index]
    wide.index.name = "patient_id"
    return wide.astype(np.float64)
