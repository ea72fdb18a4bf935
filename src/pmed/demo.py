"""``pmed demo``: the whole flow on the embedded synthetic cohort.

synthetic cohort (patients.csv + genotypes.vcf.gz) → study → five candidate models compared by
cross-validation → the best one bundled → a new patient's predicted clopidogrel response and
the factors that drove it. Everything is also written under the output folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["run_demo", "DEMO_STUDY", "is_demo_output", "MIN_PATIENTS"]

#: Written first into a demo's output folder: a later ``pmed demo --out`` may replace it.
DEMO_MARKER = ".pmed-demo"
#: Fewest synthetic patients with which every study of the demo can be cross-validated (5 folds,
#: stratified, a few events of the rarer outcome in each).
MIN_PATIENTS = 100

DEMO_STUDY = """\
# Written by `pmed demo`. Run it yourself with: pmed run {study} --out {out}
name: clopidogrel-response (synthetic demo)
description: >
  Adequate response to antiplatelet therapy from clinical history, lifestyle, environment,
  pharmacogene phenotypes called from the VCF (PharmCAT's rules) and genotypes at other loci. Synthetic data with a known answer: CYP2C19
  loss-of-function alleles lower the response to clopidogrel but not to ticagrelor.
data:
  patients: data/patients.csv
  schema: data/schema.yaml
  outcomes: [cad, ldl_mmol_l, chd_years, chd_event]
  blocks:
    genotypes: data/genotypes.vcf.gz
    pgx: pgx/features.csv
target: {{column: response, task: binary}}
features:
  blocks: [patients, genotypes, pgx]
  # the called CYP2C19 phenotype stands for its defining variants
  exclude: [site, rs4244285, rs4986893, rs12248560, rs12769205, rs3758581]
models:
  - family: linear
  - family: elastic_net
  - family: random_forest
  - family: lightgbm
  - family: svm
evaluation: {{folds: 5, repeats: 1, select_by: auroc, bootstrap: 500, groups: [sex, site]}}
# who benefits from ticagrelor over clopidogrel? (randomised 1:1): effects/ in the results
# (pre-specified effect modifiers, as a trial pre-specifies its subgroups: clinical factors and
# pharmacogene phenotypes, not the genotypes at null loci); each new patient's treatment options
# come from the bundle's model (pmed predict → treatment_options.csv)
treatment: {{column: drug, control: clopidogrel, randomized: true, propensity: 0.5,
             subgroups: [CYP2C19_phenotype],
             modifiers: [age, sex, bmi, smoking, alcohol_units_week, physical_activity_h_week, diabetes,
                         hypertension, prior_mi, pm25_ug_m3, deprivation_index, CYP2C19_phenotype,
                         CYP2C9_phenotype, CYP2C9_activity_score, SLCO1B1_phenotype, VKORC1_phenotype]}}
effect_models: [t_learner]
seed: {seed}
"""


CAD_STUDY = """\
# Written by `pmed demo`. Run it yourself with: pmed run {study} --out {out}
name: coronary artery disease risk with a polygenic score (synthetic demo)
description: >
  Does a polygenic score add to clinical risk factors? The score was computed by
  `pmed prs score` from the cohort's VCF and a PGS Catalog-format scoring file.
data:
  patients: data/patients.csv
  schema: data/schema.yaml
  outcomes: [response, ldl_mmol_l, chd_years, chd_event]
  blocks:
    prs: prs/scores.tsv
    timeseries: wearables/features.csv{imaging_block}
target: {{column: cad, task: binary}}
features:
  blocks: [patients, prs, timeseries{imaging_name}]
  exclude: [site, drug]
models:
  - {{family: linear, name: clinical, features: [{clinical}]}}
  - {{family: linear, name: clinical+PRS, features: [{clinical}, {prs}]}}
  - {{family: linear, name: clinical+PRS+wearables, features: [{clinical}, {prs}, {wearables}]}}{imaging_model}
evaluation: {{folds: 5, repeats: 1, select_by: auroc, bootstrap: 200}}
# the modalities in one model that answers without some of them (a fifth of the patients had
# no scan): what each adds, with paired intervals, and what is lost when one is missing
fusion:
  method: late
  family: linear
  modalities:
    clinical: {{columns: [{clinical}]}}
    genome: {{columns: [{prs}]}}
    wearables: {{columns: ["wear_*"]}}{imaging_modality}
seed: {seed}
"""

CHD_STUDY = """\
# Written by `pmed demo`. Run it yourself with: pmed run {study} --out {out}
name: time to a first coronary event (synthetic demo)
description: >
  Disease progression: years to a first coronary heart disease event, censored at the end of
  follow-up. Does each modality add to the clinical risk factors? The models are listed
  cumulatively, so metrics.json's comparisons of consecutive models are each modality's gain.
data:
  patients: data/patients.csv
  schema: data/schema.yaml
  outcomes: [response, cad, ldl_mmol_l]
  blocks:
    prs: prs/scores.tsv
    timeseries: wearables/features.csv
target: {{task: survival, time: chd_years, event: chd_event, horizons: [5, 8], time_unit: years}}
features:
  blocks: [patients, prs, timeseries]
  # a week of synthetic wear gives 7 days for all and almost no active minutes; the minimum
  # resting heart rate duplicates the mean: columns a Cox model cannot or need not estimate
  exclude: [site, drug, wear_days, wear_active_minutes_mean, wear_resting_hr_min]
# a small ridge penalty: in some training folds none of the few patients whose smoking status
# is missing has an event, and that level's hazard ratio would have no finite estimate
models:
  - {{family: km, name: no features (Kaplan-Meier)}}
  - {{family: cox, name: clinical, blocks: [patients], params: {{penalizer: 0.01}}}}
  - {{family: cox, name: clinical+PRS, blocks: [patients, prs], params: {{penalizer: 0.01}}}}
  - {{family: cox, name: clinical+PRS+wearables, blocks: [patients, prs, timeseries], params: {{penalizer: 0.01}}}}
evaluation: {{folds: 5, repeats: 1, bootstrap: 100}}
seed: {seed}
"""

RESPONSE_OMICS_STUDY = """\
# Written by `pmed demo`. Run it yourself with: pmed run {study} --out {out}
name: clopidogrel response with a single-cell component (synthetic demo)
description: >
  Does the blood's cell-type composition (simulated single-cell RNA-seq, summarised per patient by
  pmed.omics) add to clinical factors and the called CYP2C19 phenotype? Responders were simulated
  with more CD8 T and NK cells and fewer classical monocytes and circulating tumour cells.
data:
  patients: data/patients.csv
  schema: data/schema.yaml
  outcomes: [cad, ldl_mmol_l, chd_years, chd_event]
  blocks:
    pgx: pgx/features.csv
    omics: omics/features.csv
target: {{column: response, task: binary}}
features:
  blocks: [patients, pgx, omics]
  exclude: [site]
models:
  - {{family: random_forest, name: clinical+PGx, features: [{clinical}, drug, {pgx}]}}
  - {{family: random_forest, name: clinical+PGx+single-cell}}
evaluation: {{folds: 5, repeats: 1, select_by: auroc, bootstrap: 200}}
seed: {seed}
"""

#: Share of the demo's patients without a scan (their image embedding is missing in the fusion).
NO_SCAN_SHARE = 0.2
MONITOR_STUDY = """\
# Written by `pmed demo`. Run it yourself with: pmed run {study} --out {out}
name: coronary artery disease from risk factors and LDL (synthetic demo, monitored)
description: >
  The model that pmed monitor watches after deployment: clinical risk factors and measured LDL
  cholesterol. Later patients arrive month by month (monitor/); from July a new laboratory
  assay reads LDL {shift} mmol/L higher.
data:
  patients: data/patients.csv
  schema: data/schema.yaml
  outcomes: [response, chd_years, chd_event]
target: {{column: cad, task: binary}}
features:
  blocks: [patients]
  exclude: [site, drug]
models:
  - {{family: linear, name: clinical+LDL}}
evaluation: {{folds: 5, repeats: 1, bootstrap: 100, coefficient_bootstrap: 0, report: false}}
seed: {seed}
"""
#: The demo's monitoring: months of later patients, patients a month, the LDL assay's bias
#: (mmol/L) and the month (1-based) from which it reads high.
MONITOR_MONTHS, MONITOR_PER_MONTH, LDL_SHIFT, LDL_SHIFT_MONTH = 12, 250, 0.5, 7

CLINICAL = ("age", "sex", "bmi", "smoking", "alcohol_units_week", "physical_activity_h_week",
            "diabetes", "hypertension", "prior_mi", "pm25_ug_m3", "deprivation_index")


def run_demo(
    out: str | Path = "pmed-demo",
    *,
    n_patients: int = 1000,
    seed: int = 0,
    console: Any = None,
    progress: Any = None,
    reporter_cls: Any = None,
) -> dict:
    """Generate the synthetic cohort, run the demo study, predict for new patients.

    Parameters
    ----------
    out
        Output folder: ``data/`` (the cohort files), ``study.yaml``, ``results/`` (study
        outputs and ``model/``), ``new_patient_predictions.csv``, ``new_patient_factors.csv``.
    n_patients, seed
        Size and seed of the synthetic cohort.
    console, progress, reporter_cls
        Rich console, a factory of progress bars, and the reporter adapter (from the CLI); the
        demo runs silently without them.

    Returns
    -------
    dict
        ``result`` (the :class:`~pmed.study.run.StudyResult`), ``predictions``, ``factors``.

    Raises
    ------
    OptionError
        ``n_patients`` below :data:`MIN_PATIENTS` or a seed outside 0…2**32-1.
    InputError
        ``out`` is a file, or a non-empty folder that is not an earlier demo's output.

    Notes
    -----
    An earlier demo output in ``out`` is moved aside and restored if this run fails or is
    interrupted, removed once it succeeds: ``out`` never mixes two runs. The demo is built at
    its final place (not staged elsewhere) so that the paths its studies and reports record
    are the ones the user sees.
    """
    from pmed.errors import OptionError
    from pmed.io import check_output_folder

    if not isinstance(n_patients, (int, np.integer)) or n_patients < MIN_PATIENTS:
        raise OptionError(f"n_patients must be at least {MIN_PATIENTS}, got {n_patients!r}",
                          fix=f"use --n-patients {MIN_PATIENTS} or more")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed <= 2**32 - 1:
        raise OptionError(f"seed must be an integer from 0 to 2**32-1, got {seed!r}", fix="use --seed 0")
    out = Path(out)
    check_output_folder(out, owned=is_demo_output, what="pmed demo output")
    with _replacing(out):
        return _demo(out, n_patients=n_patients, seed=seed, console=console, progress=progress,
                     reporter_cls=reporter_cls)


def is_demo_output(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier ``pmed demo`` output (its marker, or its study file)."""
    if (folder / DEMO_MARKER).is_file():
        return True
    try:  # outputs of demos written before the marker: their study.yaml says who wrote it
        with open(folder / "study.yaml", encoding="utf-8") as fh:
            return fh.readline().startswith("# Written by `pmed demo`")
    except (OSError, UnicodeDecodeError):
        return False


@contextlib.contextmanager
def _replacing(out: Path) -> Iterator[None]:
    """Build ``out`` anew; an earlier output waits aside and comes back if the body fails."""
    old = out.with_name(f".{out.name}.old")
    moved = out.is_dir() and any(out.iterdir())
    if moved:
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("written by `pmed demo`: a later `pmed demo --out` replaces this folder\n")
    try:
        yield
    except BaseException:
        # a failed or interrupted demo leaves what was there before, never a half-written mix
        for child in list(out.iterdir()):
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if moved:
            out.rmdir()
            os.replace(old, out)
        raise
    if moved:
        shutil.rmtree(old)


def _demo(out: Path, *, n_patients: int, seed: int, console: Any, progress: Any, reporter_cls: Any) -> dict:
    """The demo's body, writing into ``out`` (see :func:`run_demo`)."""
    from pmed.datasets.synthetic import OUTCOME_COLUMNS, write_synthetic_cohort
    from pmed.io import write_table, write_text_atomic
    from pmed.study import explain_patient, load_bundle, predict_patients, run_study
    from pmed.study.predict import new_patient_features
    from pmed.study.report import print_study_summary
    from pmed.study.spec import load_study

    say = console.print if console is not None else (lambda *a, **k: None)
    say("[bold]pmed demo[/bold] — synthetic cohort with a known genotype-by-drug effect\n")

    files = write_synthetic_cohort(out / "data", n_patients=n_patients, n_new=5, seed=seed)
    patients = pd.read_csv(files["patients"])
    variants = pd.read_csv(files["variants"])
    outcomes = ["response", "cad", "ldl_mmol_l", "chd_years/chd_event"]
    n_clinical = patients.shape[1] - 1 - len(OUTCOME_COLUMNS)
    say(f"cohort: {len(patients)} patients; {n_clinical} clinical columns (demographics, history, "
        f"lifestyle, environment, drug given); outcomes {', '.join(outcomes)}")
    say(f"        {len(variants)} genotyped variants in {Path(files['genotypes']).name} "
        f"({(variants['role'] != 'background').sum()} at pharmacogene/trait loci, the rest null)")
    drug = patients["drug"].value_counts()
    say(f"        drugs: {', '.join(f'{k} {v}' for k, v in drug.items())}; "
        f"adequate response {patients['response'].mean():.1%}\n")

    pgx_features, pgx_result = _pharmacogenomics(out, files, say=say)
    pgx_recs = pgx_result.recommendations_table()

    study_path = out / "study.yaml"
    write_text_atomic(study_path, DEMO_STUDY.format(seed=seed, study=study_path, out=out / "results"))
    study = load_study(study_path)
    if progress is not None:
        with progress() as p:
            result = run_study(study, out / "results", reporter=reporter_cls(p))
    else:
        result = run_study(study, out / "results")
    if console is not None:
        print_study_summary(result, console)
    _say_effects(out / "results" / "effects", say)

    # a new patient: the model bundle is loaded back from disk, as a user would
    bundle = load_bundle(result.bundle_path)
    blocks = {"genotypes": files["genotypes"], "pgx": pgx_features}
    preds = predict_patients(bundle, files["new_patients"], blocks=blocks,
                             out=out / "new_patient_predictions.csv")
    X_new = new_patient_features(bundle, files["new_patients"], blocks=blocks)
    labels = _variant_labels(variants)
    new = pd.read_csv(files["new_patients"], dtype={"patient_id": str}).set_index("patient_id")
    say("\n[bold]New patients[/bold] (predicted probability of adequate response):")
    for pid, row in preds.iterrows():
        say(f"  {pid}: {new.loc[pid, 'drug']:<11} age {new.loc[pid, 'age']:.0f}  "
            f"→ {row['probability']:.2f} ({'responder' if row['predicted_class'] else 'non-responder'})")

    # explain the patient whose prediction is furthest from the cohort's average
    pid = (preds["probability"] - patients["response"].mean()).abs().idxmax()
    factors = explain_patient(bundle, X_new.loc[[pid]], top=5)
    factors.insert(0, "patient_id", pid)
    factors["label"] = [labels.get(f, f) for f in factors["feature"]]
    write_table(factors, out / "new_patient_factors.csv", index=False)
    say(f"\n[bold]Why {pid}[/bold] ({new.loc[pid, 'drug']}) gets {preds.loc[pid, 'probability']:.2f}: "
        "change in probability if each factor were typical")
    for _, f in factors.iterrows():
        say(f"  {f['label']:<28} {_fmt(f['value'])} (typical {_fmt(f['typical_value'])}): "
            f"{f['contribution']:+.3f}")
    clop = pgx_recs[(pgx_recs["sample"] == pid) & (pgx_recs["drug"] == "clopidogrel")
                    & (pgx_recs["source"] == "CPIC")]
    if len(clop):
        r = clop.iloc[0]
        first = str(r["recommendation"]).strip().split("\n")[0]
        say(f"  CPIC for {pid} ({r['phenotypes']}, {r['classification']}): {first}")
    from pmed.genomics.pgx.report import render_pgx_section
    from pmed.study.predict import treatment_options_section, write_patient_reports

    options = _treatment_options(bundle, X_new, pgx_recs, out, say)
    sections = {p: [treatment_options_section(options, p, bundle.manifest),
                    render_pgx_section(pgx_result, p, drugs=["clopidogrel", "warfarin", "simvastatin"])]
                for p in preds.index}
    reports = write_patient_reports(bundle, X_new, preds, out / "patient_reports", sections=sections)
    say(f"\nreports: {out / 'results' / 'evaluation' / 'report.html'} (model, TRIPOD+AI) and "
        f"{len(reports)} patient reports in {out / 'patient_reports'}/")
    cad = _cad_with_prs(out, files, seed=seed, say=say, progress=progress, reporter_cls=reporter_cls)
    chd = _progression(out, files, seed=seed, say=say, progress=progress, reporter_cls=reporter_cls)
    omics = _single_cell(out, files, seed=seed, say=say, progress=progress, reporter_cls=reporter_cls)
    spatial = _spatial(out, seed=seed, say=say)
    monitored = _monitoring(out, n_patients=n_patients, seed=seed, say=say, progress=progress,
                            reporter_cls=reporter_cls)
    private = _privacy(out, files, say)
    served = _serving(out, files, bundle, X_new, preds, say)
    say(f"\neverything is in {out}/ — rerun the study with: pmed run {study_path} --out {out / 'results'}")
    return {"result": result, "predictions": preds, "factors": factors, "options": options, "cad": cad, "chd": chd,
            "omics": omics, "spatial": spatial, "monitored": monitored, "privacy": private, "served": served}


def _treatment_options(bundle, X_new: pd.DataFrame, recommendations: pd.DataFrame, out: Path, say) -> pd.DataFrame:
    """Each new patient's options from the bundle's treatment model, with CPIC/DPWG beside them
    (what ``pmed predict --pgx pgx/`` writes as treatment_options.csv)."""
    from pmed.io import write_table
    from pmed.study.predict import treatment_options

    options = treatment_options(bundle, X_new, recommendations=recommendations)
    write_table(options, out / "treatment_options.csv", index=False)
    say("\n[bold]Treatment options[/bold] (expected response under each drug, 95 % CI; CPIC/DPWG beside):")
    for pid, rows in options.groupby("patient_id", sort=False):
        best, other = rows.iloc[0], rows.iloc[1]
        vs = best if best["treatment"] != "clopidogrel" else other
        say(f"  {pid} ({X_new.loc[pid, 'CYP2C19_phenotype']}): "
            f"1. {best['treatment']} {best['outcome']:.2f} ({best['outcome_low']:.2f}–{best['outcome_high']:.2f}), "
            f"2. {other['treatment']} {other['outcome']:.2f}; ticagrelor − clopidogrel {vs['effect']:+.2f} "
            f"({vs['effect_low']:+.2f} to {vs['effect_high']:+.2f}); clopidogrel PGx: "
            f"{rows.loc[rows['treatment'] == 'clopidogrel', 'pgx_flag'].iloc[0]}")
    say(f"  {out / 'treatment_options.csv'}")
    return options


def _say_effects(folder: Path, say) -> None:
    """The treatment section's answer: ticagrelor's benefit over clopidogrel, overall and by
    CYP2C19 phenotype (the planted effect: larger with loss-of-function alleles)."""
    import json

    m = json.loads((folder / "metrics.json").read_text())
    for arm, a in m["arms"].items():
        e = a["ate"]
        say(f"\n[bold]Treatment choice[/bold]: {arm} vs {m['control']} (randomised), {m['effect_scale']}: "
            f"{e['estimate']:+.3f} ({e['ci_low']:+.3f} to {e['ci_high']:+.3f}, cross-fitted AIPW)")
        for level, g in sorted(a["subgroups"].get("CYP2C19_phenotype", {}).items(), key=lambda kv: kv[1]["estimate"]):
            say(f"  CYP2C19 {level:<26} {g['estimate']:+.3f} ({g['ci_low']:+.3f} to {g['ci_high']:+.3f}), "
                f"{g['n']} patients")
    say(f"  effects, uplift and calibration: {folder}/")


PGX_GENES = ("CYP2C19", "CYP2C9", "SLCO1B1", "VKORC1")


def _pharmacogenomics(out: Path, files: dict, *, say) -> Path:
    """Call pharmacogenes on the cohort VCF (PharmCAT's rules); phenotypes become features."""
    from pmed.genomics.pgx import run_pgx
    from pmed.io import write_table

    say("[bold]Pharmacogenomics[/bold]: star alleles, phenotypes and CPIC/DPWG recommendations")
    # the synthetic VCF lists variant sites only: absent PharmCAT positions are reference
    feats = run_pgx(files["genotypes"], genes=list(PGX_GENES), missing_to_ref=True,
                    recommendations=False, require_calls=False).to_block().data
    keep = [c for c in feats.columns if c.endswith(("_phenotype", "_activity_score"))]
    new_ids = pd.read_csv(files["new_patients"], dtype={"patient_id": str})["patient_id"].tolist()
    res = run_pgx(files["genotypes"], samples=new_ids, genes=list(PGX_GENES), missing_to_ref=True)
    # first: a domain output replaces its folder whole, so the feature table goes in beside it after
    res.write(out / "pgx", html=True)
    path = write_table(feats[keep], out / "pgx" / "features.csv")
    counts = feats["CYP2C19_phenotype"].value_counts()
    say("  CYP2C19: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    say(f"  calls and recommendations for the new patients: {out / 'pgx'}/calls.tsv, "
        "recommendations.tsv\n")
    return path, res


def _cad_with_prs(out: Path, files: dict, *, seed: int, say, progress, reporter_cls):
    """Score the cohort's VCF on a CAD polygenic score, summarise wearable streams and (with the
    imaging extra) embed synthetic lesion images; compare the feature sets cumulatively."""
    from pmed.genomics.prs import run_prs
    from pmed.io import write_table, write_text_atomic

    say("\n[bold]Disease risk[/bold]: a polygenic score for coronary artery disease")
    prs = run_prs([files["genotypes"]], [files["cad_scorefile"]], out=out / "prs")
    r = prs.match.report.iloc[0]
    say(f"  pmed prs score: {r['matched']} of {r['n_variants']} scoring-file variants matched "
        f"({r['match_refalt']} weighting the REF allele, {r['match_altref']} the ALT allele), "
        f"{r['excluded_strand_ambiguous']} "
        f"strand-ambiguous excluded → {out / 'prs' / 'scores.tsv'}")
    wear = pd.read_csv(_wearables(out, files, seed=seed, say=say), nrows=0).columns
    imaging = _imaging(out, files, seed=seed, say=say)
    study_path = out / "cad_study.yaml"
    fmt = {"seed": seed, "study": study_path, "out": out / "cad", "clinical": ", ".join(CLINICAL),
           "prs": "prs_PGS_SYNTH_CAD", "wearables": ", ".join(c for c in wear if c != "patient_id"),
           "imaging_block": "", "imaging_name": "", "imaging_model": "", "imaging_modality": ""}
    if imaging is not None:
        emb = pd.read_csv(imaging, dtype={"patient_id": str})
        no_scan = np.random.default_rng(seed + 7).random(len(emb)) < NO_SCAN_SHARE
        emb.loc[no_scan, emb.columns[1:]] = np.nan  # patients without a scan: no embedding
        write_table(emb, out / "imaging" / "embedding_scanned.csv", index=False)
        fmt |= {"imaging_block": "\n    image_embedding: imaging/embedding_scanned.csv",
                "imaging_name": ", image_embedding",
                "imaging_model": "\n  - {family: linear, name: clinical+PRS+wearables+imaging}",
                "imaging_modality": "\n    imaging: {block: image_embedding}"}
        say(f"  {no_scan.sum()} of {len(emb)} patients ({no_scan.mean():.0%}) had no scan: "
            "their embedding is missing")
    write_text_atomic(study_path, CAD_STUDY.format(**fmt))
    result = _run(study_path, out / "cad", progress=progress, reporter_cls=reporter_cls)
    for name in result.metrics["models"]:
        a = result.metrics["models"][name]["metrics"]["auroc"]
        say(f"  {name:<32} out-of-fold AUROC {a['estimate']:.3f} ({a['ci_low']:.3f}–{a['ci_high']:.3f})")
    _say_fusion(result.metrics["fusion"], say)
    _say_joint(study_path, result.metrics["fusion"], seed=seed, say=say)
    return result


def _say_joint(study_path: Path, fu: dict, *, seed: int, say) -> None:
    """The same modalities in one network trained end to end (``fusion: {method: joint}``): its
    training time on the demo cohort and its held-out AUROC beside late fusion's, same split."""
    if _missing_extra("torch"):
        say("  joint network: skipped (PyTorch not installed: pip install 'pmed[imaging]')")
        return
    import time

    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from pmed.study.fusion import build_fusion
    from pmed.study.run import encode_target, load_cohort
    from pmed.study.spec import load_study

    study = load_study(study_path)
    cohort = load_cohort(study)
    y = encode_target(cohort.target(study.target.column), task="binary")
    cols = [c for v in fu["modalities"].values() for c in v]
    X = cohort.features(study.features.blocks, exclude=study.features.exclude)[cols]
    tr, te = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=seed)
    auc, secs = {}, {}
    for method in ("late", "joint"):
        est = build_fusion(method, fu["modalities"], family="linear", task="binary", X=X, seed=seed,
                           params={"max_epochs": 60} if method == "joint" else None)
        t0 = time.perf_counter()
        est.fit(X.iloc[tr], y.iloc[tr].astype(int))
        secs[method] = time.perf_counter() - t0
        auc[method] = roc_auc_score(y.iloc[te], est.predict_proba(X.iloc[te])[:, 1])
    say(f"  joint network (one PyTorch network, an encoder per modality, masks and modality dropout; "
        f"fusion: {{method: joint}}): trained on {len(tr)} patients in {secs['joint']:.1f} s on "
        f"{est.device_}; held-out AUROC {auc['joint']:.3f} against late fusion's {auc['late']:.3f} "
        f"on the same {len(te)} patients")


def _say_fusion(fu: dict, say) -> None:
    """The fusion section's answer in a few lines: alone, fused, paired gain, each modality's gain, masking."""
    def ci(d: dict) -> str:
        return f"{d['estimate']:+.3f} ({d['ci_low']:+.3f} to {d['ci_high']:+.3f})"

    alone = ", ".join(f"{m} {v['metrics']['auroc']['estimate']:.3f}" for m, v in fu["single"].items())
    p = fu["paired"]
    say(f"  fusion ({fu['method']}, one {fu['family']} model per modality, stacked in-fold): each alone {alone}; "
        f"fused {fu['fused']['metrics']['auroc']['estimate']:.3f}; fused − best single ({p['best_single']}) "
        f"{ci(p)}, paired DeLong")
    say("  what each modality adds (fused − fused without it): "
        + "; ".join(f"{m} {ci(g)}" for m, g in fu["gain_of"].items()))
    say("  missing at prediction (removed for 30 % of test patients): AUROC drop "
        + ", ".join(f"{m} {d['drop']:+.3f}" for m, d in fu["masked"].items()))
    sets = [f"{m} {d['conformal']['quantile']:.3f}" for m, d in fu["masked"].items() if d.get("conformal")]
    if sets:
        say("  prediction-set threshold calibrated without each modality (a patient lacking it gets the "
            "larger of this and the full one): " + ", ".join(sets))


def _progression(out: Path, files: dict, *, seed: int, say, progress, reporter_cls):
    """Time to a first coronary event: cumulative Cox models (clinical, + PRS, + wearables)
    against the Kaplan–Meier null, each modality's gain in Harrell's C with its paired
    interval, and the new patients' chances of an event within 5 and 8 years."""
    from pmed.io import write_text_atomic
    from pmed.report.survival import event_sentence
    from pmed.study import load_bundle, predict_patients
    from pmed.study.predict import new_patient_features, write_patient_reports
    from pmed.study.survival import surv_name

    absent = _missing_extra("sksurv", "lifelines")
    if absent:
        say(f"\n[bold]Disease progression[/bold]: skipped ({absent} not installed: pip install 'pmed[survival]')")
        return None
    patients = pd.read_csv(files["patients"])
    say(f"\n[bold]Disease progression[/bold]: years to a first coronary event "
        f"({int(patients['chd_event'].sum())} events, {int((patients['chd_event'] == 0).sum())} censored, "
        f"follow-up up to {patients['chd_years'].max():.1f} years)")
    study_path = out / "chd_study.yaml"
    write_text_atomic(study_path, CHD_STUDY.format(seed=seed, study=study_path, out=out / "chd"))
    result = _run(study_path, out / "chd", progress=progress, reporter_cls=reporter_cls)
    for name, r in result.metrics["models"].items():
        c = r["metrics"]["harrell_c"]
        say(f"  {name:<32} Harrell's C {c['estimate']:.3f} ({c['ci_low']:.3f}–{c['ci_high']:.3f})")
    names = list(result.metrics["models"])
    for a, b in zip(names[1:], names[2:], strict=False):
        d = next(x for x in result.metrics["comparisons"] if x["model_a"] == a and x["model_b"] == b)
        say(f"  gain of {b.removeprefix(a + '+'):<24} {d['estimate']:+.3f} ({d['ci_low']:+.3f} to "
            f"{d['ci_high']:+.3f}, paired)")
    bundle = load_bundle(result.bundle_path)
    blocks = {"prs": out / "prs" / "scores.tsv", "timeseries": out / "wearables" / "features.csv"}
    preds = predict_patients(bundle, files["new_patients"], blocks=blocks,
                             out=out / "chd_new_patient_predictions.csv")
    say(f"  new patients ({result.selected}):")
    for pid, row in preds.iterrows():
        h = 5.0
        say(f"    {pid}: " + event_sentence(h, row[surv_name(h)], row.get(f"{surv_name(h)}_low"),
                                            row.get(f"{surv_name(h)}_high"), unit="years",
                                            event="a coronary event"))
    X_new = new_patient_features(bundle, files["new_patients"], blocks=blocks)
    write_patient_reports(bundle, X_new, preds, out / "chd_patient_reports")
    say(f"  survival curves and reports: {out / 'chd_patient_reports'}/")
    return result


def later_patients(cohort, *, months: int = MONITOR_MONTHS, per_month: int = MONITOR_PER_MONTH,
                   shift: float = LDL_SHIFT, shift_month: int | None = LDL_SHIFT_MONTH,
                   start: str = "2027-01", stream: int = 3) -> pd.DataFrame:
    """Patients seen after deployment, with their outcomes and the date seen (``seen``): drawn
    from the cohort's generator, ``per_month`` each month from ``start``; from month
    ``shift_month`` (1-based; ``None``: never) a new assay adds ``shift`` mmol/L to LDL."""
    from pmed.datasets.synthetic import sample_new_patients

    pts, _, _ = sample_new_patients(cohort, months * per_month, outcomes=True, stream=stream)
    pts = pts.reset_index() if pts.index.name is not None else pts.reset_index(drop=True)
    month = np.repeat(np.arange(months), per_month)
    pts["seen"] = [f"{p}-15" for p in pd.period_range(start, periods=months, freq="M").astype(str)[month]]
    if shift_month is not None:
        late = month >= shift_month - 1
        pts.loc[late, "ldl_mmol_l"] = (pts.loc[late, "ldl_mmol_l"] + shift).round(2)
    return pts


def _monitoring(out: Path, *, n_patients: int, seed: int, say, progress, reporter_cls) -> dict:
    """A year of later patients against a deployed model: a new LDL assay is caught in its first
    month, and the model is recalibrated on the months after it (promoted only on evidence)."""
    from pmed.datasets.synthetic import make_synthetic_cohort
    from pmed.io import write_table, write_text_atomic
    from pmed.monitor import run_monitor, update_bundle

    say("\n[bold]Monitoring[/bold]: the deployed model meets a year of later patients")
    study_path = out / "monitor_study.yaml"
    write_text_atomic(study_path, MONITOR_STUDY.format(seed=seed, study=study_path, out=out / "monitored",
                                                       shift=LDL_SHIFT))
    result = _run(study_path, out / "monitored", progress=progress, reporter_cls=reporter_cls)
    later = later_patients(make_synthetic_cohort(n_patients, seed=seed))
    data = write_table(later, out / "data" / "later_patients.csv", index=False)
    res = run_monitor(result.bundle_path, data, outcome="cad", time_col="seen", window="month", n_boot=100)
    res.write(out / "monitor")
    flags = {w["window"]: w["drift"]["drifted_features"] for w in res.windows}
    shift_from = res.windows[LDL_SHIFT_MONTH - 1]["window"]
    clean = [w for w in flags if w < shift_from]
    first = next((w for w, f in flags.items() if f), None)
    a = (result.metrics["models"]["clinical+LDL"]["metrics"]["auroc"])
    say(f"  model: clinical risk factors + LDL, out-of-fold AUROC {a['estimate']:.3f} "
        f"({a['ci_low']:.3f}–{a['ci_high']:.3f}); a new LDL assay reads {LDL_SHIFT} mmol/L high from {shift_from}")
    say(f"  pmed monitor: {len(later)} patients in {len(flags)} monthly windows; first alert {first or 'none'}"
        f"{' on ' + ', '.join(flags[first]) if first else ''}; alerts in the {len(clean)} months before it: "
        f"{sum(bool(flags[w]) for w in clean)}; after it: {sum(bool(flags[w]) for w in flags if w >= shift_from)} "
        f"of {len(flags) - len(clean)}")
    e = res.windows[LDL_SHIFT_MONTH - 1]["drift"]["features"]["ldl_mmol_l"]
    say(f"  LDL in {shift_from}: mean {e['mean_ref']:.2f} → {e['mean_new']:.2f} mmol/L, PSI {e['psi']:.2f}, "
        f"KS p (adjusted) {e['p_adjusted']:.1g} → {out / 'monitor' / 'dashboard.html'}")
    after = later[later["seen"] >= f"{shift_from}-01"]
    upd_data = write_table(after, out / "data" / "later_patients_new_assay.csv", index=False)
    prom = update_bundle(result.bundle_path, upd_data, outcome="cad", strategy="recalibrate", time_col="seen",
                         window="month", out=out / "monitor_update", n_boot=200, seed=seed)
    ev, u = prom["evidence"], prom["update"]
    citl = ev["calibration_in_the_large"]
    say(f"  pmed update --strategy recalibrate on the {u['n_update']} patients after the change, "
        f"{u['holdout']['window']} held out ({u['n_holdout']}): calibration-in-the-large "
        f"{citl['current']['estimate']:+.2f} → {citl['candidate']['estimate']:+.2f}, Brier difference "
        f"{ev['brier']['difference']['estimate']:+.4f} ({ev['brier']['difference']['ci_low']:+.4f} to "
        f"{ev['brier']['difference']['ci_high']:+.4f}): {prom['decision']} "
        f"→ {out / 'monitor_update' / 'promotion.json'}")
    return {"monitor": res, "promotion": prom, "first_alert": first, "shift_from": shift_from}


def _privacy(out: Path, files: dict, say) -> dict:
    """A de-identified export of the cohort (keyed pseudonyms; the key kept apart from it) and
    its re-identification risk over age, sex and site, made 5-anonymous by generalizing."""
    from pmed.privacy import deidentify_table, run_privacy

    say("\n[bold]Privacy[/bold]: a de-identified export of the cohort and its re-identification risk")
    export = out / "export" / "patients.csv"
    quasi = ["age", "sex", "site"]
    deid = deidentify_table(files["patients"], key_file=out / "keys" / "export.key", create_key=True,
                            quasi=quasi, k=5, out=export)
    deid.write(export)
    acts = deid.summary()["actions"]
    say(f"  pmed privacy deidentify: {len(deid.data)} patients, IDs → keyed pseudonyms (HMAC-SHA-256; the key "
        f"in {out / 'keys'}/, never beside the export), "
        + ", ".join(f"{n} column{'s' if n != 1 else ''} {a}" for a, n in sorted(acts.items())) + f" → {export}")
    risk = run_privacy(export, quasi=quasi, k=5, enforce=True)
    risk.write(out / "export" / "risk")
    r = risk.summary()
    levels = ", ".join(f"{q} {lv}" for q, lv in r["levels"].items())
    say(f"  pmed privacy check --quasi age,sex,site --k 5: smallest group {r['k_min']}, "
        f"{r['n_records_below_k']} patients in groups under 5; with --enforce ({levels}; "
        f"{r['records_suppressed']} suppressed) the smallest group is {r['k_min_after']}")
    dp = _dp_model(files, say)
    return {"deid": deid, "risk": risk, "dp": dp}


def _dp_model(files: dict, say, *, seed: int = 0) -> dict | None:
    """CAD from the clinical risk factors: logistic regression against the differentially private
    ``dp_logistic`` at two budgets, by 5-fold cross-validated AUROC (the cost of the guarantee)."""
    if _missing_extra("diffprivlib"):
        say("  differentially private model: skipped (pip install 'pmed[privacy]')")
        return None
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pmed.evaluate.discrimination import delong_auc
    from pmed.privacy.dp import DPLogisticClassifier

    df = pd.read_csv(files["patients"])
    cols = ["age", "bmi", "diabetes", "hypertension", "prior_mi", "ldl_mmol_l", "pm25_ug_m3"]
    X, y = df[cols], df["cad"].to_numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    found = {}
    for name, model in [("logistic", LogisticRegression()),
                        ("dp_logistic ε=1", DPLogisticClassifier(epsilon=1.0, random_state=seed)),
                        ("dp_logistic ε=0.3", DPLogisticClassifier(epsilon=0.3, random_state=seed))]:
        pipe = make_pipeline(SimpleImputer(), StandardScaler(), model)
        p = cross_val_predict(pipe, X, y, cv=folds, method="predict_proba")[:, 1]
        found[name] = delong_auc(y, p)
    say("  differentially private model (CAD from 7 risk factors, 5-fold AUROC): "
        + ", ".join(f"{k} {v['estimate']:.3f} ({v['ci_low']:.3f}–{v['ci_high']:.3f})" for k, v in found.items())
        + " — in a study file: family: dp_logistic, params: {epsilon: 1}")
    return found


def _run(study_path: Path, out: Path, *, progress, reporter_cls):
    from pmed.study import run_study
    from pmed.study.spec import load_study

    study = load_study(study_path)
    if progress is not None:
        with progress() as p:
            return run_study(study, out, reporter=reporter_cls(p))
    return run_study(study, out)


def _serving(out: Path, files: dict, bundle, X_new: pd.DataFrame, preds: pd.DataFrame, say) -> dict | None:
    """The demo's bundles behind ``pmed serve`` (uvicorn on a free local port, a throwaway SQLite):
    one new patient posted over HTTP with its genotype and PGx columns beside the clinical ones,
    answered with the probability ``pmed predict`` gave, its factors and treatment options."""
    missing = _missing_extra("fastapi", "uvicorn", "sqlalchemy", "alembic")
    if missing:
        say(f"\n[bold]Serving[/bold]: skipped (not installed: {missing}; pip install 'pmed[serve]')")
        return None
    import json
    import tempfile
    import threading
    import time
    import urllib.request

    import uvicorn

    from pmed.serve import create_app, create_token
    from pmed.serve.registry import bundle_name
    from pmed.serve.testing import free_port

    say("\n[bold]Serving[/bold] (pmed serve: the API and the clinician page over these bundles)")
    pid = preds.index[0]
    row = pd.read_csv(files["new_patients"], dtype={"patient_id": str}).set_index("patient_id").loc[pid]
    schema_cols = set(bundle.input_schema().columns)
    patient = {"patient_id": pid, **row.to_dict(),
               **{c: X_new.loc[pid, c] for c in bundle.feature_names if c not in schema_cols}}
    body = json.dumps({"patients": [{k: _json_value(v) for k, v in patient.items()}]}).encode()
    name = bundle_name(bundle.path)
    with tempfile.TemporaryDirectory(prefix="pmed-demo-serve-") as tmp:
        db = f"sqlite:///{Path(tmp) / 'serve.sqlite'}"
        app = create_app(out, db)
        token = create_token(app.state.engine, role="clinician", user="demo")
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                               access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the demo's server did not start")
                time.sleep(0.05)
            base = f"http://127.0.0.1:{server.config.port}"
            auth = {"Authorization": f"Bearer {token}"}

            def call(path: str, data: bytes | None = None) -> dict:
                req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET",
                                             headers={**auth, "Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 (a local URL)
                    return json.load(r)

            models = [m["name"] for m in call("/api/models")]
            t0 = time.perf_counter()
            answer = call(f"/api/models/{name}/predict", body)
            ms = (time.perf_counter() - t0) * 1000
        finally:
            server.should_exit = True
            thread.join(timeout=30)
        app.state.engine.dispose()
    got = answer["predictions"][0]
    say(f"  {len(models)} models registered: {', '.join(models)}")
    say(f"  POST /api/models/{name}/predict with {pid}'s clinical, genotype and PGx columns: "
        f"probability {got['probability']:.3f} (pmed predict: {preds.loc[pid, 'probability']:.3f}) in {ms:.0f} ms; "
        f"top factor {got['factors'][0]['feature']}; {len(got.get('treatment_options', []))} treatment options")
    say(f"  serve them yourself: pmed serve --models {out} → open http://localhost:8000/ and sign in with the "
        "token it prints")
    return {"models": models, "patient_id": pid, "answer": got, "milliseconds": ms}


def _json_value(v: Any) -> Any:
    # a value of a request body: missing values as null, numpy scalars as Python's
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _missing_extra(*modules: str) -> str | None:
    from importlib.util import find_spec

    absent = [m for m in modules if find_spec(m) is None]
    return ", ".join(absent) or None


def _imaging(out: Path, files: dict, *, seed: int, say) -> Path | None:
    """Synthetic lesion images for every patient, a compact CNN trained on a lesion-labelled
    reference set, and its penultimate-layer embedding as the ``image_embedding`` block."""
    absent = _missing_extra("torch", "monai")
    if absent:
        say(f"  imaging: skipped ({absent} not installed: pip install 'pmed[imaging]')")
        return None
    from pmed.imaging.demo import imaging_demo

    truth = pd.read_csv(files["truth_table"], dtype={"patient_id": str}).set_index("patient_id")
    cad = pd.read_csv(files["patients"], dtype={"patient_id": str}).set_index("patient_id")["cad"]
    # lesions are commoner with the disease (an image shows disease, not risk); the new patients'
    # disease state is drawn from their true risk
    rng = np.random.default_rng(seed + 7)
    state = cad.reindex(truth.index)
    unknown = state.isna().to_numpy()
    state[unknown] = (rng.random(unknown.sum()) < truth.loc[unknown, "p_cad"]).astype(int)
    res = imaging_demo(truth.index.tolist(), state.astype(int).to_numpy(), out / "imaging", seed=seed)
    say(f"  imaging: {len(truth)} synthetic lesion images; compact CNN trained in "
        f"{res['train_time_s']:.0f} s (lesion AUROC {res['lesion_auroc']:.3f} on held-out reference "
        f"images) → {res['embedding'].shape[1]} embedding features, Grad-CAM maps in "
        f"{out / 'imaging' / 'heatmaps'}/")
    return res["paths"]["embedding"]


def _spatial(out: Path, *, seed: int, say) -> Any:
    """Two synthetic tumour sections, one with immune cells kept at the margin ("excluded") and
    one with them inside ("inflamed"): spatially variable genes, tissue domains against the
    regions the sections were drawn with, and the patient features that tell the two apart."""
    say("\n[bold]Spatial[/bold]: tumour sections, tissue domains and immune infiltration")
    absent = _missing_extra("scanpy", "anndata")
    if absent:
        say(f"  skipped ({absent} not installed: pip install 'pmed[omics]')")
        return None
    from sklearn.metrics import adjusted_rand_score

    from pmed.spatial import run_spatial
    from pmed.spatial.synthetic import synthetic_section

    sections = {"excluded": synthetic_section(n_rows=22, n_cols=22, infiltration=0.0, seed=seed),
                "inflamed": synthetic_section(n_rows=22, n_cols=22, infiltration=0.5, seed=seed + 1)}
    res = run_spatial(sections, n_domains=3, compare=False, seed=seed)
    res.write(out / "spatial")
    for name, sec in res.sections.items():
        ari = adjusted_rand_score(sections[name].obs["region"].to_numpy(), sec.adata.obs["spatial_domain"])
        f = res.features.loc[name]
        say(f"  {name}: {sec.adata.n_obs} spots, {int((sec.svg['fdr'] < 0.05).sum())} spatially variable genes; "
            f"domains against the true regions ARI {ari:.2f}; tumour {f['share_tumour']:.0%} of the section, "
            f"immune level inside it {f['immune_in_tumour']:+.2f} (z), tumour-immune interface "
            f"{f['tumour_immune_interface_mm']:.1f} mm")
    say(f"  → {out / 'spatial'}/patient_features.csv (a Cohort block: pmed.cohort.read_block), maps in "
        f"{out / 'spatial' / 'sections'}/*/plots/")
    return res


def _single_cell(out: Path, files: dict, *, seed: int, say, progress, reporter_cls):
    """Simulated single-cell RNA-seq per patient, summarised to cell-type shares and signature
    scores (the ``omics`` block); does it add to the response model?"""
    absent = _missing_extra("scanpy", "anndata")
    say("\n[bold]Single-cell[/bold]: blood cell-type composition and treatment response")
    if absent:
        say(f"  skipped ({absent} not installed: pip install 'pmed[omics]')")
        return None
    from pmed.io import write_text_atomic
    from pmed.omics.synthetic import write_omics_features

    patients = pd.read_csv(files["patients"], dtype={"patient_id": str})
    path = write_omics_features(patients, out / "omics" / "features.csv", cells_per_patient=60,
                                effect=0.5, seed=seed)
    n_feat = pd.read_csv(path, nrows=0).shape[1] - 1
    say(f"  {len(patients)} patients × ~60 simulated cells, annotated with marker sets → "
        f"{n_feat} patient features (cell-type shares, signature scores) → {path}")
    pgx = pd.read_csv(out / "pgx" / "features.csv", nrows=0).columns
    study_path = out / "response_omics_study.yaml"
    write_text_atomic(study_path, RESPONSE_OMICS_STUDY.format(
        seed=seed, study=study_path, out=out / "response_omics", clinical=", ".join(CLINICAL),
        pgx=", ".join(c for c in pgx if c != "patient_id")))
    result = _run(study_path, out / "response_omics", progress=progress, reporter_cls=reporter_cls)
    for name in result.metrics["models"]:
        a = result.metrics["models"][name]["metrics"]["auroc"]
        say(f"  {name:<32} out-of-fold AUROC {a['estimate']:.3f} ({a['ci_low']:.3f}–{a['ci_high']:.3f})")
    return result


def _wearables(out: Path, files: dict, *, seed: int, say) -> Path:
    """A week of synthetic steps and heart rate per patient, summarised to patient features."""
    from pmed.io import write_table
    from pmed.timeseries.synthetic import simulate_wearables
    from pmed.timeseries.wearables import daily_summary, wearable_features

    truth = pd.read_csv(files["truth_table"], dtype={"patient_id": str}).set_index("patient_id")
    # the streams follow each patient's true CAD risk (not the observed outcome) and their
    # cardiorespiratory fitness, which no clinical column records but the coronary hazard
    # depends on: what wearables can add to a time-to-event model
    z = truth[["cad_logit", "low_fitness_z"]]
    signal = ((z - z.mean()) / z.std()).sum(axis=1).rename("wearable_signal").to_frame()
    streams = simulate_wearables(signal, column="wearable_signal", seed=seed)
    feats = wearable_features(daily_summary(streams, epoch_minutes=15))
    path = write_table(feats, out / "wearables" / "features.csv")
    say(f"  wearables: {streams['patient_id'].nunique()} patients × 7 days of steps and heart "
        f"rate → {feats.shape[1]} features ({', '.join(feats.columns[:3])}, …)")
    return path


def _variant_labels(variants: pd.DataFrame) -> dict[str, str]:
    out = {}
    for _, v in variants.iterrows():
        if v.get("role") != "background" and isinstance(v.get("gene"), str):
            out[str(v["id"])] = f"{v['id']} ({v['gene']})"
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
