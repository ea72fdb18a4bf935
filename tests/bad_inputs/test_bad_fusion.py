"""Bad inputs (issue #20, item 6) of a study's fusion section through ``pmed run``: each one line
naming the modality and the fix, the exit code of its class, no patient ID, nothing written."""

from __future__ import annotations

import numpy as np
import pandas as pd
from badinput import bad_input, refused_run

IDS = [f"PT-{i:05d}" for i in range(120)]


def _study(tmp_path, modalities: str) -> tuple:
    rng = np.random.default_rng(5)
    n = len(IDS)
    df = pd.DataFrame({"patient_id": IDS, "age": rng.uniform(30, 80, n), "bmi": rng.normal(27, 4, n),
                       "y": (rng.random(n) < 0.4).astype(int)})
    df.to_csv(tmp_path / "patients.csv", index=False)
    genes = pd.DataFrame({"patient_id": IDS, "g1": rng.normal(size=n), "g2": rng.normal(size=n)})
    genes.to_csv(tmp_path / "omics.csv", index=False)
    study = tmp_path / "study.yaml"
    study.write_text("name: t\ndata: {patients: patients.csv, blocks: {omics: omics.csv}}\n"
                     "target: {column: y, task: binary}\nmodels: [{family: linear}]\n"
                     "evaluation: {folds: 3, bootstrap: 0, report: false}\n"
                     f"fusion: {{method: late, modalities: {modalities}}}\n")
    return study, df


@bad_input("diagnosis")
def test_fusion_modality_names_a_block_absent_from_the_data(tmp_path, capsys):
    study, _ = _study(tmp_path, "{clinical: {block: patients}, proteome: {block: proteome}}")
    refused_run(capsys, tmp_path, study, code=6, secrets=IDS,
                says=r"fusion modality 'proteome' names unknown block 'proteome'")


@bad_input("diagnosis")
def test_fusion_modality_columns_match_nothing(tmp_path, capsys):
    study, _ = _study(tmp_path, "{clinical: {block: patients}, genome: {columns: ['prs_*']}}")
    refused_run(capsys, tmp_path, study, code=6, secrets=IDS, says=r"modality 'genome' matches no column")


@bad_input("silent")
def test_a_column_in_two_modalities(tmp_path, capsys):
    study, _ = _study(tmp_path, "{clinical: {block: patients}, body: {columns: [bmi]}, omics: {block: omics}}")
    refused_run(capsys, tmp_path, study, code=6, secrets=IDS, says=r"'bmi'.*(clinical|body).*(clinical|body)")


@bad_input("options")
def test_fusion_with_one_modality(tmp_path, capsys):
    study, _ = _study(tmp_path, "{clinical: {block: patients}}")
    refused_run(capsys, tmp_path, study, code=6, secrets=IDS, says=r"fusion needs at least two modalities")
