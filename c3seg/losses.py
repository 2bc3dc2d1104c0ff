"""The losses of the segmentation networks, shared by the stages that train them.

- `lnet_loss`: J_b of Eq. 1, the L-Net's binary cross-entropy;
- `segmentation_loss`: J_m of Eq. 4, multi-class cross-entropy (optionally class-balanced) plus an
  image-level term; train-seg and the P-Net's adversarial fine-tuning both train with it;
- `affinity_loss`: AffinityNet's pair loss (Ahn and Kwak 2018, as RETAB trains it on base-class
  masks), train-affinity's; `grid_labels` brings masks to the embedding's grid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from c3seg.config import SegConfig
from c3seg.data.types import SegData
from c3seg.io import read_label

log = logging.getLogger(__name__)

VOID = 255


def lnet_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """J_b of Eq. 1: mean element-wise BCE over non-void pixels.

    logits (B, 1, H, W) float; target (B, H, W) int64 in {0, 1, 255}."""
    valid = target != VOID  # (B, H, W)
    if not valid.any():  # an all-void crop: a zero that still carries the graph
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[:, 0][valid], target[valid].float())


def image_label_loss(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Image-level term (`seg.label_loss`): BCE of each foreground class's largest softmax
    probability against the image's label (SEC's expansion loss, Kolesnikov and Lampert 2016, with
    max pooling). It asks for every labelled class somewhere and no unlabelled one anywhere, which
    pseudo labels that miss an object cannot ask. log_probs (B, C, H, W) = log_softmax(logits, 1)
    (shared with the cross-entropy); labels (B, C-1) multi-hot. The maximum is read at each class's
    argmax (one pixel takes the gradient) instead of through amax, whose backward was the costliest
    part of this term in a CPU step profile."""
    fg = log_probs[:, 1:].flatten(2)  # (B, C-1, H*W)
    top = fg.gather(2, fg.detach().argmax(2, keepdim=True))[..., 0].exp()  # (B, C-1)
    return F.binary_cross_entropy(top.clamp(1e-6, 1 - 1e-6), labels)


def class_weights(pairs: list[tuple[Path, Path]], num_classes: int, power: float) -> torch.Tensor:
    """Per-class cross-entropy weights (median frequency / frequency) ** power from the pixel counts
    of the training masks (void 255 not counted). Classes absent from every mask get the largest
    weight of the present ones (they cannot be predicted from these masks anyway)."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for _, mask in pairs:
        label = read_label(mask)
        counts += np.bincount(label[label < num_classes].ravel(), minlength=num_classes)[:num_classes]
    present = counts > 0
    if not present.any():
        return torch.ones(num_classes)
    freq = counts / counts.sum()
    w = np.ones(num_classes)
    w[present] = (np.median(freq[present]) / freq[present]) ** power
    w[~present] = w[present].max()
    return torch.tensor(w, dtype=torch.float32)


def multi_hot(data: SegData, pairs: list[tuple[Path, Path]]) -> torch.Tensor:
    """(len(pairs), C-1) image-level labels of each pair's image (weak images: their given labels)."""
    labels = {s.image: s.labels for s in data.train}
    out = torch.zeros(len(pairs), data.num_classes - 1)
    for i, (image, _) in enumerate(pairs):
        for c in labels.get(image, ()):
            out[i, c - 1] = 1.0
    return out


SegLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def segmentation_loss(
    tc: SegConfig, data: SegData, pairs: list[tuple[Path, Path]], device: torch.device, name: str
) -> SegLoss:
    """J_m of Eq. 4, as train-seg and the P-Net's fine-tuning both use it: loss(logits (B, C, H, W),
    masks (B, H, W), idx (B,) = the images' positions in `pairs`) = cross-entropy, its classes
    weighted by `seg.class_balance` (class_weights over `pairs`' masks), plus `seg.label_loss` x
    image_label_loss against each image's image-level labels."""
    weight = None
    if tc.class_balance > 0:
        weight = class_weights(pairs, data.num_classes, tc.class_balance).to(device)
        log.info("%s: class weights %s", name, " ".join(f"{w:.2f}" for w in weight.tolist()))
    image_labels = multi_hot(data, pairs).to(device) if tc.label_loss > 0 else None

    def loss(logits: torch.Tensor, masks: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(logits, 1)  # once for both terms (F.cross_entropy's own first step)
        out = F.nll_loss(log_probs, masks, weight=weight, ignore_index=255)
        if image_labels is not None:
            out = out + tc.label_loss * image_label_loss(log_probs, image_labels[idx.to(device)])
        return out

    return loss


def grid_labels(masks: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Masks (B, H, W) int64 -> (B, h, w) on a network's feature grid: each cell takes the label of
    the pixel at its centre (nearest), and becomes void (255) where its pixels disagree (an object
    boundary, or void inside it), so that no pair of the affinity loss straddles a boundary."""
    x = masks[:, None].float()  # (B, 1, H, W)
    centre = F.interpolate(x, size=tuple(size), mode="nearest-exact")
    hi = F.adaptive_max_pool2d(x, tuple(size))
    lo = -F.adaptive_max_pool2d(-x, tuple(size))
    return torch.where(hi == lo, centre, torch.full_like(centre, VOID))[:, 0].long()


def pair_offsets(radius: int) -> list[tuple[int, int]]:
    """(dy, dx) with 0 < dy² + dx² <= radius², one of each ± pair (dy > 0, or dy = 0 and dx > 0):
    every unordered pixel pair within the radius once."""
    r = radius
    return [
        (dy, dx)
        for dy in range(0, r + 1)
        for dx in range(-r, r + 1)
        if (dy > 0 or dx > 0) and dy * dy + dx * dx <= r * r
    ]


def affinity_pairs(
    emb: torch.Tensor, labels: torch.Tensor, radius: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """For each offset of `pair_offsets(radius)`: (d, fg, bg, neg), all (B, h', w') over the pixels
    whose partner at that offset is inside the grid. d = |e_i - e_j|_1 (so a_ij = exp(-d)); fg / bg:
    positive pairs (same label, object / background); neg: different labels; void never pairs.

    emb (B, D, h, w) float; labels (B, h, w) int64 with 255 = void (`grid_labels`)."""
    h, w = labels.shape[-2:]
    for dy, dx in pair_offsets(radius):
        if dy >= h or abs(dx) >= w:
            continue
        x0, x1 = max(0, -dx), w - max(0, dx)  # columns of i whose partner j = (y + dy, x + dx) exists
        ei, ej = emb[:, :, : h - dy, x0:x1], emb[:, :, dy:, x0 + dx : x1 + dx]  # (B, D, h', w')
        li, lj = labels[:, : h - dy, x0:x1], labels[:, dy:, x0 + dx : x1 + dx]  # (B, h', w')
        valid = (li != VOID) & (lj != VOID)
        same = valid & (li == lj)
        yield (ei - ej).abs().sum(1), same & (li > 0), same & (li == 0), valid & (li != lj)


def affinity_loss(emb: torch.Tensor, labels: torch.Tensor, radius: int) -> torch.Tensor:
    """AffinityNet's loss with a_ij = exp(-|e_i - e_j|_1) over pixel pairs within `radius` cells:

        1/4 mean_{fg pos} -log a_ij + 1/4 mean_{bg pos} -log a_ij + 1/2 mean_{neg} -log(1 - a_ij)

    fg / bg positives (same label, object / background) and negatives (different labels) are each
    averaged on their own, so that background pairs, the most numerous, do not swamp the others;
    a group with no pair adds nothing. Void (255) pixels are in no pair.

    emb (B, D, h, w) float; labels (B, h, w) int64 on the same grid (`grid_labels`)."""
    zero = emb.sum() * 0.0  # keeps the graph when a group has no pair
    sums, counts = [zero, zero, zero], [zero.detach()] * 3  # fg pos, bg pos, neg
    for d, fg, bg, neg in affinity_pairs(emb, labels, radius):
        # -log a = d; -log(1 - a) = -log(1 - exp(-d)), d kept >= 1e-5 so that it stays finite
        neg_log = -torch.log(-torch.expm1(-d.clamp(min=1e-5)))
        for k, (values, mask) in enumerate(((d, fg), (d, bg), (neg_log, neg))):
            sums[k] = sums[k] + torch.where(mask, values, 0.0).sum()
            counts[k] = counts[k] + mask.sum()  # tensors: no device sync per offset
    fg_term, bg_term, neg_term = (s / c.clamp(min=1) for s, c in zip(sums, counts, strict=True))
    return 0.25 * fg_term + 0.25 * bg_term + 0.5 * neg_term
