"""Speed of ``pmed monitor`` on 1,000,000 rows × 100 features, against Evidently (issue #21, point 5).

Makes seeded synthetic data — a reference and a current table of ``--rows`` rows (default
1,000,000) × 100 features: 90 numeric (normal, log-normal, two-component mixtures, gamma,
uniform, Poisson counts and 5-level scores, rounded so that values tie; 5 % missing in a third of
them) and 10 categorical (text categories, 3–15 levels with Zipf-like shares so that some are rare,
0.5 % missing) — and injects known shifts into the current table:

* ``num_00`` mean +0.5 SD, ``num_01`` SD ×1.5, ``num_02`` missing 5 % → 20 %, ``num_03`` mean
  +0.02 SD (trivial: should *not* be flagged at any size);
* ``cat_00`` its most common category loses 15 points to the others, ``cat_01`` a new category in
  10 % of rows.

Both tables go to Parquet under ``--out`` (with ``--sub-rows``-row subsamples, default 100,000:
their first rows, the rows being independent). Then, each in its own subprocess, one after the
other, on the same files:

(a) pmed: read the Parquet files, :func:`pmed.monitor.reference_summaries` on the reference (done
    once, when a model is bundled) and :func:`pmed.monitor.drift_report` of the current table
    against those summaries, each best of ``--repeats`` (default 3);
(b) pmed end to end: ``pmed run`` trains a linear binary model on a 20,000-row sample of the
    reference (plus a simulated outcome; 3 folds, 20 bootstrap resamples), then
    ``pmed monitor --model … --data current.parquet --out …`` runs as a subprocess: reading the
    file, schema checks, predicting every row, drift, writing ``drift.json``, the CSVs, the
    plots and ``dashboard.html``. The bundle's reference summaries are of its 20,000 training
    rows, so (b) tests drift against those, not against the 1M-row reference;
(c) Evidently (in its own environment, ``--evidently-python``, default
    ``/tmp/evidently-env/bin/python``): read the Parquet files, build the two ``Dataset`` objects
    (numeric and categorical columns declared), ``Report([DataDriftPreset()]).run(...)``, then
    save the HTML and the JSON (timed apart); killed after ``--evidently-timeout`` seconds
    (default 1800).

(a) and (c) also run on the subsamples, so that a ratio exists even if Evidently does not finish
at full size. Every child's peak resident memory comes from ``os.wait4`` (the whole process: the
tables it read included). Reading the files is timed apart and left out of the ratio.

Run from the repository root (not in CI)::

    python3 -m venv /tmp/evidently-env
    /tmp/evidently-env/bin/pip install evidently "pandas<3" pyarrow   # Evidently 0.7 fails on pandas 3
    .venv/bin/python benchmarks/monitor_speed.py                       # full sizes
    .venv/bin/python benchmarks/monitor_speed.py --rows 50000 --sub-rows 10000   # a quick check

Writes ``OUT/results.json`` and the page ``docs/results/monitor_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import default_out, results_header, run_environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAME = "monitor_speed"
DOC = REPO / "docs" / "results" / f"{NAME}.md"
PACKAGES = ("pyarrow",)
N_NUMERIC, N_CATEGORICAL = 90, 10
TARGET_S = 30.0
#: the shifts injected into the current table, and whether a monitor should flag them
SHIFTS = {
    "num_00": ("mean +0.5 SD", True),
    "num_01": ("SD ×1.5", True),
    "num_02": ("missing 5 % → 20 %", True),
    "num_03": ("mean +0.02 SD (trivial)", False),
    "cat_00": ("top category −15 points", True),
    "cat_01": ("new category in 10 % of rows", True),
}
STUDY = """\
name: monitor-speed
data:
  patients: train.parquet
  id: patient_id
target: {column: event, task: binary}
models:
  - family: linear
evaluation: {folds: 3, repeats: 1, bootstrap: 20, coefficient_bootstrap: 0}
seed: 0
"""

# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def _numeric(rng: np.random.Generator, j: int, n: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Column ``j``'s generator (kind chosen by ``j``), rounded so that values tie; ``shift`` in SDs."""
    kind = j % 7
    if kind == 0:
        x, sd, dec = rng.normal(50 + j, 10, n), 10.0, 1
    elif kind == 1:
        x, dec = rng.lognormal(1.0, 0.6, n), 2
        sd = float(np.sqrt((np.exp(0.36) - 1) * np.exp(2 + 0.36)))
    elif kind == 2:  # two-component mixture
        comp = rng.random(n) < 0.3
        x = np.where(comp, rng.normal(120, 15, n), rng.normal(80, 8, n))
        sd, dec = 19.0, 0
    elif kind == 3:
        x, sd, dec = rng.gamma(2.0, 3.0, n), float(np.sqrt(2) * 3), 1
    elif kind == 4:
        x, sd, dec = rng.uniform(0, 100, n), 100 / np.sqrt(12), 0
    elif kind == 5:  # counts
        x, sd, dec = rng.poisson(3.0, n).astype(float), float(np.sqrt(3)), 0
    else:  # a 5-level score
        x = rng.choice(5, n, p=[0.35, 0.3, 0.2, 0.1, 0.05]).astype(float)
        sd, dec = 1.16, 0
    if scale != 1.0:
        x = x.mean() + (x - x.mean()) * scale
    return np.round(x + shift * sd, dec)


def _categories(j: int) -> tuple[list[str], np.ndarray]:
    k = 3 + (j * 4) % 13  # 3 … 15 levels
    w = 1.0 / np.arange(1, k + 1) ** 1.6  # Zipf-like: the last levels are rare
    return [f"c{j:02d}_{chr(65 + i)}" for i in range(k)], w / w.sum()


def make_table(n: int, seed: int, *, current: bool) -> pd.DataFrame:
    """``n`` rows × (patient_id + 90 numeric + 10 categorical); ``current`` injects :data:`SHIFTS`."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {"patient_id": np.char.add("C" if current else "R", np.arange(n).astype(str))}
    for j in range(N_NUMERIC):
        name = f"num_{j:02d}"
        shift = 0.5 if (current and name == "num_00") else 0.02 if (current and name == "num_03") else 0.0
        x = _numeric(rng, j, n, shift=shift, scale=1.5 if (current and name == "num_01") else 1.0)
        if j % 3 == 2:  # a third of the numeric columns: 5 % missing (20 % for the shifted one)
            x[rng.random(n) < (0.20 if (current and name == "num_02") else 0.05)] = np.nan
        cols[name] = x
    for j in range(N_CATEGORICAL):
        name = f"cat_{j:02d}"
        levels, p = _categories(j)
        if current and name == "cat_00":
            p = p.copy()
            p[1:] += 0.15 * p[1:] / p[1:].sum()
            p[0] -= 0.15
        values = np.asarray(levels, dtype=object)[rng.choice(len(levels), n, p=p)]
        if current and name == "cat_01":
            values[rng.random(n) < 0.10] = f"c{j:02d}_NEW"
        values[rng.random(n) < 0.005] = None
        cols[name] = values
    return pd.DataFrame(cols)


def features() -> tuple[list[str], list[str]]:
    return [f"num_{j:02d}" for j in range(N_NUMERIC)], [f"cat_{j:02d}" for j in range(N_CATEGORICAL)]


def write_data(out: Path, rows: int, sub_rows: int, train_rows: int, seed: int) -> dict:
    """The Parquet files (full size and subsample) and the training table; their paths and seconds."""
    t0 = time.perf_counter()
    paths = {}
    for label, current in (("reference", False), ("current", True)):
        df = make_table(rows, seed + (1 if current else 0), current=current)
        paths[label] = out / f"{label}.parquet"
        df.to_parquet(paths[label], index=False)
        paths[f"{label}_sub"] = out / f"{label}_{sub_rows}.parquet"
        df.iloc[:sub_rows].to_parquet(paths[f"{label}_sub"], index=False)
        if not current:  # the bundle's training rows: a sample of the reference, with an outcome
            rng = np.random.default_rng(seed + 7)
            train = df.iloc[np.sort(rng.choice(rows, min(train_rows, rows), replace=False))].copy()
            z = (train["num_00"] - 56) / 10
            lin = -1.5 + 0.8 * z.fillna(0) + 0.5 * (train["cat_02"] == "c02_B") + 0.3 * np.log1p(
                train["num_01"].fillna(2))
            train["event"] = (rng.random(len(train)) < 1 / (1 + np.exp(-lin))).astype(int)
            paths["train"] = out / "train.parquet"
            train.to_parquet(paths["train"], index=False)
        del df
    return {"paths": {k: str(v) for k, v in paths.items()}, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------
# children
# --------------------------------------------------------------------------------------


def run_child(cmd: list[str], timeout: float, log: Path) -> dict:
    """Run ``cmd`` in its own session; wall seconds, exit code, peak RSS (MiB), whether it was killed.

    The peak resident set comes from ``/usr/bin/time -f %M`` around the command: ``os.wait4``'s
    ``ru_maxrss`` of a child also counts the parent's resident set when it forked (here the
    tables it had just generated).
    """
    rss_file = log.with_suffix(".maxrss")
    rss_file.unlink(missing_ok=True)
    timer = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] if Path("/usr/bin/time").exists() else []
    with open(log, "wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*timer, *cmd], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=REPO)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            timed_out = True
        wall = time.perf_counter() - t0
    rss = None
    if rss_file.exists():
        text = rss_file.read_text().split()
        rss = int(text[-1]) / 1024 if text and text[-1].isdigit() else None
    return {"cmd": cmd, "wall_s": wall, "returncode": proc.returncode, "timed_out": timed_out,
            "peak_rss_mib": rss, "log": str(log)}


def pmed_worker(args) -> int:
    """Child (a): read, ``reference_summaries``, ``drift_report``, each timed; JSON to ``--result``."""
    import pmed
    from pmed.monitor import drift_report, reference_summaries

    num, cat = features()
    cols = num + cat
    t0 = time.perf_counter()
    ref = pd.read_parquet(args.reference, columns=cols)
    cur = pd.read_parquet(args.current, columns=cols)
    read_s = time.perf_counter() - t0
    summ_times, drift_times = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        summaries = reference_summaries(ref)
        summ_times.append(time.perf_counter() - t0)
    summaries = json.loads(json.dumps(summaries))  # as stored in a bundle
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        rep = drift_report(summaries, cur)
        drift_times.append(time.perf_counter() - t0)
    res = {"pmed": pmed.__version__, "rows_ref": len(ref), "rows_cur": len(cur), "read_s": read_s,
           "reference_summaries_s": summ_times, "drift_report_s": drift_times,
           "flagged": rep["drifted_features"],
           "scores": {k: {"psi": e["psi"], "p_adjusted": e["p_adjusted"], "reasons": e["reasons"]}
                      for k, e in rep["features"].items()}}
    Path(args.result).write_text(json.dumps(res, indent=1))
    return 0


EVIDENTLY_SCRIPT = r'''
"""Evidently's data-drift report on two Parquet files (written by benchmarks/monitor_speed.py)."""
import json, sys, time
from pathlib import Path

t_import = time.perf_counter()
import pandas as pd
import evidently
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
t_import = time.perf_counter() - t_import

ref_path, cur_path, out_dir, repeats, save = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
num = [f"num_{j:02d}" for j in range(90)]
cat = [f"cat_{j:02d}" for j in range(10)]
t0 = time.perf_counter()
ref = pd.read_parquet(ref_path, columns=num + cat)
cur = pd.read_parquet(cur_path, columns=num + cat)
read_s = time.perf_counter() - t0
res = {"evidently": evidently.__version__, "pandas": pd.__version__, "import_s": t_import, "read_s": read_s,
       "rows_ref": len(ref), "rows_cur": len(cur), "dataset_s": [], "run_s": []}
for _ in range(repeats):
    t0 = time.perf_counter()
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    ref_ds = Dataset.from_pandas(ref, data_definition=definition)
    cur_ds = Dataset.from_pandas(cur, data_definition=definition)
    t1 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur_ds, reference_data=ref_ds)
    t2 = time.perf_counter()
    res["dataset_s"].append(t1 - t0)
    res["run_s"].append(t2 - t1)
    # partial results survive a timeout of a later step
    (out_dir / "evidently_partial.json").write_text(json.dumps(res))
d = snapshot.dict()
flagged, scores = [], {}
for m in d["metrics"]:
    cfg = m.get("config", {})
    if cfg.get("type", "").endswith("ValueDrift"):
        method, thr, v = cfg["method"], float(cfg["threshold"]), float(m["value"])
        drift = v < thr if "p_value" in method else v >= thr
        scores[cfg["column"]] = {"method": method, "threshold": thr, "value": v, "drift": drift}
        if drift:
            flagged.append(cfg["column"])
    elif cfg.get("type", "").endswith("DriftedColumnsCount"):
        res["drifted_columns_count"] = m["value"]
res["flagged"] = flagged
res["scores"] = scores
if save:
    t0 = time.perf_counter()
    snapshot.save_html(str(out_dir / "evidently_report.html"))
    res["save_html_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    snapshot.save_json(str(out_dir / "evidently_report.json"))
    res["save_json_s"] = time.perf_counter() - t0
(out_dir / "evidently_result.json").write_text(json.dumps(res, indent=1))
'''


def run_pmed(paths: dict, key: str, args, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    result = work / "pmed_result.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "pmed", "--reference", paths[f"reference{key}"],
           "--current", paths[f"current{key}"], "--repeats", str(args.repeats), "--result", str(result)]
    child = run_child(cmd, args.pmed_timeout, work / "pmed.log")
    out = {"child": child}
    if result.exists():
        out.update(json.loads(result.read_text()))
    return out


def run_evidently(paths: dict, key: str, args, work: Path, repeats: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    script = args.out / "evidently_drift.py"
    script.write_text(EVIDENTLY_SCRIPT)
    for f in ("evidently_result.json", "evidently_partial.json"):
        (work / f).unlink(missing_ok=True)
    cmd = [args.evidently_python, str(script), paths[f"reference{key}"], paths[f"current{key}"], str(work),
           str(repeats), "1"]
    child = run_child(cmd, args.evidently_timeout, work / "evidently.log")
    out = {"child": child}
    for f in ("evidently_result.json", "evidently_partial.json"):
        if (work / f).exists():
            out.update(json.loads((work / f).read_text()))
            out["finished"] = f == "evidently_result.json" and child["returncode"] == 0
            break
    else:
        out["finished"] = False
    return out


def run_end_to_end(paths: dict, args) -> dict:
    work = args.out / "e2e"
    work.mkdir(parents=True, exist_ok=True)
    (work / "train.parquet").write_bytes(Path(paths["train"]).read_bytes())
    (work / "study.yaml").write_text(STUDY)
    pmed_cli = [sys.executable, "-m", "pmed"]
    train = run_child([*pmed_cli, "run", str(work / "study.yaml"), "--out", str(work / "bundle")], 1800,
                      work / "run.log")
    res = {"train": train}
    if train["returncode"] != 0:
        return res
    manifest = json.loads((work / "bundle" / "model" / "manifest.json").read_text())
    res["bundle_reference_rows"] = manifest["reference"]["n_rows"]
    runs = []
    for i in range(args.e2e_repeats):
        out = work / f"monitor_{i}"
        runs.append(run_child([*pmed_cli, "monitor", "--model", str(work / "bundle" / "model"), "--data",
                               paths["current"], "--out", str(out)], args.pmed_timeout, work / f"monitor_{i}.log"))
    res["monitor"] = runs
    drift = out / "drift.json"
    if drift.exists():
        d = json.loads(drift.read_text())["drift"]
        res["flagged"] = d["drifted_features"]
        res["predictions_drift"] = bool((d.get("predictions") or {}).get("drift_detected"))
    return res


# --------------------------------------------------------------------------------------
# page
# --------------------------------------------------------------------------------------


def _s(x, fmt="{:.1f}") -> str:
    return "—" if x is None else fmt.format(x)


def _best(xs) -> float | None:
    return min(xs) if xs else None


def _evidently_compute(ev: dict) -> float | None:
    """Best of the repeats of Dataset building + report run (the step comparable to drift_report)."""
    pairs = list(zip(ev.get("dataset_s", []), ev.get("run_s", []), strict=False))
    return min(a + b for a, b in pairs) if pairs else None


def agreement(pm: list[str] | None, ev: list[str] | None) -> dict:
    if pm is None or ev is None:
        return {}
    a, b = set(pm), set(ev)
    return {"both": sorted(a & b), "pmed_only": sorted(a - b), "evidently_only": sorted(b - a),
            "jaccard": len(a & b) / len(a | b) if a | b else 1.0}


def render(res: dict) -> str:
    env, args = res["env"], res["args"]
    lines = [
        "# Monitoring speed: pmed vs Evidently (1,000,000 rows × 100 features)", "",
        "Written by `benchmarks/monitor_speed.py` (issue #21, point 5); the numbers below are those of the run "
        "this header describes.", "", results_header(env), "",
        f"Data: seeded synthetic reference and current tables of {args['rows']:,} rows × 100 features (90 numeric, "
        "rounded so that values tie, 5 % missing in 30 of them; 10 categorical text columns with 3–15 levels, "
        "some rare, 0.5 % missing), and subsamples of their first "
        f"{args['sub_rows']:,} rows. Shifts injected in the current table: "
        + "; ".join(f"`{k}` {v[0]}" for k, v in SHIFTS.items()) + ". Each tool ran in its own process, one after "
        "the other; times are wall-clock seconds, best of the repeats shown; reading the Parquet files is timed "
        "apart and not in the ratio. Peak memory is the child process's maximum resident set (tables included).", "",
    ]
    head = ["| step | rows (ref / current) | seconds | repeats | peak RSS (MiB) |", "|---|---|---|---|---|"]
    lines += ["## Timings", ""] + head
    for label, key in (("full", "full"), ("subsample", "sub")):
        pm, ev = res.get(f"pmed_{key}") or {}, res.get(f"evidently_{key}") or {}
        rows = f"{pm.get('rows_ref', '?'):,} / {pm.get('rows_cur', '?'):,}" if pm.get("rows_ref") else "?"
        rss = _s(pm.get("child", {}).get("peak_rss_mib"), "{:.0f}")
        n = len(pm.get("drift_report_s", []))
        lines += [
            f"| pmed `reference_summaries` (once, at bundling) — {label} | {rows} | "
            f"{_s(_best(pm.get('reference_summaries_s')), '{:.2f}')} | {n} | {rss} |",
            f"| pmed `drift_report` against the summaries — {label} | {rows} | "
            f"{_s(_best(pm.get('drift_report_s')), '{:.2f}')} | {n} | (same process) |",
            f"| pmed reading the two Parquet files — {label} | {rows} | {_s(pm.get('read_s'), '{:.2f}')} | 1 | |",
        ]
        evrows = f"{ev.get('rows_ref', 0):,} / {ev.get('rows_cur', 0):,}" if ev.get("rows_ref") else rows
        erss = _s(ev.get("child", {}).get("peak_rss_mib"), "{:.0f}")
        if ev.get("run_s"):
            lines += [
                f"| Evidently `Dataset.from_pandas` ×2 + `Report([DataDriftPreset()]).run` — {label} | {evrows} | "
                f"{_s(_evidently_compute(ev), '{:.2f}')} | {len(ev['run_s'])} | {erss} |",
                f"| Evidently saving the HTML / the JSON — {label} | {evrows} | {_s(ev.get('save_html_s'), '{:.2f}')}"
                f" / {_s(ev.get('save_json_s'), '{:.2f}')} | 1 | |",
                f"| Evidently reading the two Parquet files — {label} | {evrows} | {_s(ev.get('read_s'), '{:.2f}')} | "
                "1 | |",
            ]
        elif ev:
            why = (f"killed after {args['evidently_timeout']:.0f} s" if ev["child"]["timed_out"]
                   else f"exit code {ev['child']['returncode']}")
            lines.append(f"| Evidently data-drift report — {label} | {evrows} | did not finish ({why}) | | {erss} |")
        else:
            lines.append(f"| Evidently data-drift report — {label} | | not run | | |")
    e2e = res.get("e2e") or {}
    mons = [m for m in e2e.get("monitor", []) if m["returncode"] == 0]
    if mons:
        lines.append(f"| `pmed monitor` end to end (read, check, predict, drift, write) — full | "
                     f"{e2e.get('bundle_reference_rows', 0):,} (bundle) / {args['rows']:,} | "
                     f"{_s(min(m['wall_s'] for m in mons), '{:.1f}')} | {len(mons)} | "
                     f"{_s(max((m['peak_rss_mib'] or 0) for m in mons) or None, '{:.0f}')} |")
    if e2e.get("train"):
        lines.append(f"| `pmed run` training the bundle (not part of monitoring) | {args['train_rows']:,} | "
                     f"{_s(e2e['train']['wall_s'])} | 1 | {_s(e2e['train']['peak_rss_mib'], '{:.0f}')} |")

    lines += ["", "## Ratios (Evidently compute ÷ pmed)", "",
              "| data | Evidently (s) | pmed `drift_report` (s) | ratio | pmed `reference_summaries` + "
              "`drift_report` (s) | ratio |", "|---|---|---|---|---|---|"]
    for label, key in (("full", "full"), ("subsample", "sub")):
        pm, ev = res.get(f"pmed_{key}") or {}, res.get(f"evidently_{key}") or {}
        e, d, s = _evidently_compute(ev), _best(pm.get("drift_report_s")), _best(pm.get("reference_summaries_s"))
        if e is None:
            lines.append(f"| {label} | did not finish | {_s(d, '{:.2f}')} | — | | — |")
        elif d is not None and s is not None:
            lines.append(f"| {label} ({pm['rows_ref']:,} rows each) | {e:.2f} | {d:.2f} | {e / d:.1f}× | "
                         f"{s + d:.2f} | {e / (s + d):.1f}× |")
    evf = res.get("evidently_full") or {}
    if _evidently_compute(evf) is not None and evf.get("save_html_s") is not None and mons:
        lines += ["", f"With its HTML saved, Evidently's full-size report took "
                  f"{_evidently_compute(evf) + evf['save_html_s']:.1f} s; `pmed monitor` end to end "
                  f"{min(m['wall_s'] for m in mons):.1f} s (it also reads the file, checks it against the schema and "
                  "predicts every row, but tests drift against the bundle's training sample, not the 1M-row "
                  "reference)."]
    lines += ["", "pmed's `drift_report` reads precomputed summaries of the reference (101 quantiles, decile bins, "
              "category shares), which a bundle stores once; Evidently reads the raw reference every time. The "
              "second ratio charges pmed for summarising the reference too.", ""]

    lines += ["## Which columns were flagged", "",
              "| column | injected shift | should flag | pmed full | Evidently full | pmed subsample | "
              "Evidently subsample |", "|---|---|---|---|---|---|---|"]

    def mark(d: dict | None, col: str) -> str:
        if not d or d.get("flagged") is None:
            return "—"
        return "yes" if col in d["flagged"] else "no"

    pf, ef, ps, es = (res.get(k) for k in ("pmed_full", "evidently_full", "pmed_sub", "evidently_sub"))
    others = sorted({c for d in (pf, ef, ps, es) if d for c in d.get("flagged") or []} - set(SHIFTS))
    for col in [*SHIFTS, *others]:
        what, should = SHIFTS.get(col, ("none", False))
        lines.append(f"| `{col}` | {what} | {'yes' if should else 'no'} | {mark(pf, col)} | {mark(ef, col)} | "
                     f"{mark(ps, col)} | {mark(es, col)} |")
    for label, a, b in (("full", pf, ef), ("subsample", ps, es)):
        ag = agreement((a or {}).get("flagged"), (b or {}).get("flagged"))
        if ag:
            lines.append(f"\n{label}: flagged by both {ag['both'] or 'none'}; pmed only {ag['pmed_only'] or 'none'};"
                         f" Evidently only {ag['evidently_only'] or 'none'} (Jaccard {ag['jaccard']:.2f}).")
    if e2e.get("flagged") is not None:
        lines.append(f"\n`pmed monitor` end to end (against the bundle's {e2e.get('bundle_reference_rows', 0):,} "
                     f"training rows): flagged {e2e['flagged'] or 'none'}; predictions drift: "
                     f"{e2e.get('predictions_drift')}.")
    ev_any = ef or es or {}
    methods = sorted({(v["method"], v["threshold"]) for v in (ev_any.get("scores") or {}).values()})
    lines += ["", "Rules: pmed flags a column when its Benjamini–Hochberg-adjusted KS / chi-squared p < 0.05 and PSI "
              "≥ 0.2 (categorical: or Cramér's V ≥ 0.1), or when its missing share moves ≥ 10 points "
              "(significantly). Evidently's preset picks its test by size; here: "
              + (", ".join(f"{m} ≥ {t:g}" for m, t in methods) or "not recorded")
              + " on the observed values; it does not test missingness.", ""]
    lines += ["## Load", "", "Load average (1 / 5 / 15 min) after each step: "
              + "; ".join(f"{k} {' / '.join(f'{x:.2f}' for x in res[k]['loadavg_after'])}"
                          for k in ("pmed_sub", "evidently_sub", "pmed_full", "e2e", "evidently_full")
                          if res.get(k) and res[k].get("loadavg_after")) + "."]
    for k in ("pmed_sub", "evidently_sub", "pmed_full", "e2e", "evidently_full"):
        if (res.get(k) or {}).get("reused_from"):
            r = res[k]["reused_from"]
            lines.append(f"`{k}` is taken from an earlier run on the same files ({r.get('date')}, load "
                         f"{' / '.join(f'{x:.2f}' for x in r.get('loadavg') or [])} at its start).")
    lines += [""]
    lines += ["## Versions", "",
              f"- Evidently {ev_any.get('evidently', '?')} with pandas {ev_any.get('pandas', '?')} in "
              f"`{args['evidently_python']}`.",
              f"- Data generated and written in {res['data']['seconds']:.0f} s (not timed against either tool).", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out(NAME))
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the reference and of the current table")
    ap.add_argument("--sub-rows", type=int, default=100_000, help="rows of the subsamples (default 100,000)")
    ap.add_argument("--train-rows", type=int, default=20_000, help="rows of the bundle's training sample")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of pmed's timed steps (best is reported)")
    ap.add_argument("--evidently-repeats", type=int, default=1,
                    help="repeats of Evidently's report at full size (default 1; --repeats on the subsample)")
    ap.add_argument("--e2e-repeats", type=int, default=1, help="runs of pmed monitor end to end")
    ap.add_argument("--evidently-python", default="/tmp/evidently-env/bin/python")
    ap.add_argument("--evidently-timeout", type=float, default=1800.0)
    ap.add_argument("--pmed-timeout", type=float, default=1800.0)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out: evidently, e2e, full")
    ap.add_argument("--reuse-data", action="store_true", help="use the Parquet files already in --out")
    ap.add_argument("--reuse", default="", help="comma-separated steps (pmed_sub, evidently_sub, pmed_full, e2e, "
                    "evidently_full) whose results to take from OUT/results.json of an earlier run on the same "
                    "data instead of running them again; the page says so")
    # child mode
    ap.add_argument("--worker", choices=["pmed"], help=argparse.SUPPRESS)
    ap.add_argument("--reference", help=argparse.SUPPRESS)
    ap.add_argument("--current", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return pmed_worker(args)

    env = run_environment(PACKAGES, argv)
    args.out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    saved = args.out / "data.json"
    if args.reuse_data and saved.exists():
        data = json.loads(saved.read_text())
    else:
        data = write_data(args.out, args.rows, args.sub_rows, args.train_rows, args.seed)
        saved.write_text(json.dumps(data))
    print(f"data written in {data['seconds']:.0f} s", file=sys.stderr)
    paths = data["paths"]
    res: dict = {"env": env, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                 "data": data}

    def save() -> None:
        (args.out / "results.json").write_text(json.dumps(res, indent=1, default=str))

    steps = [("pmed_sub", lambda: run_pmed(paths, "_sub", args, args.out / "pmed_sub"))]
    if "evidently" not in skip:
        steps.append(("evidently_sub", lambda: run_evidently(paths, "_sub", args, args.out / "evidently_sub",
                                                             args.repeats)))
    if "full" not in skip:
        steps.append(("pmed_full", lambda: run_pmed(paths, "", args, args.out / "pmed_full")))
        if "e2e" not in skip:
            steps.append(("e2e", lambda: run_end_to_end(paths, args)))
        if "evidently" not in skip:
            steps.append(("evidently_full", lambda: run_evidently(paths, "", args, args.out / "evidently_full",
                                                                  args.evidently_repeats)))
    reuse = set(filter(None, args.reuse.split(",")))
    earlier = json.loads((args.out / "results.json").read_text()) if reuse else {}
    for key, step in steps:
        if key in reuse and key in earlier:
            res[key] = {**earlier[key], "reused_from": earlier["env"]}
            print(f"{key}: taken from the run of {earlier['env']['date']}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        res[key] = step()
        res[key]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        print(f"{key}: {time.perf_counter() - t0:.1f} s; load {res[key]['loadavg_after']}", file=sys.stderr)
        save()
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render(res))
    print(f"wrote {args.out / 'results.json'} and {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
