"""A user's own dataset (`folder:PATH`) in the VOC layout, with weak images that need no mask:

    PATH/classes.txt                       one class name per line, background first
    PATH/JPEGImages/<id>.jpg               (.jpeg, .png, ... too; suffixes in any case: .JPG)
    PATH/SegmentationClass/<id>.png        index PNGs: 0..C-1, 255 = void
    PATH/ImageSets/Segmentation/train.txt  one id per line (val.txt likewise)
    PATH/labels.csv                        optional: `id,labels`, labels = class names separated
                                           by spaces or ';' (an optional header row `id,labels`)

Masks are required for strong training images and for every evaluation (val) image: a val image
is scored against its mask. A training image without a mask takes its image-level labels from
labels.csv (Sample.mask is None). Where an image has both, the mask decides its labels. Class
names hold no spaces (labels.csv separates them by spaces). Text files may start with a UTF-8
byte-order mark. Images are read turned by their EXIF orientation (c3seg.io.read_image), so a
mask must match the image as it is displayed. c3seg writes nothing
into PATH: the labels it derives from the masks are cached under the cache folder (data.root).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path

from c3seg.config import DataConfig
from c3seg.data.types import Item, Listing, SegData
from c3seg.data.voclayout import check_lists, dataset_cache, read_ids, refuse_problems, samples_from_items
from c3seg.io import IMAGE_SUFFIXES, read_text_file

log = logging.getLogger(__name__)

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
    spaced = [n for n in names if re.search(r"[;,\s]", n)]
    if spaced:
        joined = re.sub(r"[;,\s]+", "_", spaced[0])
        raise ValueError(
            f"{f}: class name {spaced[0]!r} holds a space, ';' or ',': labels.csv separates class "
            f"names by those, so it would read as several classes; write it as {joined!r}"
        )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{f} lists {', '.join(repr(d) for d in dup)} more than once")
    if names[0].strip("_").lower() not in BACKGROUND_NAMES:
        raise ValueError(
            f"{f} must list background first (mask value 0), got {names[0]!r} first: add a line "
            f"'background' at the top, or every class index would be off by one"
        )
    return names


def read_label_csv(
    f: Path, classes: tuple[str, ...]
) -> tuple[dict[str, tuple[int, ...]], list[str], list[str]]:
    """id -> class indices from a labels CSV, problems (unknown class names, bad rows, an image
    given two different label sets) and warnings (a row that repeats an earlier one exactly)."""
    labels: dict[str, tuple[int, ...]] = {}
    line_of: dict[str, int] = {}
    problems, conflicts, repeats = [], [], []
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(read_text_file(f), newline="")), 1)]
    rows = [(n, row) for n, row in rows if row and "".join(row).strip()]  # blank lines anywhere
    if rows and rows[0][1][0].strip().lower() == "id":
        rows = rows[1:]  # the header
    for n, row in rows:
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
        i, found = row[0].strip(), tuple(sorted({classes.index(x) for x in names}))
        if i in labels and labels[i] != found:
            conflicts.append(
                f"{i}: line {line_of[i]} {_names(labels[i], classes)}, line {n} {_names(found, classes)}"
            )
        elif i in labels:
            repeats.append(i)
        else:
            labels[i], line_of[i] = found, n
    if conflicts:
        problems.append(
            f"{f.name} gives {len(conflicts)} images two different label sets (e.g. {conflicts[0]}); "
            "keep one row per image"
        )
    warnings = []
    if repeats:
        warnings.append(
            f"{f.name}: {len(repeats)} rows repeat an earlier row's image and labels (e.g. "
            f"{', '.join(repeats[:3])}); each image is used once"
        )
    return labels, problems, warnings


def _names(labels: tuple[int, ...], classes: tuple[str, ...]) -> str:
    return repr(" ".join(classes[c] for c in labels))


def index_files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """id (path below `folder` without its suffix) -> file, suffixes matched in any case (x.JPG is
    image x); where an id has several files, the first suffix in `suffixes` wins."""
    if not folder.is_dir():
        return {}
    rank = {sfx: k for k, sfx in enumerate(suffixes)}
    found: dict[str, Path] = {}
    for p in folder.rglob("*"):
        sfx = p.suffix.lower()
        if sfx not in rank or not p.is_file():
            continue
        key = p.relative_to(folder).with_suffix("").as_posix()
        if key not in found or rank[sfx] < rank[found[key].suffix.lower()]:
            found[key] = p
    return found


def list_folder(path: str | Path, cfg: DataConfig | None = None) -> Listing:
    """The folder's train / val lists; mask-less training images take their labels from the CSV."""
    root = Path(path)
    classes = read_classes(root)
    listing = Listing(root.name or "folder", classes, {}, root)
    csv_labels: dict[str, tuple[int, ...]] = {}
    if (root / "labels.csv").exists():
        csv_labels, listing.problems, listing.warnings = read_label_csv(root / "labels.csv", classes)
    images = index_files(root / "JPEGImages", IMAGE_SUFFIXES)
    masks = index_files(root / "SegmentationClass", (".png",))
    sets = root / "ImageSets" / "Segmentation"
    for which in ("train", "val"):
        items = []
        for i in read_ids(sets / f"{which}.txt"):
            image = images.get(i, root / "JPEGImages" / f"{i}.jpg")
            mask = masks.get(i)
            if which == "train" and mask is None and i in csv_labels:
                items.append(Item(i, image, None, csv_labels[i]))
            else:
                items.append(Item(i, image, mask or root / "SegmentationClass" / f"{i}.png"))
        listing.lists[which] = items
    listing.problems += check_lists(listing)
    unscored = [it.id for it in listing.lists["val"] if it.id not in masks]
    if unscored:
        labelled = sum(i in csv_labels for i in unscored)
        why = (
            f" ({labelled} have image-level labels in labels.csv, which train but cannot score)"
            if labelled
            else ""
        )
        listing.problems.append(
            f"{sets / 'val.txt'}: {len(unscored)} val images have no mask in SegmentationClass/ (e.g. "
            f"{', '.join(unscored[:3])}){why}; val images need masks to be scored: draw them, or "
            "move these images to train.txt"
        )
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
    refuse_problems(listing)
    cache = dataset_cache(listing.root, cfg.root, "image-labels.json")
    n = len(listing.classes)
    train = samples_from_items(listing.lists["train"], n, cache)
    val = samples_from_items(listing.lists["val"], n, cache)
    weak = sum(s.mask is None for s in train)
    log.info("%s: %d train images (%d with labels only), %d val", listing.name, len(train), weak, len(val))
    return SegData(listing.name, listing.classes, train, val, root=listing.root)
