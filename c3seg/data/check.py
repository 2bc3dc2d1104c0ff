"""`c3seg data check DATASET [--split FILE]`: count a dataset's images and find every bad file.

It lists the dataset's files without the loaders (so a malformed dataset is reported, not
crashed on), decodes every image with `read_image` (as training reads it) and every mask in a
thread pool, and reports as problems: missing or unreadable files (a truncated JPEG fails to
decode), masks whose size differs from their image as displayed (after its EXIF orientation),
masks that are not index PNGs, mask values outside 0..C-1 that are not 255, what listing found
(images in both train and val, labels.csv conflicts; c3seg.data.voclayout.check_lists). Warnings
name what is read correctly but differently from the file's pixels (16-bit images scaled to 8
bits, EXIF-turned images) and repeats that are used once. With a split, it counts strong and weak
training images. Exit code: 0 when there is no problem (warnings or not), 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from c3seg.config import DataConfig
from c3seg.data.types import Item, Listing
from c3seg.io import SIXTEEN_BIT_MODES, exif_orientation, read_image

log = logging.getLogger(__name__)


@dataclass
class Found:
    """What inspecting one item found: its image-level labels, the problems (one line each) and
    warnings (read correctly, but worth knowing: a 16-bit image, one turned by its EXIF tag)."""

    labels: tuple[int, ...] = ()
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def image_warnings(path: Path) -> list[str]:
    """How `read_image` changes this image beyond decoding it: 16-bit greyscale scaled to 8 bits,
    an EXIF orientation that swaps its width and height (its mask must match the turned image)."""
    with Image.open(path) as im:
        mode, orientation, (w, h) = im.mode, exif_orientation(im), im.size
    found = []
    if mode in SIXTEEN_BIT_MODES:
        found.append(f"{path}: a 16-bit ({mode}) image, scaled to 8 bits when read")
    if orientation >= 5:
        found.append(
            f"{path}: EXIF orientation {orientation} turns the stored {h}x{w} pixels to {w}x{h} when "
            "read; its mask must match the turned image (as photo viewers show it)"
        )
    return found


def inspect(item: Item, num_classes: int) -> Found:
    """Decode an item's image (as training reads it) and mask, and check them against each other
    and the class list."""
    found = Found()
    size = None
    try:
        size = read_image(item.image).shape[:2]  # decodes the whole file: a truncated JPEG fails here
        found.warnings += image_warnings(item.image)
    except FileNotFoundError:
        found.problems.append(f"{item.image}: image is missing")
    except (OSError, ValueError) as e:
        found.problems.append(f"{item.image}: unreadable image ({e})")
    if item.labels is not None:
        found.labels = item.labels
        bad = [c for c in item.labels if not 0 < c < num_classes]
        if bad:
            found.problems.append(
                f"{item.id}: image-level label {bad[0]} is not a class index 1..{num_classes - 1}"
            )
    if item.mask is None:
        if item.labels is None:
            found.problems.append(f"{item.id}: has neither a mask nor image-level labels")
        return found
    try:
        with Image.open(item.mask) as m:
            m.load()
            if m.mode not in ("P", "L"):
                found.problems.append(
                    f"{item.mask}: mask is a {m.mode} image, not an index PNG (P or L mode)"
                )
                return found
            mask = np.asarray(m)
    except FileNotFoundError:
        found.problems.append(f"{item.mask}: mask is missing")
        return found
    except (OSError, SyntaxError, ValueError) as e:
        found.problems.append(f"{item.mask}: unreadable mask ({e})")
        return found
    if size is not None and mask.shape != size:
        turned = any("EXIF orientation" in w for w in found.warnings)
        found.problems.append(
            f"{item.mask}: mask is {mask.shape[0]}x{mask.shape[1]} but its image is {size[0]}x{size[1]}"
            + (
                " as displayed (after its EXIF orientation): draw the mask on the turned image"
                if turned
                else ""
            )
        )
    values = np.unique(mask)
    bad = [int(v) for v in values if v >= num_classes and v != 255]
    if bad:
        found.problems.append(
            f"{item.mask}: mask values {bad} are outside the {num_classes} classes (0..{num_classes - 1}, 255 void)"
        )
    if item.labels is None:
        found.labels = tuple(int(v) for v in values if 0 < v < num_classes)
    return found


def list_dataset(spec: str, cfg: DataConfig) -> Listing:
    """A dataset's files as the loaders would index them, without decoding anything."""
    from c3seg.data.load import parse_spec

    kind, path = parse_spec(spec)
    if kind == "voc":
        from c3seg.data.voc import list_voc

        return list_voc(path or ".", cfg)
    if kind == "coco":
        from c3seg.data.coco import check_annotations, list_coco

        listing = list_coco(path or ".", cfg, masks=False)
        listing.problems += check_annotations(path or ".")
        return listing
    if kind == "folder":
        from c3seg.data.folder import list_folder

        return list_folder(path or ".", cfg)
    from c3seg.data.load import load_dataset  # the generated benchmark: its loader lists it

    data = load_dataset(cfg, spec)
    lists = {
        k: [Item(s.id, s.image, s.mask) for s in v] for k, v in (("train", data.train), ("val", data.val))
    }
    return Listing(data.name, data.classes, lists, data.root or Path(cfg.root))


def extra_strong_items(spec: str, classes: tuple[str, ...]) -> list[Item]:
    """Split 4's extra strong images (COCO train images with none of `classes`), masks not built."""
    from c3seg.data.coco import split4_image_ids
    from c3seg.data.load import parse_spec

    kind, path = parse_spec(spec)
    if kind != "coco":
        raise ValueError(f"{spec!r} cannot supply extra strong images; use coco:PATH")
    api, _, images, ids = split4_image_ids(path or ".", classes)
    return [Item(str(i), images / api.imgs[i]["file_name"], None, ()) for i in ids]


def class_table(listing: Listing, labels: dict[str, list[tuple[int, ...]]]) -> list[str]:
    """Lines of 'class  images-in-train  images-in-val'."""
    names = list(labels)
    counts = {k: Counter(c for lab in v for c in lab) for k, v in labels.items()}
    width = max(len(c) for c in listing.classes)
    lines = [f"  {'class':<{width}}" + "".join(f"{n:>8}" for n in names)]
    for c, name in enumerate(listing.classes[1:], 1):
        lines.append(f"  {name:<{width}}" + "".join(f"{counts[n][c]:>8}" for n in names))
    return lines


def split_lines(
    listing: Listing, train_labels: list[tuple[int, ...]], split_name: str, extras: int
) -> tuple[list[str], list[str]]:
    """Strong / weak counts of the training images under a split, and problems (raises on unknown classes)."""
    from c3seg.splits import load_split

    split = load_split(split_name, listing.classes)
    weak_ids = {listing.classes.index(c) for c in split.weak}
    items = listing.lists.get("train", [])
    weak = [any(c in weak_ids for c in lab) for lab in train_labels]
    no_mask = sum(not w and it.mask is None for w, it in zip(weak, items, strict=True))
    lines = [
        f"split {split.name}: {len(split.strong)} strong / {len(split.weak)} weak categories",
        f"  strong training images: {len(weak) - sum(weak) - no_mask}"
        + (f" (+{no_mask} without a mask, unused)" if no_mask else ""),
        f"  weak training images:   {sum(weak)}",
    ]
    problems = []
    if split.extra_strong:
        lines.append(f"  extra strong images ({split.extra_strong}): {extras}")
        if not extras:
            problems.append(
                f"split {split.name} takes its strong images from {split.extra_strong}: name both datasets, "
                f"e.g. voc:PATH+{split.extra_strong}:PATH"
            )
    return lines, problems


def check_command(args: argparse.Namespace) -> int:
    """Print a report of the dataset named by args.dataset (and args.split); 0 if all is well."""
    from c3seg.data.load import split_specs

    spec, extra_specs = split_specs(args.dataset)
    cfg = DataConfig(dataset=spec)
    problems: list[str] = []
    try:
        listing = list_dataset(spec, cfg)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"c3seg data check {args.dataset}: cannot list the dataset: {e}")
        return 1
    problems += listing.problems
    warnings = list(listing.warnings)
    lists = {k: listing.lists[k] for k in sorted(listing.lists, key=lambda k: (k != "train", k))}
    for spec_e in extra_specs:
        try:
            lists[f"extra:{spec_e.partition(':')[0]}"] = extra_strong_items(spec_e, listing.classes)
        except (FileNotFoundError, ValueError) as err:
            problems.append(f"{spec_e}: {err}")
    n = len(listing.classes)
    workers = min(16, 4 * (os.cpu_count() or 1))
    labels: dict[str, list[tuple[int, ...]]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for name, items in lists.items():
            found = list(pool.map(lambda it: inspect(it, n), items))
            labels[name] = [f.labels for f in found]
            problems += [p for f in found for p in f.problems]
            warnings += [w for f in found for w in f.warnings]
    print(f"dataset {args.dataset}: {n} classes (background + {n - 1}), root {listing.root}")
    for name, items in lists.items():
        if name.startswith("extra") or spec.startswith("coco:"):
            note = "masks from the instance annotations"
        else:
            note = f"{sum(it.mask is None for it in items)} with image-level labels only"
        print(f"  {name}: {len(items)} images ({note})")
    print("images per class:")
    print("\n".join(class_table(listing, {k: v for k, v in labels.items() if not k.startswith("extra")})))
    if args.split:
        try:
            extras = sum(len(v) for k, v in lists.items() if k.startswith("extra"))
            lines, bad = split_lines(listing, labels.get("train", []), args.split, extras)
            print("\n".join(lines))
            problems += bad
        except (FileNotFoundError, ValueError) as e:
            problems.append(f"split {args.split}: {e}")
    if warnings:
        print(f"{len(warnings)} warning(s), read as described:")
        print("\n".join(f"  - {w}" for w in warnings))
    if problems:
        print(f"{len(problems)} problem(s):")
        print("\n".join(f"  - {p}" for p in problems))
        print("FAILED")
        return 1
    print("OK: no problems found" + (" (see the warnings)" if warnings else ""))
    return 0
