"""pmed's spatial graphs and statistics against squidpy, on a Visium and a MERFISH section.

squidpy brings its own pins (numba, dask, spatialdata, …), so it runs in its own virtual
environment as a subprocess: this script writes each section once as an h5ad file that holds the
matrix both tools score (``X`` = pmed's log1p(normalize_total(1e4)) of the counts) and pmed's
graph (``obsp['pmed_connectivities']``), then a small script (``OUT/squidpy_check.py``) reads
them in the squidpy environment, builds squidpy's own graphs, scores the same genes on pmed's
graph, and writes ``.npz``/``.csv``/``.json`` files that this script compares.

Compared (same matrix, same graph):

- graphs: Visium ``grid`` (pmed from ``array_row``/``array_col``; squidpy
  ``spatial_neighbors(coord_type="grid", n_neighs=6)`` from the pixel coordinates); MERFISH
  ``knn`` with 6 neighbours (pmed symmetrised by union; squidpy directed);
- Moran's I (squidpy ``spatial_autocorr(mode="moran")``, row-normalised weights, analytic
  p-values) of every gene expressed in ≥ 10 observations: max |ΔI|, Spearman of I, top-50 overlap,
  max |Δ pval|;
- neighbourhood enrichment on MERFISH cell types (1,000 permutations each side, different
  random streams): Pearson of z-scores, signs of the strongest pairs;
- co-occurrence on MERFISH cell types at squidpy's default 50 edges.

Times are wall-clock seconds of the computation alone (data already in memory), best of
``--reps``; squidpy's numba functions are called once before timing (compilation excluded) and
run with ``NUMBA_NUM_THREADS`` = the CPUs given, its joblib parts with ``n_jobs=1``.

Setup (once; squidpy 1.8.3 needs Python ≥ 3.12, on Python 3.11 pip resolves squidpy 1.8.2, and
the two gave identical numbers here)::

    python3 -m venv /tmp/squidpy-env && /tmp/squidpy-env/bin/pip install squidpy
    # or, for the newest squidpy: python3.12 -m venv /tmp/squidpy312-env && ... pip install squidpy

Run from the repository root::

    .venv/bin/python benchmarks/spatial_squidpy.py --page docs/results/spatial_squidpy.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats as sstats

from pmed.io import write_text_atomic
from pmed.io.jsonio import to_json
from pmed.spatial.graph import graph_summary, spatial_neighbors
from pmed.spatial.stats import _expression, co_occurrence, morans_i, neighborhood_enrichment

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment, write_page  # noqa: E402

VISIUM = Path("/work/shared/data/spatial/visium_breast_cancer_blockA1.h5ad")
MERFISH = Path("/work/shared/data/spatial/merfish_nsclc_chen2024.h5ad")

SQUIDPY_SCRIPT = '''\
"""Written by benchmarks/spatial_squidpy.py: squidpy's graphs and statistics on the same data."""
import json, platform, sys, time, warnings
from importlib.metadata import version
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import squidpy as sq

warnings.filterwarnings("ignore")
out = Path(sys.argv[1]); reps = int(sys.argv[2])
res = {"versions": {p: version(p) for p in ("squidpy", "numpy", "pandas", "scipy", "anndata",
                                             "numba", "scikit-learn")},
       "python": platform.python_version(), "times": {}}


def best(fn, n=reps):
    ts, val = [], None
    for _ in range(n):
        t = time.perf_counter(); val = fn(); ts.append(time.perf_counter() - t)
    return val, min(ts)


def edges(a, key):
    A = sp.coo_matrix(a.obsp[key]); m = A.row != A.col
    return np.stack([A.row[m], A.col[m]], axis=1)


# ---- the graph of each section, then Moran's I on pmed's graph (so only the statistic differs)
sections = {}
for name, coord_type in (("visium", "grid"), ("merfish", "generic")):
    a = sections[name] = ad.read_h5ad(out / f"{name}.h5ad")
    genes = [str(g) for g in pd.read_csv(out / f"{name}_genes.csv")["gene"]]
    _, res["times"][f"{name}_graph"] = best(lambda: sq.gr.spatial_neighbors(a, coord_type=coord_type, n_neighs=6))
    np.save(out / f"sq_{name}_edges.npy", edges(a, "spatial_connectivities"))
    a.obsp["spatial_connectivities"] = a.obsp["pmed_connectivities"]
    df, res["times"][f"{name}_moran"] = best(lambda: sq.gr.spatial_autocorr(
        a, connectivity_key="spatial_connectivities", genes=genes, mode="moran", n_perms=None, copy=True,
        n_jobs=1))
    df.to_csv(out / f"sq_{name}_moran.csv")

# ---- MERFISH cell types: neighbourhood enrichment and co-occurrence
m = sections["merfish"]
m.obs["cell_type"] = m.obs["cell_type"].astype("category")
# warm numba up on a small copy, then time
small = m[:200].copy()
sq.gr.nhood_enrichment(small, cluster_key="cell_type", n_perms=10, seed=0, copy=True, n_jobs=1,
                       show_progress_bar=False)
sq.gr.co_occurrence(small, cluster_key="cell_type", copy=True)
(z, cnt), t = best(lambda: sq.gr.nhood_enrichment(m, cluster_key="cell_type", n_perms=1000, seed=0,
                                                  copy=True, n_jobs=1, show_progress_bar=False))
res["times"]["merfish_nhood"] = t
(occ, interval), t = best(lambda: sq.gr.co_occurrence(m, cluster_key="cell_type", copy=True))
res["times"]["merfish_co_occurrence"] = t
np.savez(out / "sq_merfish_stats.npz", z=np.asarray(z), count=np.asarray(cnt), occ=occ,
         interval=interval, cats=np.array([str(c) for c in m.obs["cell_type"].cat.categories], dtype="U"))
(out / "sq_results.json").write_text(json.dumps(res, indent=1))
'''


def _best(fn, reps: int) -> tuple[Any, float]:
    ts, val = [], None
    for _ in range(reps):
        t = time.perf_counter()
        val = fn()
        ts.append(time.perf_counter() - t)
    return val, min(ts)


def _edge_set(pairs: np.ndarray, n: int) -> set[int]:
    return set((pairs[:, 0].astype(np.int64) * n + pairs[:, 1]).tolist())


def _pmed_edges(A: sp.spmatrix) -> np.ndarray:
    C = sp.coo_matrix(A)
    return np.stack([C.row, C.col], axis=1)


def _moran_agreement(p: pd.DataFrame, q: pd.DataFrame) -> dict[str, Any]:
    q = q.reindex(p.index)
    di = (p["moran_i"] - q["I"]).abs()
    dp = (p["pval"] - q["pval_norm"]).abs()
    dq = (p["fdr"] - q["pval_norm_fdr_bh"]).abs()
    top_p = set(p.index[:50])
    top_q = set(q.sort_values("I", ascending=False, kind="stable").index[:50])
    return {"n_genes": int(len(p)), "max_abs_dI": float(di.max()),
            "spearman_I": float(sstats.spearmanr(p["moran_i"], q["I"]).statistic),
            "top50_overlap": len(top_p & top_q), "max_abs_dpval": float(dp.max()),
            "max_abs_dfdr": float(dq.max()),
            "max_abs_dvar": float(abs(p["var"].iloc[0] - q["var_norm"].iloc[0]))}


def run(args: argparse.Namespace, env: dict) -> dict:
    import anndata as ad

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"env": env, "pmed": {"times": {}}, "agreement": {}}
    T = res["pmed"]["times"]

    # ------------------------------------------------------------------ Visium
    v = ad.read_h5ad(VISIUM)
    v = v[v.obs["in_tissue"] == 1].copy()
    _, T["visium_graph"] = _best(lambda: spatial_neighbors(v, kind="grid"), args.reps)
    mi, T["visium_moran_all_genes"] = _best(lambda: morans_i(v), args.reps)
    res["pmed"]["visium_graph"] = graph_summary(v)
    genes = list(mi.index)
    res["pmed"]["visium_n_genes_scored"] = len(genes)
    res["pmed"]["visium_n_genes_total"] = int(v.n_vars)
    X = _expression(v, None, "benchmark")
    shared = ad.AnnData(X=sp.csr_matrix(X), obs=v.obs[["array_row", "array_col"]].copy(),
                        var=pd.DataFrame(index=v.var_names.astype(str)))
    shared.obsm["spatial"] = np.asarray(v.obsm["spatial"])
    shared.obsp["pmed_connectivities"] = v.obsp["spatial_connectivities"]
    shared.write_h5ad(out / "visium.h5ad")
    pd.DataFrame({"gene": genes}).to_csv(out / "visium_genes.csv", index=False)
    mi.to_csv(out / "pmed_visium_moran.csv")
    # permutation p-values on the top 20 genes (time only: streams differ from squidpy's)
    _, T["visium_moran_20genes_100perms"] = _best(
        lambda: morans_i(v, genes[:20], n_perms=100, seed=0), 1)

    # ------------------------------------------------------------------ MERFISH
    m = ad.read_h5ad(MERFISH)
    _, T["merfish_graph"] = _best(lambda: spatial_neighbors(m, kind="knn", n_neighs=6), args.reps)
    res["pmed"]["merfish_graph"] = graph_summary(m)
    mm, T["merfish_moran_all_genes"] = _best(lambda: morans_i(m), args.reps)
    Xm = _expression(m, None, "benchmark")
    shared = ad.AnnData(X=sp.csr_matrix(Xm), obs=m.obs[["cell_type"]].astype(str).copy(),
                        var=pd.DataFrame(index=m.var_names.astype(str)))
    shared.obsm["spatial"] = np.asarray(m.obsm["spatial"])
    shared.obsp["pmed_connectivities"] = m.obsp["spatial_connectivities"]
    shared.write_h5ad(out / "merfish.h5ad")
    pd.DataFrame({"gene": list(mm.index)}).to_csv(out / "merfish_genes.csv", index=False)
    mm.to_csv(out / "pmed_merfish_moran.csv")
    (z, cnt), T["merfish_nhood_1000perms"] = _best(
        lambda: neighborhood_enrichment(m, "cell_type", n_perms=1000, seed=0), args.reps)

    # ------------------------------------------------------------------ squidpy
    script = out / "squidpy_check.py"
    write_text_atomic(script, SQUIDPY_SCRIPT)
    envv = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    t0 = time.perf_counter()
    proc = subprocess.run([args.squidpy_python, str(script), str(out), str(args.reps)],
                          capture_output=True, text=True, env=envv, check=False)
    res["squidpy_wall"] = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"squidpy script failed:\n{proc.stderr[-4000:]}")
    sq = json.loads((out / "sq_results.json").read_text())
    sq["executable"] = str(args.squidpy_python)
    res["squidpy"] = sq

    # co-occurrence at squidpy's own edges (pmed also derives them itself)
    sqs = np.load(out / "sq_merfish_stats.npz", allow_pickle=False)
    (occ, edges, cats), T["merfish_co_occurrence_50"] = _best(
        lambda: co_occurrence(m, "cell_type", distances=50), args.reps)
    A = res["agreement"]
    A["co_occurrence_edges_max_abs_diff"] = float(np.max(np.abs(edges - sqs["interval"])))
    occ_sq_edges, _, _ = co_occurrence(m, "cell_type", distances=sqs["interval"].astype(float))
    a, b = np.nan_to_num(occ_sq_edges), sqs["occ"]
    A["co_occurrence_max_abs_diff"] = float(np.max(np.abs(a - b)))
    A["co_occurrence_max_rel_diff"] = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
    A["co_occurrence_nan_cells"] = int(np.isnan(occ_sq_edges).sum())
    occ32, _, _ = co_occurrence(m, "cell_type", distances=sqs["interval"].astype(float), float32=True)
    A["co_occurrence_float32_max_abs_diff"] = float(np.max(np.abs(np.nan_to_num(occ32) - b)))

    # graphs
    n = v.n_obs
    sq_v = _edge_set(np.load(out / "sq_visium_edges.npy"), n)
    pm_v = _edge_set(_pmed_edges(v.obsp["spatial_connectivities"]), n)
    A["visium_grid_edges"] = {"pmed_directed": len(pm_v), "squidpy_directed": len(sq_v),
                              "only_pmed": len(pm_v - sq_v), "only_squidpy": len(sq_v - pm_v),
                              "identical": pm_v == sq_v}
    nm = m.n_obs
    e = np.load(out / "sq_merfish_edges.npy")
    sq_m = _edge_set(e, nm)
    sq_m_sym = sq_m | _edge_set(e[:, ::-1], nm)
    pm_m = _edge_set(_pmed_edges(m.obsp["spatial_connectivities"]), nm)
    A["merfish_knn_edges"] = {"pmed_directed": len(pm_m), "squidpy_directed": len(sq_m),
                              "squidpy_symmetric": sq_m == _edge_set(e[:, ::-1], nm),
                              "squidpy_in_pmed": len(sq_m - pm_m) == 0,
                              "pmed_equals_squidpy_union_reverse": pm_m == sq_m_sym}

    # Moran's I
    qv = pd.read_csv(out / "sq_visium_moran.csv", index_col=0)
    qm = pd.read_csv(out / "sq_merfish_moran.csv", index_col=0)
    A["visium_moran"] = _moran_agreement(mi, qv)
    A["merfish_moran"] = _moran_agreement(mm, qm)
    rng = np.random.default_rng(0)
    pick = list(mi.index[:5]) + sorted(rng.choice(mi.index[100:], 5, replace=False).tolist())
    res["visium_moran_genes"] = {g: {"pmed": float(mi.loc[g, "moran_i"]),
                                     "squidpy": float(qv.loc[g, "I"]),
                                     "pmed_pval": float(mi.loc[g, "pval"]),
                                     "squidpy_pval": float(qv.loc[g, "pval_norm"])} for g in pick}
    res["visium_top50_squidpy"] = list(qv.sort_values("I", ascending=False).index[:50])
    res["visium_top50_pmed"] = list(mi.index[:50])

    # neighbourhood enrichment
    sq_cats = [str(c) for c in sqs["cats"]]
    zq = pd.DataFrame(sqs["z"], index=sq_cats, columns=sq_cats).loc[z.index, z.columns]
    cq = pd.DataFrame(sqs["count"], index=sq_cats, columns=sq_cats).loc[z.index, z.columns]
    ok = np.isfinite(z.to_numpy()) & np.isfinite(zq.to_numpy())
    zp, zs = z.to_numpy()[ok], zq.to_numpy()[ok]
    iu = np.triu_indices(len(z))
    order = np.argsort(-np.abs(zs))
    A["nhood"] = {"counts_identical": bool((cnt.to_numpy() == cq.to_numpy()).all()),
                  "pearson_z": float(np.corrcoef(zp, zs)[0, 1]),
                  "max_abs_dz": float(np.max(np.abs(zp - zs))),
                  "median_abs_dz": float(np.median(np.abs(zp - zs))),
                  "sign_agree_top10": int((np.sign(zp[order[:10]]) == np.sign(zs[order[:10]])).sum()),
                  "sign_agree_all": int((np.sign(zp) == np.sign(zs)).sum()), "n_cells": int(ok.sum())}
    res["nhood_z_pmed"] = {f"{a}|{b}": float(z.iloc[i, j]) for i, j in zip(*iu, strict=True)
                           for a, b in [(z.index[i], z.columns[j])]}
    res["nhood_z_squidpy"] = {f"{a}|{b}": float(zq.iloc[i, j]) for i, j in zip(*iu, strict=True)
                              for a, b in [(z.index[i], z.columns[j])]}
    res["nhood_counts"] = {f"{a}|{b}": int(cnt.iloc[i, j]) for i, j in zip(*iu, strict=True)
                           for a, b in [(z.index[i], z.columns[j])]}
    return res


def render(res: dict, env: dict) -> str:
    A, T, sq = res["agreement"], res["pmed"]["times"], res["squidpy"]
    st = sq["times"]
    vm, mm, nh = A["visium_moran"], A["merfish_moran"], A["nhood"]
    ge, me = A["visium_grid_edges"], A["merfish_knn_edges"]
    sv = ", ".join(f"{k} {v}" for k, v in sq["versions"].items())
    out = [
        "# Spatial graphs and statistics: pmed against squidpy", "", results_header(env),
        f"- squidpy environment: Python {sq['python']}, {sv} (`{sq.get('executable', '?')}`, "
        "`pip install squidpy`)",
        "",
        "Data: Visium breast cancer block A1 (3,796 spots in tissue, 14,664 genes) and MERFISH "
        "NSCLC (Chen 2024; 3,177 cells, 479 genes, 7 cell types). Both tools score the same "
        "matrix (pmed's log1p(normalize_total(1e4)) of the counts, written to one h5ad file) on "
        "the same graph (pmed's, passed to squidpy as `connectivity_key`). Produced by "
        "`benchmarks/spatial_squidpy.py`.",
        "", "## Graphs", "",
        "| section | graph | pmed edges (directed) | squidpy edges (directed) | agreement |",
        "|---|---|---:|---:|---|",
        f"| Visium | grid, 6 neighbours | {ge['pmed_directed']:,} | {ge['squidpy_directed']:,} | "
        f"{'identical' if ge['identical'] else 'DIFFER'} (only pmed {ge['only_pmed']}, only "
        f"squidpy {ge['only_squidpy']}) |",
        f"| MERFISH | kNN, k = 6 | {me['pmed_directed']:,} | {me['squidpy_directed']:,} | squidpy's "
        f"graph is {'symmetric' if me['squidpy_symmetric'] else 'directed (not symmetric)'}; pmed "
        f"= squidpy ∪ its reverse: {me['pmed_equals_squidpy_union_reverse']} |",
        "", "## Moran's I (analytic p-values, row-normalised weights)", "",
        "| section | genes | max \\|ΔI\\| | Spearman of I | top-50 overlap | max \\|Δp\\| | "
        "max \\|ΔFDR\\| |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| Visium | {vm['n_genes']:,} | {vm['max_abs_dI']:.2e} | {vm['spearman_I']:.6f} | "
        f"{vm['top50_overlap']}/50 | {vm['max_abs_dpval']:.2e} | {vm['max_abs_dfdr']:.2e} |",
        f"| MERFISH | {mm['n_genes']:,} | {mm['max_abs_dI']:.2e} | {mm['spearman_I']:.6f} | "
        f"{mm['top50_overlap']}/50 | {mm['max_abs_dpval']:.2e} | {mm['max_abs_dfdr']:.2e} |",
        "", "Selected Visium genes (top 5 of pmed, 5 at random below rank 100):", "",
        "| gene | pmed I | squidpy I | pmed p | squidpy p |", "|---|---:|---:|---:|---:|",
    ]
    for g, r in res["visium_moran_genes"].items():
        out.append(f"| {g} | {r['pmed']:.8f} | {r['squidpy']:.8f} | {r['pmed_pval']:.3g} | "
                   f"{r['squidpy_pval']:.3g} |")
    out += [
        "", "## Neighbourhood enrichment (MERFISH cell types, 1,000 permutations each)", "",
        f"- Edge counts between types identical: {nh['counts_identical']}",
        f"- z-scores ({nh['n_cells']} type pairs): Pearson {nh['pearson_z']:.4f}, median |Δz| "
        f"{nh['median_abs_dz']:.3f}, max |Δz| {nh['max_abs_dz']:.3f} (the two tools draw different "
        "permutations, so z differs by permutation noise)",
        f"- Sign agrees on {nh['sign_agree_top10']}/10 strongest pairs and {nh['sign_agree_all']}/"
        f"{nh['n_cells']} pairs",
        "", "## Co-occurrence (MERFISH cell types, squidpy's default 50 edges)", "",
        f"- Edges derived by pmed vs squidpy: max |Δ| {A['co_occurrence_edges_max_abs_diff']:.3g}",
        f"- Ratios at squidpy's edges: max |Δ| {A['co_occurrence_max_abs_diff']:.3g}, max relative "
        f"{A['co_occurrence_max_rel_diff']:.3g} (NaN in pmed where squidpy writes 0: "
        f"{A['co_occurrence_nan_cells']} cells); with `float32=True` (coordinates rounded to "
        f"float32 as squidpy does) max |Δ| {A['co_occurrence_float32_max_abs_diff']:.3g}",
        "", f"## Times (seconds, best of {env.get('reps', 'reps')}; computation only)", "",
        "| step | pmed | squidpy |", "|---|---:|---:|",
        f"| Visium grid graph | {T['visium_graph']:.3f} | {st['visium_graph']:.3f} |",
        f"| Visium Moran's I, {vm['n_genes']:,} genes (pmed includes normalising the counts) | "
        f"{T['visium_moran_all_genes']:.2f} | {st['visium_moran']:.2f} |",
        f"| MERFISH kNN graph | {T['merfish_graph']:.3f} | {st['merfish_graph']:.3f} |",
        f"| MERFISH Moran's I, {mm['n_genes']} genes | {T['merfish_moran_all_genes']:.3f} | "
        f"{st['merfish_moran']:.3f} |",
        f"| MERFISH neighbourhood enrichment, 1,000 permutations | {T['merfish_nhood_1000perms']:.2f} "
        f"| {st['merfish_nhood']:.2f} |",
        f"| MERFISH co-occurrence, 49 distances | {T['merfish_co_occurrence_50']:.2f} | "
        f"{st['merfish_co_occurrence']:.2f} |",
        f"| Visium Moran's I, 20 genes × 100 permutations | {T['visium_moran_20genes_100perms']:.2f} "
        "| – |",
        "",
    ]
    out += [
        "## Reading it", "",
        "- Graphs: the Visium grid is the same edge set whether built from the array indices "
        "(pmed) or from the pixel coordinates with squidpy's kNN-plus-median-cut-off. squidpy's "
        "generic kNN graph is directed (row i holds i's own 6 neighbours); pmed symmetrises by "
        "union, so a cell can have more than 6 neighbours. Statistics were compared on the same "
        "(pmed's) graph.",
        "- Moran's I: the same formula on the same row-normalised weights; the differences are "
        "floating-point rounding (summation order). Analytic p-values are one-sided in the "
        "observed direction in both (squidpy's default `two_tailed=False`); FDR is "
        "Benjamini–Hochberg over the same genes.",
        "- Neighbourhood enrichment: observed counts are exact; z-scores differ only by "
        "permutation noise (each tool draws its own 1,000 permutations), largest in absolute "
        "terms for the largest z (the sd of the permuted counts is estimated to a few per cent).",
        "- Co-occurrence: squidpy counts pairs *within* each distance (cumulative), "
        "casting coordinates to float32; pmed counts the same pairs by default (`cumulative=True`) "
        "and, with `float32=True`, reproduces squidpy's numbers exactly. With float64 coordinates a few pairs lying on a "
        "distance edge change side.",
        "- Times are the best of a few runs on a machine shared with other jobs (see the load average above): "
        "they show orders of magnitude, not a careful speed comparison. pmed's Moran time includes "
        "normalising the counts; squidpy's is on the already normalised matrix.",
        "",
    ]
    if res.get("notes"):
        out += [res["notes"].strip(), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out("spatial_squidpy"))
    ap.add_argument("--page", type=Path, default=None, help="write the results page here")
    ap.add_argument("--squidpy-python", default="/tmp/squidpy-env/bin/python")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="numba threads of squidpy")
    ap.add_argument("--notes", type=Path, default=None, help="a Markdown file for 'Reading it'")
    ap.add_argument("--render-only", action="store_true", help="re-render from OUT/results.json")
    args = ap.parse_args(argv)
    env = run_environment(["anndata", "scanpy"], argv)
    env["reps"] = args.reps
    if args.render_only:
        result = json.loads((args.out / "results.json").read_text())
    else:
        result = run(args, env)
        write_text_atomic(args.out / "results.json", to_json(result))
    print(json.dumps(result["agreement"], indent=1, default=str))
    print(json.dumps(result["pmed"]["times"], indent=1), json.dumps(result["squidpy"]["times"], indent=1))
    return write_page(result, args, env, render)


if __name__ == "__main__":
    raise SystemExit(main())
