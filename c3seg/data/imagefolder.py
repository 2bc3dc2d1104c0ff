"""An image-level pretraining corpus in the ImageFolder layout (every ImageNet copy's, torchvision's):

    PATH/train/<class>/*.jpg   training images, one folder per class (.jpeg, .JPEG, .png too)
    PATH/val/<class>/*.jpg     optional: held-out images of the same classes

A class index is the position of its folder name in sorted order (as torchvision's ImageFolder).
Without val/, the last `holdout` part (by file name) of every class's training images is held out
instead, so the held-out set has every class in proportion. The folder is only read, never written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from c3seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from c3seg.io import read_image

PREFIX = "imagefolder:"  # pretrain.corpus=imagefolder:PATH
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # compared in lower case
CROP_SCALE = (0.35, 1.0)  # area range of the random resized crop: lighter than ImageNet's (0.08, 1)
LAYOUT = "expected the ImageFolder layout PATH/train/<class>/*.jpg (and optionally PATH/val/<class>/*.jpg)"

Sample = tuple[Path, int]  # (image file, class index)


@dataclass(frozen=True)
class ImageFolderCorpus:
    root: Path  # resolved PATH
    classes: tuple[str, ...]  # class index -> folder name
    train: tuple[Sample, ...]  # what the classifier trains on
    val: tuple[Sample, ...]  # what its top-1 is measured on
    val_source: str  # "val" (PATH/val) or "train" (held out of PATH/train)
    files: int  # image files found under train/ and val/ together

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> dict[str, Any]:
        """A cheap identity of the corpus for cache keys: where it is, its classes and its file
        count (no file is read), so an added class or image makes another key."""
        names = hashlib.sha256("\n".join(self.classes).encode()).hexdigest()[:16]
        return {
            "path": str(self.root),
            "classes": self.num_classes,
            "class_names": names,
            "files": self.files,
        }


def imagefolder_path(spec: str) -> Path | None:
    """The PATH of a `pretrain.corpus` setting "imagefolder:PATH"; None for "shapes"."""
    if spec == "shapes":
        return None
    if not spec.startswith(PREFIX) or not spec[len(PREFIX) :].strip():
        raise ValueError(f"pretrain.corpus={spec!r}: use shapes (the generated corpus) or imagefolder:PATH")
    return Path(spec[len(PREFIX) :].strip()).expanduser()


def _images(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        found = [Path(e.path) for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found)


def _class_folders(split: Path) -> list[str]:
    if not split.is_dir():
        return []
    with os.scandir(split) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _layout_hint(root: Path) -> str:
    """Where the layout might be instead, for the error message."""
    below = sorted(p.parent for p in root.glob("*/train") if _class_folders(p))
    if below:
        return f"; it seems to be one level down: use imagefolder:{below[0]}"
    if root.name in ("train", "val") and _class_folders(root):
        return f"; PATH is the folder holding train/, not train/ itself: use imagefolder:{root.parent}"
    return ""


def read_imagefolder(path: str | Path, holdout: float = 0.05) -> ImageFolderCorpus:
    """List an ImageFolder corpus (no image is decoded). Raises a one-line error naming what is
    missing: no train/<class>/ folders, a class folder without images, val/ classes not in train/."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: {LAYOUT}")
    classes = _class_folders(root / "train")
    if not classes:
        raise FileNotFoundError(f"{root} has no train/<class>/ folders: {LAYOUT}{_layout_hint(root)}")
    if len(classes) < 2:
        raise ValueError(
            f"{root / 'train'} has one class folder ({classes[0]}): a classifier needs two or more"
        )
    index = {c: k for k, c in enumerate(classes)}
    per_class = {c: _images(root / "train" / c) for c in classes}
    empty = [c for c, files in per_class.items() if not files]
    if empty:
        raise ValueError(
            f"{root / 'train' / empty[0]} has no images ({', '.join(IMAGE_SUFFIXES)}); "
            f"{len(empty)} class folder(s) are empty: remove them or add images"
        )
    val_classes = _class_folders(root / "val")
    unknown = [c for c in val_classes if c not in index]
    if unknown:
        raise ValueError(f"{root / 'val' / unknown[0]} is a class that train/ does not have: {LAYOUT}")
    val_files = {c: _images(root / "val" / c) for c in val_classes}
    files = sum(map(len, per_class.values())) + sum(map(len, val_files.values()))
    if any(val_files.values()):
        train = [(f, index[c]) for c, fs in per_class.items() for f in fs]
        val = [(f, index[c]) for c, fs in val_files.items() for f in fs]
        source = "val"
    else:  # hold out the last part of every class (at least one image where a class has two)
        train, val = [], []
        for c, fs in per_class.items():
            n = min(max(1, round(len(fs) * holdout)), len(fs) - 1) if holdout > 0 else 0
            train += [(f, index[c]) for f in fs[: len(fs) - n]]
            val += [(f, index[c]) for f in fs[len(fs) - n :]]
        source = "train"
    return ImageFolderCorpus(root, tuple(classes), tuple(train), tuple(val), source, files)


def train_transform(size: int) -> v2.Compose:
    """Light augmentation: a random resized crop to size x size (CROP_SCALE of the area, aspect
    3/4..4/3) and a horizontal flip, then ImageNet normalization."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=CROP_SCALE, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_transform(size: int) -> v2.Compose:
    """The shorter side resized to `size`, the centre size x size crop, ImageNet normalization."""
    return v2.Compose(
        [
            v2.Resize(size, antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class ImageFolderSet(Dataset):
    """(image file, class index) samples -> (image (3, size, size) float, class index, index)."""

    def __init__(self, samples: Sequence[Sample], transform: Callable) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        path, label = self.samples[i]
        image = tv_tensors.Image(torch.from_numpy(read_image(path)).permute(2, 0, 1))  # (3, H, W) uint8
        return self.transform(image).as_subclass(torch.Tensor), label, i
