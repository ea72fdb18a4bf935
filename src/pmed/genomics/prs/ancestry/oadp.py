"""Online augmentation, decomposition and Procrustes (OADP; Zhang, Dey & Lee 2020).

The algebra that corrects the shrinkage of projected PC scores: a rank-one update of the
reference SVD with one new sample (:func:`_augment`) and the Procrustes map of the augmented
scores onto the reference PCs (:func:`_procrustes`, :func:`_procrustes_pad`).
"""

from __future__ import annotations

import numpy as np

__all__: list[str] = []


def _procrustes(Y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Rotation ``R``, scale ``rho``, shift ``c`` minimising ``||Y − (rho·X·R + c)||``."""
    xm, ym = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - xm, Y - ym
    u, s, vt = np.linalg.svd(Xc.T @ Yc)
    R = u @ vt
    rho = s.sum() / np.sum(Xc**2)
    return R, rho, ym - rho * xm @ R


def _procrustes_pad(
    Y: np.ndarray, X: np.ndarray, Z0: np.ndarray, *, tol: float = 1e-6, max_iter: int = 1000
) -> tuple[np.ndarray, float, np.ndarray]:
    """Procrustes from ``X`` (n × d) onto ``Y`` (n × k), k ≤ d.

    The target has fewer dimensions; its missing ``d − k`` coordinates ``Z`` are treated as
    free and estimated by alternating (fit the map onto ``[Y, Z]``, set ``Z`` to the mapped
    ``X``'s last coordinates) until ``Z`` changes by less than ``tol`` (relative).
    """
    k = Y.shape[1]
    if X.shape[1] == k:
        return _procrustes(Y, X)
    Z = Z0
    for _ in range(max_iter):
        R, rho, c = _procrustes(np.hstack([Y, Z]), X)
        Z_new = (rho * X @ R + c)[:, k:]
        denom = np.sum((Z_new - Z_new.mean(axis=0)) ** 2)
        change = np.sum((Z_new - Z) ** 2) / denom if denom > 0 else 0.0
        Z = Z_new
        if change < tol:
            break
    return R, rho, c


def _augment(
    U: np.ndarray, s: np.ndarray, V: np.ndarray, w: np.ndarray, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample scores on ``d`` dimensions of the panel ``X ≈ U·diag(s)·Vᵀ`` augmented by ``w``.

    ``w = V·a + rho·e`` with ``e`` orthogonal to ``V``, so
    ``[U diag(s) Vᵀ; wᵀ] = blockdiag(U, 1) · K · [V, e]ᵀ`` with
    ``K = [[diag(s), 0], [aᵀ, rho]]``; the SVD ``K = A·Σ·Bᵀ`` of this small
    (q + 1)-square matrix gives the augmented scores ``blockdiag(U, 1)·A·Σ`` (exact when
    ``U, s, V`` hold the whole SVD of ``X``).
    """
    q = len(s)
    a = V.T @ w
    resid = w - V @ a
    K = np.zeros((q + 1, q + 1))
    K[:q, :q] = np.diag(s)
    K[q, :q] = a
    K[q, q] = np.sqrt(resid @ resid)
    A, sig, _ = np.linalg.svd(K)
    return U @ (A[:q, :d] * sig[:d]), A[q, :d] * sig[:d]
