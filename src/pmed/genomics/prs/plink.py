"""Export matched variants as plink2 ``--score`` files, and run plink2 on them for cross-checks.

plink2 scores one allele per variant ID per file and one effect model per call, so the matched
variants are split like pgsc_calc does: by effect type (additive / dominant / recessive) and,
when two scores weight different alleles of one variant, into further files. Summing plink2's
``*_SUM`` columns over the files gives the scores :func:`~pmed.genomics.prs.score_targets` computes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from pmed.errors import DataNotFoundError, InputError
from pmed.genomics.prs.match import MatchResult

__all__ = ["write_plink2_scorefiles", "run_plink2_score", "find_plink2"]


def write_plink2_scorefiles(result: MatchResult, out_dir: str | Path, *,
                            per_variant: bool = False) -> list[tuple[Path, str]]:
    """Write plink2 scoring files (``ID``, ``effect_allele``, one weight column per score).

    With ``per_variant``, every matched (score, variant) row gets its own column ``v<i>`` with
    weight 1, so plink2 reports each sample's effect-allele dosage (after its dominant /
    recessive coding and mean imputation) for each variant.

    Returns
    -------
    list of (path, effect type)
        The effect type is the plink2 ``--score`` modifier to use (``""``, ``"dominant"``,
        ``"recessive"``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v = result.log()
    m = v.loc[(v["match_status"] == "matched").to_numpy()].copy()
    for c in ("target_id", "ref", "alt", "score", "effect_type"):
        m[c] = m[c].astype(object)
    if m["target_id"].isin([".", ""]).any():
        raise InputError("plink2 export needs variant IDs in the genotype files", fix=(
            "set IDs first, e.g. plink2 --set-all-var-ids @:#:$r:$a"))
    m["effect"] = np.where(m["effect_is_alt"], m["alt"], m["ref"])
    if per_variant:
        m["score"] = [f"v{i}" for i in range(len(m))]
        m["weight"] = 1.0
    scores = list(dict.fromkeys(m["score"]))
    files = []
    for kind, d in m.groupby("effect_type", sort=False):
        # one (ID, effect allele) per file: the k-th distinct effect allele of an ID goes to file k
        d = d.assign(slot=d.groupby("target_id")["effect"].transform(
            lambda s: pd.factorize(s)[0]))
        for slot, part in d.groupby("slot"):
            wide = part.pivot_table(index=["target_id", "effect"], columns="score",
                                    values="weight", aggfunc="sum", fill_value=0.0)
            wide = wide.reindex(columns=[s for s in scores if s in wide.columns])
            path = out_dir / f"score_{kind}_{slot}.tsv"
            wide.reset_index().rename(columns={"target_id": "ID", "effect": "effect_allele"}).to_csv(
                path, sep="\t", index=False, float_format="%.17g")
            files.append((path, "" if kind == "additive" else kind))
    return files


def find_plink2() -> str:
    """Path of the ``plink2`` executable."""
    exe = shutil.which("plink2")
    if exe is None:
        raise DataNotFoundError("plink2 is not installed", fix="apt-get install plink2")
    return exe


def run_plink2_score(target: str | Path, result: MatchResult, work_dir: str | Path, *,
                     threads: int = 1, no_mean_imputation: bool = False,
                     per_variant: bool = False) -> pd.DataFrame:
    """Score ``target`` with plink2 on the exported files; wide table IID × score of SUMs.

    plink2 prints sums with 6 significant digits (about 5e-6 for a score near 1). With
    ``per_variant``, plink2 reports each (score, variant)'s dosage instead (exact for hardcalls)
    and the weighted sums are formed here in double precision: a comparison limited by pmed
    and plink2's arithmetic, not by plink2's output format.
    """
    exe = find_plink2()
    target = Path(target)
    work_dir = Path(work_dir)
    files = write_plink2_scorefiles(result, work_dir / "scorefiles", per_variant=per_variant)
    name = target.name
    if name.endswith(".pgen"):
        src = ["--pfile", str(target.with_suffix(""))]
    elif name.endswith(".bed"):
        src = ["--bfile", str(target.with_suffix(""))]
    else:
        src = ["--vcf", str(target)]
    total = None
    for i, (path, kind) in enumerate(files):
        n_scores = len(pd.read_csv(path, sep="\t", nrows=0).columns) - 2
        mods = ["header-read", "cols=+scoresums,+denom"] + ([kind] if kind else []) + (
            ["no-mean-imputation"] if no_mean_imputation else [])
        prefix = work_dir / f"plink2_{i}"
        cmd = [exe, *src, "--score", str(path), "1", "2", *mods,
               "--score-col-nums", f"3-{2 + n_scores}" if n_scores > 1 else "3",
               "--threads", str(threads), "--out", str(prefix), "--silent"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise InputError(f"plink2 failed: {proc.stderr.strip() or proc.stdout.strip()}",
                             file=path, fix=" ".join(cmd))
        ss = pd.read_csv(f"{prefix}.sscore", sep="\t")
        ss = ss.rename(columns={"#IID": "IID"})
        sums = ss.set_index("IID")[[c for c in ss.columns if c.endswith("_SUM")
                                    and c != "NAMED_ALLELE_DOSAGE_SUM"]]
        sums.columns = [c[: -len("_SUM")] for c in sums.columns]
        total = sums if total is None else total.add(sums, fill_value=0.0)
    if per_variant:
        m = result.matched
        m = m.assign(score=m["score"].astype(object))
        cols = [f"v{i}" for i in range(len(m))]
        dos = total[cols].to_numpy(dtype=np.float64)
        w = m["weight"].to_numpy(dtype=np.float64)
        out = {}
        for s in dict.fromkeys(m["score"]):
            sel = (m["score"] == s).to_numpy()
            out[s] = dos[:, sel] @ w[sel]
        total = pd.DataFrame(out, index=total.index)
    return total
