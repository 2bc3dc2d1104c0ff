"""Transforms applied to image and mask together (torchvision.transforms.v2).

Training: random rescale, random crop with the mask padded by 255 (void), horizontal flip,
ImageNet normalization; optionally colour and affine augmentation (the L-Net's). Evaluation:
normalization only, full image.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomScale(torch.nn.Module):
    """Rescale image and mask by a factor drawn uniformly from [lo, hi] (masks by nearest)."""

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, image: tv_tensors.Image, mask: tv_tensors.Mask) -> tuple:
        s = float(torch.empty(()).uniform_(self.lo, self.hi))
        h, w = image.shape[-2:]
        size = [max(1, round(h * s)), max(1, round(w * s))]
        return v2.functional.resize(image, size, antialias=True), v2.functional.resize(
            mask, size, interpolation=v2.InterpolationMode.NEAREST
        )


def train_transform(
    crop: int,
    scale_min: float = 0.5,
    scale_max: float = 1.5,
    hue: float = 0.0,
    colour: bool = False,
    affine: float = 0.0,
) -> v2.Compose:
    """Random rescale, `affine` (rotation and shear), crop with 255 padding, flip, then colour.

    `hue`, `colour` and `affine` change the image (the mask only follows the geometry): class
    colour and exact class shape stop being cues, which makes the class-agnostic L-Net learn the
    object cues that transfer to categories it never saw."""
    void = {tv_tensors.Mask: 255, "others": 0}
    geometry = []
    if affine > 0:
        shear = 0.8 * affine
        geometry = [v2.RandomAffine(degrees=affine, shear=(-shear, shear, -shear, shear), fill=void)]
    appearance: list[torch.nn.Module] = []
    if colour:
        appearance = [
            v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.8, hue=hue),
            v2.RandomGrayscale(0.2),
            v2.RandomChannelPermutation(),
        ]
    elif hue > 0:
        appearance = [v2.ColorJitter(hue=hue)]
    return v2.Compose(
        [
            RandomScale(scale_min, scale_max),
            *geometry,
            v2.RandomCrop(crop, pad_if_needed=True, fill=void),
            v2.RandomHorizontalFlip(),
            *appearance,
            v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_transform() -> v2.Compose:
    return v2.Compose(
        [
            v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> normalized float, for inference on raw arrays."""
    mean = torch.tensor(IMAGENET_MEAN, device=images_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images_uint8.device).view(1, 3, 1, 1)
    return (images_uint8.float() / 255.0 - mean) / std


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Normalized (B, 3, H, W) -> float in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)


VOID = 255


def binarize(mask: np.ndarray) -> np.ndarray:
    """L'_s of Eq. 1: (H, W) class indices -> (H, W) uint8 with 0 background, 1 any object, 255 void."""
    out = (mask > 0).astype(np.uint8)
    out[mask == VOID] = VOID
    return out
