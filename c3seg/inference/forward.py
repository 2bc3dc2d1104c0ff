"""Inference with trained networks on full images: M (L-Net), CAMs, segmentation predictions.

Every function takes a batch of normalized images (B, 3, H, W) already on the model's device and
returns maps at the input resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from c3seg.models.common import upsample


def _at_scales(
    net: nn.Module, images: torch.Tensor, scales: Sequence[float], flip: bool
) -> list[torch.Tensor]:
    """net's score maps of the images rescaled by each factor (and mirrored, with flip), each
    brought back to the input size: a list of (B, K, H, W)."""
    size = images.shape[-2:]
    out = []
    for s in scales:
        x = images if s == 1 else F.interpolate(images, scale_factor=s, mode="bilinear", align_corners=False)
        out.append(upsample(net(x).float(), size))
        if flip:
            out.append(upsample(net(x.flip(-1)).float(), size).flip(-1))
    return out


@torch.no_grad()
def foreground_prob(
    lnet: nn.Module, images: torch.Tensor, scales: Sequence[float] = (1.0,), flip: bool = False
) -> torch.Tensor:
    """M = sigmoid(O_L(I)) (Eq. 1's network), (B, H, W) in [0, 1]; with several scales (and
    flip) the mean of the probabilities over the rescaled (and mirrored) images."""
    probs = [torch.sigmoid(x[:, 0]) for x in _at_scales(lnet, images, scales, flip)]  # (B, H, W) each
    return torch.stack(probs).mean(0)


@torch.no_grad()
def class_activation_maps(
    cam_net: nn.Module, images: torch.Tensor, flip: bool = True, scales: Sequence[float] = (1.0,)
) -> torch.Tensor:
    """A^c for every foreground class (Zhou et al. 2016): the pre-pooling class score map,
    upsampled and min-max normalized per image and class. (B, C-1, H, W) in [0, 1].

    Min-max rather than the usual ReLU-and-divide-by-max: make-labels reads A^c only for classes
    the image is labelled with, and a classifier unsure of such a class may score it below zero
    everywhere; ReLU then leaves an all-zero map whose "peak" is pixel (0, 0), while min-max keeps
    where the evidence is strongest (with ReLU, the seeds of such classes land in the image
    corner). With flip=True the maps of the image and its mirror are averaged,
    and so are the maps of the image rescaled by each of `scales` (multi-scale inference).
    """
    cams = torch.stack(_at_scales(cam_net, images, scales, flip)).mean(0)  # (B, C-1, H, W)
    flat = cams.flatten(2)
    lo = flat.amin(-1)[..., None, None]  # (B, C-1, 1, 1)
    hi = flat.amax(-1)[..., None, None]
    return (cams - lo) / (hi - lo).clamp(min=1e-5)


@torch.no_grad()
def affinity_embedding(affinity_net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """e of train-affinity's network (a_ij = exp(-|e_i - e_j|_1)), upsampled bilinearly to the
    input size: (B, D, H, W)."""
    return upsample(affinity_net(images).float(), images.shape[-2:])


def pool_scores(maps: torch.Tensor, pool: str = "gap") -> torch.Tensor:
    """Class score maps (B, K, h, w) -> image-level logits (B, K): global average (Zhou et al.)
    or global max pooling."""
    if pool == "gap":
        return maps.mean((-2, -1))
    if pool == "gmp":
        return maps.flatten(2).amax(-1)
    raise ValueError(f"unknown pooling {pool!r}; use gap or gmp")


@torch.no_grad()
def class_scores(cam_net: nn.Module, images: torch.Tensor, pool: str = "gap") -> torch.Tensor:
    """Image-level logits of the CAM classifier, (B, C-1)."""
    return pool_scores(cam_net(images).float(), pool)


@torch.no_grad()
def segment(seg_net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities at input resolution, (B, C, H, W)."""
    return torch.softmax(upsample(seg_net(images).float(), images.shape[-2:]), 1)
