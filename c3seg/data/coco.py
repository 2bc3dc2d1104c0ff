"""MS-COCO through pycocotools: `coco:PATH` as a dataset of its own, and split 4's strong images.

PATH holds `annotations/instances_{train,val}{2017,2014}.json` and the image folders
`{train,val}{2017,2014}/` (or `images/{train,val}YEAR/`); 2017 is used when both years exist.

Semantic masks are rasterized from the instance annotations and cached as index PNGs under
`cfg.root/coco-masks/` (written atomically, once). Values: 0 background, 1..80 the categories in
the order of their sorted ids (names from the json), 255 void. Rasterization order, which decides
overlaps deterministically: crowd regions are painted first as 255; then every other annotation
by decreasing `area` (ties by annotation id), so a smaller object lying on a larger one stays on
top and an object inside a crowd region keeps its class.

Split 4 (`voc:PATH+coco:PATH` or `data.extra=coco:PATH`): the COCO *train* images that contain no
category of the main dataset (for VOC the 20 categories at COCO_VOC_INDICES; crowd annotations
count too) and at least one other annotation become SegData.extra_strong. Their masks use the
81-class values above and are read class-agnostically by the L-Net; their `labels` are empty
because COCO indices are not indices into the main dataset's classes.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from c3seg.config import DataConfig
from c3seg.data.types import Item, Listing, Sample, SegData, background_mask
from c3seg.data.voclayout import samples_from_items
from c3seg.io import displayed_size, read_label, write_label_png

log = logging.getLogger(__name__)

# COCO category names that are spelled differently in PASCAL VOC.
COCO_TO_VOC = {
    "airplane": "aeroplane",
    "motorcycle": "motorbike",
    "couch": "sofa",
    "dining table": "diningtable",
    "potted plant": "pottedplant",
    "tv": "tvmonitor",
}
# The VOC categories among COCO's 80 (contiguous 0-based indices into the sorted category ids).
COCO_VOC_INDICES = (0, 1, 2, 3, 4, 5, 6, 8, 14, 15, 16, 17, 18, 19, 39, 56, 57, 58, 60, 62)
PAPER_SPLIT4_IMAGES = 16_241  # from COCO train2014


def find_coco(path: str | Path, which: str) -> tuple[Path, Path] | None:
    """(annotation json, image folder) of COCO's `which` ('train' or 'val') set, or None."""
    root = Path(path)
    for year in ("2017", "2014"):
        ann = root / "annotations" / f"instances_{which}{year}.json"
        if ann.exists():
            for images in (root / f"{which}{year}", root / "images" / f"{which}{year}"):
                if images.is_dir():
                    return ann, images
            return ann, root / f"{which}{year}"
    return None


def load_api(ann: Path) -> Any:
    """A pycocotools COCO object (its index printing silenced)."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(ann))


def coco_classes(api: Any) -> tuple[tuple[str, ...], dict[int, int]]:
    """('background', names in sorted-id order) and category id -> mask value (1..80)."""
    cats = sorted(api.loadCats(api.getCatIds()), key=lambda c: c["id"])
    return ("background", *(c["name"] for c in cats)), {c["id"]: k + 1 for k, c in enumerate(cats)}


def rasterize(api: Any, image_id: int, value: dict[int, int]) -> np.ndarray:
    """(H, W) uint8 semantic mask of one image (see the module docstring for the overlap order)."""
    info = api.imgs[image_id]
    mask = np.zeros((info["height"], info["width"]), np.uint8)
    anns = api.imgToAnns.get(image_id, [])
    for a in anns:
        if a.get("iscrowd"):
            mask[api.annToMask(a) > 0] = 255
    objs = [a for a in anns if not a.get("iscrowd") and a["category_id"] in value]  # unknown ids: see check
    for a in sorted(objs, key=lambda a: (-a["area"], a["id"])):
        mask[api.annToMask(a) > 0] = value[a["category_id"]]
    return mask


def mask_cache(ann: Path, cfg: DataConfig) -> Path:
    """Folder of cached masks for one annotation file (keyed by its path, size and mtime)."""
    st = ann.stat()
    tag = hashlib.sha1(f"{ann.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:10]
    return Path(cfg.root) / "coco-masks" / f"{ann.stem}-{tag}"


def write_masks(api: Any, image_ids: list[int], value: dict[int, int], out: Path) -> None:
    """Rasterize the masks of `image_ids` that are not cached yet (threads; atomic writes)."""
    todo = [i for i in image_ids if not (out / f"{i}.png").exists()]
    if todo:
        log.info("rasterizing %d COCO masks into %s (once)", len(todo), out)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda i: write_label_png(out / f"{i}.png", rasterize(api, i, value)), todo))


def write_background_masks(masks: list[Path]) -> None:
    """`background_mask` of each mask not written yet: 0 everywhere but void (255)."""
    todo = [m for m in masks if not background_mask(m).exists()]
    if todo:
        log.info("writing %d background masks into %s (once)", len(todo), background_mask(todo[0]).parent)

    def one(m: Path) -> None:
        label = read_label(m)
        write_label_png(background_mask(m), np.where(label == 255, 255, 0).astype(np.uint8))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, todo))


def _labels(api: Any, image_id: int, value: dict[int, int]) -> tuple[int, ...]:
    """Image-level labels: the categories of the image's non-crowd annotations."""
    anns = api.imgToAnns.get(image_id, [])
    # unknown category ids are skipped here and reported by `c3seg data check`
    return tuple(
        sorted({value[a["category_id"]] for a in anns if not a.get("iscrowd") and a["category_id"] in value})
    )


def list_coco(path: str | Path, cfg: DataConfig, masks: bool = True) -> Listing:
    """COCO train / val as listed files; `masks=False` skips rasterization (for `data check`)."""
    listing = Listing("coco", (), {}, Path(path))
    for which in ("train", "val"):
        found = find_coco(path, which)
        if found is None:
            if which == "train":
                raise FileNotFoundError(f"{path} has no annotations/instances_train{{2017,2014}}.json")
            log.warning("%s has no annotations/instances_val{2017,2014}.json; no evaluation set", path)
            listing.lists["val"] = []
            continue
        ann, images = found
        api = load_api(ann)
        classes, value = coco_classes(api)
        if listing.classes and listing.classes != classes:
            listing.problems.append(f"{ann}: categories differ from the train annotations")
        listing.classes = classes
        ids = sorted(api.imgs)
        out = mask_cache(ann, cfg)
        if masks:
            write_masks(api, ids, value, out)
        listing.lists[which] = [
            Item(
                str(i),
                images / api.imgs[i]["file_name"],
                out / f"{i}.png" if masks else None,
                _labels(api, i, value),
            )
            for i in ids
        ]
    return listing


def load_coco(path: str | None, cfg: DataConfig) -> SegData:
    """COCO as its own dataset: 81 classes (background + 80), train and val."""
    listing = list_coco(path or ".", cfg)
    n = len(listing.classes)
    return SegData(
        "coco",
        listing.classes,
        samples_from_items(listing.lists["train"], n),
        samples_from_items(listing.lists["val"], n),
        root=listing.root,
    )


def shared_categories(names: tuple[str, ...], classes: tuple[str, ...]) -> list[int]:
    """0-based indices of COCO categories (`names` without background) that are in `classes`."""
    wanted = {c.replace(" ", "").lower() for c in classes[1:]}
    return [k for k, n in enumerate(names) if COCO_TO_VOC.get(n, n).replace(" ", "").lower() in wanted]


def split4_image_ids(path: str | Path, classes: tuple[str, ...]) -> tuple[Any, Path, Path, list[int]]:
    """(api, annotation json, image folder, ids): COCO train images with annotations, none of
    them of a category in `classes` (a VOC class list must match COCO_VOC_INDICES)."""
    found = find_coco(path, "train")
    if found is None:
        raise FileNotFoundError(f"{path} has no annotations/instances_train{{2017,2014}}.json")
    ann, images = found
    api = load_api(ann)
    names, value = coco_classes(api)
    shared = shared_categories(names[1:], classes)
    if len(classes) == 21 and len(names) == 81 and tuple(shared) != COCO_VOC_INDICES:
        raise ValueError(f"{ann}: VOC categories found at {shared}, expected {list(COCO_VOC_INDICES)}")
    excluded = {k + 1 for k in shared}  # mask values of the shared categories
    keep = [
        i
        for i in sorted(api.imgs)
        if api.imgToAnns.get(i) and not any(value[a["category_id"]] in excluded for a in api.imgToAnns[i])
    ]
    log.info(
        "split 4: %d of %d COCO train images contain none of the %d shared categories (paper: %d from train2014)",
        len(keep),
        len(api.imgs),
        len(shared),
        PAPER_SPLIT4_IMAGES,
    )
    return api, ann, images, keep


def load_coco_extra_strong(path: str | None, cfg: DataConfig, classes: tuple[str, ...]) -> list[Sample]:
    """COCO train images with none of `classes`' categories: split 4's strong images (masks in
    COCO's classes; their `background_mask` in the main dataset's is written too)."""
    api, ann, images, keep = split4_image_ids(path or ".", classes)
    out = mask_cache(ann, cfg)
    write_masks(api, keep, coco_classes(api)[1], out)
    write_background_masks([out / f"{i}.png" for i in keep])
    return [Sample(str(i), images / api.imgs[i]["file_name"], out / f"{i}.png", ()) for i in keep]


def check_annotations(path: str | Path) -> list[str]:
    """Problems in COCO annotation files: unknown categories / images, undecodable segmentations,
    image sizes that differ from the json (read from the file headers, turned by their EXIF
    orientation as read_image turns the pixels)."""
    problems = []
    for which in ("train", "val"):
        found = find_coco(path, which)
        if found is None:
            continue
        ann, images = found
        api = load_api(ann)
        for a in api.dataset.get("annotations", []):
            where = f"{ann.name}: annotation {a.get('id')}"
            if a.get("category_id") not in api.cats:
                problems.append(f"{where} has unknown category_id {a.get('category_id')}")
            elif a.get("image_id") not in api.imgs:
                problems.append(f"{where} refers to unknown image_id {a.get('image_id')}")
            else:
                info = api.imgs[a["image_id"]]
                try:
                    shape = api.annToMask(a).shape
                except Exception as e:  # noqa: BLE001 - pycocotools raises many kinds on bad polygons / RLE
                    problems.append(f"{where} has an undecodable segmentation: {e}")
                    continue
                if shape != (info["height"], info["width"]):
                    problems.append(
                        f"{where}: segmentation is {shape[0]}x{shape[1]} but image {a['image_id']} "
                        f"is {info['height']}x{info['width']}"
                    )
        for info in api.imgs.values():
            f = images / info["file_name"]
            try:
                h, w = displayed_size(f)  # as read_image returns it: after its EXIF orientation
            except OSError:
                continue  # missing / unreadable images are reported by the file checks
            if (h, w) != (info["height"], info["width"]):
                problems.append(f"{f}: image is {h}x{w} but {ann.name} says {info['height']}x{info['width']}")
    return problems
