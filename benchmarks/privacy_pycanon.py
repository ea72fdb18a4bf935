"""pmed's k-anonymity and l-diversity numbers against pycanon, run in a separate environment.

Issue #22, point 2. pycanon (the CSIC's library of anonymity measures) pins an older numpy and
pandas than pmed's environment holds, so it runs in its own virtual environment, as a
subprocess: a small script written to ``OUT/pycanon_check.py`` reads each CSV and prints JSON.
pmed's :func:`pmed.privacy.check_risk` runs in this process on the same CSV, read the same way
(``pandas.read_csv`` with its defaults). A third, independent count — a plain pandas
``groupby(quasi, dropna=False)`` — settles any disagreement.

Tables (seeded):

- ``cohort``: the demo cohort's ``patients.csv`` (:func:`pmed.datasets.synthetic.write_synthetic_cohort`,
  1,000 patients; it has a few missing ages, sexes and smoking statuses), quasi-identifiers age,
  sex, site, sensitive smoking (text) or diabetes (0/1, numeric);
- ``registry``: 5,000 records with missing values in the quasi-identifiers (age 5 %, sex 3 %,
  ZIP3 8 %) and in the sensitive ICD-10 diagnosis (2 %); checked over age, sex, zip3 and over
  zip3 alone;
- ``large``: 100,000 records, ZIP3 (400 areas, skewed sizes), 5-year age band, sex, and an
  ICD-10 diagnosis (150 codes, skewed), no missing value;
- each of them again after pmed's enforcement (:func:`pmed.privacy.enforce_k_anonymity`, what
  ``pmed privacy check --enforce`` runs) for its k and l.

Missing values: pmed counts a missing value as a value of its own. pycanon leaves that to pandas
(``DataFrame.groupby(...).groups``), and its ``l_diversity`` calls ``numpy.unique`` on the
sensitive column, which fails on text mixed with NaN. The headline comparison therefore uses a
copy of every table with missing quasi-identifier and sensitive values written as the text
``<missing>`` (``*_filled.csv``, the same file for both tools; for pmed this changes nothing);
a second table shows what each tool gives on the CSV with the missing values left empty.

Timings: best of ``--reps`` runs of the computation alone (the CSV read once beforehand), pmed
``check_risk`` with k and l (one call) against pycanon ``k_anonymity`` plus ``l_diversity``.

Setup (once; whatever versions pip resolves are recorded on the page)::

    python3 -m venv /tmp/pycanon-env && /tmp/pycanon-env/bin/pip install pycanon pandas

Run from the repository root::

    .venv/bin/python benchmarks/privacy_pycanon.py --pycanon-python /tmp/pycanon-env/bin/python \\
        --out out/privacy_pycanon --page docs/results/privacy_pycanon.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.datasets.synthetic import write_synthetic_cohort
from pmed.io import write_text_atomic
from pmed.io.jsonio import to_json
from pmed.privacy import check_risk, enforce_k_anonymity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common.py
from _common import default_out, results_header, run_environment, write_page  # noqa: E402

SENTINEL = "<missing>"
#: pycanon's entropy l-diversity and t-closeness loop over classes and values in Python: they are
#: computed (once, untimed, for information) on tables up to EXTRAS_MAX_ROWS rows, t-closeness
#: only with at most T_MAX_VALUES distinct sensitive values (it took 63 s on the 5,000-record
#: registry's 80 diagnoses, 163 s on 5,000 rows of the large table).
EXTRAS_MAX_ROWS = 20_000
T_MAX_VALUES = 10

PYCANON_SCRIPT = '''\
"""Written by benchmarks/privacy_pycanon.py: pycanon's k and l for each job of a JSON file."""
import json
import math
import platform
import sys
import time
from importlib.metadata import version

import pandas as pd
from pycanon import anonymity
from pycanon.anonymity.utils import aux_anonymity


def best(fn, reps):
    seconds, value = math.inf, None
    for _ in range(reps):
        t0 = time.perf_counter()
        value = fn()
        seconds = min(seconds, time.perf_counter() - t0)
    return value, seconds


def err(e):
    return f"{type(e).__name__}: {e}"[:300]


out = {"python": platform.python_version(),
       "versions": {p: version(p) for p in ("pycanon", "pandas", "numpy")}, "results": []}
for job in json.loads(open(sys.argv[1]).read()):
    df = pd.read_csv(job["csv"])
    q, s, reps = job["quasi"], job["sensitive"], job["reps"]
    r = {"id": job["id"]}
    try:
        k, r["k_seconds"] = best(lambda: anonymity.k_anonymity(df, q), reps)
        r["k"] = int(k)
    except Exception as e:
        r["k_error"] = err(e)
    try:
        l_, r["l_seconds"] = best(lambda: anonymity.l_diversity(df, q, [s]), reps)
        r["l"] = int(l_)
    except Exception as e:
        r["l_error"] = err(e)
    try:
        classes = aux_anonymity.get_equiv_class(df, q)
        r["n_classes"], r["rows_in_classes"] = len(classes), int(sum(len(c) for c in classes))
    except Exception as e:
        r["n_classes_error"] = err(e)
    for name in job["extras"]:
        fn = {"entropy_l": anonymity.entropy_l_diversity, "t": anonymity.t_closeness}[name]
        try:
            r[name] = float(fn(df, q, [s]))
        except Exception as e:
            r[name + "_error"] = err(e)
    out["results"].append(r)
    print(f"pycanon {job['id']}: {r}", file=sys.stderr, flush=True)
print(json.dumps(out))
'''


# -- tables ----------------------------------------------------------------------------------


def _codes(rng: np.random.Generator, n_codes: int) -> np.ndarray:
    letters = np.array(list("ABCDEFGIJKLMNRZ"))
    return np.array([f"{rng.choice(letters)}{rng.integers(0, 100):02d}.{rng.integers(0, 10)}"
                     for _ in range(n_codes)])


def _zipf(rng: np.random.Generator, n: int, size: int, a: float = 1.1) -> np.ndarray:
    w = 1 / np.arange(1, n + 1) ** a
    return rng.choice(n, size=size, p=w / w.sum())


def _mask(rng: np.random.Generator, s: pd.Series, share: float) -> pd.Series:
    return s.astype(object).where(rng.random(len(s)) >= share, None)


def make_registry(n: int, seed: int) -> pd.DataFrame:
    """Registry-like records with missing values in the quasi-identifiers and the diagnosis."""
    rng = np.random.default_rng(seed)
    zips = np.array([f"{z:03d}" for z in rng.choice(np.arange(10, 1000), 60, replace=False)])
    codes = _codes(rng, 80)
    df = pd.DataFrame({
        "record_id": [f"R{i:06d}" for i in range(1, n + 1)],
        "age": np.clip(rng.normal(58, 17, n).round(), 18, 99).astype(int),
        "sex": rng.choice(["F", "M"], n),
        "zip3": zips[_zipf(rng, len(zips), n, 0.8)],
        "diagnosis": codes[_zipf(rng, len(codes), n)],
    })
    for col, share in (("age", 0.05), ("sex", 0.03), ("zip3", 0.08), ("diagnosis", 0.02)):
        df[col] = _mask(rng, df[col], share)
    return df


def make_large(n: int, seed: int) -> pd.DataFrame:
    """ZIP3, 5-year age band, sex and an ICD-10 diagnosis; no missing value."""
    rng = np.random.default_rng(seed)
    zips = np.array([f"{z:03d}" for z in rng.choice(np.arange(10, 1000), 400, replace=False)])
    codes = _codes(rng, 150)
    age = np.clip(rng.gamma(6.0, 8.0, n), 0, 104)
    band = np.where(age >= 90, "90+", [f"{int(a) // 5 * 5}-{int(a) // 5 * 5 + 4}" for a in age])
    return pd.DataFrame({
        "zip3": zips[_zipf(rng, len(zips), n, 0.9)],
        "age_band": band,
        "sex": rng.choice(["F", "M"], n, p=[0.52, 0.48]),
        "diagnosis": codes[_zipf(rng, len(codes), n)],
    })


def checks(out: Path, seed: int, n_large: int) -> list[dict[str, Any]]:
    """The checks: table, CSV name, quasi-identifiers, sensitive column, k, l, enforce or not."""
    paths = write_synthetic_cohort(out / "cohort_files", n_patients=1000, seed=seed)
    cohort = pd.read_csv(paths["patients"])
    registry = make_registry(5000, seed + 1)
    large = make_large(n_large, seed + 2)
    return [
        {"name": "cohort", "data": cohort, "quasi": ["age", "sex", "site"], "sensitive": "smoking", "k": 5, "l": 2},
        {"name": "cohort_diabetes", "data": cohort, "quasi": ["age", "sex", "site"], "sensitive": "diabetes",
         "k": 5, "l": 2},
        {"name": "registry", "data": registry, "quasi": ["age", "sex", "zip3"], "sensitive": "diagnosis",
         "k": 5, "l": 2},
        {"name": "registry_zip3", "data": registry, "quasi": ["zip3"], "sensitive": "diagnosis", "k": 5, "l": 2},
        {"name": "large", "data": large, "quasi": ["zip3", "age_band", "sex"], "sensitive": "diagnosis",
         "k": 10, "l": 3},
    ]


def filled(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = df.copy()
    for c in cols:
        out[c] = out[c].astype(object).where(out[c].notna(), SENTINEL)
    return out


# -- measurement -----------------------------------------------------------------------------


def extras(frame: pd.DataFrame, sensitive: str, kind: str) -> list[str]:
    if kind != "filled" or len(frame) > EXTRAS_MAX_ROWS:
        return []
    return ["entropy_l", "t"] if frame[sensitive].nunique() <= T_MAX_VALUES else ["entropy_l"]


def best(fn, reps: int) -> tuple[Any, float]:
    seconds, value = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        value = fn()
        seconds = min(seconds, time.perf_counter() - t0)
    return value, seconds


def pmed_numbers(csv: Path, quasi: list[str], sensitive: str, k: int, l: int, reps: int) -> dict:  # noqa: E741
    df = pd.read_csv(csv)
    risk, seconds = best(lambda: check_risk(df, quasi, k=min(k, len(df)), l=l, sensitive=sensitive), reps)
    _, k_seconds = best(lambda: check_risk(df, quasi, k=min(k, len(df))), reps)
    grouped = df.groupby(quasi, dropna=False, sort=False)
    return {"rows": int(len(df)), "k": risk["k_min"], "l": risk["l_min"], "n_classes": risk["n_classes"],
            "n_records_below_k": risk["n_records_below_k"], "n_records_below_l": risk["n_records_below_l"],
            "seconds": seconds, "k_seconds": k_seconds,
            # independent count: pandas groupby, a missing value as a value of its own
            "pandas_k": int(grouped.size().min()),
            "pandas_l": int(grouped[sensitive].nunique(dropna=False).min()),
            "pandas_n_classes": int(grouped.ngroups),
            "missing_quasi": int(df[quasi].isna().any(axis=1).sum()),
            "missing_sensitive": int(df[sensitive].isna().sum())}


def run_pycanon(python: str, out: Path, jobs: list[dict]) -> dict:
    script = out / "pycanon_check.py"
    write_text_atomic(script, PYCANON_SCRIPT)
    spec = out / "pycanon_jobs.json"
    write_text_atomic(spec, json.dumps(jobs, indent=1))
    proc = subprocess.run([python, str(script), str(spec)], capture_output=True, text=True, check=False)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"pycanon run failed ({proc.returncode}); see above")
    return json.loads(proc.stdout)


def run(args: argparse.Namespace, env: dict) -> dict:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows, jobs, enforcement = [], [], {}
    for c in checks(out, args.seed, args.large_rows):
        cols = [*c["quasi"], c["sensitive"]]
        keep = list(dict.fromkeys([*cols, *[x for x in c["data"].columns if x not in cols]]))
        base = c["data"][keep]
        te = time.perf_counter()
        released, info = enforce_k_anonymity(base, c["quasi"], k=c["k"], l=c["l"], sensitive=c["sensitive"])
        enforcement[c["name"]] = {"seconds": time.perf_counter() - te, "records_suppressed": info["records_suppressed"],
                                  "n_released": info["n_released"], "precision_loss": info["precision_loss"],
                                  "levels": {q: v["level_name"] for q, v in info["columns"].items()}}
        for variant, table in ((c["name"], base), (c["name"] + "_enforced", released)):
            has_missing = bool(table[cols].isna().any().any())
            for kind, frame in (("filled", filled(table, cols)), ("raw", table)):
                if kind == "raw" and not has_missing:
                    continue
                csv = out / f"{variant}{'_filled' if kind == 'filled' else ''}.csv"
                frame.to_csv(csv, index=False, lineterminator="\n")
                rid = f"{variant}/{kind}"
                print(f"pmed {rid} ({len(frame)} rows) …", flush=True)
                pm = pmed_numbers(csv, c["quasi"], c["sensitive"], c["k"], c["l"], args.reps)
                rows.append({"id": rid, "table": variant, "kind": kind, "csv": csv.name, "quasi": c["quasi"],
                             "sensitive": c["sensitive"], "k_target": c["k"], "l_target": c["l"], "pmed": pm})
                jobs.append({"id": rid, "csv": str(csv.resolve()), "quasi": c["quasi"], "sensitive": c["sensitive"],
                             "reps": args.reps, "extras": extras(frame, c["sensitive"], kind)})
    pc = run_pycanon(args.pycanon_python, out, jobs)
    by_id = {r["id"]: r for r in pc["results"]}
    for r in rows:
        r["pycanon"] = by_id[r["id"]]
        p, q = r["pmed"], r["pycanon"]
        r["k_equal"] = q.get("k") == p["k"] == p["pandas_k"]
        r["l_equal"] = q.get("l") == p["l"] == p["pandas_l"]
    return {"rows": rows, "enforcement": enforcement, "pycanon_env": {k: pc[k] for k in ("python", "versions")},
            "reps": args.reps, "seconds": time.perf_counter() - t0, "env": env}


# -- page ------------------------------------------------------------------------------------


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _v(q: dict, key: str) -> str:
    return str(q[key]) if key in q else f"error ({q[key + '_error'].split(':')[0]})"


def render(result: dict, env: dict) -> str:
    pcv = result["pycanon_env"]
    rows = result["rows"]
    main = [r for r in rows if r["kind"] == "filled"]
    raw = [r for r in rows if r["kind"] == "raw"]
    n_ok = sum(r["k_equal"] and r["l_equal"] for r in main)
    lines = [
        "# k-anonymity and l-diversity: pmed against pycanon", "", results_header(env),
        f"- pycanon environment (separate venv, run as a subprocess): Python {pcv['python']}, "
        + ", ".join(f"{k} {v}" for k, v in pcv["versions"].items()), "",
        f"Run time: {result['seconds']:.0f} s. Script: `benchmarks/privacy_pycanon.py` (its docstring describes "
        "the tables). pmed: `pmed.privacy.check_risk` (`k_min`, `l_min`: distinct l-diversity); pycanon: "
        "`anonymity.k_anonymity`, `anonymity.l_diversity`; *pandas*: an independent "
        "`groupby(quasi, dropna=False)` count (`size().min()`, `[sensitive].nunique(dropna=False).min()`). "
        "*equal?* is yes when all three agree on both k and l. Seconds: best of "
        f"{result['reps']} runs of the computation alone on the CSV already read: pmed one `check_risk` call "
        "(k and l), pycanon `k_anonymity` + `l_diversity`; ratio = pycanon / pmed.", "",
        "## Same CSV, missing values written as `<missing>`", "",
        f"{n_ok} of {len(main)} checks agree.", "",
        "| table | rows | quasi-identifiers (sensitive) | k pmed | k pycanon | l pmed | l pycanon | pandas k / l "
        "| equal? | s pmed | s pycanon (k + l) | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in main:
        p, q = r["pmed"], r["pycanon"]
        spc = q.get("k_seconds", 0) + q.get("l_seconds", 0) if "k" in q and "l" in q else None
        lines.append(
            f"| {r['table']} | {p['rows']:,} | {', '.join(r['quasi'])} ({r['sensitive']}) | {p['k']} | {_v(q, 'k')} | "
            f"{p['l']} | {_v(q, 'l')} | {p['pandas_k']} / {p['pandas_l']} | "
            f"{'yes' if r['k_equal'] and r['l_equal'] else '**no**'} | {_s(p['seconds'])} | "
            f"{_s(spc)} ({_s(q.get('k_seconds'))} + {_s(q.get('l_seconds'))}) | "
            f"{'–' if spc is None else format(spc / p['seconds'], '.0f') + '×'} |")
    lines += ["", "pmed's k alone (`check_risk` without l): "
              + "; ".join(f"{r['table']} {_s(r['pmed']['k_seconds'])} s" for r in main) + ".", ""]
    lines += ["## The CSV with missing values left empty", "",
              "Only the tables that have missing quasi-identifier or sensitive values. pmed and the pandas "
              "count treat a missing value as a value of its own, as on the filled CSV.", "",
              "| table | rows with a missing quasi-identifier | missing sensitive | quasi-identifiers (sensitive) "
              "| k pmed | k pycanon | l pmed | l pycanon | pandas k / l | classes pmed / pycanon | records in pycanon's "
              "classes |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in raw:
        p, q = r["pmed"], r["pycanon"]
        lines.append(f"| {r['table']} | {p['missing_quasi']} | {p['missing_sensitive']} | "
                     f"{', '.join(r['quasi'])} ({r['sensitive']}) | {p['k']} | {_v(q, 'k')} | {p['l']} | "
                     f"{_v(q, 'l')} | {p['pandas_k']} / {p['pandas_l']} | {p['n_classes']} / {_v(q, 'n_classes')} | "
                     f"{q.get('rows_in_classes', '–')} of {p['rows']} |")
    errors = sorted({q[k] for r in raw for q in [r["pycanon"]] for k in q if k.endswith("_error")})
    if errors:
        lines += ["", "pycanon's errors: " + "; ".join(f"`{e}`" for e in errors) + "."]
    lines += ["", "## pycanon's other measures (for information; pmed does not compute them)", "",
              f"Filled CSVs up to {EXTRAS_MAX_ROWS:,} rows, t-closeness only with at most {T_MAX_VALUES} "
              "distinct sensitive values (pycanon loops over classes and values in Python: t-closeness took "
              "63 s on the registry's 80 diagnoses in a trial run).", "",
              "| table | entropy l | t (t-closeness) |", "|---|---|---|"]
    for r in main:
        q = r["pycanon"]
        if "entropy_l" in q or "entropy_l_error" in q:
            ent = f"{q['entropy_l']:g}" if "entropy_l" in q else "error"
            t = f"{q['t']:.3f}" if "t" in q else "error" if "t_error" in q else "not computed"
            lines.append(f"| {r['table']} | {ent} | {t} |")
    lines += ["", "## pmed's enforcement", "",
              "`enforce_k_anonymity(table, quasi, k, l, sensitive)` with the default `max_suppression` 0.05; the "
              "`*_enforced` rows above check its release.", "",
              "| table | k | l | levels | records suppressed | released | precision loss | seconds |",
              "|---|---|---|---|---|---|---|---|"]
    targets = {r["table"]: (r["k_target"], r["l_target"]) for r in main}
    for name, e in result["enforcement"].items():
        k, l_ = targets[name]
        levels = ", ".join(f"{q}: {v}" for q, v in e["levels"].items())
        lines.append(f"| {name} | {k} | {l_} | {levels} | {e['records_suppressed']} | {e['n_released']:,} | "
                     f"{e['precision_loss']:.2f} | {_s(e['seconds'])} |")
    lines += ["", "## Reading it", "", result.get("notes") or auto_notes(result), ""]
    return "\n".join(lines)


def auto_notes(result: dict) -> str:
    """The page's 'Reading it', from the numbers (``--notes`` replaces it)."""
    rows = result["rows"]
    main = [r for r in rows if r["kind"] == "filled"]
    raw = [r for r in rows if r["kind"] == "raw"]
    bad = [r["table"] for r in main if not (r["k_equal"] and r["l_equal"])]
    raw_numbers = [r for r in raw if "k" in r["pycanon"] and "l" in r["pycanon"]]
    raw_bad = [r["table"] for r in raw_numbers if not (r["k_equal"] and r["l_equal"])]
    ratios = []
    for r in main:
        q = r["pycanon"]
        if "k" in q and "l" in q:
            ratios.append(((q["k_seconds"] + q["l_seconds"]) / r["pmed"]["seconds"], r))
    lo, hi = min(ratios, key=lambda x: x[0]), max(ratios, key=lambda x: x[0])
    largest = max(main, key=lambda r: r["pmed"]["rows"])
    single = [r for r in raw if len(r["quasi"]) == 1 and "n_classes" in r["pycanon"]]
    multi_same = all(r["pycanon"].get("n_classes") == r["pmed"]["n_classes"] for r in raw if len(r["quasi"]) > 1)
    text_errors = sorted({r["sensitive"] for r in raw if "l_error" in r["pycanon"]})
    numeric_ok = sorted({r["sensitive"] for r in raw if "l" in r["pycanon"]})
    v = result["pycanon_env"]["versions"]
    filled_by = {r["table"]: r["pmed"] for r in main}
    same_raw = all((r["pmed"]["k"], r["pmed"]["l"]) == (filled_by[r["table"]]["k"], filled_by[r["table"]]["l"])
                   for r in raw)
    vs_pandas = all(r["pmed"]["k"] == r["pmed"]["pandas_k"] and r["pmed"]["l"] == r["pmed"]["pandas_l"]
                    for r in rows)
    enforced = [r for r in main if r["table"].endswith("_enforced")]
    met = all(r["pmed"]["k"] >= r["k_target"] and r["pmed"]["l"] >= r["l_target"] for r in enforced)
    out = [
        f"- **Agreement.** {len(main) - len(bad)} of {len(main)} checks on the filled CSVs give the same k and the "
        "same l in pmed, pycanon and the independent pandas count"
        + (f"; they differ on {', '.join(bad)}." if bad else ", before and after pmed's enforcement.")
        + f" On the CSVs with empty cells, the {len(raw_numbers)} checks where pycanon returns both numbers "
        + ("agree too." if not raw_bad else f"differ on {', '.join(raw_bad)}."),
        f"- **Missing values** (pycanon {v['pycanon']}, pandas {v['pandas']}, numpy {v['numpy']}). pmed counts a "
        "missing quasi-identifier or sensitive value as a value of its own. pycanon takes its classes from "
        "`DataFrame.groupby(quasi).groups`: with two or more quasi-identifiers pandas keeps the keys holding NaN "
        "there as groups of their own (in spite of `dropna=True`), so the classes are pmed's"
        + (" (same class counts above)" if multi_same else "")
        + "; with one quasi-identifier pandas leaves the NaN rows out"
        + ("".join(f" ({r['table']}: {r['pycanon']['n_classes']} classes covering {r['pycanon']['rows_in_classes']} "
                   f"of {r['pmed']['rows']} records, pmed {r['pmed']['n_classes']} classes)" for r in single[:1]))
        + ", so a small class of records with that value missing would not lower pycanon's k (here it is "
        "not the smallest class, and k agrees). This follows pandas' behaviour rather than a documented "
        "choice of pycanon. `l_diversity` calls `numpy.unique` on the sensitive column: on text with NaN it "
        "raises `TypeError` ("
        + ", ".join(text_errors) + "); on a numeric column with NaN (" + ", ".join(numeric_ok)
        + ") numpy counts NaN as one value, as pmed does. Hence the headline comparison on the CSVs with "
        "`<missing>` written in, which gives pmed "
        + ("the same numbers as the empty cells." if same_raw else "**other** numbers than the empty cells."),
        f"- **Speed.** pmed's `check_risk` (k and l, one call) is {lo[0]:.0f}× ({lo[1]['table']}) to "
        f"{hi[0]:.0f}× ({hi[1]['table']}) faster than pycanon's `k_anonymity` + `l_diversity`; on "
        f"{largest['table']} ({largest['pmed']['rows']:,} records, {largest['pmed']['n_classes']:,} classes) "
        f"{largest['pmed']['seconds']:.3f} s against "
        f"{largest['pycanon']['k_seconds'] + largest['pycanon']['l_seconds']:.2f} s. The gap grows with the "
        "number of classes: pycanon's `l_diversity` takes each class with `iloc` and `numpy.unique` in a "
        "Python loop, pmed counts all classes in one vectorized groupby. The two environments share pandas "
        "but not numpy; the machine was shared (see the load above), so the ratios are indicative.",
        "- **pmed.** "
        + ("Every k and l pmed reports (filled and empty cells) equals the independent pandas count. "
           if vs_pandas else "**Some k or l differs from the independent pandas count** (see the tables). ")
        + (f"All {len(enforced)} releases of `enforce_k_anonymity` meet the k and l they were asked for."
           if met else "**A release of `enforce_k_anonymity` misses its k or l.**"),
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out("privacy_pycanon"))
    ap.add_argument("--page", type=Path, default=None, help="write the results page here")
    ap.add_argument("--pycanon-python", default="/tmp/pycanon-env/bin/python",
                    help="the Python of the environment that has pycanon")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--large-rows", type=int, default=100_000)
    ap.add_argument("--notes", type=Path, default=None, help="a Markdown file for the page's 'Reading it'")
    ap.add_argument("--render-only", action="store_true", help="re-render the page from OUT/results.json")
    args = ap.parse_args(argv)
    env = run_environment([], argv)
    if args.render_only:
        result = json.loads((args.out / "results.json").read_text())
    else:
        result = run(args, env)
        write_text_atomic(args.out / "results.json", to_json(result))
    for r in result["rows"]:
        p, q = r["pmed"], r["pycanon"]
        print(f"{r['id']:32s} k {p['k']}/{q.get('k', 'ERR')}/{p['pandas_k']}  l {p['l']}/{q.get('l', 'ERR')}/"
              f"{p['pandas_l']}  {'ok' if r['k_equal'] and r['l_equal'] else 'DIFF'}  "
              f"pmed {p['seconds']:.3f}s pycanon {q.get('k_seconds', 0) + q.get('l_seconds', 0):.3f}s")
    return write_page(result, args, env, render)


if __name__ == "__main__":
    raise SystemExit(main())
