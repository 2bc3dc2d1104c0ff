"""The superpixel graph of Eq. 2, built with numpy only (no loops over pixels, edges or nodes).

Nodes are superpixels; an edge joins two superpixels that touch (4-neighbourhood). Its weight is
the Gaussian affinity of Eq. 2, z_ij = exp(-||F_i - F_j|| / 2σ²), with F_i the mean normalized
CIELAB colour of superpixel i and (optionally) its mean L-Net foreground probability M.

Beyond the paper (RETAB / AffinityNet): when the run has a learned affinity (train-affinity), each
superpixel also carries the mean of its pixels' embeddings ē_i, a_ij = exp(-|ē_i - ē_j|_1) says
how alike two superpixels are, and the edge weight mixes the two with labels.affinity_weight w:

    z_ij = exp(-||F_i - F_j|| / 2σ²)^(1-w) · a_ij^w          (w = 0: Eq. 2 exactly)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps

MIN_AFFINITY = 1e-10  # keeps the graph connected when exp() underflows, so every solve is regular


@dataclass(frozen=True)
class ImageGraph:
    """Everything the diffusion needs about one image, at superpixel level."""

    sp: np.ndarray  # (H, W) int32 superpixel index of each pixel
    n: int  # number of superpixels
    edges: np.ndarray  # (E, 2) int64, i < j, adjacent superpixel pairs
    lab: np.ndarray  # (n, 3) mean normalized CIELAB in about [0, 1]
    m: np.ndarray  # (n,) mean M
    cams: np.ndarray  # (n, K) mean normalized CAM of each image-level class
    emb: np.ndarray | None = None  # (n, D) mean learned-affinity embedding, None without one


def region_means(sp: np.ndarray, n: int, maps: np.ndarray) -> np.ndarray:
    """Mean of each (H, W) map in `maps` (d, H, W) over each superpixel: (n, d), via bincount."""
    idx = sp.ravel()
    count = np.maximum(np.bincount(idx, minlength=n), 1).astype(np.float64)
    out = np.empty((n, maps.shape[0]), dtype=np.float64)
    for d in range(maps.shape[0]):  # a few channels, each one vectorized bincount
        out[:, d] = np.bincount(idx, weights=maps[d].ravel(), minlength=n) / count
    return out


def adjacency(sp: np.ndarray, n: int) -> np.ndarray:
    """(E, 2) unique pairs i < j of superpixels that share a horizontal or vertical pixel border."""
    a = np.concatenate([sp[:, :-1].ravel(), sp[:-1, :].ravel()]).astype(np.int64)
    b = np.concatenate([sp[:, 1:].ravel(), sp[1:, :].ravel()]).astype(np.int64)
    cut = a != b
    lo, hi = np.minimum(a[cut], b[cut]), np.maximum(a[cut], b[cut])
    keys = np.unique(lo * n + hi)
    return np.stack([keys // n, keys % n], axis=1)


def build_graph(
    lab_image: np.ndarray,
    m: np.ndarray,
    cams: np.ndarray,
    sp: np.ndarray,
    n: int,
    emb: np.ndarray | None = None,
) -> ImageGraph:
    """lab_image (H, W, 3) CIELAB, m (H, W), cams (K, H, W), sp (H, W), and the learned-affinity
    embedding emb (D, H, W) when the run has one -> the superpixel graph."""
    scale = np.array([100.0, 255.0, 255.0], dtype=np.float32)
    shift = np.array([0.0, 128.0, 128.0], dtype=np.float32)
    lab01 = ((lab_image + shift) / scale).transpose(2, 0, 1)  # (3, H, W), normalized CIELAB
    maps = np.concatenate([lab01, m[None].astype(np.float32), cams.astype(np.float32)], axis=0)
    means = region_means(sp, n, maps)  # (n, 4 + K)
    sp_emb = None if emb is None else region_means(sp, n, emb)  # (n, D)
    return ImageGraph(
        sp=sp, n=n, edges=adjacency(sp, n), lab=means[:, :3], m=means[:, 3], cams=means[:, 4:], emb=sp_emb
    )


def features(g: ImageGraph, use_m: bool = True) -> np.ndarray:
    """F of Eq. 2: (n, 4) mean normalized CIELAB + mean M, or (n, 3) without M."""
    return np.concatenate([g.lab, g.m[:, None]], axis=1) if use_m else g.lab


def affinities(feats: np.ndarray, edges: np.ndarray, sigma: float) -> np.ndarray:
    """Eq. 2: z_ij = exp(-||F_i - F_j|| / 2σ²) for every edge, (E,)."""
    dist = np.linalg.norm(feats[edges[:, 0]] - feats[edges[:, 1]], axis=1)
    return np.maximum(np.exp(-dist / (2.0 * sigma**2)), MIN_AFFINITY)


def embedding_distances(emb: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """|ē_i - ē_j|_1 for every edge, (E,): the learned affinity is a_ij = exp(-this)."""
    return np.abs(emb[edges[:, 0]] - emb[edges[:, 1]]).sum(axis=1)


def mixed_affinities(z: np.ndarray, emb_dist: np.ndarray, w: float) -> np.ndarray:
    """z_ij^(1-w) · a_ij^w with a_ij = exp(-emb_dist), in logs (a_ij may underflow), (E,);
    z itself when w = 0."""
    if w == 0:
        return z
    return np.maximum(np.exp((1.0 - w) * np.log(z) - w * emb_dist), MIN_AFFINITY)


def edge_weights(g: ImageGraph, sigma: float, use_m: bool = True, affinity_weight: float = 0.0) -> np.ndarray:
    """The weight of every edge, (E,): Eq. 2's z_ij, mixed with the learned affinity a_ij by
    `affinity_weight` when the graph has an embedding (`mixed_affinities`)."""
    z = affinities(features(g, use_m), g.edges, sigma)
    if g.emb is None or affinity_weight == 0:
        return z
    return mixed_affinities(z, embedding_distances(g.emb, g.edges), affinity_weight)


def weight_matrix(n: int, edges: np.ndarray, z: np.ndarray) -> sps.csr_matrix:
    """Symmetric sparse W (n, n) with W_ij = W_ji = z_ij."""
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    return sps.csr_matrix((np.concatenate([z, z]), (rows, cols)), shape=(n, n))


def laplacian(w: sps.csr_matrix) -> sps.csr_matrix:
    """L = D - W, the quadratic form of Eq. 2: q^T L q = 1/2 Σ_ij z_ij (q_i - q_j)²."""
    return (sps.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsr()
