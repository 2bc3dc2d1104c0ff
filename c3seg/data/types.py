"""The dataset index every loader produces and every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One image. `labels` are its image-level foreground classes (indices into SegData.classes,
    never 0); `mask` is its index-PNG label map, or None when only image-level labels exist."""

    id: str
    image: Path
    mask: Path | None
    labels: tuple[int, ...]


@dataclass(frozen=True)
class Item:
    """One listed image before any file is decoded: what loaders index and `c3seg data check` inspects.

    `labels` are given image-level labels (e.g. from a CSV or COCO annotations); None means
    "derive them from the mask"."""

    id: str
    image: Path
    mask: Path | None
    labels: tuple[int, ...] | None = None


@dataclass
class Listing:
    """A dataset's files as listed on disk (lists "train" and "val"), plus what listing found:
    problems (the dataset would train or score wrong: refused) and warnings (read anyway, e.g. an
    id listed twice is used once)."""

    name: str
    classes: tuple[str, ...]
    lists: dict[str, list[Item]]
    root: Path
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SegData:
    """A dataset: class names (index 0 is background) and its train / val samples.

    `extra_strong` holds strong images from another dataset whose categories are disjoint from
    `classes` (split 4: COCO's 60 non-VOC categories). Their masks are used class-agnostically
    (any value in 1..254 is foreground) by the L-Net, never by the segmentation network.
    """

    name: str
    classes: tuple[str, ...]
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    extra_strong: tuple[Sample, ...] = field(default=())
    root: Path | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(
                f"unknown class {name!r} for dataset {self.name}; valid: {', '.join(self.classes[1:])}"
            ) from None


def background_mask(mask: Path) -> Path:
    """An extra strong image's mask in the main dataset's classes (split 4), beside its own: the
    image holds no category of the main dataset (that is how it was chosen), so every object in it
    is background there, as VOC labels objects outside its 20 categories; void stays void. Written
    by the loader that supplies the extra images (c3seg.data.coco)."""
    return mask.parent.with_name(mask.parent.name + "-background") / mask.name
