"""The P-Net: the discriminator of the paper's adversarial refinement (Fig. 4, Table 1).

Its input is the *product encoding* of Luc et al. (2016): the image multiplied channel-wise by
each class's map - softmax probabilities of the segmentation net for a prediction, one-hot for a
label map - concatenated into 3·C channels (`product_encoding`). Its output is one logit per image:
Table 1's fc6 sigmoid lives in the loss (`binary_cross_entropy_with_logits` is the numerically
stable form of J_b in Eq. 3-5).

Layers exactly as Table 1 (3×3 convolutions, padding 1, ReLU after each; no normalization):

    conv1 16, 32 -> pool1 2×2/2 -> conv2 64, 64 -> pool2 -> conv3 128, 128 -> pool3
    -> fc4 256 tanh -> fc5 512 tanh -> fc6 1

fc4's input size is 128·(S/8)² for an input side S, so S is a constructor argument; callers resize
image and maps to it (`resize_for_pnet`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VOID = 255


def _block(cin: int, c1: int, c2: int) -> nn.Sequential:
    """Two 3×3 conv + ReLU, then 2×2 max-pool with stride 2 (one row group of Table 1)."""
    return nn.Sequential(
        nn.Conv2d(cin, c1, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
    )


class PNet(nn.Module):
    """Table 1. in_channels = 3·C (product encoding), input_size = S (square inputs S×S)."""

    def __init__(self, num_classes: int, input_size: int = 64) -> None:
        super().__init__()
        if input_size < 8:
            raise ValueError(f"P-Net input_size must be at least 8 (three 2×2 pools), got {input_size}")
        self.num_classes = num_classes
        self.input_size = input_size
        self.conv1 = _block(3 * num_classes, 16, 32)  # (B, 32, S/2, S/2)
        self.conv2 = _block(32, 64, 64)  # (B, 64, S/4, S/4)
        self.conv3 = _block(64, 128, 128)  # (B, 128, S/8, S/8)
        side = input_size // 2 // 2 // 2
        self.fc4 = nn.Linear(128 * side * side, 256)
        self.fc5 = nn.Linear(256, 512)
        self.fc6 = nn.Linear(512, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3C, S, S) product encoding -> (B,) logit of "this is a label map, not a prediction"."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"P-Net expects {self.input_size}×{self.input_size} inputs, got {tuple(x.shape)}"
            )
        x = self.conv3(self.conv2(self.conv1(x)))  # (B, 128, S/8, S/8)
        x = torch.tanh(self.fc4(x.flatten(1)))  # (B, 256)
        x = torch.tanh(self.fc5(x))  # (B, 512)
        return self.fc6(x)[:, 0]  # (B,) logit; sigmoid is in the loss (J_b)


def product_encoding(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Luc et al. 2016 product encoding: (B, 3, H, W) images × (B, C, H, W) class maps ->
    (B, 3C, H, W), channels ordered class-major: [I·m_0 (3 ch), I·m_1 (3 ch), ...]."""
    b, _, h, w = images.shape
    enc = images[:, None] * maps[:, :, None]  # (B, C, 3, H, W)
    return enc.reshape(b, -1, h, w)


def label_maps(masks: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """One-hot maps of label masks (B, H, W) with values in [0, C) or 255, as (B, C, H, W) float.

    Void pixels (255, also the padding of training crops) take the prediction's probabilities
    `probs` (detached): there, the real and the fake input of the P-Net are identical, so void
    carries no signal. Zeroing them instead would let the P-Net spot label maps by the black
    band that VOC draws around every object.
    """
    c = probs.shape[1]
    void = masks == VOID  # (B, H, W)
    onehot = F.one_hot(masks.masked_fill(void, 0), c).permute(0, 3, 1, 2).to(probs.dtype)  # (B, C, H, W)
    return torch.where(void[:, None], probs.detach(), onehot)


def resize_for_pnet(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, K, H, W) -> (B, K, size, size), bilinear with antialiasing. The same resize is applied to
    label maps and predictions, so resizing adds no cue that tells them apart."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def pnet_input(images: torch.Tensor, maps: torch.Tensor, size: int) -> torch.Tensor:
    """Normalized images (B, 3, H, W) and class maps (B, C, H, W) -> P-Net input (B, 3C, S, S).

    Images are denormalized to [0, 1] first, so a pixel whose class map is 0 is black."""
    from c3seg.data.transforms import denormalize

    return product_encoding(resize_for_pnet(denormalize(images), size), resize_for_pnet(maps, size))
