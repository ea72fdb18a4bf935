"""``pmed imaging``: train, predict, explain, embed, deidentify. Parsing and printing only; the
work is in :mod:`pmed.imaging`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmed.cli._params import bounded, choice

__all__ = ["app"]

app = typer.Typer(help="Medical images: train and apply CNNs, explain them, de-identify DICOM.",
                  no_args_is_help=True)


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _classes(value: str | None) -> list[int] | None:
    """``--classes 0,1,7`` as a list of integers (a usage error otherwise)."""
    if value is None:
        return None
    parts = [v.strip() for v in str(value).split(",")]
    try:
        out = [int(v) for v in parts]
    except ValueError:
        raise typer.BadParameter("must be integer labels separated by commas, e.g. 0,1") from None
    if len(set(out)) != len(out) or len(out) < 2 or min(out) < 0:
        raise typer.BadParameter("must list two or more distinct labels >= 0, e.g. 0,1")
    return out


def _n_jobs(value: int | None) -> int | None:
    if value is not None and not (value >= 1 or value == -1):
        raise typer.BadParameter(f"{value} must be >= 1, or -1 for all cores.")
    return value


@app.callback()
def _group() -> None:
    """Medical images: CNNs (MONAI), heat maps, embeddings, DICOM de-identification."""


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", "-d", help="MedMNIST-style .npz or manifest CSV "
                                                            "(patient_id,path,label,split)", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="model folder to write", file_okay=False)],
    arch: Annotated[str, typer.Option(help="resnet18 (MONAI) or cnn (compact)", **choice("resnet18", "cnn"))] = "resnet18",
    width: Annotated[float, typer.Option(help="channel multiplier (> 0, at most 8)", callback=bounded(gt=0), max=8.0)] = 1.0,
    epochs: Annotated[int, typer.Option(help="maximum epochs", min=1)] = 30,
    batch_size: Annotated[int, typer.Option(help="mini-batch size", min=1)] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (> 0)", callback=bounded(gt=0))] = 1e-3,
    patience: Annotated[int, typer.Option(help="early-stopping patience (epochs; 0 = never stop early)", min=0)] = 8,
    size: Annotated[int | None, typer.Option(help="resize images to SIZE×SIZE (at least 4; default: as stored)", min=4)] = None,
    augment: Annotated[bool, typer.Option(help="augment the training split")] = True,
    class_weight: Annotated[str, typer.Option(help="none (default: probabilities stay calibrated) or balanced", **choice("balanced", "none"))] = "none",
    seed: Annotated[int, typer.Option(help="seed of weights, batches and augmentation", min=0)] = 0,
    device: Annotated[str | None, typer.Option(help="cuda or cpu (default: cuda when available)")] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoint.pt")] = False,
    train_split: Annotated[str, typer.Option(help="split to train on")] = "train",
    val_split: Annotated[str, typer.Option(help="split for early stopping and evaluation")] = "val",
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the CIs", min=0)] = 500,
    root: Annotated[Path | None, typer.Option(help="folder that manifest paths are relative to", exists=True, file_okay=False)] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    n_jobs: Annotated[int | None, typer.Option("--n-jobs", help="PyTorch CPU threads (-1: all cores; default: PyTorch's)", callback=_n_jobs)] = None,
    classes: Annotated[str | None, typer.Option(help="the classes the labels take, e.g. 0,1 (default: those of the "
                                                     "training labels; a class with fewer than 5 training images "
                                                     "is then refused as a probable stray label)",
                                                callback=_classes)] = None,
) -> None:
    """Train a CNN; early-stop on the validation split; evaluate it there.

    OUT must be new, empty or an earlier training output: it is replaced whole when training
    succeeds, and left as it was when it fails.
    """
    import contextlib

    from pmed.cli._common import progress_bar
    from pmed.imaging.workflow import train_from_file

    with progress_bar() if progress else contextlib.nullcontext() as bar:
        s = train_from_file(data, out, arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr,
                            patience=patience or None, size=size, augment=augment,
                            class_weight=None if class_weight.lower() == "none" else class_weight, seed=seed,
                            device=device, resume=resume, train_split=train_split, val_split=val_split,
                            n_boot=bootstrap, progress=bar, root=root, n_jobs=n_jobs, classes=classes)
    con = _console()
    f3 = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 - NaN metrics are None in the summary
    con.print(f"trained {arch} on {s['n_train']} images ({s['device']}): {s['epochs_run']} epochs, "
              f"best {s['best_epoch']}, {s['train_time_s'] or 0:.1f} s")
    if "val_auroc" in s:
        a = s["val_auroc"]
        con.print(f"validation ({s['n_val']} images): AUROC {f3(a['estimate'])} "
                  f"(95% CI {f3(a['ci_low'])}–{f3(a['ci_high'])}), accuracy {f3(s['val_accuracy'])}")
    elif "val_accuracy" in s:
        con.print(f"validation ({s['n_val']} images): accuracy {f3(s['val_accuracy'])}")
    con.print(f"wrote the model to {out}/")


@app.command()
def predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="model folder from `pmed imaging train`", exists=True)],
    data: Annotated[Path, typer.Option("--data", "-d", help=".npz or manifest CSV", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="predictions table (.csv, .tsv or .parquet)", dir_okay=False)],
    split: Annotated[str, typer.Option(help="split to predict")] = "test",
    device: Annotated[str | None, typer.Option(help="cuda or cpu")] = None,
    batch_size: Annotated[int | None, typer.Option(help="inference batch size", min=1)] = None,
    root: Annotated[Path | None, typer.Option(help="folder that manifest paths are relative to", exists=True, file_okay=False)] = None,
) -> None:
    """Batch inference: one row per image with the probability of each class."""
    from pmed.imaging.workflow import predict_from_file

    # --out is checked before the model is read: a table name, not an input, not in the model folder
    pred = predict_from_file(model, data, out, split=split, device=device, batch_size=batch_size, root=root)
    _console().print(f"wrote {len(pred)} predictions to {out}")


@app.command()
def explain(
    model: Annotated[Path, typer.Option("--model", "-m", help="model folder", exists=True)],
    data: Annotated[Path, typer.Option("--data", "-d", help=".npz or manifest CSV", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the PNGs", file_okay=False)],
    split: Annotated[str, typer.Option(help="split holding the images")] = "val",
    id: Annotated[list[str] | None, typer.Option("--id", help="patient/image ID (repeatable)")] = None,
    n: Annotated[int, typer.Option(help="without --id: the first N images", min=1)] = 8,
    method: Annotated[str, typer.Option(help="gradcam or occlusion", **choice("gradcam", "occlusion"))] = "gradcam",
    device: Annotated[str | None, typer.Option(help="cuda or cpu")] = None,
    root: Annotated[Path | None, typer.Option(help="folder that manifest paths are relative to", exists=True, file_okay=False)] = None,
) -> None:
    """Heat maps (Grad-CAM or occlusion) overlaid on the images, as PNGs.

    OUT must be new, empty or an earlier `explain` output: it is replaced whole.
    """
    from pmed.imaging.workflow import explain_from_file

    paths = explain_from_file(model, data, out, split=split, ids=id, n=n, method=method, device=device, root=root)
    _console().print(f"wrote {len(paths)} heat maps to {out}/")


@app.command()
def embed(
    model: Annotated[Path, typer.Option("--model", "-m", help="model folder", exists=True)],
    data: Annotated[Path, typer.Option("--data", "-d", help=".npz or manifest CSV", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="embedding table (.parquet, .csv or .tsv)", dir_okay=False)],
    split: Annotated[list[str] | None, typer.Option("--split", help="split(s) to embed (default: all)")] = None,
    components: Annotated[int | None, typer.Option(help="reduce to this many principal components", min=1)] = None,
    device: Annotated[str | None, typer.Option(help="cuda or cpu")] = None,
    root: Annotated[Path | None, typer.Option(help="folder that manifest paths are relative to", exists=True, file_okay=False)] = None,
) -> None:
    """Penultimate-layer embeddings per patient: the Cohort block `image_embedding`."""
    from pmed.imaging.workflow import embed_from_file

    emb = embed_from_file(model, data, out, splits=split, n_components=components, device=device, root=root)
    _console().print(f"wrote {emb.shape[1]} embedding features × {emb.shape[0]} patients to {out}")


@app.command()
def deidentify(
    source: Annotated[Path, typer.Argument(help="DICOM file or folder (read only)", exists=True)],
    out: Annotated[Path, typer.Argument(help="output file or folder")],
    mapping: Annotated[Path, typer.Option("--mapping", help="re-identification CSV, kept apart from OUT "
                                                            "(reused and extended when it exists)", dir_okay=False)],
    overwrite: Annotated[bool, typer.Option(help="replace an existing output file, or an output folder holding an "
                                                 "earlier de-identified output (replaced whole)")] = False,
) -> None:
    """Remove or replace DICOM PHI (basic confidentiality profile); pixels kept.

    A damaged or truncated DICOM file is refused (nothing is written); an output folder is written
    whole and swapped in at the end, so that a failed run leaves the previous one.
    """
    from pmed.imaging.deid import deidentify as _deidentify

    res = _deidentify(source, out, mapping=mapping, overwrite=overwrite)
    con = _console()
    n_pat = res.files["pseudonym"].nunique()
    con.print(f"de-identified {len(res.files)} DICOM files of {n_pat} patient(s) into {out}")
    if res.skipped:
        con.print(f"skipped {len(res.skipped)} non-DICOM file(s)")
    for w in res.warnings:
        con.print(f"[yellow]warning[/yellow]: {w}")
    con.print(f"re-identification mapping: {mapping} (store it separately, access-controlled)")
