"""Choosing the thresholds of self-diffusion on STRONG images (their masks may be used).

For each strong calibration image the superpixels and features are computed once; every grid
point then costs one sparse LU (Eq. 2) and a superpixel-level confusion matrix (superpixel x
ground-truth class histogram), so a full grid search is a few hundred milliseconds per image.
The confusion matrices are summed over images and the grid point with the best mIoU wins.
Weak images' masks are never touched here.

When the run has a learned affinity (train-affinity), the diffusion's grid also spans its weight
in the edge weights, labels.affinity_weight in AFFINITY_GRID (0: Eq. 2's graph alone); the
grid and every chosen setting are the same as without one otherwise.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from c3seg.config import LabelConfig
from c3seg.diffusion import cam_threshold_labels, image_graph
from c3seg.diffusion.graph import ImageGraph, edge_weights, laplacian, weight_matrix
from c3seg.diffusion.solve import anchors, assign, class_scores

# A narrower grid (sigma >= 0.1, seed_threshold <= 0.7, min_q >= 0.2, fg_gate >= 0.5, CAM <= 0.6)
# had its ends chosen on every run measured (benchmark seed 0, the pets photos), so each range now
# reaches past them. The wider grid costs about 1.8x the solves.
SOLVE_GRID = {
    "sigma": (0.05, 0.1, 0.2, 0.4),
    "seed_threshold": (0.3, 0.5, 0.7, 0.85),
    "bg_fg_threshold": (0.1, 0.2, 0.35),
    "bg_cam_threshold": (0.1, 0.25),
}
MIN_Q_GRID = (0.05, 0.1, 0.2, 0.35, 0.5, 0.65)  # free: no extra solve
FG_GATE_GRID = (0.3, 0.5, 0.7, 1.01)  # free too; 1.01 = off
CAM_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
AFFINITY_GRID = (0.0, 0.5, 1.0)  # labels.affinity_weight, with a learned affinity only
METHODS = ("clamped", "ranking")


def candidates(method: str, affinity: bool = False) -> list[tuple[str, bool, dict[str, float]]]:
    """Every (method, use_m, params) grid point of the diffusion sources, method first. With a
    learned `affinity`, the points of `method` with M also span AFFINITY_GRID (params'
    affinity_weight); the other formulation (reported, not used) and diffusion-no-m keep the
    colour graph (c3seg.diffusion.label_graph)."""
    out = []
    for meth, use_m in [(method, True), *[(m, True) for m in METHODS if m != method], (method, False)]:
        names = [*SOLVE_GRID, "min_q", "fg_gate"]
        grids = [*SOLVE_GRID.values(), MIN_Q_GRID, FG_GATE_GRID if use_m else (1.01,)]
        if affinity and use_m and meth == method:
            names, grids = [*names, "affinity_weight"], [*grids, AFFINITY_GRID]
        for vals in itertools.product(*grids):
            out.append((meth, use_m, dict(zip(names, vals, strict=True))))
    return out


def _confusion(pred: np.ndarray, counts_t: np.ndarray, c: int) -> np.ndarray:
    """pred (n,) dataset classes per superpixel, counts_t (C, n) the superpixels' ground-truth
    histograms as float64 -> (C, C) truth x pred, int64. The product runs in float64 (BLAS; an
    int64 product has none and was half of a calibration's time): pixel counts are far below 2**53,
    so every sum is exact and the result equals the integer product."""
    return (counts_t @ np.eye(c)[pred]).astype(np.int64)


def image_confusions(
    image: np.ndarray,
    m: np.ndarray,
    cams: np.ndarray,
    class_ids: list[int],
    gt: np.ndarray,
    num_classes: int,
    cfg: LabelConfig,
    emb: np.ndarray | None = None,
) -> np.ndarray:
    """(len(candidates) + len(CAM_GRID), C, C) confusion matrices of one strong image; with the
    learned-affinity embedding `emb` (D, H, W), the candidates of `candidates(method, True)`."""
    g: ImageGraph = image_graph(image, m, cams, cfg, emb)
    c = num_classes
    valid = gt.ravel() < c
    counts = np.bincount(g.sp.ravel()[valid] * c + gt.ravel()[valid], minlength=g.n * c).reshape(g.n, c)
    counts_t = counts.T.astype(np.float64)  # (C, n), for every grid point's confusion
    lut = np.concatenate([[0], np.asarray(class_ids, dtype=np.int64)])
    out = []
    cached: dict[tuple, np.ndarray] = {}
    for meth, use_m, p in candidates(cfg.method, emb is not None):
        # without M, bg_fg_threshold plays no part: one solve serves all its values
        mix = p.get("affinity_weight", 0.0)
        key = (meth, use_m, mix, *(p[k] if use_m or k != "bg_fg_threshold" else None for k in SOLVE_GRID))
        if key not in cached:
            pc = dataclasses.replace(cfg, method=meth, **{k: p[k] for k in SOLVE_GRID})  # type: ignore[arg-type]
            w = weight_matrix(g.n, g.edges, edge_weights(g, pc.sigma, use_m, mix))
            seeds, bg = anchors(g.cams, g.m if use_m else None, pc)
            cached[key] = class_scores(w, laplacian(w), seeds, bg, g.cams.shape[1], pc)
        sp_m = g.m if use_m else None
        out.append(_confusion(lut[assign(cached[key], p["min_q"], sp_m, p["fg_gate"])], counts_t, c))
    gt_valid = gt.ravel()[valid].astype(np.int64)
    for thr in CAM_GRID:
        pred = cam_threshold_labels(cams, class_ids, thr).ravel()[valid].astype(np.int64)
        out.append(np.bincount(gt_valid * c + pred, minlength=c * c).reshape(c, c))
    return np.stack(out)


def miou(conf: np.ndarray) -> float:
    """Mean IoU (in %) over classes present in truth or prediction, as c3seg.evaluation.metrics."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    return float(100 * (tp[union > 0] / union[union > 0]).mean()) if (union > 0).any() else float("nan")


def _solve_key(meth: str, params: dict[str, float]) -> tuple:
    return (meth, *(params[k] for k in (*SOLVE_GRID, "min_q")))


def choose(
    total: np.ndarray, method: str, n_images: int, tolerance: float = 1.0, affinity: bool = False
) -> dict[str, Any]:
    """Pick the grid points from the summed confusions (same order as image_confusions; `affinity`
    as given to it: whether the grid spans the learned affinity's weight).

    With M, the best mIoU wins, except that among the points within `tolerance` points of it the
    one whose same solve WITHOUT M scores best is taken. On strong images M is nearly perfect, so
    it decides almost every superpixel and many settings tie; on weak images M often misses the
    unseen objects and the diffusion has to carry them, so of the tied settings the one that does
    best without M is the one to trust. Broken at random instead, a tie can fall on a setting
    that is much worse on weak images."""
    cands = candidates(method, affinity)
    scores = np.nan_to_num([miou(total[i]) for i in range(len(total))], nan=-1.0)
    without_m = {_solve_key(m, p): scores[i] for i, (m, u, p) in enumerate(cands) if not u}
    result: dict[str, Any] = {"images": n_images, "method": method, "formulations": {}, "sources": {}}
    for meth, use_m, name in [(m, True, m) for m in METHODS] + [(method, False, "no-m")]:
        idx = [i for i, (mm, u, _) in enumerate(cands) if mm == meth and u == use_m]
        if use_m:
            top = max(scores[i] for i in idx)
            near = [i for i in idx if scores[i] >= top - tolerance]
            best = max(near, key=lambda i: (without_m.get(_solve_key(meth, cands[i][2]), -1.0), scores[i]))
        else:
            best = max(idx, key=lambda i: scores[i])
        entry = {"miou": round(float(scores[best]), 2), "params": cands[best][2]}
        result["formulations"][name] = entry
    if affinity:  # the diffusion's best mIoU (with M) at each weight of the learned affinity
        best_at = dict.fromkeys(AFFINITY_GRID, -1.0)
        for i, (meth, use_m, p) in enumerate(cands):
            if meth == method and use_m:
                best_at[p["affinity_weight"]] = max(best_at[p["affinity_weight"]], float(scores[i]))
        result["affinity_weights"] = {str(w): round(v, 2) for w, v in best_at.items()}
    result["sources"]["diffusion"] = result["formulations"][method]
    result["sources"]["diffusion-no-m"] = result["formulations"]["no-m"]
    cam_scores = [scores[len(cands) + i] for i in range(len(CAM_GRID))]
    best_cam = int(np.nanargmax(cam_scores))
    result["sources"]["cam-threshold"] = {
        "miou": round(float(cam_scores[best_cam]), 2),
        "params": {"cam_threshold": CAM_GRID[best_cam]},
    }
    return result


def calibrated(cfg: LabelConfig, calib: dict[str, Any], source: str) -> LabelConfig:
    """cfg with the thresholds chosen for `source` ('diffusion', 'diffusion-no-m', ...)."""
    return dataclasses.replace(cfg, **calib["sources"][source]["params"])


__all__ = [
    "AFFINITY_GRID",
    "CAM_GRID",
    "METHODS",
    "calibrated",
    "candidates",
    "choose",
    "image_confusions",
    "miou",
]
