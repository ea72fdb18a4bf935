"""The synthetic cohort on disk: the files a pmed study reads, byte-identical for equal inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.datasets.synthetic.cohort import (
    SyntheticCohort,
    make_synthetic_cohort,
    sample_new_patients,
)
from pmed.datasets.synthetic.model import PRS_SCALE
from pmed.datasets.synthetic.schema import synthetic_schema
from pmed.io._atomic import atomic_path
from pmed.io.vcf import write_vcf

__all__ = ["cad_scorefile_text", "write_synthetic_cohort"]


def _csv_frame(patients: pd.DataFrame) -> pd.DataFrame:
    out = patients.copy()
    # Whole numbers print without ".0" and 0/1 flags stay "0"/"1", which the schema's bool
    # parser reads; missing values print as empty fields.
    for c in ("age", "diabetes", "hypertension", "prior_mi", "response", "cad", "chd_event"):
        if c in out.columns:
            out[c] = out[c].astype("Int64")
    return out


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        # Write bytes so the platform never turns "\n" into "\r\n": files must be identical.
        tmp.write_bytes(text.encode("utf-8"))
    return path


def cad_scorefile_text(variants: pd.DataFrame) -> str:
    """A PGS Catalog scoring file (format 2.0, GRCh38) for the CAD trait SNPs.

    Weights are the published per-allele log odds ratios (before :data:`PRS_SCALE`), as a GWAS
    would report them; every other SNP is given on the REF allele with the sign reversed, as
    scoring files often do, so that matching has swapped alleles to handle.
    """
    t = variants[(variants["role"] == "trait") & (variants["logor_cad"] != 0)].reset_index(drop=True)
    w = t["logor_cad"] / PRS_SCALE
    swap = (np.arange(len(t)) % 2) == 1
    rows = pd.DataFrame({
        "rsID": t["id"], "chr_name": t["chrom"], "chr_position": t["pos"],
        "effect_allele": np.where(swap, t["ref"], t["alt"]),
        "other_allele": np.where(swap, t["alt"], t["ref"]),
        "effect_weight": np.where(swap, -w, w).round(6),
    })
    header = [
        "###PGS CATALOG SCORING FILE - synthetic, written by pmed.datasets.synthetic",
        "#format_version=2.0",
        "##POLYGENIC SCORE (PGS) INFORMATION",
        "#pgs_id=PGS_SYNTH_CAD",
        "#pgs_name=synthetic_CAD_trait_SNPs",
        "#trait_reported=Coronary artery disease",
        "#weight_type=log(OR)",
        "#genome_build=GRCh38",
        f"#variants_number={len(rows)}",
    ]
    return "\n".join(header) + "\n" + rows.to_csv(sep="\t", index=False, lineterminator="\n")


def write_synthetic_cohort(
    out_dir: str | Path,
    cohort: SyntheticCohort | None = None,
    *,
    n_patients: int = 1000,
    n_new: int = 5,
    seed: int = 0,
) -> dict[str, Path]:
    """Write a synthetic cohort as the files a pmed study reads.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed).
    cohort
        The cohort to write; default ``make_synthetic_cohort(n_patients, seed=seed)``.
    n_patients, seed
        Used only when ``cohort`` is not given.
    n_new
        Number of extra patients for ``new_patients.csv`` (drawn with
        :func:`sample_new_patients`).

    Returns
    -------
    dict of str to pathlib.Path
        ``patients`` (``patients.csv``, the training cohort with outcomes), ``new_patients``
        (``new_patients.csv``, no outcome columns), ``schema`` (``schema.yaml``), ``genotypes``
        (``genotypes.vcf.gz``, BGZF, cohort then new patients), ``variants`` (``variants.csv``),
        ``cad_scorefile`` (``cad_pgs.txt``, a PGS Catalog scoring file of the CAD SNPs),
        ``truth`` (``truth.json``) and ``truth_table`` (``truth_patients.csv``, per-patient
        truth for cohort and new patients, column ``set`` = ``train``/``new``).

    Notes
    -----
    Every file is written atomically, and the same inputs give byte-identical files (the VCF
    carries no ``##fileDate``).
    """
    import yaml

    if cohort is None:
        cohort = make_synthetic_cohort(n_patients, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    new_patients, new_g, new_truth = sample_new_patients(cohort, n_new)

    paths: dict[str, Path] = {}
    paths["patients"] = _write_text(
        out / "patients.csv", _csv_frame(cohort.patients).to_csv(lineterminator="\n")
    )
    paths["new_patients"] = _write_text(
        out / "new_patients.csv", _csv_frame(new_patients).to_csv(lineterminator="\n")
    )
    paths["schema"] = _write_text(
        out / "schema.yaml",
        "# pmed schema of patients.csv and new_patients.csv (synthetic cohort)\n"
        + yaml.safe_dump(synthetic_schema(), sort_keys=False, allow_unicode=True),
    )
    samples = [*cohort.patients.index, *new_patients.index]
    paths["genotypes"] = write_vcf(
        out / "genotypes.vcf.gz",
        cohort.variants,
        np.concatenate([cohort.genotypes, new_g], axis=1),
        samples,
        source="pmed.datasets.synthetic",
        file_date=None,
    )
    paths["variants"] = _write_text(
        out / "variants.csv", cohort.variants.to_csv(index=False, lineterminator="\n")
    )
    paths["cad_scorefile"] = _write_text(out / "cad_pgs.txt", cad_scorefile_text(cohort.variants))
    truth = dict(cohort.truth)
    truth["n_new"] = int(n_new)
    truth["files"] = {
        "patients": "patients.csv",
        "new_patients": "new_patients.csv",
        "schema": "schema.yaml",
        "genotypes": "genotypes.vcf.gz",
        "variants": "variants.csv",
        "truth": "truth.json",
        "truth_table": "truth_patients.csv",
        "cad_scorefile": "cad_pgs.txt",
    }
    paths["truth"] = _write_text(
        out / "truth.json", json.dumps(truth, indent=2, sort_keys=True) + "\n"
    )
    table = pd.concat([cohort.truth_table.assign(set="train"), new_truth.assign(set="new")], axis=0)
    paths["truth_table"] = _write_text(
        out / "truth_patients.csv", table.to_csv(lineterminator="\n")
    )
    return paths
