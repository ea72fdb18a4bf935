"""Predictions tables and their evaluation through pmed's evaluation engine.

:func:`predictions_table` gives one row per image (index, patient ID, source path, label when
known, the probability of each class); :func:`evaluate_images` hands a binary task's table to
:func:`pmed.evaluate.engine.evaluate_predictions` (AUROC with DeLong CI, calibration, net
benefit, sensitivity/specificity/PPV/NPV and the confusion counts at each threshold) and
:func:`pmed.evaluate.engine.write_evaluation` (``metrics.json``, curves, plots, ``report.html``),
the same files ``pmed evaluate`` writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pmed.errors import InputError

__all__ = ["predictions_table", "evaluate_images", "write_image_evaluation", "confusion_table"]


def predictions_table(
    clf,
    images: np.ndarray,
    *,
    ids: Sequence[str] | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
    paths: Sequence[str] | None = None,
    split: str | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Batch inference into a table with one row per image.

    Returns
    -------
    pandas.DataFrame
        ``index`` (row of the image in its split), ``patient_id``, ``split`` and ``path`` when
        given, ``label`` when known (``-1`` labels are left empty), and ``prob_<class>`` per class.
    """
    prob = clf.predict_proba(images, batch_size=batch_size)
    df = pd.DataFrame({"index": np.arange(len(prob))})
    if ids is not None:
        df["patient_id"] = np.asarray(ids, dtype=str)
    if split is not None:
        df["split"] = split
    if paths is not None and any(str(p) for p in paths):
        df["path"] = np.asarray(paths, dtype=str)
    if labels is not None:
        lab = pd.array(np.asarray(labels), dtype="Int64")
        df["label"] = pd.Series(lab).mask(pd.Series(lab) < 0).to_numpy()
    for j, c in enumerate(clf.classes_):
        df[f"prob_{c}"] = prob[:, j]
    return df


def confusion_table(y: np.ndarray, p: np.ndarray, *, threshold: float = 0.5) -> pd.DataFrame:
    """2×2 confusion matrix (rows: true 0/1; columns: predicted 0/1 at ``p >= threshold``)."""
    y = np.asarray(y, dtype=int)
    yhat = (np.asarray(p, dtype=float) >= threshold).astype(int)
    m = np.array([[np.sum((y == a) & (yhat == b)) for b in (0, 1)] for a in (0, 1)])
    return pd.DataFrame(m, index=pd.Index(["true_0", "true_1"], name="truth"), columns=["pred_0", "pred_1"])


def evaluate_images(
    predictions: pd.DataFrame,
    *,
    positive: Any = 1,
    out: str | Path | None = None,
    n_boot: int = 500,
    seed: int = 0,
    thresholds: Sequence[float] = (0.5,),
    context: Mapping[str, Any] | None = None,
    figures: Mapping[str, Path] | None = None,
    source: str | None = None,
) -> tuple[dict, dict[str, Path]]:
    """Evaluate a binary predictions table (from :func:`predictions_table`).

    Parameters
    ----------
    predictions
        Needs ``label`` and ``prob_<positive>``; rows without a label are ignored.
    positive
        The class counted as the event (its probability is the score).
    out
        Folder for ``metrics.json``, curve CSVs, plots, ``confusion_matrix.csv`` and
        ``report.html`` (nothing is written when ``None``).
    n_boot, seed, thresholds
        Bootstrap resamples and seed, classification thresholds.
    context, figures
        Passed to the report (data sources; extra PNGs such as Grad-CAM heat maps).

    Returns
    -------
    evaluation : dict
        The ``metrics.json`` dictionary (``models["cnn"]["metrics"]["auroc"]`` etc.).
    paths : dict
        What was written.
    """
    ev, parts = _evaluate(predictions, positive=positive, n_boot=n_boot, seed=seed, thresholds=thresholds,
                          source=source)
    paths: dict[str, Path] = {}
    if out is not None:
        paths = write_image_evaluation(ev, parts, out, figures=figures, context=context)
    return ev, paths


def _evaluate(predictions: pd.DataFrame, *, positive: Any, n_boot: int, seed: int,
              thresholds: Sequence[float], source: str | None) -> tuple[dict, dict[str, Any]]:
    """The evaluation dict and what :func:`write_image_evaluation` needs to write it later."""
    from pmed.evaluate.engine import evaluate_predictions
    from pmed.evaluate.predictions import roc_inputs

    score = f"prob_{positive}"
    if "label" not in predictions.columns or score not in predictions.columns:
        raise InputError(f"the predictions need columns 'label' and {score!r}",
                         fix="evaluate a split whose labels are known, of a binary model")
    df = predictions[predictions["label"].notna()].copy()
    df["outcome"] = (df["label"].astype(int) == int(positive)).astype(int)
    df = df.rename(columns={score: "probability"})
    id_col = "patient_id" if "patient_id" in df.columns and not df["patient_id"].duplicated().any() else None
    ev, tables = evaluate_predictions(df, outcome="outcome", score="probability", id_col=id_col,
                                      thresholds=list(thresholds), n_boot=n_boot, seed=seed, source=source)
    ev["models"] = {"cnn": ev["models"].pop("model")}
    tables = {"cnn": tables.pop("model")}
    cm = confusion_table(df["outcome"].to_numpy(), df["probability"].to_numpy(), threshold=thresholds[0])
    ev["confusion_matrix"] = {"threshold": float(thresholds[0]), "rows": "truth", "columns": "prediction",
                              "matrix": cm.to_numpy().tolist()}
    roc = roc_inputs(df, outcome="outcome", score="probability", model="cnn")
    return ev, {"tables": tables, "roc": roc, "confusion": cm}


def write_image_evaluation(
    evaluation: dict,
    parts: Mapping[str, Any],
    out: str | Path,
    *,
    figures: Mapping[str, Path] | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write an evaluation computed earlier into ``out`` (what ``evaluate_images(out=...)`` writes).

    ``parts`` holds the curve tables, ROC inputs and confusion matrix of that evaluation;
    :class:`pmed.imaging.api.ImagingResult` keeps them so that computing and writing can
    happen apart.
    """
    from pmed.io import write_table
    from pmed.report.evaluation import write_evaluation

    paths = write_evaluation(evaluation, dict(parts["tables"]), out, roc_data=parts["roc"], figures=figures,
                             context=context)
    paths["confusion_matrix"] = write_table(parts["confusion"], Path(out) / "confusion_matrix.csv")
    return paths
