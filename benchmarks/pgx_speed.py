"""Speed of ``pmed.genomics.pgx`` on whole-genome-sized and cohort-sized VCFs.

Usage::

    python benchmarks/pgx_speed.py [--out DIR] [--wgs-lines 4500000] [--samples 1000]

1. *WGS*: one sample, ``--wgs-lines`` background SNVs spread over chr1-22/X (a 30x genome has
   about 4.5 million variant records) plus every PharmCAT position with random genotypes;
   bgzipped and tabix-indexed (``bgzip``/``tabix`` from htslib). Times ``call_vcf`` on the
   indexed file (region queries through cyvcf2) and on a plain streamed read of the same file.
2. *Cohort*: ``--samples`` samples x (every PharmCAT position + 20,000 background SNVs), bgzipped;
   times ``call_vcf`` (all genes, phenotypes and recommendations) and ``call_cohort``.
3. With ``--pypgx PATH``: PyPGx 0.27.0 (installed in its own venv) and pmed on a phased copy of
   the WGS VCF, for the 13 genes both call.

Timings are wall-clock seconds after start-up (package data loaded once beforehand) on one
process; the script prints a Markdown table for ``docs/benchmarks.md``, headed by the run's
commit, machine load and package versions (``benchmarks/_common.py``), and writes it to
``OUT/results.md``. The generated VCFs stay in ``--out`` (default ``out/pgx_speed``) and are reused.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POSITIONS = ROOT.parent / "shared" / "data" / "pgx" / "pharmcat_v3.1.1" / "pharmcat_positions.vcf"
CHROMS = [str(c) for c in range(1, 23)] + ["X"]
LENGTHS = {  # GRCh38 lengths (Mb, rounded down) for drawing background positions
    "1": 248, "2": 242, "3": 198, "4": 190, "5": 181, "6": 170, "7": 159, "8": 145, "9": 138,
    "10": 133, "11": 135, "12": 133, "13": 114, "14": 107, "15": 101, "16": 90, "17": 83,
    "18": 80, "19": 58, "20": 64, "21": 46, "22": 50, "X": 156,
}


def _pgx_records() -> list[tuple[str, int, str, str, str]]:
    out = []
    for line in POSITIONS.read_text().splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        out.append((f[0].removeprefix("chr"), int(f[1]), f[2], f[3], f[4]))
    return out


def _write_vcf(path: Path, n_background: int, n_samples: int, rng: np.random.Generator) -> Path:
    pgx = _pgx_records()
    weights = np.array([LENGTHS[c] for c in CHROMS], dtype=float)
    chroms = rng.choice(len(CHROMS), size=n_background, p=weights / weights.sum())
    recs: dict[str, list] = {c: [] for c in CHROMS}
    for c_idx in range(len(CHROMS)):
        c = CHROMS[c_idx]
        n = int((chroms == c_idx).sum())
        pos = np.sort(rng.integers(1_000_000, LENGTHS[c] * 1_000_000, size=n))
        recs[c] = [(int(p), "A", "G") for p in pos]
    for c, p, _rs, ref, alts in pgx:
        if c in recs:
            recs[c].append((p, ref, alts.split(",")[0]))
    gts = np.array(["0/0", "0/1", "1/1"])
    samples = [f"S{i:04d}" for i in range(n_samples)]
    plain = path.with_suffix("")
    with open(plain, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n")
        for c in CHROMS:
            fh.write(f"##contig=<ID=chr{c},length={LENGTHS[c] * 1_000_000 + 999_999}>\n")
        fh.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples) + "\n")
        for c in CHROMS:
            for p, ref, alt in sorted(recs[c]):
                g = gts[rng.choice(3, size=n_samples, p=[0.7, 0.25, 0.05])]
                fh.write(f"chr{c}\t{p}\t.\t{ref}\t{alt}\t50\tPASS\t.\tGT\t" + "\t".join(g) + "\n")
    subprocess.run(["bgzip", "-f", "-@", "1", str(plain)], check=True)
    return path


def _timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


#: Genes both PyPGx 0.27 (run-chip-pipeline) and pmed call from a VCF.
PYPGX_GENES = ["CYP2B6", "CYP2C19", "CYP2C9", "CYP3A4", "CYP3A5", "CYP4F2", "DPYD", "NUDT15",
               "SLCO1B1", "TPMT", "UGT1A1", "VKORC1", "CYP2C8"]


def _pypgx_comparison(args, wgs: Path, call_vcf) -> list[tuple[str, int, float]]:
    """PyPGx (separate venv) and pmed on the same *phased* copy of the WGS VCF.

    Without its 1KGP bundle PyPGx cannot phase, so both tools get the genotypes written as
    phased (``0|1``); PyPGx runs once per gene (``pypgx run-chip-pipeline GENE ... --assembly
    GRCh38``), as its CLI requires.
    """
    phased = args.work / "wgs_phased.vcf.gz"
    if not phased.exists():
        subprocess.run(f"zcat {wgs} | sed 's#\t0/1$#\t0|1#; s#\t1/1$#\t1|1#; s#\t0/0$#\t0|0#'"
                       f" | bgzip -@ 1 > {phased}", shell=True, check=True)
        subprocess.run(["tabix", "-f", "-p", "vcf", str(phased)], check=True)
    t0 = time.perf_counter()
    for gene in PYPGX_GENES:
        out = args.work / f"pypgx_{gene}"
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([args.pypgx, "run-chip-pipeline", gene, str(out), str(phased),
                        "--assembly", "GRCh38"], check=True, capture_output=True)
    t_pypgx = time.perf_counter() - t0
    t, _ = _timed(call_vcf, phased, genes=PYPGX_GENES)
    n = args.wgs_lines
    return [
        (f"PyPGx 0.27.0 run-chip-pipeline, {len(PYPGX_GENES)} genes (phased WGS VCF)", n, t_pypgx),
        (f"pmed call_vcf, same {len(PYPGX_GENES)} genes (phased WGS VCF)", n, t),
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", "--work", dest="work", metavar="DIR", type=Path,
                    default=default_out("pgx_speed"),
                    help="generated VCFs and results.md (default out/pgx_speed; --work: old name)")
    ap.add_argument("--wgs-lines", type=int, default=4_500_000)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--background", type=int, default=20_000)
    ap.add_argument("--skip-cohort", action="store_true", help="only the whole-genome runs")
    ap.add_argument("--pypgx", help="pypgx executable of a separate venv (pip install pypgx "
                    "'pandas<2.2') to compare with")
    args = ap.parse_args(argv)
    env = run_environment(["cyvcf2"], argv)
    if not shutil.which("bgzip") or not shutil.which("tabix"):
        raise SystemExit("needs htslib's bgzip and tabix on PATH")
    from pmed.genomics.pgx import call_cohort, call_vcf
    from pmed.genomics.pgx._data import MATCHER_GENES, definitions, guidelines, phenotypes
    from pmed.genomics.pgx.matcher import gene_model

    # start-up: load the package data, compile the gene models, import cyvcf2 (once per process)
    definitions(), phenotypes(), guidelines()
    for g in MATCHER_GENES:
        gene_model(g)
    import cyvcf2  # noqa: F401
    args.work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []

    wgs = args.work / "wgs.vcf.gz"
    if not wgs.exists():
        t, _ = _timed(_write_vcf, wgs, args.wgs_lines, 1, rng)
        print(f"wrote {wgs} ({wgs.stat().st_size / 1e6:.0f} MB) in {t:.0f} s")
    if not Path(str(wgs) + ".tbi").exists():
        subprocess.run(["tabix", "-p", "vcf", str(wgs)], check=True)
    times = []
    for _ in range(5):
        t, res = _timed(call_vcf, wgs)
        times.append(t)
    rows.append(("1 sample, WGS-size VCF (tabix index, cyvcf2 regions), median of 5",
                 args.wgs_lines, float(np.median(times))))
    os.rename(str(wgs) + ".tbi", str(wgs) + ".tbi.off")
    try:
        t2, res2 = _timed(call_vcf, wgs)
    finally:
        os.rename(str(wgs) + ".tbi.off", str(wgs) + ".tbi")
    assert res.calls_table()["diplotypes"].tolist() == res2.calls_table()["diplotypes"].tolist()
    rows.append(("1 sample, WGS-size VCF (no index, streamed)", args.wgs_lines, t2))

    if args.skip_cohort:
        args.samples = 0
    cohort = args.work / f"cohort{args.samples}.vcf.gz"
    if args.samples:
        if not cohort.exists():
            t, _ = _timed(_write_vcf, cohort, args.background, args.samples, rng)
            print(f"wrote {cohort} ({cohort.stat().st_size / 1e6:.0f} MB) in {t:.0f} s")
        t, res = _timed(call_vcf, cohort)
        rows.append((f"{args.samples} samples: calls + phenotypes + recommendations",
                     args.background, t))
        t, feats = _timed(call_cohort, cohort)
        rows.append((f"{args.samples} samples: call_cohort features", args.background, t))

    if args.pypgx:
        rows += _pypgx_comparison(args, wgs, call_vcf)

    lines = [
        "# Speed of pmed.genomics.pgx", "", results_header(env), "",
        f"Processor: {platform.processor() or platform.machine()}; one process.", "",
        "| run | background records | seconds |", "|---|---:|---:|",
        *(f"| {name} | {n:,} | {t:.2f} |" for name, n, t in rows), "",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    (args.work / "results.md").write_text(text)


if __name__ == "__main__":
    main()
