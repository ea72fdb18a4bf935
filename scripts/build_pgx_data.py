"""Rebuild pmed's pharmacogenomics package data from ``../shared/data/pgx``.

Usage::

    python scripts/build_pgx_data.py [--shared DIR]

Reads PharmCAT 3.1.1 allele definitions, exemptions and phenotype tables, the PharmCAT 2.12.0
CPIC/DPWG guideline recommendations and phenotype tables, PyPGx 0.26.0's CYP2C8 star alleles
(GRCh38 core variants; MIT), and writes compact JSON files under
``src/pmed/genomics/pgx/data/``:

- ``definitions.json``: per gene, the allele-defining positions and the named alleles;
- ``phenotypes.json``: allele function / activity value and diplotype → phenotype tables;
- ``guidelines.json``: recommendations keyed by their lookup keys (plain text, no HTML);
- ``messages.json``: PharmCAT's reporter message rules (copied);
- ``VERSION.json``: the data versions that every pmed PGx output carries.

CPIC content is CC0; ClinPGx/DPWG texts are CC BY-SA 4.0; PharmCAT is MPL-2.0. See
``ATTRIBUTION.md`` beside the data.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "pmed" / "genomics" / "pgx" / "data"

#: Genes PharmCAT's named allele matcher calls from a VCF (CYP2D6 comes from outside calls).
MATCHER_GENES = [
    "ABCG2", "CACNA1S", "CFTR", "CYP2B6", "CYP2C19", "CYP2C9", "CYP3A4", "CYP3A5", "CYP4F2",
    "DPYD", "G6PD", "IFNL3", "NAT2", "NUDT15", "RYR1", "SLCO1B1", "TPMT", "UGT1A1", "VKORC1",
]


def _strip_html(text: str | None) -> str:
    if not text:
        return ""
    text = re.sub(r"<h4[^>]*>(.*?)</h4>", r"\n\1\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(re.sub(r"[ \t]+", " ", text)).strip()


def build_definitions(pc3: Path) -> dict:
    exemptions = json.loads((pc3 / "definition/alleles/exemptions.json").read_text())
    genes = {}
    version = None
    for gene in MATCHER_GENES:
        d = json.loads((pc3 / f"definition/alleles/{gene}_translation.json").read_text())
        version = d["version"]
        variants = [
            {
                "position": v["position"],
                "rsid": v.get("rsid"),
                "ref": v["ref"],
                "alts": list(v.get("alts") or []),
                "cpic_to_vcf": v.get("cpicToVcfAlleleMap") or {},
                "hgvs": v.get("chromosomeHgvsName"),
            }
            for v in d["variants"]
        ]
        alleles = [
            {"name": a["name"], "reference": bool(a.get("reference")), "alleles": a["alleles"]}
            for a in d["namedAlleles"]
        ]
        ex = exemptions.get(gene, {})
        genes[gene] = {
            "chromosome": d["chromosome"],
            "genome_build": d.get("genomeBuild"),
            "version": d["version"],
            "source": d.get("source"),
            "variants": variants,
            "alleles": alleles,
            "suballeles": d.get("suballelesMap") or {},
            "exemptions": {
                "ignored_alleles": ex.get("ignoredAlleles", []),
                "ignored_positions": [
                    [p["position"], p["ref"]] for p in ex.get("ignoredPositions", [])
                ],
                "extra_positions": [
                    {"position": p["position"], "rsid": p.get("rsid"), "ref": p["ref"],
                     "alts": p.get("alts", [])}
                    for p in ex.get("extraPositions", [])
                ],
                "required_positions": ex.get("requiredPositions", []),
                "unphased_priorities": {
                    e["id"]: e["pick"] for e in ex.get("unphasedDiplotypePriorities", [])
                },
            },
        }
    return {"version": version, "genes": genes}


def build_cyp2c8(pypgx: Path) -> dict:
    """CYP2C8 definitions from PyPGx 0.26.0's allele table (GRCh38 core variants, MIT)."""
    import csv

    rows = [r for r in csv.DictReader((pypgx / "data/allele-table.csv").open())
            if r["Gene"] == "CYP2C8"]
    rsids = {r["GRCh38Name"]: r["rsID"] for r in csv.DictReader(
        (pypgx / "data/variant-table.csv").open()) if r["Gene"] == "CYP2C8"}
    variants: dict[tuple[int, str], dict] = {}
    for r in rows:
        if r["GRCh38Core"] in ("N/A", ""):
            continue
        for v in r["GRCh38Core"].split(","):
            _chrom, pos, ref, alt = v.split("-")
            var = variants.setdefault((int(pos), ref), {
                "position": int(pos), "rsid": None if rsids.get(v, "N/A") == "N/A" else rsids[v],
                "ref": ref, "alts": [], "cpic_to_vcf": {ref: ref}, "hgvs": None})
            if alt not in var["alts"]:
                var["alts"].append(alt)
                var["cpic_to_vcf"][alt] = alt
    keys = sorted(variants)
    index = {k: i for i, k in enumerate(keys)}
    alleles = []
    for r in rows:
        defn: list[str | None] = [None] * len(keys)
        if r["StarAllele"] == "*1":
            defn = [variants[k]["ref"] for k in keys]
        elif r["GRCh38Core"] not in ("N/A", ""):
            for v in r["GRCh38Core"].split(","):
                _chrom, pos, ref, alt = v.split("-")
                defn[index[(int(pos), ref)]] = alt
        else:
            continue
        alleles.append({"name": r["StarAllele"], "reference": r["StarAllele"] == "*1",
                        "alleles": defn})
    alleles.sort(key=lambda a: (not a["reference"], int(a["name"].lstrip("*").split(".")[0])))
    return {
        "chromosome": "chr10",
        "genome_build": "GRCh38",
        "version": "pypgx-0.26.0",
        "source": "PyPGx 0.26.0 allele-table.csv (MIT)",
        "variants": [variants[k] for k in keys],
        "alleles": alleles,
        "suballeles": {},
        "exemptions": {"ignored_alleles": [], "ignored_positions": [], "extra_positions": [],
                       "required_positions": [], "unphased_priorities": {}},
    }


def _with_cyp2c8_functions(phen: dict, pypgx: Path) -> dict:
    """Add CYP2C8 allele functions from PyPGx (no CPIC phenotype table exists)."""
    import csv

    alleles = {r["StarAllele"]: {"function": r["Function"], "activity": None, "lookup": None}
               for r in csv.DictReader((pypgx / "data/allele-table.csv").open())
               if r["Gene"] == "CYP2C8"}
    phen["CPIC"]["CYP2C8"] = {"version": "pypgx-0.26.0", "alleles": alleles, "diplotypes": {}}
    return phen


def _phenotype_table(d: dict) -> dict:
    alleles = {}
    for a in d.get("namedAlleles", []):
        alleles[a["name"]] = {
            "function": a.get("functionValue"),
            "activity": a.get("activityValue"),
            "lookup": a.get("lookupKey"),
        }
    diplotypes = {}
    for row in d.get("diplotypes", []):
        key = "/".join(sorted(n for n, c in row["diplotypekey"].items() for _ in range(int(c))))
        diplotypes[key] = {
            "phenotype": row.get("generesult"),
            "lookup": row.get("lookupkey"),
            "activity_score": row.get("activityScore"),
        }
    return {"version": d.get("version"), "alleles": alleles, "diplotypes": diplotypes}


def build_phenotypes(pc3: Path, pc2: Path) -> dict:
    cpic = {}
    for f in sorted((pc3 / "phenotype").glob("*.json")):
        d = json.loads(f.read_text())
        cpic[d["gene"]] = _phenotype_table(d)
    d = json.loads((pc2 / "phenotype/cpic/CYP2D6.json").read_text())
    cpic["CYP2D6"] = _phenotype_table(d)
    dpwg = {}
    for f in sorted((pc2 / "phenotype/dpwg").glob("*.json")):
        d = json.loads(f.read_text())
        dpwg[d["gene"]] = _phenotype_table(d)
    return {"CPIC": cpic, "DPWG": dpwg}


def build_guidelines(pc2: Path) -> list[dict]:
    out = []
    for f in sorted((pc2 / "reporter/guidelines").glob("*.json")):
        g = json.loads(f.read_text())
        gl = g["guideline"]
        recs = []
        for r in g["recommendations"]:
            recs.append(
                {
                    "id": r["id"],
                    "drugs": [c["name"] for c in r.get("relatedChemicals", [])],
                    "population": r.get("population"),
                    "classification": (r.get("classification") or {}).get("term"),
                    "text": _strip_html((r.get("text") or {}).get("html")),
                    "implications": r.get("implications") or [],
                    "lookup": r["lookupKey"],
                }
            )
        out.append(
            {
                "id": gl["id"],
                "name": gl["name"],
                "source": gl["source"],
                "url": gl.get("url"),
                "drugs": [c["name"] for c in gl.get("relatedChemicals", [])],
                "genes": [x["symbol"] for x in gl.get("relatedGenes", [])],
                "file": f.name,
                "recommendations": recs,
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data" / "pgx")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: the package)")
    args = ap.parse_args(argv)
    out = args.out
    pc3 = args.shared / "pharmcat_v3.1.1"
    pc2 = args.shared / "pharmcat_v2.12.0"
    out.mkdir(parents=True, exist_ok=True)
    defs = build_definitions(pc3)
    defs["genes"]["CYP2C8"] = build_cyp2c8(args.shared / "pypgx_v0.26.0")
    files = {
        "definitions.json": defs,
        "phenotypes.json": _with_cyp2c8_functions(build_phenotypes(pc3, pc2),
                                                  args.shared / "pypgx_v0.26.0"),
        "guidelines.json": build_guidelines(pc2),
        "messages.json": json.loads((pc3 / "reporter/messages.json").read_text()),
        "VERSION.json": {
            "pmed_pgx_data": f"pharmcat-3.1.1+definitions-{defs['version']}+guidelines-2.12.0",
            "pharmcat_definitions": "3.1.1",
            "definitions_version": defs["version"],
            "guidelines": "PharmCAT 2.12.0 (CPIC CC0, DPWG CC BY-SA 4.0)",
        },
    }
    for name, obj in files.items():
        text = json.dumps(obj, separators=(",", ":"), sort_keys=False, ensure_ascii=False)
        (out / name).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out / name} ({len(text) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
