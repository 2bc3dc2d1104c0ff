"""Reading any dataset stored in the VOC layout:

    ROOT/JPEGImages/<id>.jpg
    ROOT/SegmentationClass/<id>.png        index (palette) PNGs, 255 = void
    ROOT/ImageSets/Segmentation/<list>.txt one id per line

Image-level labels are derived from the masks (every value in 1..C-1 present) and cached in a
JSON file keyed by mask path, size and mtime, so a second load does not decode every mask again;
the file lives under the cache folder (`dataset_cache`), not in the dataset.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from c3seg.data.types import Item, Listing, Sample
from c3seg.io import read_json, read_label, read_text_file, write_json

log = logging.getLogger(__name__)


def dataset_cache(dataset_dir: Path, cache_root: str | Path, name: str) -> Path:
    """Where c3seg keeps `name` derived from the dataset in `dataset_dir` (a label cache, converted
    masks): a per-dataset folder under the cache folder `cache_root` (data.root), never the dataset
    folder itself, which stays exactly as its owner left it."""
    tag = hashlib.sha1(str(dataset_dir.resolve()).encode()).hexdigest()[:10]
    return Path(cache_root) / "dataset-cache" / f"{dataset_dir.name}-{tag}" / name


def read_ids(list_file: Path, allow_empty: bool = False) -> list[str]:
    """The image ids of a list file (first word of each line); an empty list is refused unless
    allow_empty (SBD's lists, which only add images)."""
    if not list_file.exists():
        raise FileNotFoundError(f"image list {list_file} does not exist")
    ids = [line.split()[0] for line in read_text_file(list_file).splitlines() if line.strip()]
    if not ids and not allow_empty:
        raise ValueError(f"image list {list_file} is empty: list one image id per line")
    return ids


def check_lists(listing: Listing) -> list[str]:
    """Problems of a listing's image lists, returned: an image in both train and val (its val score
    would measure memory, not what the method learned). An id listed twice in one list is kept
    once, with a warning in listing.warnings (an exact repeat: nothing is ambiguous)."""
    for which, items in listing.lists.items():
        counts = Counter(it.id for it in items)
        repeated = [i for i, n in counts.items() if n > 1]
        if repeated:
            listing.warnings.append(
                f"the {which} list names {len(repeated)} images more than once "
                f"({len(items) - len(counts)} extra lines, e.g. {', '.join(repeated[:3])}); each is used once"
            )
            listing.lists[which] = list({it.id: it for it in items}.values())  # first place, same files
    train = {it.id for it in listing.lists.get("train", [])}
    both = sorted(train & {it.id for it in listing.lists.get("val", [])})
    if not both:
        return []
    return [
        f"{len(both)} images are listed in both train and val (e.g. {', '.join(both[:3])}): val must "
        "hold images that training never sees; remove them from one of the lists"
    ]


def refuse_problems(listing: Listing) -> None:
    """Raise ValueError naming a listing's problems (the first five) before anything trains; log
    its warnings."""
    if listing.problems:
        more = len(listing.problems) - 5
        tail = f"; and {more} more (c3seg data check lists them all)" if more > 0 else ""
        raise ValueError(f"{listing.root}: " + "; ".join(listing.problems[:5]) + tail)
    for w in listing.warnings:
        log.warning("%s: %s", listing.root, w)


def mask_labels(mask: Path, num_classes: int) -> tuple[int, ...]:
    """The foreground classes present in an index PNG; a value that is no class (>= num_classes,
    other than 255 = void) is refused, naming the file: it would train as a wrong class."""
    values = np.unique(read_label(mask))
    bad = [int(v) for v in values if v >= num_classes and v != 255]
    if bad:
        raise ValueError(
            f"{mask}: mask values {bad} are outside the dataset's {num_classes} classes "
            f"(0..{num_classes - 1}, 255 = void); fix the mask or the class list (classes.txt)"
        )
    return tuple(int(v) for v in values if 0 < v < num_classes)


def labels_from_masks(
    masks: Sequence[Path], num_classes: int, cache: Path | None = None
) -> list[tuple[int, ...]]:
    """Image-level labels of many masks, decoded in threads and cached in `cache` (JSON)."""
    old: dict = {}
    if cache is not None and cache.exists():
        try:
            old = read_json(cache)
        except ValueError:
            log.warning("ignoring unreadable label cache %s", cache)

    def key(p: Path) -> str:
        st = os.stat(p)
        return f"{p}|{st.st_size}|{st.st_mtime_ns}"

    keys = [key(m) for m in masks]
    todo = [i for i, k in enumerate(keys) if k not in old]
    if todo:
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = list(pool.map(lambda i: mask_labels(masks[i], num_classes), todo))
        for i, labels in zip(todo, found, strict=False):
            old[keys[i]] = list(labels)
        if cache is not None:
            try:
                write_json(cache, {k: old[k] for k in keys} | old)
            except OSError as e:  # a read-only dataset folder: fine, just slower next time
                log.info("could not write label cache %s: %s", cache, e)
    return [tuple(old[k]) for k in keys]


def read_split(
    root: Path,
    list_name: str,
    num_classes: int,
    mask_dir: str = "SegmentationClass",
    cache: Path | None = None,
) -> tuple[Sample, ...]:
    ids = read_ids(root / "ImageSets" / "Segmentation" / f"{list_name}.txt")
    images = [root / "JPEGImages" / f"{i}.jpg" for i in ids]
    masks = [root / mask_dir / f"{i}.png" for i in ids]
    missing = [m for m in masks if not m.exists()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} masks listed in {list_name}.txt are missing (e.g. {missing[0]}); "
            "run 'c3seg data check' for the full list"
        )
    labels = labels_from_masks(masks, num_classes, cache)
    return tuple(Sample(i, im, m, lab) for i, im, m, lab in zip(ids, images, masks, labels, strict=False))


def samples_from_items(
    items: Sequence[Item], num_classes: int, cache: Path | None = None
) -> tuple[Sample, ...]:
    """Samples of listed items; labels not given are derived from the masks (cached in `cache`)."""
    bad = [it for it in items if it.labels is None and (it.mask is None or not it.mask.exists())]
    if bad:
        raise FileNotFoundError(
            f"{len(bad)} images have neither a mask nor image-level labels (e.g. {bad[0].id}: "
            f"{bad[0].mask}); run 'c3seg data check' for the full list"
        )
    need = [i for i, it in enumerate(items) if it.labels is None]
    derived = labels_from_masks([items[i].mask for i in need], num_classes, cache)  # type: ignore[misc]
    labels = {i: lab for i, lab in zip(need, derived, strict=True)}
    return tuple(
        Sample(it.id, it.image, it.mask, it.labels if it.labels is not None else labels[i])
        for i, it in enumerate(items)
    )
