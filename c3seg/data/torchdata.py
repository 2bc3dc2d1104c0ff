"""torch Datasets over (image, mask) pairs and over images with image-level labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info
from torchvision import tv_tensors

from c3seg.config import DataConfig
from c3seg.io import read_image, read_label


def _decode(image: Path, mask: Path | None) -> tuple[np.ndarray, np.ndarray]:
    img = read_image(image)  # (H, W, 3) uint8
    if mask is None:
        return img, np.full(img.shape[:2], 255, np.uint8)
    lab = read_label(mask)
    if lab.shape != img.shape[:2]:
        raise ValueError(
            f"mask {mask} is {lab.shape} but image {image} is {img.shape[:2]} as displayed (images "
            "are read turned by their EXIF orientation); c3seg data check lists every such pair"
        )
    return img, lab


def _tensors(img: np.ndarray, lab: np.ndarray) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """Fresh tensors (the transforms must not touch a kept array)."""
    return (
        tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1).contiguous()),
        tv_tensors.Mask(torch.from_numpy(lab).clone()),
    )


def decoded_budget(data: DataConfig) -> int:
    """MiB of decoded images a training set may keep: data.keep_decoded_mb when images are loaded
    in the training process (workers 0); loader processes restart every epoch, so a copy kept there
    would be thrown away each epoch."""
    return data.keep_decoded_mb if data.workers == 0 else 0


class _Decoded:
    """Decoded (image, mask) arrays kept after their first read while the whole set fits in
    `budget_mb` (estimated from the first image): later epochs skip JPEG/PNG decoding (~1.4 ms an
    image of the benchmark on one core). Only in the process that made the dataset."""

    def __init__(self, n: int, budget_mb: int) -> None:
        self.n, self.budget = n, budget_mb * 2**20
        self.kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, i: int, image: Path, mask: Path | None) -> tuple[np.ndarray, np.ndarray]:
        if i in self.kept:
            return self.kept[i]
        img, lab = _decode(image, mask)
        if self.budget > 0 and get_worker_info() is None:
            if not self.kept and self.n * (img.nbytes + lab.nbytes) > self.budget:
                self.budget = 0  # too big to keep: decode at every read
            else:
                self.kept[i] = (img, lab)
        return img, lab


class PairSet(Dataset):
    """(image, mask) pairs -> (image (3, H, W) float, mask (H, W) int64, index).

    `target` maps the raw mask before the transform (e.g. binarize for the L-Net); `keep_mb`: see
    `_Decoded` (0 = decode at every read)."""

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path | None]],
        transform: Callable,
        target: Callable[[np.ndarray], np.ndarray] | None = None,
        keep_mb: int = 0,
    ) -> None:
        self.pairs = list(pairs)
        self.transform = transform
        self.target = target
        self.decoded = _Decoded(len(self.pairs), keep_mb)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        img, lab = self.decoded.get(i, *self.pairs[i])
        if self.target is not None:
            lab = self.target(lab)
        image, mask = self.transform(*_tensors(img, lab))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long(), i


class LabelSet(Dataset):
    """Images with image-level labels -> (image, multi-hot (C-1,) float over foreground classes, index)."""

    def __init__(
        self,
        images: Sequence[Path],
        labels: Sequence[Sequence[int]],
        num_classes: int,
        transform: Callable,
        keep_mb: int = 0,
    ) -> None:
        self.images = list(images)
        self.decoded = _Decoded(len(self.images), keep_mb)
        self.labels = [tuple(x) for x in labels]
        self.num_classes = num_classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, _ = self.transform(*_tensors(*self.decoded.get(i, self.images[i], None)))
        y = torch.zeros(self.num_classes - 1)
        for c in self.labels[i]:
            y[c - 1] = 1.0
        return image.as_subclass(torch.Tensor), y, i
