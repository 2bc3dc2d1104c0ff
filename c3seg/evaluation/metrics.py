"""Confusion-matrix mIoU, the metric of the paper's Table 2.

One matrix is accumulated over the whole set (not a mean of per-image IoUs). Ground-truth pixels
outside [0, C) - the 255 void band - are dropped; predictions are never ignored. A class's IoU is
TP / (TP + FP + FN); a class with no pixel in either prediction or ground truth has no IoU (NaN)
and is left out of means, while a class present in either with zero TP scores 0 and counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class ConfusionMatrix:
    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # rows: truth, cols: prediction

    def update(self, target: torch.Tensor | np.ndarray, pred: torch.Tensor | np.ndarray) -> None:
        target = torch.as_tensor(target).flatten().long().cpu()
        pred = torch.as_tensor(pred).flatten().long().cpu()
        if target.shape != pred.shape:
            raise ValueError(f"target has {target.numel()} pixels, prediction {pred.numel()}")
        n = self.num_classes
        keep = (target >= 0) & (target < n)
        if ((pred[keep] < 0) | (pred[keep] >= n)).any():
            raise ValueError(f"predictions must lie in [0, {n})")
        self.mat += torch.bincount(n * target[keep] + pred[keep], minlength=n * n).reshape(n, n)

    def merge(self, other: ConfusionMatrix) -> None:
        self.mat += other.mat

    def iou(self) -> np.ndarray:
        """Per-class IoU in [0, 1]; NaN where the class is absent from truth and prediction."""
        m = self.mat.double()
        tp = torch.diag(m)
        union = m.sum(0) + m.sum(1) - tp
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
        return iou.numpy()

    def pixel_accuracy(self) -> float:
        total = self.mat.sum().item()
        return float(torch.diag(self.mat).sum().item() / total) if total else float("nan")


def mean_iou(iou: np.ndarray, classes: Sequence[int] | None = None) -> float:
    """Mean of the given classes' IoU (all when None), skipping NaN (classes never seen)."""
    vals = iou if classes is None else iou[list(classes)]
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if vals.size else float("nan")


def label_f1(pred: np.ndarray, labels: Sequence[int], min_fraction: float = 0.002) -> float:
    """Agreement of one prediction (H, W) with the image's image-level labels, in [0, 1].

    The predicted classes are the foreground classes covering at least `min_fraction` of the
    image; the score is the F1 of that set against `labels` (precision: predicted classes that are
    labelled; recall: labelled classes that are predicted). An image with no label and no
    predicted class scores 1. Needs no mask: weak images may be scored with it."""
    counts = np.bincount(pred.ravel().astype(np.int64))
    predicted = {c for c in np.flatnonzero(counts >= min_fraction * pred.size) if c != 0}
    truth = set(labels)
    if not predicted and not truth:
        return 1.0
    hit = len(predicted & truth)
    return 2.0 * hit / (len(predicted) + len(truth))
