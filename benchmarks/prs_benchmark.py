"""Polygenic-score benchmark: pmed against plink2 ``--score`` and the PGS Catalog matcher.

For each case, on synthetic data made in the same run (seeded), this script runs and times:

* **plink2** ``--score`` on the variants a pgsc_calc-style matching must keep (plink2 cannot match
  a PGS Catalog scoring file itself: it gets a plink2-style ``ID A1 WEIGHT`` file derived from the
  generator's ground truth, i.e. the matching is done for it, outside the timing);
* **pmed** ``pmed prs score`` on the PGS Catalog scoring file itself (matching + scoring);
* **pgscatalog-utils** (its own venv, see ``benchmarks/prs_setup_pgscatalog.sh``): the matching
  step ``pgscatalog-match`` alone, and the formatting/normalising step it needs first
  (``pgscatalog-format``, formerly ``pgscatalog-combine``), reported alone and together.

Wall time and peak resident memory are measured for every child process (GNU ``time``'s maximum
RSS, and a sum over the child's process tree polled every ``--poll`` seconds; the larger is
reported). Every run is repeated ``--repeats`` times, tools interleaved; the table shows the best
(smallest) wall time and the largest peak RSS over the repeats, the JSON holds every run.

Correctness is checked inside the benchmark: pmed's ``SUM`` must equal plink2's ``*_SUM`` for every
sample within 1e-6 (weights are multiples of 1e-4, so plink2's 6-significant-digit output is
exact while ``|SUM| < 100``; beyond that plink2's rounding is added to the tolerance, and the
report says so), ``DENOM`` must equal plink2's ``DENOM``, and pmed's scores are also
compared with plink2 run on pgscatalog-match's own scoring file.

Synthetic data (``plink2 --dummy``, then the ``.pvar`` rewritten): chromosomes 1-22 in blocks
sized like GRCh38, increasing positions, IDs ``chr:pos:REF:ALT``, random non-ambiguous allele
pairs plus ~5 % strand-ambiguous (A/T, C/G) ones; also exported as ``.bed`` and, for the small
cases, as a bgzipped ``.vcf.gz``. The PGS Catalog scoring file (format 2.0, GRCh38, gzipped) has
as many rows as the target has variants: ~1 % of target variants are left out and replaced by
variants absent from the target; of the rest, the effect allele is ALT (~60 %), REF (~25 %,
swapped) or the strand-flipped ALT or REF (~15 %), and strand-ambiguous variants get ALT or REF
at random (pgsc_calc drops them by default; ``--keep-ambiguous`` keeps them in plink2's file and
passes ``--keep-ambiguous``/``--keep_ambiguous`` to pmed and pgscatalog-match).

Run from the repository root (no network)::

    bash benchmarks/prs_setup_pgscatalog.sh            # once: /tmp/prsbench/venv-pgscatalog
    .venv/bin/python benchmarks/prs_benchmark.py --cases smoke            # seconds
    .venv/bin/python benchmarks/prs_benchmark.py --cases small,biobank,wide --threads 2 \\
        --workdir /tmp/prsbench --repeats 3

It writes ``docs/results/prs_benchmark.md`` (atomically), headed by the run's commit, machine load
and package versions (``benchmarks/_common.py``), and ``OUT/prs_benchmark.json`` (``--out``,
default ``out/prs_benchmark``); scratch data stay under ``--workdir`` (reused by later runs with
the same seed and size).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import gzip
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pmed import __version__
from pmed.errors import DataNotFoundError, InputError
from pmed.io import write_text_atomic
from pmed.io.jsonio import to_json

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment  # noqa: E402

__all__ = [
    "CASES",
    "Case",
    "Measurement",
    "generate_case",
    "main",
    "measure",
    "parse_args",
]

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "results" / "prs_benchmark.md"
DEFAULT_WORKDIR = Path("/tmp/prsbench")
DEFAULT_PGSC_VENV = Path(os.environ.get("PGSCATALOG_VENV", DEFAULT_WORKDIR / "venv-pgscatalog"))
#: GRCh38 autosome lengths (bp), to size the chromosome blocks
CHROM_LENGTHS = np.array([
    248956422, 242193529, 198295559, 190214555, 181538259, 170805979, 159345973, 145138636,
    138394717, 133797422, 135086622, 133275309, 114364328, 107043718, 101991189, 90338345,
    83257441, 80373285, 58617616, 64444167, 46709983, 50818468,
])  # fmt: skip
COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}
NON_AMBIGUOUS = ["AC", "AG", "CA", "CT", "GA", "GT", "TC", "TG"]
AMBIGUOUS = ["AT", "TA", "CG", "GC"]
AMBIGUOUS_RATE = 0.05
ABSENT_RATE = 0.01  # of target variants not in the score (and of score variants not in target)
#: effect-allele kinds for non-ambiguous score variants and their probabilities
KINDS = ("alt", "ref", "flip_alt", "flip_ref")
KIND_P = (0.60, 0.25, 0.075, 0.075)
SUM_TOL = 1e-6
TIME_BIN = shutil.which("time", path="/usr/bin:/bin")  # GNU time (apt-get install time)
TIME_TARGET = 1.5  # pmed wall time <= 1.5 x plink2's (issue 4)
MISSING_TARGET = 1.2  # ... <= 1.2 x with missing calls and dosages (issue 24)
PGSC_TARGET = 5.0  # pgscatalog >= 5 x pmed's wall time and peak memory


@dataclass(frozen=True)
class Case:
    """One benchmark size: samples × variants (the score has as many rows as variants)."""

    name: str
    n_samples: int
    n_variants: int
    vcf: bool = False  # also export and score a VCF (small cases only: VCF is slow and large)
    note: str = ""
    missing: float = 0.0  # share of genotypes missing (plink2 --dummy's missing dosage frequency)
    dosage_freq: float = 0.0  # share of genotypes given as non-integer dosages (imputed data)
    per_chrom: bool = False  # the target split into one .pgen per chromosome (as cohorts ship)
    real: str = ""  # a real data set in ../shared/data/prs instead of synthetic data

    @property
    def shape(self) -> str:
        """Missingness and dosages in words, for the report."""
        parts = [f"{self.missing:.0%} missing" if self.missing else "",
                 f"{self.dosage_freq:.0%} dosages" if self.dosage_freq else "",
                 "22 files" if self.per_chrom else ""]
        if self.real:
            return "real (1000 Genomes-based CINECA synthetic cohort)"
        return ", ".join(p for p in parts if p) or "hard calls, complete"


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case("smoke", 200, 5_000, vcf=True, note="seconds; checks the harness"),
        Case("small", 1_000, 20_000, vcf=True),
        Case("biobank", 10_000, 100_000, note="issue 4: 10,000 samples x 100,000 variants"),
        Case(
            "wide",
            1_000,
            1_000_000,
            note="issue 4: 1,000 samples x 1,000,000 variants, 1,000,000-variant score",
        ),
        # issue 24: every real array and imputed cohort has missing calls; imputed data are dosages
        Case("smoke_miss", 200, 5_000, vcf=True, missing=0.05, dosage_freq=0.5,
             note="seconds; missing calls and dosages through every reader"),
        Case("biobank_miss1", 10_000, 100_000, missing=0.01),
        Case("biobank_miss5", 10_000, 100_000, missing=0.05),
        Case("biobank_dosage", 10_000, 100_000, dosage_freq=0.5),
        Case("wide_miss1", 1_000, 1_000_000, missing=0.01),
        Case("wide_miss5", 1_000, 1_000_000, missing=0.05),
        Case("wide_dosage", 1_000, 1_000_000, dosage_freq=0.5),
        Case("biobank_chroms", 10_000, 100_000, missing=0.01, per_chrom=True,
             note="one .pgen per chromosome: plink2 runs once per file, as pgsc_calc does"),
        Case("cineca", 2_504, 829, vcf=True, real="cineca/cineca_synthetic_subset",
             note="pgsc_calc's test cohort (chr 22) and PGS001229_22 (GRCh37)"),
    )
}


# ------------------------------------------------------------------------------ measuring
@dataclass
class Measurement:
    """One child process run: what ran, how long, how much memory, and whether it worked."""

    tool: str
    fmt: str
    repeat: int
    argv: list[str]
    wall_s: float
    maxrss_mib: float  # GNU time's %M: largest RSS of the process or of any waited-for descendant
    tree_rss_mib: float  # polled sum over the live process tree (catches worker processes)
    returncode: int
    log: str
    extra: dict = field(default_factory=dict)

    @property
    def peak_mib(self) -> float:
        """Peak memory: the larger of the exact per-process peak and the polled tree sum."""
        return float(np.nanmax([self.maxrss_mib, self.tree_rss_mib]))


def _children_map() -> dict[int, list[int]]:
    """``ppid -> [pid]`` for every live process (``/proc/*/stat``)."""
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def _tree_rss_bytes(root: int, page: int) -> int:
    """Resident bytes of ``root`` and all its descendants (0 for any that already exited)."""
    children = _children_map()
    todo, total = [root], 0
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


class _TreeSampler(threading.Thread):
    """Poll the process tree's total RSS until stopped; keep the peak."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _tree_rss_bytes(self.pid, self._page))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def measure(
    argv: list[str],
    *,
    tool: str,
    fmt: str,
    repeat: int,
    log: Path,
    env: dict[str, str] | None = None,
    poll: float = 0.1,
) -> Measurement:
    """Run ``argv`` as a child process; time it and record its peak resident memory.

    Parameters
    ----------
    argv
        The command (no shell).
    tool, fmt, repeat
        Labels stored with the measurement.
    log
        Where the child's stdout and stderr go.
    env
        Environment of the child (default: this process's).
    poll
        Seconds between samples of the process tree's RSS.

    Returns
    -------
    Measurement
        Wall time from start to exit, GNU time's max RSS and the polled tree peak.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    rss_file = log.with_name(log.name + ".maxrss")
    # A child's ru_maxrss keeps the high-water mark of the process it was forked from (the
    # exec keeps it), so wait4 on a child of this big Python process reports >= its own RSS.
    # GNU time is a small process: its wait4 on the real command gives that command's own peak.
    wrapped = [TIME_BIN, "-f", "%M", "-o", str(rss_file), *argv] if TIME_BIN else list(argv)
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = _TreeSampler(proc.pid, poll)
        sampler.start()
        proc.wait()
        wall = time.perf_counter() - t0
        tree_peak = sampler.stop()
    maxrss = float("nan")
    if TIME_BIN and rss_file.exists():
        last = rss_file.read_text().split()
        maxrss = int(last[-1]) / 1024 if last and last[-1].isdigit() else float("nan")  # KiB
        rss_file.unlink()
    return Measurement(
        tool=tool,
        fmt=fmt,
        repeat=repeat,
        argv=[str(a) for a in argv],
        wall_s=wall,
        maxrss_mib=maxrss,
        tree_rss_mib=tree_peak / 2**20,
        returncode=proc.returncode,
        log=str(log),
    )


def _check_ok(m: Measurement) -> None:
    """Stop with the tail of the child's log when it failed."""
    if m.returncode != 0:
        tail = Path(m.log).read_text(errors="replace").splitlines()[-25:]
        raise InputError(
            f"{m.tool} ({m.fmt}, repeat {m.repeat}) exited with status {m.returncode}:\n"
            + "\n".join(tail),
            file=m.log,
            fix=f"run the command by hand to see the problem: {shlex.join(m.argv)}",
        )


# ------------------------------------------------------------------------------ data
def _run_quiet(argv: list[str], log: Path) -> None:
    """Run a preparation step; fail with its log when it fails."""
    with open(log, "wb") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise InputError(
            f"preparation step failed (status {rc}):\n" + "\n".join(tail),
            file=log,
            fix=f"run it by hand: {shlex.join(argv)}",
        )


def _positions(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Chromosome (1-22) and strictly increasing positions for ``n`` variants, blocks like GRCh38.

    Gaps are at least 2 bp, so ``pos + 1`` of any variant is never another target variant.
    """
    share = CHROM_LENGTHS / CHROM_LENGTHS.sum()
    counts = np.floor(share * n).astype(np.int64)
    counts[: n - counts.sum()] += 1  # the remainder to the largest chromosomes
    chrom = np.repeat(np.arange(1, 23), counts)
    pos = np.empty(n, dtype=np.int64)
    start = 0
    for length, k in zip(CHROM_LENGTHS, counts, strict=True):
        mean_gap = max(int(length * 0.98) // max(int(k), 1), 4)
        gaps = rng.integers(2, 2 * mean_gap - 1, size=k)
        pos[start : start + k] = 10_000 + np.cumsum(gaps)
        start += k
    return chrom, pos


def _alleles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """REF, ALT and the strand-ambiguity flag for ``n`` biallelic SNVs."""
    amb = rng.random(n) < AMBIGUOUS_RATE
    pairs = np.where(amb, rng.choice(AMBIGUOUS, size=n), rng.choice(NON_AMBIGUOUS, size=n)).astype(
        "U2"
    )
    both = pairs.view("U1").reshape(n, 2)
    return both[:, 0].copy(), both[:, 1].copy(), amb


def _complement(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    for k, v in COMPLEMENT.items():
        out[a == k] = v
    return out


def _stamp(case: Case, seed: int, keep_ambiguous: bool) -> str:
    return json.dumps(
        {"case": asdict(case), "seed": seed, "keep_ambiguous": keep_ambiguous, "layout": 5},
        sort_keys=True,
    )


def generate_case(
    case: Case,
    directory: Path,
    *,
    seed: int,
    plink2: str,
    threads: int,
    keep_ambiguous: bool,
    force: bool = False,
) -> dict:
    """Make the synthetic target genotypes and the scoring files for ``case`` in ``directory``.

    Files: ``target.{pgen,pvar,psam}``, ``target.{bed,bim,fam}``, ``target.vcf.gz`` (small cases),
    ``score.txt.gz`` (PGS Catalog format 2.0) and ``expected.score`` (plink2-style ``ID A1
    <pgs_id>``: the variants and target alleles a pgsc_calc-style matching must keep). Kept and
    reused when ``directory/stamp.json`` says they were made with the same settings.

    Returns
    -------
    dict
        Paths and counts (variants by kind, expected matches).
    """
    if case.real:
        return _real_case(case, directory, keep_ambiguous=keep_ambiguous)
    stamp = _stamp(case, seed, keep_ambiguous)
    info_path = directory / "info.json"
    if not force and info_path.exists() and (directory / "stamp.json").exists():
        if (directory / "stamp.json").read_text() == stamp:
            return json.loads(info_path.read_text())
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    pgs_id = f"PGS_SYNTH_{case.name.upper()}"
    t0 = time.perf_counter()

    # genotypes: plink2 --dummy (hard calls or dosages, missing calls as asked), then our own
    # variant table
    _run_quiet(
        [plink2, "--dummy", str(case.n_samples), str(case.n_variants), f"{case.missing:g}",
         "acgt", "--seed", str(seed), "--threads", str(threads), "--make-pgen", "--out",
         str(directory / "dummy")],
        directory / "dummy.gen.log",
    )  # fmt: skip
    n = case.n_variants
    chrom, pos = _positions(n, rng)
    ref, alt, amb = _alleles(n, rng)
    ids = np.char.add(
        np.char.add(np.char.add(chrom.astype(str), ":"), pos.astype(str)),
        np.char.add(np.char.add(np.char.add(":", ref), ":"), alt),
    )
    pvar = pd.DataFrame({"#CHROM": chrom, "POS": pos, "ID": ids, "REF": ref, "ALT": alt})
    pvar.to_csv(directory / "target.pvar", sep="\t", index=False)
    if case.dosage_freq:
        _imputed_dosages(directory / "dummy.pgen", directory / "imputed.pgen", case, rng)
        (directory / "imputed.pgen").replace(directory / "dummy.pgen")
    (directory / "dummy.pgen").replace(directory / "target.pgen")
    (directory / "dummy.psam").replace(directory / "target.psam")
    for leftover in directory.glob("dummy.*"):
        if leftover.suffix != ".log":
            leftover.unlink()
    if case.per_chrom:  # one fileset per chromosome; the whole-genome one is not kept
        for c in range(1, 23):
            _run_quiet(
                [plink2, "--pfile", str(directory / "target"), "--chr", str(c), "--threads",
                 str(threads), "--make-pgen", "--out", str(directory / f"target_chr{c}")],
                directory / f"target_chr{c}.log",
            )  # fmt: skip
    if not case.dosage_freq and not case.per_chrom:  # .bed holds hard calls only
        _run_quiet(
            [plink2, "--pfile", str(directory / "target"), "--threads", str(threads),
             "--make-bed", "--out", str(directory / "target")],
            directory / "target.bed.log",
        )  # fmt: skip
    if case.vcf:
        ds = ["vcf-dosage=DS"] if case.dosage_freq else []
        _run_quiet(
            [plink2, "--pfile", str(directory / "target"), "--threads", str(threads),
             "--export", "vcf", *ds, "bgz", "--out", str(directory / "target")],
            directory / "target.vcf.log",
        )  # fmt: skip

    # the scoring file: drop ~1 % of target variants, add as many absent from the target
    in_score = rng.random(n) >= ABSENT_RATE
    n_absent = int((~in_score).sum())
    kind = np.where(amb, "ambiguous", rng.choice(KINDS, size=n, p=KIND_P)).astype("U9")
    effect = np.where(np.isin(kind, ["alt", "flip_alt"]) | (amb & (rng.random(n) < 0.5)), alt, ref)
    other = np.where(effect == alt, ref, alt)
    flip = np.char.startswith(kind, "flip")
    effect_sf = np.where(flip, _complement(effect), effect)
    other_sf = np.where(flip, _complement(other), other)
    weight = np.round(rng.normal(0.0, 0.01, size=n), 4)
    weight[weight == 0] = 1e-4
    # variants absent from the target: 1 bp after a random target variant (gaps are >= 2 bp)
    anchor = np.sort(rng.choice(n, size=n_absent, replace=False))
    a_ref, a_alt, _ = _alleles(n_absent, rng)
    a_ref, a_alt = _recode_non_ambiguous(a_ref, a_alt)
    a_weight = np.round(rng.normal(0.0, 0.01, size=n_absent), 4)
    a_weight[a_weight == 0] = 1e-4
    score = pd.DataFrame({
        "rsID": np.concatenate([np.arange(n)[in_score], anchor]) + 10_000_001,
        "chr_name": np.concatenate([chrom[in_score], chrom[anchor]]),
        "chr_position": np.concatenate([pos[in_score], pos[anchor] + 1]),
        "effect_allele": np.concatenate([effect_sf[in_score], a_alt]),
        "other_allele": np.concatenate([other_sf[in_score], a_ref]),
        "effect_weight": np.concatenate([weight[in_score], a_weight]),
    }).sort_values(["chr_name", "chr_position"], kind="stable")  # fmt: skip
    score["rsID"] = "rs" + score["rsID"].astype(str)
    header = (
        "###PGS CATALOG SCORING FILE - see https://www.pgscatalog.org/downloads/#dl_ftp_scoring "
        "for additional information\n"
        "#format_version=2.0\n"
        "##POLYGENIC SCORE (PGS) INFORMATION\n"
        f"#pgs_id={pgs_id}\n"
        f"#pgs_name=pmed_benchmark_{case.name}\n"
        "#trait_reported=Synthetic benchmark trait\n"
        "#trait_mapped=Synthetic benchmark trait\n"
        "#trait_efo=EFO_0000001\n"
        "#weight_type=beta\n"
        "#genome_build=GRCh38\n"
        f"#variants_number={len(score)}\n"
        "##SOURCE INFORMATION\n"
        "#pgp_id=PGP000000\n"
        "#citation=pmed benchmarks/prs_benchmark.py, synthetic\n"
    )
    with gzip.open(directory / "score.txt.gz", "wt", compresslevel=6) as fh:
        fh.write(header)
        score.to_csv(fh, sep="\t", index=False, float_format="%.4f", lineterminator="\n")

    # what matching must give: target ID, the effect allele in target terms, the weight
    keep = in_score & ((kind != "ambiguous") | keep_ambiguous)
    expected = pd.DataFrame({"ID": ids[keep], "A1": effect[keep], pgs_id: weight[keep]})
    expected.to_csv(directory / "expected.score", sep="\t", index=False, float_format="%.4f")

    counts = {k: int((in_score & (kind == k)).sum()) for k in (*KINDS, "ambiguous")}
    info = {
        "case": asdict(case),
        "seed": seed,
        "pgs_id": pgs_id,
        "n_score_rows": len(score),
        "n_absent_from_target": n_absent,
        "n_target_not_in_score": n_absent,
        "score_kinds": counts,
        "n_expected_matched": int(keep.sum()),
        "keep_ambiguous": keep_ambiguous,
        "generate_s": round(time.perf_counter() - t0, 2),
        "files": {
            "pgen": str(directory / ("target_chr*.pgen" if case.per_chrom else "target.pgen")),
            "bed": None if case.dosage_freq or case.per_chrom else str(directory / "target.bed"),
            "vcf": str(directory / "target.vcf.gz") if case.vcf else None,
            "pvar": str(directory / "target.pvar"),
            "scorefile": str(directory / "score.txt.gz"),
            "expected": str(directory / "expected.score"),
        },
        "disk_mib": round(sum(p.stat().st_size for p in directory.iterdir()) / 2**20, 1),
    }
    (directory / "info.json").write_text(json.dumps(info, indent=2))
    (directory / "stamp.json").write_text(stamp)
    return info


REAL_DATA = REPO.parent / "shared" / "data" / "prs"
REAL_SCORE = "scorefiles/PGS001229_22.txt"


def _real_case(case: Case, directory: Path, *, keep_ambiguous: bool) -> dict:
    """The real cohort's files (linked, never copied or modified) and plink2's score file.

    There is no ground truth of the matching here: plink2 gets pmed's own matches (ID, effect
    allele, weight) as written by ``pmed.genomics.prs.plink.write_plink2_scorefiles``, the
    export whose plink2 results the tests check to 1e-6. So this case times both tools on real
    data and checks the scoring, not the matching.
    """
    from pmed.genomics.prs import match_variants, open_target, read_scorefile
    from pmed.genomics.prs.plink import write_plink2_scorefiles

    src = REAL_DATA / case.real
    if not Path(f"{src}.pgen").exists():
        raise DataNotFoundError(f"{src}.pgen not found", fix="the real-data case needs ../shared/data/prs")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for suffix in (".pgen", ".pvar", ".psam", ".bed", ".bim", ".fam", ".vcf.gz"):
        (directory / f"target{suffix}").symlink_to(Path(f"{src}{suffix}"))
    scorefile = REAL_DATA / REAL_SCORE
    sf = read_scorefile(scorefile)
    res = match_variants(sf.variants, open_target(directory / "target.pgen").variants,
                         unscorable=sf.unscorable, keep_ambiguous=keep_ambiguous)
    files = write_plink2_scorefiles(res, directory / "plink2_scorefiles")
    if len(files) != 1:
        raise InputError("the real-data score needs one plink2 file", file=scorefile,
                         fix="use an additive score without repeated IDs")
    expected = directory / "expected.score"
    shutil.copyfile(files[0][0], expected)
    n_matched = int((res.variants["match_status"] == "matched").sum())
    pgs_id = str(pd.read_csv(expected, sep="\t", nrows=0).columns[2])
    return {
        "case": asdict(case), "pgs_id": pgs_id, "real": str(src), "scorefile": str(scorefile),
        "n_score_rows": len(sf.variants), "n_expected_matched": n_matched,
        "keep_ambiguous": keep_ambiguous, "generate_s": 0.0,
        "files": {"pgen": str(directory / "target.pgen"), "bed": str(directory / "target.bed"),
                  "vcf": str(directory / "target.vcf.gz"), "pvar": str(directory / "target.pvar"),
                  "scorefile": str(scorefile), "expected": str(expected)},
        "disk_mib": round(sum(Path(f"{src}{x}").stat().st_size for x in (".pgen", ".bed", ".vcf.gz"))
                          / 2**20, 1),
    }


def _imputed_dosages(src: Path, dst: Path, case: Case, rng: np.random.Generator) -> None:
    """Rewrite hard calls as imputed dosages, shaped like an imputation server's output.

    (plink2 2.00a3.5's ``--dummy … dosage-freq=`` also makes about half of the dosages it
    draws missing, which no imputed cohort looks like.) Per variant an imputation quality
    r² ~ U(0.3, 1); a share ``case.dosage_freq`` of the calls becomes
    r²·g + (1 − r²)·2p + noise (clipped to [0, 2]), the rest stay integer; missing calls stay
    missing. pgenlib stores them in plink2's 1/16384 steps.
    """
    import pgenlib

    reader = pgenlib.PgenReader(str(src).encode())
    n, m = reader.get_raw_sample_ct(), reader.get_variant_ct()
    writer = pgenlib.PgenWriter(str(dst).encode(), n, m, False, dosage_present=True)
    chunk = max(1, 2_000_000 // n)
    g = np.empty((chunk, n), dtype=np.int8)
    for s in range(0, m, chunk):
        e = min(s + chunk, m)
        block = g[: e - s]
        reader.read_range(s, e, block)
        d = block.astype(np.float32)
        called = block >= 0
        p = (np.where(called, d, 0).sum(axis=1) / np.maximum(called.sum(axis=1), 1) / 2)[:, None]
        r2 = rng.uniform(0.3, 1.0, size=(e - s, 1))
        fuzzy = rng.random(d.shape) < case.dosage_freq
        noisy = r2 * d + (1 - r2) * 2 * p + rng.normal(0, 0.05, size=d.shape)
        d = np.where(fuzzy & called, np.clip(noisy, 0, 2), d).astype(np.float32)
        d[~called] = -9  # missing
        writer.append_dosages_batch(np.ascontiguousarray(d))
    writer.close()
    reader.close()


def _recode_non_ambiguous(ref: np.ndarray, alt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace strand-ambiguous pairs by non-ambiguous ones (absent variants stay simple)."""
    amb = np.array([COMPLEMENT[r] == a for r, a in zip(ref, alt, strict=True)], dtype=bool)
    alt = alt.copy()
    alt[amb & np.isin(ref, ["A", "T"])] = "G"
    alt[amb & np.isin(ref, ["C", "G"])] = "A"
    return ref, alt


# ------------------------------------------------------------------------------ commands
def _target_flag(fmt: str, path: str) -> list[str]:
    """plink2's input flag for a target file."""
    stem = str(Path(path).with_suffix(""))
    return {"pgen": ["--pfile", stem], "bed": ["--bfile", stem], "vcf": ["--vcf", path]}[fmt]


def plink2_cmd(plink2: str, fmt: str, target: str, scorefile: str, out: Path, threads: int):
    """plink2 ``--score`` with a header-named plink2-style score file, sums and denominators.

    A glob pattern (one file per chromosome) runs plink2 once per file, one after the other, as
    a pipeline without a scheduler would; ``out`` then gets a ``_<n>`` suffix per file.
    """
    if "*" in target:
        runs = [shlex.join(plink2_cmd(plink2, fmt, t, scorefile, Path(f"{out}_{i}"), threads))
                for i, t in enumerate(sorted(glob.glob(target)))]
        return ["bash", "-c", " && ".join(runs)]
    return [
        plink2, *_target_flag(fmt, target), "--score", scorefile, "1", "2", "3", "header-read",
        "cols=+scoresums,+denom", "--threads", str(threads), "--out", str(out),
    ]  # fmt: skip


def pmed_cmd(
    pmed: list[str],
    target: str,
    scorefile: str,
    out: Path,
    threads: int,
    overlap: str,
    keep_ambiguous: bool = False,
) -> list[str]:
    """``pmed prs score`` on the PGS Catalog scoring file itself."""
    argv = [
        *pmed, "prs", "score", "--target", target, "--scorefile", scorefile, "--out", str(out),
        "--threads", str(threads), "--min-overlap", overlap,
    ]  # fmt: skip
    return [*argv, "--keep-ambiguous"] if keep_ambiguous else argv


#: pmed's matching step alone, as ``compute_scores`` runs it (Python API; prints the count)
PMED_MATCH_CODE = """\
import sys
from pmed.genomics.prs import match_variants, open_target, read_scorefile
sf = read_scorefile(sys.argv[1])
target = open_target(sys.argv[2])
res = match_variants(sf.variants, target.variants, unscorable=sf.unscorable,
                     keep_ambiguous=sys.argv[3] == "1")
print("matched", int((res.variants["match_status"] == "matched").sum()))
"""


def pmed_match_cmd(python: str, scorefile: str, target: str, keep_ambiguous: bool) -> list[str]:
    """pmed's matching alone (read the scoring file and the target's variant table, match)."""
    return [python, "-c", PMED_MATCH_CODE, scorefile, target, "1" if keep_ambiguous else "0"]


def pgsc_format_cmd(venv: Path, scorefile: str, out: Path, threads: int) -> list[str]:
    """``pgscatalog-format`` (the renamed ``pgscatalog-combine``): normalise the scoring file."""
    return [
        str(venv / "bin" / "pgscatalog-format"), "-s", scorefile, "-t", "GRCh38", "-o", str(out),
        "-l", "format_log.json", "--threads", str(threads),
    ]  # fmt: skip


def pgsc_match_cmd(
    venv: Path, normalised: str, pvar: str, out: Path, overlap: str, keep_ambiguous: bool
) -> list[str]:
    """``pgscatalog-match`` of the normalised scoring file against the target ``.pvar``."""
    argv = [
        str(venv / "bin" / "pgscatalog-match"), "-d", "bench", "-s", normalised, "-t", pvar,
        "--outdir", str(out), "--min_overlap", overlap,
    ]  # fmt: skip
    return [*argv, "--keep_ambiguous"] if keep_ambiguous else argv


# ------------------------------------------------------------------------------ checks
def read_sscore(path: Path, pgs_id: str) -> pd.DataFrame:
    """plink2 ``.sscore`` as ``IID -> SUM, DENOM`` for score ``pgs_id``."""
    df = pd.read_csv(path, sep="\t", dtype={"#IID": str, "IID": str, "#FID": str})
    df = df.rename(columns={"#IID": "IID", "#FID": "FID"})
    return pd.DataFrame(
        {"SUM": df[f"{pgs_id}_SUM"].to_numpy(float), "DENOM": df["DENOM"].to_numpy(float)},
        index=pd.Index(df["IID"].astype(str), name="IID"),
    )


def read_sscores(folder: Path, pgs_id: str) -> pd.DataFrame:
    """plink2's ``.sscore`` of one run, or the per-file ones of a split run summed.

    A sum of per-file sums carries each file's printing rounding: ``TOL`` adds them up (half a
    unit of each file's 6th printed digit), for :func:`compare_scores`.
    """
    parts = sorted(folder.glob("plink2_*.sscore"))
    if not parts:
        return read_sscore(folder / "plink2.sscore", pgs_id)
    total = None
    for p in parts:
        one = read_sscore(p, pgs_id)
        one["TOL"] = _printed_tol(one["SUM"].to_numpy(), exact=False) - SUM_TOL
        total = one if total is None else total.add(one, fill_value=0)
    total["TOL"] += SUM_TOL
    return total


def read_pmed_scores(out: Path, pgs_id: str) -> pd.DataFrame:
    """pmed's long ``scores.tsv`` as ``IID -> SUM, DENOM`` for score ``pgs_id``."""
    path = out / "scores.tsv"
    df = pd.read_csv(path, sep="\t", dtype={"IID": str, "FID": str, "PGS": str})
    missing = {"IID", "PGS", "SUM", "DENOM"} - set(df.columns)
    if missing:
        raise InputError(
            f"pmed's scores.tsv lacks columns {sorted(missing)}",
            file=path,
            fix="the benchmark expects the long form IID, PGS, SUM, DENOM, AVG",
        )
    df = df[df["PGS"] == pgs_id]
    return pd.DataFrame(
        {"SUM": df["SUM"].to_numpy(float), "DENOM": df["DENOM"].to_numpy(float)},
        index=pd.Index(df["IID"].astype(str), name="IID"),
    )


def _printed_tol(values: np.ndarray, exact: bool = True) -> np.ndarray:
    """Per-sample tolerance: 1e-6 where plink2's printed SUM is exact, else its rounding.

    With complete hard calls, weights (multiples of 1e-4) times integer dosages make every true
    SUM a multiple of 1e-4: plink2's 6 significant digits show it exactly while |SUM| < 100.
    Above that, and always when calls are missing (mean imputation) or dosages fractional
    (``exact=False``), half a unit of plink2's 6th printed digit is added to 1e-6: plink2 prints
    no more digits (its author: "printing to full precision would greatly inflate file sizes").
    """
    mag = np.floor(np.log10(np.maximum(np.abs(values), 1e-300)))
    rounding = SUM_TOL + 0.5 * 10.0 ** (mag - 5)
    if not exact:
        return rounding
    return np.where(np.abs(values) < 100, SUM_TOL, rounding)


def compare_scores(ours: pd.DataFrame, ref: pd.DataFrame, exact: bool = True) -> dict:
    """Max |SUM difference|, the tolerance it must meet, and DENOM agreement, sample by sample."""
    both = ours.join(ref, how="outer", lsuffix="_pmed", rsuffix="_ref")
    n_missing = int(both.isna().any(axis=1).sum())
    both = both.dropna()
    diff = np.abs(both["SUM_pmed"].to_numpy() - both["SUM_ref"].to_numpy())
    tol = _printed_tol(both["SUM_ref"].to_numpy(), exact)
    if "TOL" in both.columns:  # a sum of per-file plink2 outputs: their roundings add up
        tol = np.maximum(tol, both["TOL"].to_numpy())
    return {
        "n_samples": len(both),
        "n_unpaired_samples": n_missing,
        "max_abs_diff": float(diff.max()) if len(diff) else float("nan"),
        "tolerance": float(tol.max()) if len(tol) else SUM_TOL,
        # how far inside its tolerance the worst sample is (< 1: agrees)
        "max_diff_over_tol": float((diff / tol).max()) if len(diff) else float("nan"),
        "sums_within_tol": bool(n_missing == 0 and len(diff) > 0 and (diff <= tol).all()),
        "denom_equal": bool(
            n_missing == 0 and (both["DENOM_pmed"].to_numpy() == both["DENOM_ref"].to_numpy()).all()
        ),
        "max_abs_sum": float(np.abs(both["SUM_ref"]).max()) if len(both) else float("nan"),
    }


def _match_counts(pmed_out: Path) -> dict:
    """pmed's ``match_report.tsv`` summed over scores (one score here): counts by status/type."""
    path = pmed_out / "match_report.tsv"
    if not path.exists():
        return {}
    df = pd.read_csv(path, sep="\t")
    return {
        str(c): int(df[c].sum())
        for c in df.columns
        if c not in ("PGS", "overlap") and pd.api.types.is_integer_dtype(df[c])
    }


def _pgsc_scorefiles(match_out: Path) -> list[Path]:
    return sorted(match_out.glob("*.scorefile*"))


# ------------------------------------------------------------------------------ running
@dataclass
class CaseResult:
    """Everything measured for one case."""

    case: Case
    info: dict
    runs: list[Measurement] = field(default_factory=list)
    checks: dict = field(default_factory=dict)


def _child_env(threads: int) -> dict[str, str]:
    """The same thread limits for every tool (BLAS, OpenMP, polars)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS",
                "NUMEXPR_MAX_THREADS", "RAYON_NUM_THREADS"):  # fmt: skip
        env[var] = str(threads)
    return env


def run_case(case: Case, args: argparse.Namespace, log) -> CaseResult:
    """Generate (or reuse) the data of ``case`` and run every tool ``args.repeats`` times."""
    work = args.workdir / case.name
    log(f"[{case.name}] data: {case.n_samples:,} samples x {case.n_variants:,} variants")
    info = generate_case(
        case,
        work / "data",
        seed=args.seed,
        plink2=args.plink2,
        threads=args.threads,
        keep_ambiguous=args.keep_ambiguous,
        force=args.regenerate,
    )
    log(f"[{case.name}] data ready ({info['disk_mib']} MiB, made in {info['generate_s']} s)")
    res = CaseResult(case, info)
    files, threads = info["files"], args.threads
    overlap = f"{args.min_overlap:g}"
    env = _child_env(threads)
    fmts = [f for f in args.formats if files.get(f)]
    runs = work / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    pmed_match_broken = False
    for rep in range(1, args.repeats + 1):
        if "pmed" in args.tools:  # the fixed cost inside every pmed time: interpreter + imports
            m = measure([*args.pmed, "prs", "score", "--help"], tool="pmed_startup", fmt="-",
                        repeat=rep, log=runs / f"pmed_startup_{rep}.log", env=env,
                        poll=args.poll)  # fmt: skip
            _check_ok(m)
            res.runs.append(m)
        for fmt in fmts:
            if "plink2" in args.tools:
                out = runs / f"plink2_{fmt}_{rep}"
                out.mkdir(parents=True)
                argv = plink2_cmd(
                    args.plink2, fmt, files[fmt], files["expected"], out / "plink2", threads
                )
                m = measure(argv, tool="plink2", fmt=fmt, repeat=rep, log=out / "run.log",
                            env=env, poll=args.poll)  # fmt: skip
                _check_ok(m)
                res.runs.append(m)
            if "pmed" in args.tools:
                out = runs / f"pmed_{fmt}_{rep}"
                argv = pmed_cmd(args.pmed, files[fmt], files["scorefile"], out, threads, overlap,
                                args.keep_ambiguous)  # fmt: skip
                log_path = runs / f"pmed_{fmt}_{rep}.log"
                m = measure(argv, tool="pmed", fmt=fmt, repeat=rep, log=log_path, env=env,
                            poll=args.poll)  # fmt: skip
                _check_ok(m)
                res.runs.append(m)
        if _runs_pgscatalog(case, args) and rep <= args.pgsc_repeats:
            out = runs / f"pgsc_{rep}"
            fmt_out = out / "format"
            fmt_out.mkdir(parents=True)
            m = measure(
                pgsc_format_cmd(args.pgscatalog_venv, files["scorefile"], fmt_out, threads),
                tool="pgsc_format", fmt="pvar", repeat=rep, log=out / "format.log", env=env,
                poll=args.poll,
            )  # fmt: skip
            _check_ok(m)
            res.runs.append(m)
            normalised = sorted(fmt_out.glob("normalised_*"))
            if not normalised:
                raise InputError(
                    "pgscatalog-format wrote no normalised scoring file",
                    file=out / "format.log",
                    fix="read the log; pgscatalog-utils may have changed its output names",
                )
            argv = pgsc_match_cmd(
                args.pgscatalog_venv, str(normalised[0]), files["pvar"], out / "match",
                overlap, args.keep_ambiguous,
            )  # fmt: skip
            (out / "match").mkdir()
            m = measure(argv, tool="pgsc_match", fmt="pvar", repeat=rep, log=out / "match.log",
                        env=env, poll=args.poll)  # fmt: skip
            _check_ok(m)
            res.runs.append(m)
            if "pmed" in args.tools and not pmed_match_broken:
                argv = pmed_match_cmd(
                    args.pmed_python, files["scorefile"], files["pgen"], args.keep_ambiguous
                )
                m = measure(argv, tool="pmed_match", fmt="pgen", repeat=rep,
                            log=out / "pmed_match.log", env=env, poll=args.poll)  # fmt: skip
                if m.returncode == 0:
                    found = re.findall(r"^matched (\d+)$", Path(m.log).read_text(), re.M)
                    m.extra["n_matched"] = int(found[-1]) if found else None
                    res.runs.append(m)
                else:  # the Python API moved: report it, keep the CLI comparison
                    pmed_match_broken = True
                    tail = Path(m.log).read_text(errors="replace").splitlines()[-3:]
                    res.checks["pmed_match_only_error"] = " | ".join(tail)
                    log(f"[{case.name}] pmed match-only step failed (see {m.log}); skipped")
        log(f"[{case.name}] repeat {rep}/{args.repeats}: " + ", ".join(
            f"{m.tool}/{m.fmt} {m.wall_s:.2f} s {m.peak_mib:.0f} MiB"
            for m in res.runs if m.repeat == rep
        ))  # fmt: skip
    res.checks.update(check_case(res, args, runs, fmts, env))
    return res


def _runs_pgscatalog(case: Case, args: argparse.Namespace) -> bool:
    """pgscatalog-utils only matches variants: the genotypes' missingness and dosages do not
    concern it, so it runs on the complete hard-call cases only."""
    return "pgscatalog" in args.tools and case.shape == "hard calls, complete"


def check_case(
    res: CaseResult, args: argparse.Namespace, runs: Path, fmts: list[str], env: dict
) -> dict:
    """pmed vs plink2 (same expected variants) and vs plink2 on pgscatalog-match's output."""
    pgs_id = res.info["pgs_id"]
    checks: dict = {}
    ref_pgen = None
    for fmt in fmts:
        if "plink2" not in args.tools:
            break
        ref = read_sscores(runs / f"plink2_{fmt}_1", pgs_id)
        ref_pgen = ref if ref_pgen is None else ref_pgen
        checks[f"plink2_{fmt}_n_samples"] = len(ref)
        if "pmed" in args.tools:
            for rep in range(1, args.repeats + 1):
                ours = read_pmed_scores(runs / f"pmed_{fmt}_{rep}", pgs_id)
                c = compare_scores(ours, ref, exact=res.case.shape == "hard calls, complete")
                key = f"pmed_vs_plink2_{fmt}"
                if rep == 1 or c["max_abs_diff"] > checks[key]["max_abs_diff"]:
                    checks[key] = c
            report = _match_counts(runs / f"pmed_{fmt}_1")
            checks[f"pmed_match_report_{fmt}"] = report
            if "matched" in report:
                checks.setdefault("pmed_n_matched", report["matched"])
    if _runs_pgscatalog(res.case, args):
        scorefiles = _pgsc_scorefiles(runs / "pgsc_1" / "match")
        checks["pgsc_scorefiles"] = [p.name for p in scorefiles]
        if scorefiles and "pmed" in args.tools:
            total = None
            for i, sf in enumerate(scorefiles):
                out = runs / "pgsc_1" / f"plink2_{i}"
                pfile = str(Path(res.info["files"]["pgen"]).with_suffix(""))
                argv = [args.plink2, "--pfile", pfile, "--score", str(sf), "header-read",
                        "cols=+scoresums,+denom",
                        "--threads", str(args.threads), "--out", str(out)]  # fmt: skip
                m = measure(argv, tool="plink2", fmt="pgsc", repeat=1, log=Path(f"{out}.run.log"),
                            env=env, poll=args.poll)  # fmt: skip
                _check_ok(m)
                part = _read_pgsc_sscore(Path(f"{out}.sscore"), pgs_id)
                total = part if total is None else total.add(part, fill_value=0)
            ours = read_pmed_scores(runs / f"pmed_{fmts[0]}_1", pgs_id)
            checks["pmed_vs_pgsc_match_plink2"] = compare_scores(
                ours, total, exact=res.case.shape == "hard calls, complete")
        if scorefiles:
            got = _pgsc_rows(scorefiles, pgs_id)
            want = _expected_rows(Path(res.info["files"]["expected"]), pgs_id)
            checks["pgsc_n_matched"] = len(got)
            checks["pgsc_equals_expected"] = got == want
    checks["n_expected_matched"] = res.info["n_expected_matched"]
    return checks


def _read_pgsc_sscore(path: Path, pgs_id: str) -> pd.DataFrame:
    """A plink2 ``.sscore`` of a pgscatalog-match scorefile (score column named like the PGS)."""
    df = pd.read_csv(path, sep="\t", dtype={"#IID": str, "IID": str})
    df = df.rename(columns={"#IID": "IID"})
    sums = [c for c in df.columns if c.endswith("_SUM") and pgs_id in c]
    if not sums:
        raise InputError(f"no {pgs_id} score sum in the plink2 output", file=path,
                         fix="check pgscatalog-match's scorefile columns")  # fmt: skip
    return pd.DataFrame(
        {"SUM": df[sums[0]].to_numpy(float), "DENOM": df["DENOM"].to_numpy(float)},
        index=pd.Index(df["IID"].astype(str), name="IID"),
    )


def _pgsc_rows(scorefiles: list[Path], pgs_id: str) -> set[tuple[str, str, float]]:
    """``(ID, effect allele, weight)`` of every variant pgscatalog-match kept for ``pgs_id``."""
    rows: set[tuple[str, str, float]] = set()
    for sf in scorefiles:
        df = pd.read_csv(sf, sep="\t", dtype={"ID": str, "effect_allele": str})
        if pgs_id in df.columns:
            df = df[df[pgs_id].notna() & (df[pgs_id] != 0)]
            rows |= set(zip(df["ID"], df["effect_allele"], df[pgs_id].round(6), strict=True))
    return rows


def _expected_rows(path: Path, pgs_id: str) -> set[tuple[str, str, float]]:
    """The same triples from the generator's ground truth (``expected.score``)."""
    df = pd.read_csv(path, sep="\t", dtype={"ID": str, "A1": str})
    return set(zip(df["ID"], df["A1"], df[pgs_id].round(6), strict=True))


# ------------------------------------------------------------------------------ report
def _versions(args: argparse.Namespace) -> dict:
    out = {"pmed": __version__, "python": platform.python_version()}
    try:
        out["pmed_git"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip() or None  # fmt: skip
    except OSError:
        out["pmed_git"] = None
    first = subprocess.run([args.plink2, "--version"], capture_output=True, text=True)
    out["plink2"] = first.stdout.strip().splitlines()[0] if first.stdout else None
    if "pgscatalog" in args.tools:
        py = args.pgscatalog_venv / "bin" / "python"
        probe = subprocess.run(
            [str(py), "-c", "import importlib.metadata as m, platform; print(' '.join("
             "[m.version(p) for p in ('pgscatalog-utils', 'pgscatalog.match', 'pgscatalog.core',"
             " 'polars')] + [platform.python_version()]))"],
            capture_output=True, text=True,
        )  # fmt: skip
        parts = probe.stdout.split()
        if len(parts) == 5:
            keys = ("pgscatalog-utils", "pgscatalog.match", "pgscatalog.core", "polars",
                    "pgscatalog_python")  # fmt: skip
            out.update(dict(zip(keys, parts, strict=True)))
    return out


def _machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal")
        )  # fmt: skip
    except (OSError, StopIteration):
        mem = 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem / 2**20, 1),
        "os": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def _summary(res: CaseResult, tool: str, fmt: str) -> dict | None:
    ms = [m for m in res.runs if m.tool == tool and m.fmt == fmt]
    if not ms:
        return None
    walls = [m.wall_s for m in ms]
    return {
        "best_s": min(walls),
        "median_s": float(np.median(walls)),
        "peak_mib": max(m.peak_mib for m in ms),
        "n": len(ms),
        "argv": ms[0].argv,
    }


def summarise(res: CaseResult) -> dict:
    """Best/median wall time and peak memory per tool and format, and the ratios."""
    out: dict = {}
    for m in res.runs:
        key = f"{m.tool}/{m.fmt}"
        if key not in out:
            out[key] = _summary(res, m.tool, m.fmt)
    ratios: dict = {}
    for fmt in ("pgen", "bed", "vcf"):
        p, q = out.get(f"pmed/{fmt}"), out.get(f"plink2/{fmt}")
        if p and q:
            ratios[f"pmed_over_plink2_time_{fmt}"] = p["best_s"] / q["best_s"]
            ratios[f"pmed_over_plink2_mem_{fmt}"] = p["peak_mib"] / q["peak_mib"]
    f, mt = out.get("pgsc_format/pvar"), out.get("pgsc_match/pvar")
    if mt and f:
        # format then match (each best of N) summed; memory: the larger of the two steps
        out["pgsc_format_match/pvar"] = {
            "best_s": f["best_s"] + mt["best_s"],
            "peak_mib": max(f["peak_mib"], mt["peak_mib"]),
            "n": min(f["n"], mt["n"]),
        }
    for ours in ("pmed_match/pgen", "pmed/pgen"):
        p = out.get(ours)
        for theirs in ("pgsc_match/pvar", "pgsc_format_match/pvar"):
            q = out.get(theirs)
            if p and q:
                tag = f"{theirs.split('/')[0]}_over_{ours.split('/')[0]}"
                ratios[f"{tag}_time"] = q["best_s"] / p["best_s"]
                ratios[f"{tag}_mem"] = q["peak_mib"] / p["peak_mib"]
    out["ratios"] = ratios
    return out


def _fmt_s(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def _fmt_x(x: float | None) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.2f}×"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _sm(s: dict | None) -> tuple[str, str]:
    """(best seconds, peak MiB) of a summary, or dashes."""
    return (_fmt_s(s["best_s"]), f"{s['peak_mib']:.0f}") if s else ("-", "-")


def render(results: list[CaseResult], meta: dict, args: argparse.Namespace) -> str:
    """The Markdown report of this run (only numbers measured in it)."""
    m, v = meta["machine"], meta["versions"]
    lines = [
        "# Polygenic scores: speed, memory and agreement (pmed vs plink2 vs pgscatalog-utils)",
        "",
        results_header(meta.get("environment")),
        "",
        f"Written by `benchmarks/prs_benchmark.py` on {meta['date']} from the numbers of that run "
        f"only (cases: {', '.join(r.case.name for r in results)}; seed {args.seed}; "
        f"`--threads {args.threads}` for every tool; best of {args.repeats} run(s) per tool, "
        f"tools interleaved, pgscatalog steps best of {args.pgsc_repeats}; the whole run took "
        f"{meta['total_s']:.0f} s and left {meta['workdir_mib']:,} MiB in the work directory).",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} CPU cores, {m['ram_gib']} GiB RAM, {m['os']}; "
        f"load average at start {m['loadavg_at_start']}"
        + (
            " — **the machine was busy: these timings are not representative**."
            if m["loadavg_at_start"][0] > 0.5 * (m["cores"] or 1)
            else "."
        ),
        f"- Tools: pmed {v.get('pmed')} (git {v.get('pmed_git')}, Python {v.get('python')}); "
        f"{v.get('plink2')}; pgscatalog-utils {v.get('pgscatalog-utils', 'not run')} "
        f"(pgscatalog.match {v.get('pgscatalog.match', '-')}, pgscatalog.core "
        f"{v.get('pgscatalog.core', '-')}, polars {v.get('polars', '-')}, Python "
        f"{v.get('pgscatalog_python', '-')}, separate venv).",
        "- Wall time: start to exit of the child process (interpreter start-up included). Peak "
        "memory: the larger of the process's maximum RSS (GNU `time -f %M`) and the RSS sum of its "
        f"process tree polled every {args.poll:g} s; the largest over the repeats.",
        "- plink2 is given the already-matched variants (`ID A1 WEIGHT`, from the generator's "
        "ground truth); pmed reads the PGS Catalog scoring file and matches it itself, so pmed's "
        "time includes matching and writing its match logs.",
        "",
        "## pmed vs plink2 `--score`",
        "",
    ]
    head = ["case", "genotypes", "input", "plink2 s", "pmed s", "pmed / plink2", "≤ 1.5×",
            "≤ 1.2×", "pmed start-up s", "plink2 MiB", "pmed MiB", "max \\|ΔSUM\\|", "SUM ok",
            "DENOM ok"]  # fmt: skip
    rows = []
    for r in results:
        s = meta["summaries"][r.case.name]
        for fmt in ("pgen", "bed", "vcf"):
            p, q = s.get(f"pmed/{fmt}"), s.get(f"plink2/{fmt}")
            if not (p or q):
                continue
            c = r.checks.get(f"pmed_vs_plink2_{fmt}", {})
            ratio = s["ratios"].get(f"pmed_over_plink2_time_{fmt}")
            rows.append([
                f"{r.case.name} ({r.case.n_samples:,} × {r.case.n_variants:,})", r.case.shape,
                fmt, _sm(q)[0], _sm(p)[0], _fmt_x(ratio),
                _yes(ratio <= TIME_TARGET) if ratio is not None else "-",
                _yes(ratio <= MISSING_TARGET) if ratio is not None else "-",
                _sm(s.get("pmed_startup/-"))[0], _sm(q)[1], _sm(p)[1],
                f"{c['max_abs_diff']:.1e}" if c else "-",
                _yes(c["sums_within_tol"]) if c else "-",
                _yes(c["denom_equal"]) if c else "-",
            ])  # fmt: skip
    lines += [*_table(head, rows), ""]
    tols = {
        f"{r.case.name}/{k.rsplit('_', 1)[-1]}": f"{r.checks[k]['tolerance']:.0e}"
        for r in results
        for k in r.checks
        if k.startswith("pmed_vs_plink2") and r.checks[k]["tolerance"] > SUM_TOL
    }
    lines += [
        "SUM ok: every sample's pmed `SUM` equals plink2's `*_SUM` within 1e-6 where plink2's "
        "printed value is exact: complete hard calls with weights that are multiples of 1e-4 give "
        "sums that are multiples of 1e-4, which plink2's 6 significant digits show exactly while "
        "|SUM| < 100. With missing calls (mean-imputed) or fractional dosages the sums have more "
        "digits than plink2 prints, so the tolerance is half a unit of plink2's 6th printed digit "
        "plus 1e-6 (the same above |SUM| = 100)"
        + (f": {tols}" if tols else "")
        + "; pmed's own arithmetic is checked to 1e-9 against an independent float64 computation "
        "in `tests/genomics/prs/test_prs_missing.py`. DENOM ok: pmed's `DENOM` equals plink2's "
        f"for every sample. Targets: pmed's wall time ≤ {TIME_TARGET:g}× plink2's (issue 4, "
        f"complete hard calls) and ≤ {MISSING_TARGET:g}× with missing calls and dosages (issue "
        "24). pmed start-up: `pmed prs score --help` (Python interpreter and imports), a fixed "
        "cost included in every pmed time.",
        "",
    ]

    speed, agree = [], []
    for r in results:
        s = meta["summaries"][r.case.name]
        mt = s.get("pgsc_match/pvar")
        if not mt:
            continue
        rt, c = s["ratios"], r.checks.get("pmed_vs_pgsc_match_plink2", {})
        speed.append([
            f"{r.case.name} ({r.case.n_samples:,} × {r.case.n_variants:,})",
            *_sm(mt), *_sm(s.get("pgsc_format_match/pvar")),
            *_sm(s.get("pmed_match/pgen")), *_sm(s.get("pmed/pgen")),
            _fmt_x(rt.get("pgsc_match_over_pmed_match_time")),
            _fmt_x(rt.get("pgsc_match_over_pmed_match_mem")),
            _fmt_x(rt.get("pgsc_match_over_pmed_time")),
            _fmt_x(rt.get("pgsc_match_over_pmed_mem")),
            _fmt_x(rt.get("pgsc_format_match_over_pmed_time")),
        ])  # fmt: skip
        pm = next((x.extra.get("n_matched") for x in r.runs if x.tool == "pmed_match"), None)
        agree.append([
            r.case.name, f"{r.info['n_expected_matched']:,}",
            f"{r.checks['pgsc_n_matched']:,}" if "pgsc_n_matched" in r.checks else "-",
            _yes(r.checks["pgsc_equals_expected"]) if "pgsc_equals_expected" in r.checks else "-",
            f"{r.checks['pmed_n_matched']:,}" if "pmed_n_matched" in r.checks else "-",
            f"{pm:,}" if pm is not None else "-",
            f"{c['max_abs_diff']:.1e}" if c else "-",
            _yes(c["sums_within_tol"] and c["denom_equal"]) if c else "-",
        ])  # fmt: skip
    if speed:
        head2 = ["case", "pgsc match s", "MiB", "pgsc format+match s", "MiB", "pmed match s",
                 "MiB", "pmed score s", "MiB", "match / pmed match: time", "mem",
                 "match / pmed score: time", "mem", "format+match / pmed score: time"]  # fmt: skip
        head3 = ["case", "expected matches", "pgscatalog-match kept", "= expected (ID, allele, "
                 "weight)", "pmed matched", "pmed match-only", "max \\|ΔSUM\\| pmed vs plink2 on "
                 "pgsc's file", "ok"]  # fmt: skip
        lines += [
            "## pmed vs the PGS Catalog matcher (pgscatalog-utils)",
            "",
            *_table(head2, speed),
            "",
            "`pgsc match` is `pgscatalog-match` on the normalised scoring file and the target "
            "`.pvar`; `pgsc format+match` adds `pgscatalog-format` (formerly "
            "`pgscatalog-combine`), which must run first (time: sum of the two best runs; memory: "
            "the larger step). `pmed match` is pmed's matching alone through its Python API "
            "(read the scoring file and the target's variant table, `match_variants`); `pmed "
            "score` is the whole `pmed prs score` run on the `.pgen` (matching, scoring all "
            "samples, writing outputs). Ratios above 1 mean pmed is faster / smaller. Targets "
            f"(issue 4, on the 1,000,000-variant score): ≥ {PGSC_TARGET:g}× in time and memory.",
            "",
            *_table(head3, agree),
            "",
        ]
    verdicts = []
    for r in results:
        rt = meta["summaries"][r.case.name]["ratios"]
        for ours, label in (
            ("pmed_match", "pmed's matching alone"),
            ("pmed", "the whole pmed run"),
        ):
            t, mem = rt.get(f"pgsc_match_over_{ours}_time"), rt.get(f"pgsc_match_over_{ours}_mem")
            if r.case.name == "wide" and t is not None:
                both = rt.get(f"pgsc_format_match_over_{ours}_time")
                verdicts.append(
                    f"- wide, pgscatalog-match vs {label}: {t:.1f}× the time "
                    f"({_yes(t >= PGSC_TARGET)}), {mem:.1f}× the memory "
                    f"({_yes(mem >= PGSC_TARGET)})"
                    + (f"; pgscatalog-format + match: {both:.1f}× the time." if both else ".")
                )
        for fmt in ("pgen", "bed"):
            t = rt.get(f"pmed_over_plink2_time_{fmt}")
            if r.case.name.startswith(("biobank", "wide")) and t is not None:
                target = TIME_TARGET if r.case.name in ("biobank", "wide") else MISSING_TARGET
                verdicts.append(
                    f"- {r.case.name} ({r.case.shape}), {fmt}: pmed / plink2 = {t:.2f}× the time "
                    f"(≤ {target:g}×: {_yes(t <= target)})."
                )
    if verdicts:
        lines += ["## Against the issue's targets", "", *verdicts, ""]
    errors = {r.case.name: r.checks["pmed_match_only_error"] for r in results
              if "pmed_match_only_error" in r.checks}  # fmt: skip
    if errors:
        lines += [f"pmed's match-only step failed (Python API changed?): {errors}", ""]

    lines += ["## Data", ""]
    for r in results:
        i = r.info
        if r.case.real:
            lines.append(
                f"- **{r.case.name}**: {r.case.n_samples:,} samples × {r.case.n_variants:,} variants "
                f"(`{i['real']}`, real genotypes, linked, not modified) scored on `{i['scorefile']}` "
                f"({i['n_score_rows']:,} rows); {i['n_expected_matched']:,} matched by pmed, and "
                "plink2 given pmed's matches (no ground truth of the matching here)."
            )
            continue
        k = i["score_kinds"]
        lines.append(
            f"- **{r.case.name}**: {r.case.n_samples:,} samples × {r.case.n_variants:,} variants "
            f"(`plink2 --dummy … {r.case.missing:g} acgt --seed {i['seed']}`: {r.case.shape}"
            + ("; dosages written by `_imputed_dosages`" if r.case.dosage_freq else "")
            + "; "
            f"`.pvar` rewritten to chr 1–22, `chr:pos:REF:ALT` IDs); score `{i['pgs_id']}` with "
            f"{i['n_score_rows']:,} rows: effect allele = ALT {k['alt']:,}, REF {k['ref']:,}, "
            f"strand-flipped ALT {k['flip_alt']:,} / REF {k['flip_ref']:,}, strand-ambiguous "
            f"{k['ambiguous']:,}, absent from the target {i['n_absent_from_target']:,}; "
            f"{i['n_expected_matched']:,} expected matches "
            f"({'ambiguous kept' if i['keep_ambiguous'] else 'ambiguous dropped, as pgsc_calc'}); "
            f"{i['disk_mib']:,} MiB on disk, made in {i['generate_s']} s."
        )
    lines += [
        "",
        "## Commands",
        "",
        "From the repository root (the data are made by the same script, seeded):",
        "",
        "```bash",
        "bash benchmarks/prs_setup_pgscatalog.sh   # once: the pgscatalog-utils venv",
        shlex.join([".venv/bin/python", "benchmarks/prs_benchmark.py", *meta["argv"]]),
        "```",
        "",
        "Each timed command (first repeat; `$WORKDIR` = "
        f"`{args.workdir}`; raw numbers of every run in `{args.json}`):",
        "",
    ]
    for r in results:
        s = meta["summaries"][r.case.name]
        lines += [f"**{r.case.name}**", "", "```bash"]
        for key, val in s.items():
            if key == "ratios" or not val or "argv" not in val:
                continue
            argv = val["argv"]
            if key.startswith("pmed_match"):
                argv = [argv[0], "-c", "'<pmed match-only code, see PMED_MATCH_CODE>'", *argv[3:]]
                line = " ".join(argv)
            else:
                line = shlex.join(argv)
            lines.append(line.replace(str(args.workdir), "$WORKDIR").replace(f"{REPO}/", ""))
        lines += ["```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return out


# ------------------------------------------------------------------------------ CLI
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--cases",
        default="smoke",
        help=f"comma-separated, from {', '.join(CASES)} (default: smoke)",
    )
    ap.add_argument("--threads", type=int, default=2, help="threads for every tool (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per tool; best is reported")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help="scratch data and tool outputs (default /tmp/prsbench)",
    )
    ap.add_argument(
        "--pgsc-repeats",
        type=int,
        default=None,
        help="runs of the pgscatalog steps and pmed's match-only step (default: --repeats)",
    )
    ap.add_argument("--seed", type=int, default=20260401)
    ap.add_argument(
        "--tools",
        default="plink2,pmed,pgscatalog",
        help="any of plink2,pmed,pgscatalog (default: all)",
    )
    ap.add_argument(
        "--formats",
        default="pgen,bed,vcf",
        help="target formats to score (VCF only in cases that make one)",
    )
    ap.add_argument("--min-overlap", type=float, default=0.75)
    ap.add_argument(
        "--keep-ambiguous",
        action="store_true",
        help="expect strand-ambiguous variants kept (default: dropped, as pgsc_calc)",
    )
    ap.add_argument("--plink2", default=shutil.which("plink2") or "plink2")
    ap.add_argument(
        "--pmed",
        default=None,
        help="pmed command (default: the repo's .venv/bin/pmed, else pmed on PATH)",
    )
    ap.add_argument(
        "--pmed-python",
        default=sys.executable,
        help="Python with pmed, for timing pmed's matching step alone (default: this one)",
    )
    ap.add_argument(
        "--pgscatalog-venv",
        type=Path,
        default=DEFAULT_PGSC_VENV,
        help="venv made by benchmarks/prs_setup_pgscatalog.sh",
    )
    ap.add_argument("--doc", type=Path, default=DOC, help="Markdown report (written atomically)")
    ap.add_argument(
        "--out",
        type=Path,
        default=default_out("prs_benchmark"),
        help="output folder for the raw numbers (default out/prs_benchmark)",
    )
    ap.add_argument(
        "--json", type=Path, default=None, help="raw numbers (default OUT/prs_benchmark.json)"
    )
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between RSS samples")
    ap.add_argument("--regenerate", action="store_true", help="remake the data even if cached")
    args = ap.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    args.tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    if args.tools - {"plink2", "pmed", "pgscatalog"}:
        ap.error(f"unknown tool(s) {sorted(args.tools - {'plink2', 'pmed', 'pgscatalog'})}")
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if set(args.formats) - {"pgen", "bed", "vcf"} or not args.formats:
        ap.error("--formats takes pgen, bed and/or vcf")
    args.pgsc_repeats = min(args.repeats, args.pgsc_repeats or args.repeats)
    if args.repeats < 1 or args.threads < 1 or args.pgsc_repeats < 1:
        ap.error("--repeats, --pgsc-repeats and --threads must be at least 1")
    args.workdir = args.workdir.resolve()
    args.json = (args.json or args.out / "prs_benchmark.json").resolve()
    if args.pmed is None:
        local = REPO / ".venv" / "bin" / "pmed"
        args.pmed = [str(local)] if local.exists() else ["pmed"]
    else:
        args.pmed = shlex.split(args.pmed)
    return args


def _preflight(args: argparse.Namespace) -> None:
    """Every tool asked for is there before hours of data are made."""
    if shutil.which(args.plink2) is None:
        raise DataNotFoundError(
            f"plink2 not found: {args.plink2}",
            fix="install Debian's plink2 (apt-get install plink2) or pass --plink2 PATH",
        )
    if "pmed" in args.tools:
        probe = subprocess.run([*args.pmed, "prs", "score", "--help"], capture_output=True)
        if probe.returncode != 0:
            raise DataNotFoundError(
                f"`{shlex.join(args.pmed)} prs score` does not run",
                fix="install pmed with its genomics extra, or pass --tools plink2,pgscatalog",
            )
    if "pgscatalog" in args.tools:
        for tool in ("pgscatalog-format", "pgscatalog-match"):
            if not (args.pgscatalog_venv / "bin" / tool).exists():
                raise DataNotFoundError(
                    f"{tool} not found in {args.pgscatalog_venv}",
                    fix="run `bash benchmarks/prs_setup_pgscatalog.sh` (or pass --pgscatalog-venv,"
                    " or leave pgscatalog out of --tools)",
                )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write the Markdown report and the JSON of raw numbers."""
    args = parse_args(argv)
    env = run_environment(["pgenlib", "cyvcf2"], argv)
    _preflight(args)
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"{time.perf_counter() - t0:8.1f} s  {msg}", flush=True)

    meta = {
        "environment": env,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": _machine(),
        "versions": _versions(args),
    }
    results = [run_case(CASES[name], args, log) for name in args.cases]
    meta["summaries"] = {r.case.name: summarise(r) for r in results}
    meta["total_s"] = time.perf_counter() - t0
    meta["workdir_mib"] = round(
        sum(p.stat().st_size for p in args.workdir.rglob("*") if p.is_file() and "venv" not in
            p.relative_to(args.workdir).parts[0]) / 2**20, 1,
    )  # fmt: skip
    raw = {
        **meta,
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "cases": {
            r.case.name: {"info": r.info, "checks": r.checks,
                          "runs": [{**asdict(m), "peak_mib": m.peak_mib} for m in r.runs]}
            for r in results
        },
    }  # fmt: skip
    write_text_atomic(args.json, to_json(raw))
    write_text_atomic(args.doc, render(results, meta, args))
    failed = [
        f"{r.case.name}: {k}"
        for r in results
        for k, c in r.checks.items()
        if k.startswith("pmed_vs_plink2") and not (c["sums_within_tol"] and c["denom_equal"])
    ]
    log(f"report: {args.doc}; raw numbers: {args.json}")
    if failed:
        print("pmed and plink2 disagree: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
