"""A user's own dataset (`folder:PATH`) in the VOC layout, with weak images that need no mask:

    PATH/classes.txt                       one class name per line, background first
    PATH/JPEGImages/<id>.jpg               (.jpeg and .png are accepted too)
    PATH/SegmentationClass/<id>.png        index PNGs: 0..C-1, 255 = void
    PATH/ImageSets/Segmentation/train.txt  one id per line (val.txt likewise)
    PATH/labels.csv                        optional: `id,labels`, labels = class names separated
                                           by spaces or ';' (an optional header row `id,labels`)

Masks are required for strong training images and for every evaluation (val) image. A training
image without a mask takes its image-level labels from labels.csv (Sample.mask is None). Where an
image has both, the mask decides its labels. c3seg writes nothing into PATH: the labels it derives
from the masks are cached under the cache folder (data.root).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path

from c3seg.config import DataConfig
from c3seg.data.types import Item, Listing, SegData
from c3seg.data.voclayout import dataset_cache, read_ids, samples_from_items
from c3seg.io import read_text_file

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
BACKGROUND_NAMES = ("background", "bg")


def read_classes(root: Path) -> tuple[str, ...]:
    """Class names from classes.txt (background first)."""
    f = root / "classes.txt"
    if not f.exists():
        below = sorted(p.parent for p in root.glob("*/classes.txt"))
        hint = f"; the dataset seems to be one level down: use folder:{below[0]}" if below else ""
        raise FileNotFoundError(f"{f} is missing: write one class name per line, background first{hint}")
    names = tuple(line.strip() for line in read_text_file(f).splitlines() if line.strip())
    if len(names) < 2:
        raise ValueError(f"{f} must list background and at least one class")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{f} lists {', '.join(repr(d) for d in dup)} more than once")
    if names[0].strip("_").lower() not in BACKGROUND_NAMES:
        raise ValueError(
            f"{f} must list background first (mask value 0), got {names[0]!r} first: add a line "
            f"'background' at the top, or every class index would be off by one"
        )
    return names


def read_label_csv(f: Path, classes: tuple[str, ...]) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """id -> class indices from a labels CSV, and problems (unknown class names, bad rows)."""
    labels: dict[str, tuple[int, ...]] = {}
    problems = []
    for n, row in enumerate(csv.reader(io.StringIO(read_text_file(f), newline="")), 1):
        if not row or not "".join(row).strip() or (n == 1 and row[0].strip().lower() == "id"):
            continue
        if len(row) != 2:
            problems.append(f"{f.name} line {n}: expected 'id,labels', got {row}")
            continue
        names = [x for x in re.split(r"[;\s]+", row[1].strip()) if x]
        unknown = [x for x in names if x not in classes[1:]]
        if unknown:
            problems.append(
                f"{f.name} line {n}: unknown class {unknown[0]!r}; valid classes: {', '.join(classes[1:])}"
            )
            continue
        labels[row[0].strip()] = tuple(sorted({classes.index(x) for x in names}))
    return labels, problems


def _image(root: Path, i: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (p := root / "JPEGImages" / f"{i}{suffix}").exists():
            return p
    return root / "JPEGImages" / f"{i}.jpg"


def list_folder(path: str | Path, cfg: DataConfig | None = None) -> Listing:
    """The folder's train / val lists; mask-less training images take their labels from the CSV."""
    root = Path(path)
    classes = read_classes(root)
    listing = Listing(root.name or "folder", classes, {}, root)
    csv_labels: dict[str, tuple[int, ...]] = {}
    if (root / "labels.csv").exists():
        csv_labels, listing.problems = read_label_csv(root / "labels.csv", classes)
    sets = root / "ImageSets" / "Segmentation"
    for which in ("train", "val"):
        items = []
        for i in read_ids(sets / f"{which}.txt"):
            mask = root / "SegmentationClass" / f"{i}.png"
            if which == "train" and not mask.exists() and i in csv_labels:
                items.append(Item(i, _image(root, i), None, csv_labels[i]))
            else:
                items.append(Item(i, _image(root, i), mask))
        listing.lists[which] = items
    listed = {it.id for items in listing.lists.values() for it in items}
    unlisted = sorted(set(csv_labels) - listed)
    if unlisted:
        log.warning(
            "labels.csv: %d ids are in no image list and were skipped (e.g. %s); list them in "
            "ImageSets/Segmentation/train.txt to use them",
            len(unlisted),
            ", ".join(unlisted[:3]),
        )
    return listing


def load_folder(path: str | None, cfg: DataConfig) -> SegData:
    """A user's own dataset (see the module docstring)."""
    listing = list_folder(path or ".", cfg)
    if listing.problems:
        raise ValueError(f"{listing.root}: " + "; ".join(listing.problems))
    cache = dataset_cache(listing.root, cfg.root, "image-labels.json")
    n = len(listing.classes)
    train = samples_from_items(listing.lists["train"], n, cache)
    val = samples_from_items(listing.lists["val"], n, cache)
    weak = sum(s.mask is None for s in train)
    log.info("%s: %d train images (%d with labels only), %d val", listing.name, len(train), weak, len(val))
    return SegData(listing.name, listing.classes, train, val, root=listing.root)
