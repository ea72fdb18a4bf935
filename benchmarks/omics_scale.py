"""Scale benchmark of ``pmed omics pipeline``: 100,000 cells resampled from real PBMC profiles.

Cells are drawn with replacement from the Kang et al. (2018) PBMCs in
``../shared/data/single_cell/muscat_kang_example_sce.h5ad`` (1,556 cells × 1,267 genes). Each
synthetic cell takes a real cell's batch (``sample_id``: 2 patients × ctrl/stim), label and
condition; its counts are Poisson(mean × f), where mean is the average count profile of that
cell and four random real cells of the same label and sample, and f ~ LogNormal(0, 0.3) a
per-cell library factor. (Redrawing single cells' counts instead makes ~64 noisy copies of each
real cell, which Leiden then splits into hundreds of tiny clusters.) To give the matrix a realistic width, by
default 15,000 sparse "background" genes are added (Poisson, mean 0.02 per cell: ~300 extra
non-zeros per cell), making 16,267 genes.

The whole pipeline runs as a user would run it (QC, scrublet, normalisation, HVG, PCA, Harmony,
Leiden, UMAP, annotation, signatures, metrics, Wilcoxon markers, composition, pseudobulk PyDESeq2
stim vs ctrl paired by patient, plots, h5ad), with the thread count capped (default 2). Peak
memory is the process's maximum resident set size.

Usage::

    python benchmarks/omics_scale.py --cells 100000 --threads 2 \
        --out out/omics_scale --report docs/results/omics_scale.md

The report opens with the run's commit, machine load and package versions
(``benchmarks/_common.py``); it is also written to ``OUT/report.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment  # noqa: E402


def _set_threads(n: int) -> None:
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[v] = str(n)


def make_cells(n_cells: int, *, extra_genes: int, seed: int = 0, mix: int = 5):
    """Resample ``n_cells`` from the Kang PBMCs (see module docstring)."""
    import numpy as np
    import pandas as pd
    from scipy import sparse

    from pmed.datasets._paths import require_path, shared_data_dir
    from pmed.omics import read_h5ad

    src = read_h5ad(require_path(shared_data_dir() / "data/single_cell/muscat_kang_example_sce.h5ad",
                                 what="Kang PBMC example data"))
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, src.n_obs, size=n_cells)
    C = sparse.csr_matrix(src.layers["counts"]).astype(np.float32)
    # each new cell's expected counts: the mean of `mix` real cells of the same type and sample
    # (the picked one and mix - 1 partners), so copies of one real cell do not form their own
    # tight neighbourhoods; then a per-cell library factor and Poisson noise
    key = (src.obs["cluster_id"].astype(str) + "|" + src.obs["sample_id"].astype(str)).to_numpy()
    members = {k: np.flatnonzero(key == k) for k in np.unique(key)}
    partners = np.stack([pick] + [np.array([rng.choice(members[key[i]]) for i in pick])
                                  for _ in range(mix - 1)], axis=1)
    rows = np.repeat(np.arange(n_cells), mix)
    M = sparse.csr_matrix((np.full(rows.size, 1.0 / mix, np.float32), (rows, partners.ravel())),
                          shape=(n_cells, src.n_obs))
    f = rng.lognormal(0.0, 0.3, size=n_cells).astype(np.float32)
    X = sparse.csr_matrix((M @ C).multiply(f[:, None]))
    X.data = rng.poisson(X.data).astype(np.float32)
    X.eliminate_zeros()
    genes = list(src.var_names)
    if extra_genes:
        nnz = rng.poisson(0.02 * extra_genes, size=n_cells)
        rows = np.repeat(np.arange(n_cells), nnz)
        cols = rng.integers(0, extra_genes, size=int(nnz.sum()))
        B = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                              shape=(n_cells, extra_genes))
        B.sum_duplicates()
        X = sparse.hstack([X, B], format="csr")
        genes += [f"BG{i:05d}" for i in range(extra_genes)]
    import anndata as ad

    obs = src.obs.iloc[pick][["sample_id", "group_id", "cluster_id"]].copy()
    obs.index = pd.Index([f"cell{i:07d}" for i in range(n_cells)])
    obs["patient"] = obs["sample_id"].astype(str).str.replace(r"^(ctrl|stim)", "", regex=True)
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(genes)))
    a.layers["counts"] = X
    return a


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=100_000)
    p.add_argument("--extra-genes", type=int, default=15_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=default_out("omics_scale"))
    p.add_argument("--report", type=Path, default=None, help="write a Markdown report here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-doublets", action="store_true", help="skip scrublet")
    args = p.parse_args(argv)
    env = run_environment(["scanpy", "anndata", "harmonypy", "pydeseq2", "leidenalg"], argv)
    _set_threads(args.threads)

    import resource

    import numpy as np

    from pmed.omics.pipeline import run_pipeline

    t0 = time.perf_counter()
    a = make_cells(args.cells, extra_genes=args.extra_genes, seed=args.seed)
    nnz_per_cell = a.X.nnz / a.n_obs
    n_obs, n_vars, x_mb = a.n_obs, a.n_vars, a.X.data.nbytes / 1e6
    args.out.mkdir(parents=True, exist_ok=True)
    src = args.out / "input.h5ad"  # run from a file, as the CLI does (no second in-memory copy)
    a.write_h5ad(src)
    del a
    t_make = time.perf_counter() - t0
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in ("numba", "h5py", "matplotlib", "PIL", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    t1 = time.perf_counter()
    s = run_pipeline(src, batch_key="sample_id", label_key="cluster_id", out=args.out,
                     condition_key="group_id", test="stim", reference="ctrl", pair_key="patient",
                     de_by_cell_type=False, n_jobs=args.threads, random_state=args.seed,
                     doublets=not args.no_doublets)
    wall = time.perf_counter() - t1
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB
    import anndata as ad

    proc = ad.read_h5ad(args.out / "processed.h5ad", backed="r")
    sparse_x = type(proc.X).__name__
    m = s["metrics"]
    lines = [
        "# Scale benchmark: single-cell pipeline on resampled PBMCs",
        "",
        results_header(env),
        "",
        f"Machine: {os.cpu_count()} CPU cores visible, {args.threads} threads allowed "
        "(OMP/BLAS/numba), no GPU. Python " + sys.version.split()[0] + ".",
        "",
        f"Data: {n_obs:,} cells × {n_vars:,} genes resampled from the Kang PBMCs "
        f"(4 batches = `sample_id`), {nnz_per_cell:.0f} non-zeros per cell, CSR float32 "
        f"({x_mb:.0f} MB of values); simulation and writing `input.h5ad` took {t_make:.1f} s "
        "(not counted).",
        "",
        f"**Pipeline wall time: {wall:.1f} s ({wall / 60:.2f} min); peak resident memory "
        f"{peak_gb:.2f} GB** (maximum RSS of the process, including the simulated input).",
        "",
        "| step | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.1f} |" for k, v in s["timings_s"].items()]
    lines += [
        "",
        f"Cells after QC: {s['n_cells']:,}; Leiden clusters: {s['n_clusters']}; "
        f"`processed.h5ad` X stored as `{sparse_x}` (sparse).",
        "",
        "Integration metrics on 5,000 scored cells (neighbours among all cells):",
        "",
        "| | iLISI | kBET acceptance | cLISI (norm.) | ARI Leiden vs labels |",
        "|---|---:|---:|---:|---:|",
    ]
    for k in ("before", "after"):
        r = m[k]
        lines.append(f"| {k} | {r['ilisi_mean']:.2f} | {r['kbet_acceptance']:.2f} | "
                     f"{r['clisi_normalised']:.3f} | {r.get('ari', np.nan):.3f} |")
    lines += ["", f"Pseudobulk DE: {s.get('de_design')}, {s.get('de_n_fdr_0.05')} genes at "
              "FDR < 0.05.", ""]
    text = "\n".join(lines)
    print(text)
    from pmed.io import write_text_atomic

    for path in (args.out / "report.md", args.report):
        if path is not None:
            write_text_atomic(path, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
