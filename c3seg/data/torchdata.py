"""torch Datasets over (image, mask) pairs and over images with image-level labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from c3seg.io import read_image, read_label


def _load(image: Path, mask: Path | None) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    img = read_image(image)  # (H, W, 3) uint8
    if mask is None:
        lab = np.full(img.shape[:2], 255, np.uint8)
    else:
        lab = read_label(mask)
        if lab.shape != img.shape[:2]:
            raise ValueError(f"mask {mask} is {lab.shape} but image {image} is {img.shape[:2]}")
    return (
        tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous()),
        tv_tensors.Mask(torch.from_numpy(lab)),
    )


class PairSet(Dataset):
    """(image, mask) pairs -> (image (3, H, W) float, mask (H, W) int64, index).

    `target` maps the raw mask before the transform (e.g. binarize for the L-Net)."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path | None]],
        transform: Callable,
        target: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.pairs = list(pairs)
        self.transform = transform
        self.target = target

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, mask = _load(*self.pairs[i])
        if self.target is not None:
            mask = tv_tensors.Mask(torch.from_numpy(self.target(mask.numpy())))
        image, mask = self.transform(image, mask)
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long(), i


class LabelSet(Dataset):
    """Images with image-level labels -> (image, multi-hot (C-1,) float over foreground classes, index)."""

    def __init__(
        self, images: Sequence[Path], labels: Sequence[Sequence[int]], num_classes: int, transform: Callable
    ) -> None:
        self.images = list(images)
        self.labels = [tuple(x) for x in labels]
        self.num_classes = num_classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, mask = _load(self.images[i], None)
        image, _ = self.transform(image, mask)
        y = torch.zeros(self.num_classes - 1)
        for c in self.labels[i]:
            y[c - 1] = 1.0
        return image.as_subclass(torch.Tensor), y, i
