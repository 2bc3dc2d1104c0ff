"""Solving Eq. 2 on the superpixel graph, all classes of an image at once.

Eq. 2, min_q 1/2 Σ_ij z_ij (q_i - q_j)², with only class seeds fixed to 1 has the trivial
minimizer q = 1 everywhere, so a second anchor is needed. Two formulations:

clamped  seeds of class c fixed to 1, seeds of the other classes and confident background fixed
         to 0; the free nodes solve the Laplace equation L_ff q_f = -L_fb q_b (the harmonic
         solution, Grady's multi-label random walker). The fixed set is the same for every class,
         so ONE sparse LU of L_ff serves all classes (right-hand-side columns).
ranking  random walk with restart / manifold ranking q = (D - αW)^-1 y, one LU for the class
         columns and a background column (confident background as its query); each column is
         scaled to max 1.

A superpixel takes the class with the largest q; it stays background when the background score is
larger or when its largest class q is below `min_q`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sps
from scipy.sparse.linalg import splu, spsolve

from c3seg.config import LabelConfig


def anchors(cams: np.ndarray, m: np.ndarray | None, cfg: LabelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Seeds (n,) int: class column k or -1, and confident background (n,) bool.

    cams (n, K) superpixel mean CAMs, m (n,) superpixel mean M, or None for the diffusion without
    M (the `diffusion-no-m` baseline reads no M anywhere). A superpixel is a seed of the class with
    the largest CAM when that CAM ≥ seed_threshold; every class keeps at least its strongest
    superpixel. Background: no seed, every CAM < bg_cam_threshold and (with M) mean M < bg_fg_threshold.
    """
    n, k = cams.shape
    if k == 0:
        return np.full(n, -1), np.ones(n, dtype=bool)
    top = cams.max(axis=1)
    seeds = np.where(top >= cfg.seed_threshold, cams.argmax(axis=1), -1)
    strongest = cams.argmax(axis=0)  # (K,) a node per class
    seeds[strongest] = np.arange(k)
    background = (seeds < 0) & (top < cfg.bg_cam_threshold)
    if m is not None:
        background &= m < cfg.bg_fg_threshold
    return seeds, background


def clamped(lap: sps.csr_matrix, fixed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Harmonic solution: q = values on `fixed` nodes, L_ff q_f = -L_fb values_b on the rest.

    lap (n, n), fixed (n,) bool, values (n, K) -> q (n, K). One splu for all K columns."""
    q = values.astype(np.float64).copy()
    free = ~fixed
    if not free.any():
        return q
    rows = lap[free]
    rhs = -(rows[:, fixed] @ values[fixed])
    q[free] = _solve(rows[:, free], rhs)
    return q


def _solve(a: sps.spmatrix, b: np.ndarray) -> np.ndarray:
    """a^-1 b by one sparse LU. Where the graph makes `a` singular — a superpixel with no neighbour
    (one superpixel in a small image, or affinities that underflow to 0) or, in the clamped solve,
    superpixels that no anchor reaches — it is solved again with a ridge of 1e-9 x a's largest
    entry on the diagonal: those nodes get q ≈ 0 (no class), the rest is unchanged to ~1e-9."""
    b = np.ascontiguousarray(b, dtype=np.float64)
    try:
        return splu(a.tocsc()).solve(b)
    except RuntimeError:  # "Factor is exactly singular"
        scale = float(abs(a).max()) if a.nnz else 0.0
        ridge = sps.identity(a.shape[0], format="csr") * (1e-9 * (scale or 1.0))
        return splu((a + ridge).tocsc()).solve(b)


def clamped_reference(lap: sps.csr_matrix, fixed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The straightforward way, for tests and the benchmark: one spsolve per class."""
    q = values.astype(np.float64).copy()
    free = ~fixed
    lff = lap[free][:, free].tocsc()
    lfb = lap[free][:, fixed]
    for c in range(values.shape[1]):
        q[free, c] = spsolve(lff, -(lfb @ values[fixed, c]))
    return q


def ranking(w: sps.csr_matrix, y: np.ndarray, alpha: float) -> np.ndarray:
    """Manifold ranking q = (D - αW)^-1 y for all columns of y (n, K'), each scaled to max 1."""
    d = sps.diags(np.asarray(w.sum(axis=1)).ravel())
    q = _solve(d - alpha * w, y)
    return q / np.maximum(q.max(axis=0, keepdims=True), 1e-12)


def class_scores(
    w: sps.csr_matrix,
    lap: sps.csr_matrix,
    seeds: np.ndarray,
    background: np.ndarray,
    k: int,
    cfg: LabelConfig,
) -> np.ndarray:
    """(n, 1 + K) scores: column 0 background, column 1 + c class c (Eq. 2 solved per cfg.method)."""
    n = seeds.shape[0]
    onehot = np.zeros((n, k))
    has_seed = seeds >= 0
    onehot[has_seed, seeds[has_seed]] = 1.0
    if cfg.method == "clamped":
        q = clamped(lap, has_seed | background, onehot)
        return np.concatenate([np.clip(1.0 - q.sum(axis=1, keepdims=True), 0, 1), q], axis=1)
    if cfg.method == "ranking":
        return ranking(w, np.concatenate([background[:, None].astype(np.float64), onehot], axis=1), cfg.alpha)
    raise ValueError(f"unknown labels.method {cfg.method!r}; use clamped or ranking")


def assign(
    scores: np.ndarray, min_q: float, m: np.ndarray | None = None, fg_gate: float = 1.01
) -> np.ndarray:
    """(n, 1 + K) scores -> (n,) label 0 (background) or 1 + class column.

    With `m` (n,) superpixel mean M: a superpixel the L-Net is confident about (mean M ≥ fg_gate)
    takes its best class even where background or min_q would win: M says *whether* it is an
    object, the diffusion says *which* (fg_gate > 1 turns this off)."""
    out = scores.argmax(axis=1)
    if scores.shape[1] > 1:
        out[scores[:, 1:].max(axis=1) < min_q] = 0
        if m is not None:
            gate = m >= fg_gate
            out[gate] = 1 + scores[gate, 1:].argmax(axis=1)
    return out
