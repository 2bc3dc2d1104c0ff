"""Self-diffusion (Eq. 2): CAM seeds spread over a superpixel graph conditioned on M.

    label = diffuse_labels(image, m, cams, class_ids, cfg.labels)   # (H, W) uint8 class indices

Per image: CIELAB -> superpixels -> per-superpixel means (bincount) -> adjacency from neighbouring
pixel pairs -> affinities z_ij (Eq. 2) -> one sparse LU for all classes -> labels painted back.
Pure numpy/scipy (no torch), so it runs in worker processes with one BLAS thread each.

Default formulation: "ranking" (manifold ranking q = (D - αW)^-1 y, a background column as a
competing query), because it gives better pseudo labels than "clamped" (harmonic, background
clamped to 0) on the generated scenes of `c3seg bench diffusion` (simulated M and CAMs; thresholds
of each formulation calibrated on some scenes, scored on others). Those scenes are a small
synthetic sample, so make-labels records both formulations' calibrated mIoU on the run's own strong
images in labels/calibration.json, and the choice can be checked on real data
(labels.method=clamped switches).
"""

from __future__ import annotations

import numpy as np

from c3seg.config import LabelConfig
from c3seg.diffusion.graph import ImageGraph, build_graph, edge_weights, laplacian, weight_matrix
from c3seg.diffusion.solve import anchors, assign, class_scores
from c3seg.diffusion.superpixels import superpixels, to_lab

SOURCES = ("diffusion", "diffusion-no-m", "lnet-cam", "cam-threshold")


def image_graph(
    image: np.ndarray, m: np.ndarray, cams: np.ndarray, cfg: LabelConfig, emb: np.ndarray | None = None
) -> ImageGraph:
    """image (H, W, 3) uint8, m (H, W), cams (K, H, W), and the learned-affinity embedding
    emb (D, H, W) when the run has one -> superpixels and their mean features."""
    lab = to_lab(image)
    sp, n = superpixels(lab, cfg)
    return build_graph(lab, m, cams, sp, n, emb)


def label_graph(g: ImageGraph, cfg: LabelConfig, use_m: bool = True) -> np.ndarray:
    """Eq. 2 on the graph: (n,) superpixel labels, 0 = background, 1 + k = k-th image class.
    The learned affinity (cfg.affinity_weight, when g has an embedding) joins the diffusion with M
    only: `diffusion-no-m`, the baseline without learned cues, keeps Eq. 2's colour graph."""
    mix = cfg.affinity_weight if use_m else 0.0
    w = weight_matrix(g.n, g.edges, edge_weights(g, cfg.sigma, use_m, mix))
    seeds, background = anchors(g.cams, g.m if use_m else None, cfg)
    scores = class_scores(w, laplacian(w), seeds, background, g.cams.shape[1], cfg)
    out = assign(scores, cfg.min_q, g.m if use_m else None, cfg.fg_gate)
    if cfg.ignore_uncertain:  # background by the solve, yet not confident background: no label
        out[(out == 0) & ~background] = IGNORE
    return out


IGNORE = -1  # a superpixel label that paints as 255 (void: no loss in train-seg)


def paint(sp_labels: np.ndarray, sp: np.ndarray, class_ids: np.ndarray | list[int]) -> np.ndarray:
    """(n,) labels in 0..K (or IGNORE) -> (H, W) uint8 dataset class indices (0 background, 255 void)."""
    lut = np.concatenate([[0], np.asarray(class_ids, dtype=np.int64), [255]]).astype(np.uint8)
    return lut[sp_labels][sp]


def diffuse_labels(
    image: np.ndarray,
    m: np.ndarray,
    cams: np.ndarray,
    class_ids: list[int],
    cfg: LabelConfig,
    use_m: bool = True,
    emb: np.ndarray | None = None,
) -> np.ndarray:
    """Self-diffusion pseudo label (H, W) uint8 of one image from M (H, W) and its classes' CAMs
    (K, H, W); `emb` (D, H, W): the learned-affinity embedding, mixed in by cfg.affinity_weight."""
    g = image_graph(image, m, cams, cfg, emb)
    return paint(label_graph(g, cfg, use_m), g.sp, class_ids)


def lnet_cam_labels(m: np.ndarray, cams: np.ndarray, class_ids: list[int], fg_threshold: float) -> np.ndarray:
    """L-Net x CAM without diffusion: argmax_c A^c among the image's classes where M > threshold."""
    if len(class_ids) == 0:
        return np.zeros(m.shape, np.uint8)
    ids = np.asarray(class_ids, dtype=np.uint8)
    return np.where(m > fg_threshold, ids[cams.argmax(axis=0)], 0).astype(np.uint8)


def cam_threshold_labels(cams: np.ndarray, class_ids: list[int], threshold: float) -> np.ndarray:
    """The weakly supervised CAM baseline: argmax CAM where the largest CAM > threshold."""
    if len(class_ids) == 0:
        return np.zeros(cams.shape[1:], np.uint8)
    ids = np.asarray(class_ids, dtype=np.uint8)
    return np.where(cams.max(axis=0) > threshold, ids[cams.argmax(axis=0)], 0).astype(np.uint8)


def all_sources(
    image: np.ndarray,
    m: np.ndarray,
    cams: np.ndarray,
    class_ids: list[int],
    cfg: LabelConfig,
    cfg_no_m: LabelConfig | None = None,
    emb: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every label source of SOURCES for one image; the superpixels are computed once.

    `cfg_no_m` holds the thresholds calibrated for diffusion without M (default: `cfg`); `emb`
    (D, H, W) the learned-affinity embedding when the run has one (the diffusion source's graph)."""
    g = image_graph(image, m, cams, cfg, emb)
    no_m = cfg_no_m or cfg
    return {
        "diffusion": paint(label_graph(g, cfg, use_m=True), g.sp, class_ids),
        "diffusion-no-m": paint(label_graph(g, no_m, use_m=False), g.sp, class_ids),
        "lnet-cam": lnet_cam_labels(m, cams, class_ids, cfg.fg_threshold),
        "cam-threshold": cam_threshold_labels(cams, class_ids, cfg.cam_threshold),
    }
