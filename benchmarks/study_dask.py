"""Time one synthetic study in this process and on LocalClusters of 1, 2 and 4 Dask workers.

Makes a seeded synthetic binary study (``--patients`` rows, ``--features`` numeric columns of
which five carry the signal, 5 % missing values; candidates ``linear``, ``random_forest`` and
``lightgbm`` with ``--trees`` trees; ``--folds``-fold cross-validation repeated ``--repeats``
times; 100 bootstrap resamples; no HTML report) and runs it with :func:`pmed.study.run_study`:

0. once in this process, untimed (imports and caches warm up);
1. in this process (no scheduler: the splits are fitted one after the other);
2. for each ``--workers`` count (default 1, 2, 4): a ``LocalCluster`` of that many single-threaded
   worker processes is started (timed apart), the same study runs with ``scheduler=client``
   (:func:`pmed.scale.dask_client`), and the cluster is stopped.

Each run writes its own output folder; ``oof_predictions.csv`` and ``metrics.json`` of every
Dask run are compared byte for byte with the run in this process. Writes ``OUT/results.json``
and the page (default ``docs/results/study_dask.md``), each atomically::

    .venv/bin/python benchmarks/study_dask.py                              # defaults
    .venv/bin/python benchmarks/study_dask.py --patients 600 --repeats 2  # a quick check
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.io import write_text_atomic
from pmed.io.jsonio import to_json
from pmed.scale import dask_client
from pmed.study import run_study

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment  # noqa: E402

COMPARED = ("oof_predictions.csv", "metrics.json")


class Clock:
    """A progress reporter that notes when the cross-validation phase starts and ends."""

    def __init__(self) -> None:
        self.started = self.cv_done = None

    def start(self, total, description=""):
        self.started = time.perf_counter()

    def advance(self, description=None, n=1):
        if description and description.startswith("evaluated "):  # one per candidate, after its CV
            self.cv_done = time.perf_counter()

    @property
    def cv_s(self) -> float:
        return self.cv_done - self.started


def make_study(folder: Path, *, patients: int, features: int, folds: int, repeats: int, trees: int,
               seed: int = 0) -> Path:
    """Write ``patients.csv`` and ``study.yaml`` into ``folder``; return the study's path."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(patients, features))
    lin = X[:, :5] @ np.array([1.0, -0.8, 0.6, 0.5, -0.4]) + 0.5 * X[:, 0] * X[:, 1] - 0.5
    y = (rng.random(patients) < 1 / (1 + np.exp(-lin))).astype(int)
    table = pd.DataFrame(X.round(4), columns=[f"x{i:03d}" for i in range(features)])
    table[rng.random(table.shape) < 0.05] = np.nan
    table.insert(0, "patient_id", [f"S{i:06d}" for i in range(patients)])
    table["event"] = y
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "patients.csv", index=False)
    study = folder / "study.yaml"
    study.write_text(
        "name: study-dask-benchmark\n"
        "data: {patients: patients.csv}\n"
        "target: {column: event, task: binary}\n"
        "models:\n"
        "  - family: linear\n"
        f"  - {{family: random_forest, params: {{n_estimators: {trees}}}}}\n"
        f"  - {{family: lightgbm, params: {{n_estimators: {trees}}}}}\n"
        f"evaluation: {{folds: {folds}, repeats: {repeats}, bootstrap: 100, coefficient_bootstrap: 0, "
        "report: false}\n"
        f"seed: {seed}\n")
    return study


def same_outputs(a: Path, b: Path) -> bool:
    return all((a / f).read_bytes() == (b / f).read_bytes() for f in COMPARED)


def render(result: dict, env: dict | None) -> str:
    s = result["setup"]
    base = result["runs"][0]["run_s"]
    lines = [
        "# A study's cross-validation on Dask (`pmed run --scheduler`)", "",
        results_header(env), "",
        f"Synthetic binary study: {s['patients']} patients × {s['features']} numeric features (5 % "
        f"missing), candidates `linear`, `random_forest` and `lightgbm` ({s['trees']} trees each), "
        f"{s['folds']}-fold cross-validation × {s['repeats']} repeats = {s['splits']} splits per "
        f"candidate, {3 * s['splits']} fits in all, 100 bootstrap resamples, no HTML report. Made by "
        "`benchmarks/study_dask.py`.", "",
        "*In this process*: `run_study` without a scheduler (the splits are fitted one after the "
        "other). *LocalCluster, N workers*: a `LocalCluster` of N single-threaded worker processes, "
        "started before the run (*cluster start*, timed apart), then `run_study(scheduler=client)`; "
        "*run* is the whole study (reading the data, cross-validation, final refit, importance, "
        "bootstrap, plots, bundle), of which only the cross-validation fits run on the workers. "
        "*Cross-validation*: the part of the run from the splits being made to the last candidate's "
        "metrics (the fits, and each candidate's bootstrap CIs in the `pmed` process). An untimed run "
        "in this process comes first, so that imports and caches are warm for every timed run. "
        "*Same outputs*: `oof_predictions.csv` and `metrics.json` byte for byte equal to the run in "
        "this process.", "",
        "| run | cluster start (s) | run (s) | cross-validation (s) | run vs in process | same outputs |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        start = "–" if r["cluster_start_s"] is None else f"{r['cluster_start_s']:.1f}"
        same = "–" if r["same_outputs"] is None else ("yes" if r["same_outputs"] else "**no**")
        lines.append(f"| {r['label']} | {start} | {r['run_s']:.1f} | {r['cv_s']:.1f} | {base / r['run_s']:.2f}× "
                     f"| {same} |")
    lines += ["", f"The machine has {env.get('cpu_count', '?') if env else '?'} CPUs: more workers than "
              "CPUs share them, so the speed-up is bounded by the CPU count (and by the part of the run "
              "that stays in the `pmed` process).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out("study_dask"))
    ap.add_argument("--page", type=Path, default=Path("docs/results/study_dask.md"))
    ap.add_argument("--patients", type=int, default=3000)
    ap.add_argument("--features", type=int, default=40)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--render-only", action="store_true", help="re-render the page from OUT/results.json")
    args = ap.parse_args(argv)
    env = run_environment(["joblib", "dask", "distributed", "lightgbm"], argv)
    if args.render_only:
        result = json.loads((args.out / "results.json").read_text())
        write_text_atomic(args.page, render(result, result.get("env")))
        return 0

    study = make_study(args.out / "data", patients=args.patients, features=args.features, folds=args.folds,
                       repeats=args.repeats, trees=args.trees)
    run_study(study, args.out / "warm_up")
    clock = Clock()
    t0 = time.perf_counter()
    run_study(study, args.out / "in_process", progress=clock)
    runs = [{"label": "in process", "workers": 0, "cluster_start_s": None, "run_s": time.perf_counter() - t0,
             "cv_s": clock.cv_s, "same_outputs": None}]
    print(f"in process: {runs[0]['run_s']:.1f} s (cross-validation {runs[0]['cv_s']:.1f} s)", flush=True)
    for n in args.workers:
        t0 = time.perf_counter()
        with dask_client("local", n_workers=n) as client:
            client.wait_for_workers(n)
            started = time.perf_counter() - t0
            clock = Clock()
            t1 = time.perf_counter()
            run_study(study, args.out / f"workers_{n}", scheduler=client, progress=clock)
            took = time.perf_counter() - t1
        same = same_outputs(args.out / "in_process", args.out / f"workers_{n}")
        runs.append({"label": f"LocalCluster, {n} worker{'s' if n > 1 else ''}", "workers": n,
                     "cluster_start_s": started, "run_s": took, "cv_s": clock.cv_s, "same_outputs": same})
        print(f"{n} workers: cluster start {started:.1f} s, run {took:.1f} s (cross-validation "
              f"{clock.cv_s:.1f} s), same outputs: {same}", flush=True)
    setup = {"patients": args.patients, "features": args.features, "folds": args.folds, "repeats": args.repeats,
             "trees": args.trees, "splits": args.folds * args.repeats}
    result = {"setup": setup, "runs": runs, "env": env}
    write_text_atomic(args.out / "results.json", to_json(result))
    write_text_atomic(args.page, render(result, env))
    print(f"wrote {args.page}")
    return 0 if all(r["same_outputs"] in (None, True) for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
