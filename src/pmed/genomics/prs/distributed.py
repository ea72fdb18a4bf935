"""Polygenic scoring on a Dask cluster: tasks over (variant block × sample chunk), summed.

Each task opens the genotype file itself (workers need the same path, e.g. a shared file
system), reads one block of variants for one range of samples and returns that block's partial
scores, so nothing but small arrays travels. With several sample chunks, mean imputation needs
each variant's allele frequency over *all* samples: a first round of tasks returns per-variant
counts, which are summed and sent with the scoring tasks. The result is the same as
:func:`~pmed.genomics.prs.score_targets` up to floating-point summation order (≤ 1e-12).

Running on a real cluster::

    dask scheduler                                  # on the head node → tcp://head:8786
    dask worker tcp://head:8786 --nworkers 8 --nthreads 1     # on each compute node
    pmed prs score -t /shared/chr*.pgen -s PGS000018.txt.gz --scheduler tcp://head:8786 -o out
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from pmed.genomics.prs.score import _long_table, block_stats, make_plans, score_block
from pmed.genomics.prs.targets import Target, open_target

__all__ = ["score_targets_dask", "get_client"]


def get_client(scheduler: str, *, n_workers: int = 2):
    """A Dask client: ``"local"`` starts a LocalCluster (``n_workers`` processes, 1 thread each).

    Kept for older callers: :func:`pmed.scale.connect`, which it calls, is the one place that
    makes Dask clients (close with :func:`pmed.scale.close`).
    """
    from pmed.scale import connect

    return connect(scheduler, n_workers=n_workers)


def _subplan(plan, rows: slice):
    """The rows of a plan, as a smaller plan (cheap to send to a worker)."""
    take = {k: getattr(plan, k)[rows] for k in ("var_idx", "allele_idx", "A", "effect_is_alt",
                                                "present", "kind", "weight", "file_af")}
    return replace(plan, **take)


def _read(path: str, dosage_field: str, sub, samples: slice) -> np.ndarray:
    t = open_target(path, dosage_field=dosage_field, n_jobs=1)
    try:
        out = np.empty((len(sub.var_idx), len(range(*samples.indices(t.n_samples)))), dtype=t.dtype)
        t.read_alt_dosages(sub.var_idx, sub.allele_idx, out, samples)
        return out
    finally:
        t.close()


def _stats_task(path, dosage_field, sub, samples):
    B = _read(path, dosage_field, sub, samples)
    return block_stats(sub, B, slice(0, len(sub.var_idx)))


def _score_task(path, dosage_field, sub, samples, impute, stats):
    B = _read(path, dosage_field, sub, samples)
    return score_block(sub, B, slice(0, len(sub.var_idx)), impute=impute, stats=stats)


def score_targets_dask(
    targets: Sequence[Target],
    matched: pd.DataFrame,
    scores: Sequence[str],
    *,
    scheduler: str | object = "local",
    impute: str = "mean",
    block_size: int | None = None,
    sample_chunk: int | None = None,
    dosage_field: str = "GT",
    n_workers: int = 2,
) -> pd.DataFrame:
    """Like :func:`~pmed.genomics.prs.score_targets`, on Dask.

    Parameters
    ----------
    scheduler
        ``"local"``, a scheduler address, or an existing ``dask.distributed.Client``.
    sample_chunk
        Samples per task (default: all samples in one chunk).
    """
    from pmed.scale import dask_client

    with dask_client(scheduler if hasattr(scheduler, "submit") else str(scheduler),
                     n_workers=n_workers) as client:
        n = targets[0].n_samples
        chunk = sample_chunk or n
        chunks = [slice(s, min(s + chunk, n)) for s in range(0, n, chunk)]
        plans = make_plans(matched, scores)
        block_size = block_size or 8192  # tasks: bigger blocks, fewer round trips
        total = np.zeros((n, len(scores)))
        denom = np.zeros(len(scores))
        for plan in plans:
            path = str(targets[plan.file].path)
            total += plan.const[None, :]
            denom += 2.0 * plan.n_variants
            blocks = [slice(s, min(s + block_size, plan.n_alleles))
                      for s in range(0, plan.n_alleles, block_size)]
            subs = {b.start: client.scatter(_subplan(plan, b)) for b in blocks}
            stats = {b.start: None for b in blocks}
            if len(chunks) > 1 and impute != "none":
                futs = {b.start: [client.submit(_stats_task, path, dosage_field, subs[b.start], c,
                                                pure=False) for c in chunks] for b in blocks}
                for b in blocks:
                    parts = client.gather(futs[b.start])
                    stats[b.start] = tuple(sum(p[i] for p in parts) for i in range(len(parts[0])))
            futures = [(c, client.submit(_score_task, path, dosage_field, subs[b.start], c, impute,
                                         stats[b.start], pure=False))
                       for b in blocks for c in chunks]
            for c, f in futures:
                total[c] += f.result()
        return _long_table(targets[0].samples, list(scores), total, denom)
