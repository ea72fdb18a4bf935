"""Concordance with PharmCAT's own test expectations (a validation harness, not part of pmed).

Run ``python benchmarks/pgx_harness.py --write docs/results/pgx_concordance.md`` to regenerate
the concordance report; ``tests/genomics/pgx/test_pgx_concordance.py`` imports this file by path
so that CI keeps checking the concordance.

PharmCAT 3.1.1's Java tests are stored as data in ``../shared/data/pgx/pharmcat_v3.1.1/test``:

- ``pharmcat_test_expectations.jsonl``: each record lists VCF-builder operations (every
  position of a named gene hom-ref, then the given genotypes, ``./.``/omitted lines, phasing,
  phase sets, sex) and checks (expected diplotypes per gene). :func:`build_case_vcf` rebuilds the
  VCF as PharmCAT's ``TestVcfBuilder`` does, :func:`expected_calls` turns the checks into an
  expected *set* of diplotypes (or, for the lowest-function genes on unphased data, a multiset
  of haplotypes) per gene, and :func:`run_cases` compares pmed's calls with them.
- ``static_vcf_expected_diplotypes.tsv``: static VCFs with the expected set of diplotypes.

:func:`concordance` returns the per-gene table that ``docs/results/pgx_concordance.md``
reports. Checks written as Java expressions that cannot be resolved are counted as skipped.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import pandas as pd

from pmed.datasets._paths import shared_data_dir
from pmed.genomics.pgx._data import MATCHER_GENES, definitions
from pmed.genomics.pgx.call import call_genotypes
from pmed.genomics.pgx.matcher import gene_model
from pmed.genomics.pgx.vcf import read_pgx_vcf

__all__ = [
    "TestCase",
    "load_cases",
    "build_case_vcf",
    "expected_calls",
    "canonical_call",
    "run_cases",
    "run_static",
    "concordance",
    "pharmcat_test_dir",
    "compare_example_report",
    "concordance_markdown",
]

_PIPELINE_FILES = ("PipelineTest", "Cacna1sTest", "CftrTest", "Cyp2d6Test", "DpydTest",
                   "Ryr1Test", "ToxicGenesTest")


def pharmcat_test_dir() -> Path:
    """``<shared>/pgx/pharmcat_v3.1.1/test`` (the folder may be absent: callers check)."""
    return shared_data_dir() / "data" / "pgx" / "pharmcat_v3.1.1" / "test"


@dataclass
class TestCase:
    """One record of ``pharmcat_test_expectations.jsonl``."""

    __test__ = False  # not a pytest class

    name: str
    file: str
    record: dict
    expected: dict[str, object] = field(default_factory=dict)
    skipped_checks: int = 0


def load_cases(path: str | PathLike | None = None) -> list[TestCase]:
    """Read the test-expectation records (one :class:`TestCase` each)."""
    path = Path(path) if path is not None else pharmcat_test_dir() / "pharmcat_test_expectations.jsonl"
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        c = TestCase(name=r["test"], file=r["file"].rsplit("/", 1)[-1], record=r)
        c.expected, c.skipped_checks = expected_calls(r)
        cases.append(c)
    return cases


def _is_multi_vcf(ops: list[dict]) -> bool:
    seen = set()
    varied = False
    for op in ops:
        if op["op"] == "phased" and varied:
            return True
        if op["op"] in ("variation", "variationInPhaseSet", "missing"):
            varied = True
            key = (op["args"][0], op["args"][1])
            if key in seen:
                return True
            seen.add(key)
    return False


def build_case_vcf(record: dict) -> str | None:
    """Rebuild the VCF text of a test record as PharmCAT's ``TestVcfBuilder`` writes it.

    Returns ``None`` for records that concatenate several builders (not one VCF).
    """
    ops = record["vcf_builder_ops"]
    if not ops or _is_multi_vcf(ops):
        return None
    defs = definitions()["genes"]
    phased = any(o["op"] == "phased" for o in ops)
    unknown_ok = any(o["op"] == "allowUnknownAllele" for o in ops)
    male = any(o["op"] == "male" for o in ops)
    edits: dict[str, dict[str, tuple]] = {}
    for o in ops:
        a = o["args"]
        if o["op"] == "reference":
            edits.setdefault(a[0], {})
        elif o["op"] == "variation":
            edits.setdefault(a[0], {})[a[1]] = (a[2:], None)
        elif o["op"] == "variationInPhaseSet":
            edits.setdefault(a[0], {})[a[1]] = (a[3:], a[2])
        elif o["op"] == "missing":
            edits.setdefault(a[0], {})[a[1]] = (None, None)
    lines = [
        "##fileformat=VCFv4.2",
        "##source=pmed PharmCAT test rebuild",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tSAMPLE",
    ]
    sep = "|" if phased else "/"
    for gene, emap in edits.items():
        if gene not in defs:
            return None
        gd = defs[gene]
        chrom = gd["chromosome"]
        for v in gd["variants"]:
            key = v["rsid"] or f"{chrom}:{v['position']}"
            alts = list(v["alts"])
            ps = None
            if key in emap:
                cpic, ps = emap[key]
                if cpic is None:
                    continue
                codes = []
                for c in cpic:
                    if c == ".":
                        codes.append(".")
                        continue
                    vcf_allele = v["cpic_to_vcf"].get(c)
                    if vcf_allele is None:
                        if not unknown_ok:
                            return None
                        vcf_allele = c
                        if vcf_allele not in alts:
                            alts.append(vcf_allele)
                    if vcf_allele == v["ref"]:
                        codes.append("0")
                    else:
                        codes.append(str(alts.index(vcf_allele) + 1))
                gt = sep.join(codes)
            elif chrom == "chrX" and male:
                gt = "0"
            else:
                gt = "0|0" if phased else "0/0"
            fmt, sample = "GT", gt
            if ps is not None:
                fmt, sample = "GT:PS", f"{gt}:{ps}"
            lines.append(
                "\t".join([chrom, str(v["position"]), v["rsid"] or ".", v["ref"],
                           ",".join(alts) or ".", ".", "PASS", f"PX={gene}", fmt, sample])
            )
    return "\n".join(lines) + "\n"


_REF_EXPR = re.compile(r'^\s*TextConstants\.REFERENCE\s*\+\s*TextConstants\.GENOTYPE_DELIMITER\s*'
                       r'\+\s*(?:"([^"]*)"|TextConstants\.REFERENCE)\s*$')


def _resolve(value, locals_: dict):
    """Resolve a check argument: plain values, simple Java string expressions, locals."""
    if isinstance(value, list):
        out = []
        for v in value:
            r = _resolve(v, locals_)
            if r is _SKIP:
                return _SKIP
            out.extend(r if isinstance(r, list) else [r])
        return out
    if isinstance(value, dict) and "expr" in value:
        e = value["expr"].strip()
        if e in locals_:
            return _resolve(locals_[e], locals_)
        if e == "UNKNOWN_CALL":
            return "@UNCALLED"
        if e == "new ArrayList<>()":
            return []
        m = _REF_EXPR.match(e)
        if m:
            return "Reference/" + (m.group(1) if m.group(1) is not None else "Reference")
        m = re.fullmatch(r"List\.of\((.*)\)", e)
        if m:
            return re.findall(r'"([^"]*)"', m.group(1))
        return _SKIP
    return value


_SKIP = object()


def _normalise_one(gene: str, s: str) -> str:
    ref = gene_model(gene).names[gene_model(gene).ref_index]
    s = s.replace("@HOMOZYGOUS_REFERENCE", f"{ref}/{ref}")
    s = s.replace("Reference/", f"{ref}/") if ref != "Reference" and s.startswith("Reference/") else s
    m = re.fullmatch(r"(.*) \(heterozygous\)", s)
    if m:
        return f"{ref}/{m.group(1)}"
    return s


def canonical_call(gene: str, values: list[str]) -> tuple:
    """Canonical, order-free form of a call for comparison.

    A list of ``a/b`` diplotypes becomes ``("dip", frozenset)`` (alleles in a pair and parts of
    a ``[x + y]`` combination sorted); a list of single haplotypes (lowest-function genes on
    unphased data; ``x (homozygous)`` counts twice) becomes ``("hap", sorted tuple)``;
    ``@UNCALLED`` or an empty list become ``("none",)``.
    """
    values = [_normalise_one(gene, v) for v in values]
    if not values or values == ["@UNCALLED"]:
        return ("none",)
    if all("/" in v and not v.startswith("[") or re.search(r"\]/|/\[|^[^\[]*/", v) for v in values):
        dips = set()
        for v in values:
            parts = _split_pair(v)
            if parts is None:
                break
            dips.add("/".join(sorted(_canon_hap(p) for p in parts)))
        else:
            return ("dip", frozenset(dips))
    haps = []
    for v in values:
        m = re.fullmatch(r"(.*) \(homozygous\)", v)
        if m:
            haps += [m.group(1), m.group(1)]
        else:
            haps.append(v)
    return ("hap", tuple(sorted(_canon_hap(h) for h in haps)))


def _canon_hap(h: str) -> str:
    h = h.strip()
    if h.startswith("[") and h.endswith("]"):
        return "[" + " + ".join(sorted(p.strip() for p in h[1:-1].split(" + "))) + "]"
    return h


def _split_pair(v: str) -> list[str] | None:
    depth = 0
    for i, ch in enumerate(v):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "/" and depth == 0:
            return [v[:i], v[i + 1:]]
    return None


def _gene_of(record: dict) -> str | None:
    if "gene" in record.get("locals", {}) and isinstance(record["locals"]["gene"], str):
        return record["locals"]["gene"]
    genes = {o["args"][0] for o in record["vcf_builder_ops"] if o.get("args")}
    genes &= set(MATCHER_GENES)
    if len(genes) == 1:
        return genes.pop()
    m = re.search(r"(?:NamedAlleleMatcher|Haplotyper)?([A-Z][a-z0-9]+\d?[a-z0-9]*)Test", record["file"])
    if m and m.group(1).upper() in MATCHER_GENES:
        return m.group(1).upper()
    if record["file"].endswith("DpydTest.java"):
        return "DPYD"
    return None


def expected_calls(record: dict) -> tuple[dict[str, tuple], int]:
    """Expected canonical call per gene from a record's checks, and the number skipped.

    The first check that states a gene's diplotypes wins, in the order: source diplotypes /
    standard checks / matcher pairs, then printed CPIC calls, then printed calls.
    """
    loc = record.get("locals", {})
    found: dict[str, tuple[int, tuple]] = {}
    skipped = 0
    gene0 = _gene_of(record)
    for chk in record["checks"]:
        name, args = chk["check"], chk["args"]
        gene, vals, rank = None, None, 9
        if name == "assertDiplotypePairs" and args:
            gene, vals, rank = gene0, _resolve(args[0], loc), 0
            if isinstance(vals, str):
                vals = [vals]
            builder = len(args) > 1 and "TestVcfBuilder" in json.dumps(args[1])
            if record.get("static_vcfs") and not builder and record["vcf_builder_ops"]:
                gene = f"{gene}@static"  # this check is about the record's static VCF
        elif name == "doStandardChecks" and len(args) >= 2:
            gene, vals, rank = gene0, _resolve(args[1], loc), 0
        elif name == "testSourceDiplotypes" and len(args) >= 2:
            gene, vals, rank = args[0], _resolve(args[1], loc), 0
            if isinstance(vals, str):
                vals = [vals]
        elif name in ("testPrintCpicCalls", "testPrintCalls") and len(args) >= 2:
            gene = args[0]
            vals = _resolve(args[1:], loc)
            rank = 1 if name == "testPrintCpicCalls" else 2
        else:
            continue
        if gene is None or gene.split("@")[0] not in MATCHER_GENES:
            continue
        if vals is _SKIP or not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            skipped += 1
            continue
        if any(v.endswith(")") and "Metabolizer" in v for v in vals):
            continue
        canon = canonical_call(gene.split("@")[0], vals)
        if gene not in found or rank < found[gene][0]:
            found[gene] = (rank, canon)
    return {g: v for g, (_, v) in found.items()}, skipped


def _observed(gene: str, gc) -> tuple:
    if isinstance(gc, str):  # an outside call
        return canonical_call(gene, [d.strip() for d in gc.split(" | ")])
    if gc is None or gc.no_data or gc.uncallable or not gc.called:
        return ("none",)
    if gc.haplotypes:
        return ("hap", tuple(sorted(_canon_hap(h) for h in gc.haplotypes)))
    if all(b is None for _, b in gc.diplotypes):
        return ("hap", tuple(sorted(_canon_hap(a) for a, _ in gc.diplotypes)))
    return ("dip", frozenset("/".join(sorted(_canon_hap(x) for x in (a, b) if x is not None))
                             for a, b in gc.diplotypes))


def _top_flag(record: dict) -> bool:
    if record["file"].rsplit("/", 1)[-1].startswith(_PIPELINE_FILES):
        for o in record.get("other", []):
            if o.get("ctor") == "PipelineWrapper" and o.get("args"):
                return not bool(o["args"][0])  # PipelineWrapper(findAll, ...)
        return True
    flags = record.get("matcher_flags_raw") or []
    first = flags[0] if flags else []
    return bool(first[0]) if first else False


def run_cases(cases: list[TestCase] | None = None) -> pd.DataFrame:
    """Run every test case and compare with its expectations.

    Returns
    -------
    pandas.DataFrame
        One row per (case, gene): ``case``, ``file``, ``gene``, ``expected``, ``observed``,
        ``exact`` (bool) and ``status`` (``"compared"`` or why it was skipped).
    """
    cases = load_cases() if cases is None else cases
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, c in enumerate(cases):
            if not c.expected:
                rows.append({"case": c.name, "file": c.file, "gene": None, "expected": None,
                             "observed": None, "exact": False, "status": "no diplotype check"})
                continue
            static_keys = {g: e for g, e in c.expected.items() if g.endswith("@static")}
            if static_keys:
                res = _call(pharmcat_test_dir() / c.record["static_vcfs"][0], _top_flag(c.record))
                for key, exp in static_keys.items():
                    g = key.split("@")[0]
                    obs = _observed(g, res.get(g))
                    rows.append({"case": c.name + " (static VCF)", "file": c.file, "gene": g,
                                 "expected": exp, "observed": obs, "exact": obs == exp,
                                 "status": "compared"})
            expected = {g: e for g, e in c.expected.items() if not g.endswith("@static")}
            if not expected:
                continue
            if c.record["static_vcfs"] and not c.record["vcf_builder_ops"]:
                vcf_path = pharmcat_test_dir() / c.record["static_vcfs"][0]
            else:
                text = build_case_vcf(c.record)
                if text is None:
                    for g, exp in expected.items():
                        rows.append({"case": c.name, "file": c.file, "gene": g,
                                     "expected": exp, "observed": None, "exact": False,
                                     "status": "several VCFs in one test"})
                    continue
                vcf_path = Path(tmp) / f"case{i}.vcf"
                vcf_path.write_text(text)
            outside = _outside(c.record)
            res = _call(vcf_path, _top_flag(c.record), outside)
            in_input = {o["args"][0] for o in c.record["vcf_builder_ops"] if o.get("args")}
            for g, exp in expected.items():
                if (not c.record["static_vcfs"] and g not in in_input and g not in outside):
                    rows.append({"case": c.name, "file": c.file, "gene": g, "expected": exp,
                                 "observed": None, "exact": False,
                                 "status": "input not in the data (outside-call file)"})
                    continue
                obs = _observed(g, res.get(g))
                rows.append({"case": c.name, "file": c.file, "gene": g, "expected": exp,
                             "observed": obs, "exact": obs == exp, "status": "compared"})
    return pd.DataFrame(rows)


def _outside(record: dict) -> dict[str, str]:
    """Outside calls a test passes to PharmCAT (collisions keep every call)."""
    out: dict[str, str] = {}
    for o in record.get("other", []):
        text = o.get("outside_calls_tsv")
        if not text:
            continue
        for line in text.splitlines():
            cols = line.split("\t")
            if len(cols) >= 2 and cols[0] in MATCHER_GENES:
                out[cols[0]] = f"{out[cols[0]]} | {cols[1]}" if cols[0] in out else cols[1]
    return out


def _call(vcf_path: Path, top: bool, outside: dict[str, str] | None = None) -> dict:
    geno = read_pgx_vcf(vcf_path)
    res = call_genotypes(geno, top_candidate_only=top, recommendations=False,
                         require_calls=False, outside_calls=outside)
    if not res.samples:
        return {}
    return {**res.samples[0].genes, **res.samples[0].outside}


def run_static(tsv: str | PathLike | None = None) -> pd.DataFrame:
    """Run ``static_vcf_expected_diplotypes.tsv``: one row per VCF with ``exact``."""
    tsv = Path(tsv) if tsv is not None else pharmcat_test_dir() / "static_vcf_expected_diplotypes.tsv"
    table = pd.read_csv(tsv, sep="\t", dtype=str).drop_duplicates(["vcf", "test"])
    rows = []
    for _, r in table.iterrows():
        flags = json.loads(r["matcher_bool_flags_raw"].replace("True", "true").replace("False", "false"))
        top = bool(flags[0][0]) if flags and flags[0] else False
        vcf = tsv.parent / r["vcf"]
        res = _call(vcf, top)
        exp = canonical_call(r["gene"], [x.strip() for x in r["expected_diplotypes_any_order"].split(" | ")])
        obs = _observed(r["gene"], res.get(r["gene"]))
        rows.append({"case": r["test"], "vcf": r["vcf"], "gene": r["gene"], "expected": exp,
                     "observed": obs, "exact": obs == exp})
    return pd.DataFrame(rows)


def concordance(
    cases_path: str | PathLike | None = None,
    *,
    static_tsv: str | PathLike | None = None,
    include_static: bool = True,
    max_cases: int | None = None,
) -> pd.DataFrame:
    """Per-gene concordance with PharmCAT's test expectations.

    Parameters
    ----------
    cases_path
        ``pharmcat_test_expectations.jsonl`` (default: the shared copy).
    static_tsv
        ``static_vcf_expected_diplotypes.tsv`` (default: the shared copy).
    include_static
        Add the static-VCF table as its own rows (``set == "static"``).
    max_cases
        Use only the first ``max_cases`` records (quick checks).

    Returns
    -------
    pandas.DataFrame
        Columns ``set`` (``"expectations"``/``"static"``), ``gene``, ``n_compared``,
        ``n_exact``, ``pct_exact``, ``n_skipped``; one ``ALL`` row per set. ``attrs["details"]``
        holds the per-case rows and ``attrs["case_level"]`` the share of *cases* whose every
        gene call is exactly the expected set.
    """
    cases = load_cases(cases_path)
    if max_cases is not None:
        cases = cases[:max_cases]
    det = run_cases(cases)
    out = []
    comp = det[det["status"] == "compared"]
    skipped = det[(det["status"] != "compared") & det["gene"].notna()]
    for gene in sorted(set(comp["gene"]) | set(skipped["gene"])):
        g = comp[comp["gene"] == gene]
        out.append({"set": "expectations", "gene": gene, "n_compared": len(g),
                    "n_exact": int(g["exact"].sum()),
                    "n_skipped": int((skipped["gene"] == gene).sum())})
    out.append({"set": "expectations", "gene": "ALL", "n_compared": len(comp),
                "n_exact": int(comp["exact"].sum()), "n_skipped": len(skipped)})
    by_case = comp.groupby("case")["exact"].all()
    static = None
    if include_static:
        static = run_static(static_tsv)
        for gene in sorted(static["gene"].unique()):
            g = static[static["gene"] == gene]
            out.append({"set": "static", "gene": gene, "n_compared": len(g),
                        "n_exact": int(g["exact"].sum()), "n_skipped": 0})
        out.append({"set": "static", "gene": "ALL", "n_compared": len(static),
                    "n_exact": int(static["exact"].sum()), "n_skipped": 0})
    table = pd.DataFrame(out)
    table["pct_exact"] = (100 * table["n_exact"] / table["n_compared"].where(
        table["n_compared"] > 0)).round(1)
    table = table[["set", "gene", "n_compared", "n_exact", "pct_exact", "n_skipped"]]
    table.attrs["details"] = det
    table.attrs["static_details"] = static
    table.attrs["case_level"] = {
        "n_cases": int(len(by_case)),
        "n_exact": int(by_case.sum()),
        "n_records": len(cases),
        "n_without_diplotype_check": int((det["status"] == "no diplotype check").sum()),
        "status_counts": dict(Counter(det["status"])),
    }
    return table


def _norm_text(t: str | None) -> str:
    t = re.sub(r"<[^>]+>", " ", t or "")
    return re.sub(r"\s+", " ", t).strip().lower()


def compare_example_report(
    vcf: str | PathLike | None = None,
    report_json: str | PathLike | None = None,
    outside_calls: str | PathLike | None = None,
) -> pd.DataFrame:
    """Reproduce PharmCAT's end-to-end example (``examples/pharmcat.example.*``).

    Runs :func:`~pmed.genomics.pgx.call_vcf` on the example VCF (with its outside calls) and
    compares, per guideline source and drug, the recommendations PharmCAT's report lists with
    pmed's.

    Returns
    -------
    pandas.DataFrame
        One row per (source, drug) that either side reports: ``in_pharmcat``, ``in_pmed``,
        ``same_classification`` and ``same_text`` (whitespace/markup-insensitive).
    """
    from pmed.genomics.pgx.call import call_vcf

    ex = shared_data_dir() / "data" / "pgx" / "pharmcat_v3.1.1" / "examples"
    vcf = Path(vcf) if vcf is not None else ex / "pharmcat.example.vcf"
    report_json = Path(report_json) if report_json else ex / "pharmcat.example.report.json"
    outside_calls = outside_calls if outside_calls is not None else ex / "pharmcat.example.outsideCall.tsv"
    report = json.loads(Path(report_json).read_text(encoding="utf-8"))
    theirs: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for src_name, src in (("CPIC", "CPIC Guideline Annotation"), ("DPWG", "DPWG Guideline Annotation")):
        for drug, d in report["drugs"].get(src, {}).items():
            for g in d.get("guidelines", []):
                for a in g.get("annotations", []):
                    if a.get("drugRecommendation"):
                        theirs.setdefault((src_name, drug), []).append(
                            (_norm_text(a["drugRecommendation"]), a.get("classification")))
    res = call_vcf(vcf, outside_calls=outside_calls)
    recs = res.recommendations_table()
    ours: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for _, r in recs.iterrows():
        ours.setdefault((r["source"], r["drug"]), []).append(
            (_norm_text(r["recommendation"]), r["classification"]))
    rows = []
    for key in sorted(set(theirs) | set(ours)):
        t, o = theirs.get(key, []), ours.get(key, [])
        rows.append({
            "source": key[0], "drug": key[1], "in_pharmcat": bool(t), "in_pmed": bool(o),
            "same_classification": bool(t and o) and sorted(c for _, c in t) == sorted(c for _, c in o),
            "same_text": bool(t and o) and sorted(x for x, _ in t) == sorted(x for x, _ in o),
        })
    return pd.DataFrame(rows)


def _fmt_canon(c) -> str:
    if not c or c[0] == "none":
        return "no call"
    vals = sorted(c[1]) if c[0] == "dip" else list(c[1])
    return " | ".join(f"`{v}`" for v in vals) + (" (haplotypes)" if c[0] == "hap" else "")


def concordance_markdown(table: pd.DataFrame, example: pd.DataFrame | None = None) -> str:
    """Render :func:`concordance` (and :func:`compare_example_report`) as Markdown."""
    from pmed.genomics.pgx._data import data_version

    case = table.attrs.get("case_level", {})
    det = table.attrs.get("details")
    lines = [
        "# PGx concordance with PharmCAT 3.1.1's test expectations",
        "",
        f"Written by `python benchmarks/pgx_harness.py --write docs/results/pgx_concordance.md`"
        f" (data `{data_version()}`). Inputs: `../shared/data/pgx/pharmcat_v3.1.1/test/`.",
        "",
        "A case is *exact* when pmed returns exactly the expected **set** of diplotypes (order "
        "inside a pair ignored) — or, for DPYD/RYR1 on unphased data, the expected multiset of "
        "haplotypes.",
        "",
        f"**Cases:** {case.get('n_exact')} of {case.get('n_cases')} test records with a "
        f"diplotype expectation are exact "
        f"({100 * case.get('n_exact', 0) / max(case.get('n_cases', 1), 1):.1f} %); "
        f"{case.get('n_records')} records in all, {case.get('n_without_diplotype_check')} without "
        "any diplotype check (HLA/report-only tests).",
        "",
        "| set | gene | compared | exact | % exact | skipped |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for _, r in table.iterrows():
        lines.append(f"| {r['set']} | {r['gene']} | {r['n_compared']} | {r['n_exact']} | "
                     f"{r['pct_exact']} | {r['n_skipped']} |")
    if det is not None:
        miss = det[(det["status"] == "compared") & ~det["exact"]]
        skip = det[det["status"] != "compared"]
        lines += ["", "## Cases not reproduced", ""]
        for _, r in miss.iterrows():
            lines.append(f"- `{r['case']}` ({r['gene']}): expected {_fmt_canon(r['expected'])}, "
                         f"got {_fmt_canon(r['observed'])}")
        lines += ["", "## Skipped", ""]
        for _, r in skip.iterrows():
            lines.append(f"- `{r['case']}`{' (' + r['gene'] + ')' if r['gene'] else ''}: "
                         f"{r['status']}")
    if example is not None:
        lines += ["", "## End-to-end example (`examples/pharmcat.example.*`)", "",
                  "| source | drugs in PharmCAT report | matched by pmed | same classification "
                  "| same text | only in pmed |", "|---|---:|---:|---:|---:|---:|"]
        for src, g in example.groupby("source"):
            both = g[g["in_pharmcat"] & g["in_pmed"]]
            lines.append(f"| {src} | {int(g['in_pharmcat'].sum())} | {len(both)} | "
                         f"{int(both['same_classification'].sum())} | "
                         f"{int(both['same_text'].sum())} | "
                         f"{int((g['in_pmed'] & ~g['in_pharmcat']).sum())} |")
        missing = example[example["in_pharmcat"] & ~example["in_pmed"]]
        lines += ["", "Not matched: " + ", ".join(f"{r.source} {r.drug}" for r in
                                                  missing.itertuples()) + "."]
    return "\n".join(lines) + "\n"


def _main(argv: list[str] | None = None) -> None:
    import argparse

    from pmed.io import write_text_atomic

    ap = argparse.ArgumentParser(description="PGx concordance with PharmCAT's tests")
    ap.add_argument("--write", type=Path, help="Markdown file to write")
    args = ap.parse_args(argv)
    table = concordance()
    example = compare_example_report()
    md = concordance_markdown(table, example)
    if args.write:
        write_text_atomic(args.write, md)
        print(f"wrote {args.write}")
    else:
        print(md)


if __name__ == "__main__":
    _main()
