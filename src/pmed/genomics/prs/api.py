"""One call from files to scores: read, check builds, match, check overlap, score, write.

:func:`run_prs` is the domain's entry point (``run_<domain>`` of :mod:`pmed.result`): it returns a
:class:`PRSResult`, whose :meth:`~PRSResult.to_block` is the Cohort's ``prs`` block and whose
:meth:`~PRSResult.write` leaves ``scores.tsv``, ``match_report.tsv``, the per-variant log and
``provenance.json`` in a folder; :func:`read_block` reads such a folder back as the block.
:func:`compute_scores`, :func:`write_results` and :func:`scores_to_block` are the earlier names,
kept working.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pmed.cohort import Block
from pmed.errors import InputError, OptionError, PmedWarning, shorten
from pmed.genomics.prs._memory import in_lean_heap
from pmed.genomics.prs.match import (
    MatchResult,
    check_overlap,
    match_variants,
    warn_allele_mismatches,
)
from pmed.genomics.prs.score import check_impute, resolve_n_jobs, score_targets
from pmed.genomics.prs.scorefile import (
    KNOWN_BUILDS,
    PRSWarning,
    ScoringFile,
    normalize_build,
    read_scorefile,
)
from pmed.genomics.prs.targets import Target, open_targets
from pmed.io import check_output_folder
from pmed.progress import Reporter, as_reporter
from pmed.result import DomainResult, _written_by, make_provenance

__all__ = ["run_prs", "PRSResult", "read_block", "compute_scores", "scores_to_block",
           "write_results", "BLOCK_READER"]

#: What a PRS block's provenance names as its reader.
BLOCK_READER = "pmed.genomics.prs.scores_to_block"

# adjusted values a block can hold, best first (see PRSResult.to_block)
_ADJUSTED = ("Z_norm2", "Z_norm1", "Z_MostSimilarPop", "percentile_MostSimilarPop")


@dataclass
class PRSResult(DomainResult):
    """Scores and how they were obtained.

    Attributes
    ----------
    scores : DataFrame
        Long form: ``[FID,] IID, PGS, SUM, DENOM, AVG``.
    match : MatchResult
        Per-variant match log and per-score report.
    scorefiles : list of ScoringFile
    ancestry : AncestryResult or None
        PCs, most similar population and adjusted scores, when a reference panel was given.
    provenance : dict
        :func:`pmed.result.make_provenance` of the run (inputs with SHA-256, options, versions)
        plus ``scores``, ``genome_build``, ``n_samples`` and per-score ``overlap``.
    """

    domain: ClassVar[str] = "prs"
    block_name: ClassVar[str] = "prs"

    scores: pd.DataFrame
    match: MatchResult
    scorefiles: list[ScoringFile]
    ancestry: Any | None = None  # reference.AncestryResult when a reference panel was given
    # the folder the per-variant log was already written to while scoring (run_prs(out=...)),
    # and whether it is run_prs's own hidden folder (its files are then moved, not copied)
    _log_written_to: Path | None = field(default=None, init=False, repr=False, compare=False)
    _log_private: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def score_names(self) -> list[str]:
        """Score names, in the order of the scoring files."""
        names = self.provenance.get("scores")
        return list(names) if names else list(dict.fromkeys(self.scores["PGS"].astype(str)))

    # -- the domain contract ------------------------------------------------------------
    def to_block(self, *, value: str = "SUM", prefix: str = "prs_",
                 id_map: Callable[[str], str] | None = None) -> Block:
        """The wide ``prs_<PGS>`` table (one column per score, indexed by sample ID).

        Parameters
        ----------
        value
            ``SUM`` (default), ``AVG``, or with a reference panel an adjusted value
            (``Z_norm2``, ``Z_norm1``, ``Z_MostSimilarPop``, ``percentile_MostSimilarPop``).
        prefix, id_map
            See :func:`scores_to_block`.
        """
        table = self.scores
        if value not in table.columns and self.ancestry is not None \
                and value in self.ancestry.adjusted.columns:
            adj = self.ancestry.adjusted
            table = adj[~adj["REFERENCE"].astype(bool)]
        data = scores_to_block(table, value=value, prefix=prefix, id_map=id_map)
        prov = {**self.provenance, "domain": self.domain, "reader": BLOCK_READER,
                "value": value, "scores": self.score_names}
        return Block(data, prov)

    def summary(self) -> dict[str, Any]:
        """Samples, scores, and per score the variants matched and the overlap."""
        rep = self.match.report
        per_score = {}
        for _, r in rep.iterrows():
            ov = float(r["overlap"])
            per_score[str(r["PGS"])] = {
                "n_variants": int(r["n_variants"]), "matched": int(r["matched"]),
                "excluded": int(r["excluded"]), "unmatched": int(r["unmatched"]),
                "unscorable": int(r["unscorable"]),
                "overlap": round(ov, 6) if np.isfinite(ov) else None,
            }
        out: dict[str, Any] = {
            "n_samples": int(self.scores["IID"].nunique()),
            "n_scores": len(self.score_names),
            "genome_build": self.provenance.get("genome_build"),
            "scores": per_score,
        }
        if self.ancestry is not None:
            pops = self.ancestry.assignment["MostSimilarPop"].value_counts()
            out["ancestry"] = {"n_pca_variants": int(self.ancestry.n_pca_variants),
                               "most_similar_population": {str(k): int(v) for k, v in pops.items()}}
        return out

    def _write_files(self, out: Path) -> dict[str, Path]:
        return _write_files(self, out)


def _target_build(targets: Sequence[Target], given: str | None) -> str | None:
    """The genotypes' build: declared by their files, or given; None when nobody says.

    Raises
    ------
    InputError
        When the files declare different builds, or one other than the build given.
    """
    declared = {t.genome_build: t for t in targets if t.genome_build}
    if len(declared) > 1:
        (b1, t1), (b2, t2) = list(declared.items())[:2]
        raise InputError(f"the genotype files declare different genome builds ({b1} and {b2})",
                         file=t2.path, fix=f"give files of one build ({t1.path.name} is {b1})")
    if given:
        given = normalize_build(given)
        if declared and given not in declared:
            b, t = next(iter(declared.items()))
            raise InputError(f"the build given (--build {given}) is not the build the genotype "
                             f"file declares ({b})", file=t.path, where="header",
                             fix=f"leave --build out (the file says {b}), or fix the file's header")
        return given
    return next(iter(declared), None)


def _check_builds(sfs: Sequence[ScoringFile], tbuild: str | None) -> dict[str, str]:
    """Each score's build check: ``ok`` or ``not possible`` (warned); a mismatch is an error."""
    checks: dict[str, str] = {}
    for sf in sfs:
        if sf.genome_build and tbuild:
            if sf.genome_build != tbuild:
                raise InputError(
                    f"genome build mismatch: the scoring file is {sf.genome_build}, the genotypes "
                    f"are {tbuild}", file=sf.path,
                    where="header line '#genome_build'" if "genome_build" in sf.header else None,
                    fix=f"download the harmonized scoring file for {tbuild} from the PGS Catalog "
                        f"(e.g. *_hmPOS_{tbuild}.txt.gz), or lift the genotypes over")
            status = "ok"
        else:
            status = "not possible"
            if not tbuild:
                what = (f"the scoring file's build {sf.genome_build}" if sf.genome_build
                        else "the scoring file's build (which it does not declare either)")
                msg = (f"genome build of the genotypes unknown: cannot check {what} "
                       f"({sf.path.name}); give the genotypes' build with --build "
                       "(target_build=) to have it checked")
            else:
                msg = (f"genome build of the scoring file unknown ({sf.path.name} has no "
                       f"'#genome_build'): cannot check it against the genotypes' {tbuild}")
            warnings.warn(msg, PRSWarning, stacklevel=4)
        checks.update({s: status for s in sf.scores})
    return checks


def _fileset(t: Target) -> list[Path]:
    """The files a target was read from (a PLINK fileset is three)."""
    sides = {"pgen": (".pvar", ".psam"), "bed": (".bim", ".fam")}.get(t.kind, ())
    return [t.path, *(t.path.with_suffix(s) for s in sides)]


def _check_options(*, min_overlap, impute, dosage_field, block_size, population_column,
                   target_build=None, scheduler=None, seed=0, flags=None) -> None:
    """Refuse bad option values before any file is read."""
    check_impute(impute)
    for name, value in (flags or {}).items():
        if not isinstance(value, (bool, np.bool_)):
            raise OptionError(f"{name}={value!r} must be True or False",
                              fix=f"give {name}=True or {name}=False")
    if target_build is not None and normalize_build(target_build) not in KNOWN_BUILDS:
        raise OptionError(f"unknown genome build {str(target_build)[:40]!r}",
                          fix="give GRCh37 (hg19) or GRCh38 (hg38) with --build (target_build=)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise OptionError(f"seed={seed!r} must be an integer from 0 to 2**32 - 1",
                          fix="give --seed 0 (or any other non-negative integer)")
    if scheduler is not None:
        from pmed.scale import check_scheduler

        check_scheduler(scheduler if isinstance(scheduler, str) else repr(scheduler))
    if dosage_field not in ("GT", "DS"):
        raise OptionError(f"unknown genotype field {dosage_field!r}",
                          fix="use GT (hardcalls) or DS (dosages)")
    if isinstance(min_overlap, bool) or not isinstance(min_overlap, (int, float)) \
            or not 0 <= min_overlap <= 1:
        raise OptionError(f"min_overlap={min_overlap!r} must lie in [0, 1]",
                          fix="give a fraction such as 0.75 (pgsc_calc's default)")
    if block_size is not None and (isinstance(block_size, bool)
                                   or not isinstance(block_size, (int, np.integer)) or block_size < 1):
        raise OptionError(f"block_size={block_size!r} must be a positive integer",
                          fix="leave it out for the default (about 2.5 million genotypes)")
    if not isinstance(population_column, str) or not population_column:
        raise OptionError("population_column must name a column", fix="e.g. SuperPop")


def run_prs(
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
    n_jobs: int = 1,
    block_size: int | None = None,
    scheduler: str | None = None,
    reference: str | Path | None = None,
    reference_populations: str | Path | None = None,
    population_column: str = "SuperPop",
    seed: int = 0,
    progress: Reporter | bool | None = None,
    hash_inputs: bool = True,
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
        When given, the result is also written there (as :meth:`PRSResult.write` does), the
        per-variant log while the genotypes are scored.
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
    n_jobs, block_size
        Threads, and variants per streamed block (default: about 2.5 million genotypes).
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
    seed
        Seed of the population classifier (the only random step, with a reference panel).
    progress
        ``True`` for a progress bar, or a :class:`pmed.progress.Reporter`; silent by default.
    hash_inputs
        Record the SHA-256 of every input file in the provenance (read alongside the scoring;
        turn off for inputs too large to read twice).

    Returns
    -------
    PRSResult

    Raises
    ------
    OptionError
        An option value outside its allowed set or range.
    InputError
        Unreadable inputs, a genome-build mismatch, or a score below ``min_overlap``.
    """
    _check_options(min_overlap=min_overlap, impute=impute, dosage_field=dosage_field,
                   block_size=block_size, population_column=population_column,
                   target_build=target_build, scheduler=scheduler, seed=seed,
                   flags={"keep_ambiguous": keep_ambiguous, "keep_multiallelic": keep_multiallelic,
                          "keep_first_match": keep_first_match, "hash_inputs": hash_inputs})
    n_jobs = resolve_n_jobs(n_jobs, None)
    reporter = as_reporter(progress)
    if isinstance(scorefiles, str | Path):
        scorefiles = [scorefiles]
    if isinstance(targets, str | Path | Target):
        targets = [targets]
    scorefiles = list(scorefiles)
    targets = list(targets)
    if not scorefiles or not targets:
        raise OptionError("no " + ("scoring file" if not scorefiles else "genotype file") + " given",
                          fix="give at least one genotype file and one scoring file")
    if out is not None:  # a folder that cannot be replaced is refused before any work
        out = Path(out)
        check_output_folder(out, owned=lambda d: _written_by(d, PRSResult.domain),
                            inputs=[*scorefiles, *(t.path if isinstance(t, Target) else t
                                                   for t in targets),
                                    reference, reference_populations],
                            what="prs output")

    reporter.start(len(scorefiles) + 1, "reading inputs")
    given = all(isinstance(t, Target) for t in targets)
    # scoring files and genotype variant tables are parsed side by side (Arrow releases the GIL)
    with ThreadPoolExecutor(2) as ex:
        fut_targets = None if given else ex.submit(
            open_targets, targets, dosage_field=dosage_field, n_jobs=n_jobs)
        sfs = []
        for p in scorefiles:
            sfs.append(read_scorefile(p))
            reporter.advance()
        opened = list(targets) if given else fut_targets.result()  # type: ignore[union-attr]
        reporter.advance()
    prov = make_provenance(
        "prs",
        inputs={"targets": [f for t in opened for f in _fileset(t)],
                "scorefiles": [sf.path for sf in sfs],
                "reference": reference, "reference_populations": reference_populations},
        options={"min_overlap": min_overlap, "keep_ambiguous": keep_ambiguous,
                 "keep_multiallelic": keep_multiallelic, "keep_first_match": keep_first_match,
                 "impute": impute, "dosage_field": dosage_field, "target_build": target_build,
                 "n_jobs": n_jobs, "block_size": block_size, "scheduler": scheduler,
                 "population_column": population_column, "seed": seed},
        libraries=["pyarrow", "pgenlib", "cyvcf2"] + (["dask", "distributed"] if scheduler else []),
        hash_inputs=False)
    # the inputs are hashed while they are matched and scored (hashlib releases the GIL)
    hasher = _Hasher([Path(e["path"]) for e in prov["inputs"]] if hash_inputs else [])
    # the per-variant log is written while the genotypes are scored, into a hidden folder beside
    # ``out`` (as the staging folder of PRSResult.write is): nothing lands in ``out`` before the
    # whole output replaces it, and a refused run leaves no trace there
    log_dir = _log_folder(out) if out is not None and reference is None else None
    try:
        try:
            res = _score(opened, sfs, log_dir=log_dir, min_overlap=min_overlap,
                         keep_ambiguous=keep_ambiguous, keep_multiallelic=keep_multiallelic,
                         keep_first_match=keep_first_match, impute=impute,
                         dosage_field=dosage_field, target_build=target_build, n_jobs=n_jobs,
                         block_size=block_size, scheduler=scheduler, reference=reference,
                         reference_populations=reference_populations,
                         population_column=population_column, seed=seed, reporter=reporter)
        except BaseException:
            hasher.cancel()  # a refused run does not wait for the hash of a large genotype file
            raise
        digests = hasher.result()
        for entry in prov["inputs"]:
            if entry["path"] in digests:
                entry["sha256"] = digests[entry["path"]]
        res.provenance = {**prov, **res.provenance}
        if out is not None:
            res.write(out)
    finally:
        if log_dir is not None:
            shutil.rmtree(log_dir, ignore_errors=True)
    return res


def _log_folder(out: Path) -> Path:
    """A fresh hidden folder beside ``out`` (the same file system, so its files move in)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.log.", suffix=".tmp", dir=out.parent))


class _Hasher:
    """SHA-256 of the input files in a background thread, stopped when the run fails."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._stop = threading.Event()
        self._digests: dict[str, str] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(list(paths),), daemon=True,
                                        name="pmed-prs-hash")
        self._thread.start()

    def _run(self, paths: list[Path]) -> None:
        import hashlib

        try:
            for p in paths:
                if not p.is_file():  # folders and in-memory targets: sizes only
                    continue
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    while block := fh.read(1 << 20):
                        if self._stop.is_set():
                            return
                        h.update(block)
                self._digests[str(p)] = h.hexdigest()
        except OSError as e:  # reported by result(), not lost with the thread
            self._error = e

    def cancel(self) -> None:
        self._stop.set()

    def result(self) -> dict[str, str]:
        self._thread.join()
        if self._error is not None:
            raise InputError(f"cannot read an input file to hash it: {self._error}",
                             fix="check the inputs were not moved or changed during the run")
        return self._digests


def _score(opened, sfs, *, log_dir, min_overlap, keep_ambiguous, keep_multiallelic,
           keep_first_match, impute, dosage_field, target_build, n_jobs, block_size, scheduler,
           reference, reference_populations, population_column, seed, reporter) -> PRSResult:
    """Build check, matching, overlap check, scoring (and ancestry): the body of :func:`run_prs`."""
    _check_unique_scores(sfs)
    tbuild = _target_build(opened, target_build)
    build_check = _check_builds(sfs, tbuild)
    reporter.start(1, "matching variants")
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
    warn_allele_mismatches(result.report, stacklevel=3)
    reporter.advance()
    names = [s for sf in sfs for s in sf.scores]
    log_writer = None
    if log_dir is not None and reference is None:
        # the per-variant log is written while the genotypes are scored (zlib releases the GIL)
        log_writer = ThreadPoolExecutor(1)
        log_done = log_writer.submit(_write_variant_log, result, sfs, Path(log_dir))
    try:
        ref_target = None
        if reference is not None:
            from pmed.genomics.prs.targets import open_target

            if len(opened) > 1:
                raise InputError("ancestry analysis needs the genotypes in one file", file=desc,
                                 fix="merge the per-chromosome files first (plink2 --pmerge-list)")
            ref_target = open_target(reference, n_jobs=n_jobs)
            rbuild = ref_target.genome_build
            if rbuild and tbuild and rbuild != tbuild:  # positions of two builds never agree
                raise InputError(f"genome build mismatch: the reference panel is {rbuild}, the "
                                 f"genotypes are {tbuild}", file=ref_target.path,
                                 fix=f"give a reference panel in {tbuild} (--reference)")
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
                                   n_jobs=n_jobs, progress=reporter)
    finally:
        if log_writer is not None:
            log_writer.shutdown(wait=True)
    if log_writer is not None:
        log_done.result()  # a failed write (disk full, no permission) is reported here
    # recorded per score in the match report and in the provenance: a build that could not be
    # checked is not the same as one that was checked and agreed
    result.report["build_check"] = [build_check.get(str(s), "not possible")
                                    for s in result.report["PGS"]]
    prov = {
        "targets": [str(t.path) for t in opened],
        "scorefiles": [str(sf.path) for sf in sfs],
        "scores": names,
        "genome_build": tbuild,
        "scorefile_builds": {str(sf.path): sf.genome_build for sf in sfs},
        "build_check": "ok" if build_check and all(v == "ok" for v in build_check.values())
        else "not possible",
        "n_samples": int(opened[0].n_samples),
        "overlap": {str(k): float(v) for k, v in zip(result.report["PGS"],
                                                      result.report["overlap"].round(4), strict=True)},
    }
    res = PRSResult(scores, result, sfs, provenance=prov)
    if log_writer is not None:
        res._log_written_to, res._log_private = Path(log_dir), True
    if ref_target is not None:
        from pmed.genomics.prs.reference import ancestry_analysis, read_populations

        reporter.start(1, "ancestry: PCA and populations")
        pops = read_populations(ref_target, reference_populations, population_column)
        ref_rows = ref_match.matched.merge(matched[["score", "row"]], on=["score", "row"])
        ref_scores = score_targets([ref_target], ref_rows.assign(file=0), names, impute=impute,
                                   block_size=block_size, n_jobs=n_jobs)
        res.ancestry = ancestry_analysis(ref_target, pops, opened[0], ref_scores, scores, seed=seed)
        prov["reference"] = {"file": str(ref_target.path), "population_column": population_column,
                             "n_reference": int(ref_target.n_samples),
                             "n_pca_variants": res.ancestry.n_pca_variants}
        reporter.advance()
    return res


def compute_scores(
    targets: str | Path | Sequence[str | Path] | Sequence[Target],
    scorefiles: str | Path | Sequence[str | Path],
    *,
    out: str | Path | None = None,
    threads: int | None = None,
    n_jobs: int = 1,
    progress: Reporter | bool | Callable[[int, int], None] | None = None,
    **kwargs,
) -> PRSResult:
    """:func:`run_prs` under its earlier name (``threads`` is the deprecated ``n_jobs``).

    ``progress`` may also be the earlier callback ``(done, total)``, called as variants are
    scored. Every other keyword is :func:`run_prs`'s.
    """
    n_jobs = resolve_n_jobs(n_jobs, threads)
    if callable(progress) and not isinstance(progress, Reporter):
        progress = _CallbackReporter(progress)
    return run_prs(targets, scorefiles, out=out, n_jobs=n_jobs, progress=progress, **kwargs)


class _CallbackReporter:
    """The earlier ``progress(done, total)`` callback, as a Reporter of the scoring stage."""

    def __init__(self, fn: Callable[[int, int], None]) -> None:
        self.fn, self.total, self.done, self.active = fn, None, 0, False

    def start(self, total: int | None, description: str = "") -> None:
        self.active = description == "scoring variants"
        self.total, self.done = total, 0

    def advance(self, description: str | None = None, n: int = 1) -> None:
        if self.active:
            self.done += n
            self.fn(self.done, self.total)


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
                raise InputError(f"score name {shorten(s)} appears in two scoring files", file=sf.path,
                                 fix=f"it is also in {seen[s]}; give each score once (rename "
                                     "the pgs_id header of one copy)")
            seen[s] = sf.path


_LOG_COLUMNS = ["score", "row", "rsid", "chr", "pos", "effect_allele", "other_allele", "weight",
                "effect_type", "match_status", "match_type", "exclude_reason", "allele_mismatch",
                "target_id", "ref", "alt"]


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


def _write_files(res: PRSResult, out: Path) -> dict[str, Path]:
    """``scores.tsv``, ``match_report.tsv``, ``match_variants.parquet``, ``unscorable.tsv`` and,
    with a reference panel, ``ancestry.tsv``, ``scores_adjusted.tsv`` and plots."""
    from pmed.io import atomic_path

    files = {}
    with atomic_path(out / "scores.tsv") as tmp:
        res.scores.to_csv(tmp, sep="\t", index=False, float_format="%.10g")
    files["scores"] = out / "scores.tsv"
    with atomic_path(out / "match_report.tsv") as tmp:
        res.match.report.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    files["match_report"] = out / "match_report.tsv"
    logged = res._log_written_to
    names = {"match_variants": "match_variants.parquet", "unscorable": "unscorable.tsv"}
    if logged is not None and all((Path(logged) / n).is_file() for n in names.values()):
        for key, n in names.items():  # ``out`` is the staging folder: the log joins it there
            if Path(logged).resolve() != out.resolve():
                if res._log_private:
                    os.replace(Path(logged) / n, out / n)
                else:
                    shutil.copy2(Path(logged) / n, out / n)
            files[key] = out / n
    else:
        files.update(_write_variant_log(res.match, res.scorefiles, out))
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
        from pmed.io import check_inside, safe_filename

        used: set[str] = set()  # score names come from scoring files: one safe, distinct name each
        for s in res.score_names:
            png = check_inside(out / "plots" / f"{safe_filename(s, used=used)}_distribution.png", out)
            files[f"dist_{s}"] = save(score_distribution_plot(anc.adjusted, pgs=s, column="SUM"), png)
    return files


def write_results(res: PRSResult, out: str | Path, *, variant_log: bool = True) -> dict[str, Path]:
    """:meth:`PRSResult.write` under its earlier name.

    Writes ``scores.tsv``, ``match_report.tsv``, ``match_variants.parquet``, ``unscorable.tsv``
    (ancestry files with a reference panel) and ``provenance.json``. ``variant_log=False``
    leaves out the per-variant log (already written there).
    """
    out = Path(out)
    if not variant_log:
        res._log_written_to = out
    return res.write(out)


def scores_to_block(scores: pd.DataFrame, *, value: str = "SUM", prefix: str = "prs_",
                    id_map: Callable[[str], str] | None = None) -> pd.DataFrame:
    """Long scores → a wide patient-indexed table (one column per score) for ``Cohort.add_block``.

    :meth:`PRSResult.to_block` gives the same table with its provenance, as a
    :class:`~pmed.cohort.Block`.

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

    Raises
    ------
    InputError
        When ``value``, ``IID`` or ``PGS`` is not a column, or a sample has two values for a
        score (the same IID in two families).
    """
    missing = [c for c in ("IID", "PGS", value) if c not in scores.columns]
    if missing:
        raise InputError(f"the scores table has no column {missing[0]!r}",
                         fix=f"choose one of {', '.join(map(str, scores.columns))}"
                         if value in missing else "give the long table of scores.tsv "
                                                  "(IID, PGS, SUM, DENOM, AVG)")
    dup = scores.duplicated(["IID", "PGS"]).to_numpy()
    if dup.any():
        rows = (np.flatnonzero(dup) + 2).tolist()  # 1-based lines of a file with a header
        raise InputError(f"{int(dup.sum())} sample × score pairs appear twice (the same IID in "
                         "two families?)", where=f"lines {rows[:8]}",
                         fix="give every sample a unique IID, or map FID_IID with id_map")
    values = pd.to_numeric(scores[value], errors="coerce")
    wide = scores.assign(**{value: values}).pivot(index="IID", columns="PGS", values=value)
    wide.columns = [f"{prefix}{c}" for c in wide.columns]
    wide.index = wide.index.astype(str)
    if id_map is not None:
        wide.index = [id_map(i) for i in wide.index]
    wide.index.name = "patient_id"
    return wide.astype(np.float64)


def read_block(path: str | Path) -> Block | None:
    """Read a ``run_prs`` output (its folder, ``scores.tsv`` or ``scores_adjusted.tsv``) as the block.

    The registered reader of the ``prs`` domain (:data:`pmed.cohort.BLOCK_READERS`): one column
    ``prs_<PGS>`` per score, indexed by sample ID. ``scores.tsv`` gives the ``SUM``;
    ``scores_adjusted.tsv`` the most adjusted value it holds (``Z_norm2``, else ``Z_norm1``,
    ``Z_MostSimilarPop``, ``percentile_MostSimilarPop``).

    Returns
    -------
    Block or None
        None for any other file of the folder (it is then read as a plain table).

    Raises
    ------
    InputError
        When the scores file cannot be read or lacks its columns.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = folder / "scores.tsv" if path.is_dir() else path
    if file.name not in ("scores.tsv", "scores_adjusted.tsv") or not file.is_file():
        return None
    prov: dict[str, Any] = {}
    prov_file = folder / "provenance.json"
    if prov_file.is_file():
        try:
            prov = json.loads(prov_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            warnings.warn(f"{prov_file}: unreadable provenance ({type(e).__name__}); the scores "
                          "are read without it", PmedWarning, stacklevel=2)
        if not isinstance(prov, dict):
            prov = {}
    for k in ("summary", "outputs"):  # about the folder, not the block
        prov.pop(k, None)
    scores = _read_scores_table(file)
    if file.name == "scores_adjusted.tsv":
        value = next((c for c in _ADJUSTED if c in scores.columns), "SUM")
    else:
        value = "SUM"
    data = scores_to_block(scores, value=value)
    names = prov.get("scores") or list(dict.fromkeys(scores["PGS"]))
    return Block(data, {**prov, "domain": "prs", "reader": BLOCK_READER, "file": str(file),
                        "value": value, "scores": list(names)})


def _read_scores_table(file: Path) -> pd.DataFrame:
    """``scores.tsv``: IDs as written (an IID 'NA' stays 'NA'), numbers as floats."""
    from pmed.io.text import open_text

    try:
        with open_text(file) as fh:
            head = fh.readline().rstrip("\r\n").split("\t")
            fh.seek(0)
            text_cols = {c: str for c in ("FID", "IID", "PGS", "MostSimilarPop") if c in head}
            na = {c: ["", "NA", "NaN", "nan"] for c in head if c not in text_cols}
            scores = pd.read_csv(fh, sep="\t", dtype=text_cols, keep_default_na=False,
                                 na_values=na)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as e:
        raise InputError(f"cannot read the scores table ({type(e).__name__})", file=file,
                         fix="give the scores.tsv written by 'pmed prs score'") from e
    missing = [c for c in ("IID", "PGS", "SUM") if c not in scores.columns]
    if missing:
        raise InputError(f"the scores table lacks columns {', '.join(missing)}", file=file,
                         where="line 1", fix="give the scores.tsv written by 'pmed prs score'")
    return scores
