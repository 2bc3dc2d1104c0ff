"""PASCAL VOC 2012 with the SBD augmentation (`train_aug`), and `c3seg data download voc|sbd`.

`voc:PATH` names the VOCdevkit folder or the VOC2012 folder inside it. Training uses `train_aug`
= (VOC 2012 train + SBD train + SBD val) minus VOC 2012 val: 10,582 ids, with masks in
`SegmentationClassAug` (never `SegmentationClass`, which holds only 2,913 images). That folder is
built once: VOC's own `SegmentationClass` PNG for ids that have one, otherwise SBD's
`cls/<id>.mat` (struct GTcls, field Segmentation, 0..20) converted to an index PNG. It is written
under the cache folder (data.root), like every cache: c3seg writes nothing into the dataset.

SBD is found at `data.sbd`, or beside the VOC folders as `SBD/` or `benchmark_RELEASE/dataset/`
(where `c3seg data download sbd` puts it). A prebuilt `SegmentationClassAug` + `train_aug.txt`
(the usual DeepLab download) is used as is, and so is a prebuilt folder holding every mask of
train_aug when SBD is there too. Without either, train = VOC 2012 train only.
Evaluation is on VOC 2012 val (`SegmentationClass`).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.io

from c3seg.config import DataConfig
from c3seg.data.types import Item, Listing, SegData
from c3seg.data.voclayout import check_lists, dataset_cache, read_ids, refuse_problems, samples_from_items
from c3seg.io import atomic_path, write_label_png

log = logging.getLogger(__name__)

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
TRAIN_AUG_SIZE = 10_582

# Official archives with their MD5 sums (the same as torchvision's VOCSegmentation / SBDataset).
DOWNLOADS = {
    "voc": {
        "url": "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        "md5": "6cd6e144f989b92b3379bac3b3de84fd",
        "by_hand": "extract VOCtrainval_11-May-2012.tar so that {root}/VOCdevkit/VOC2012/JPEGImages exists",
    },
    "sbd": {
        "url": "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",
        "md5": "82b4d87ceb2ed10f6038a1cba92111cb",
        "by_hand": "extract benchmark.tgz so that {root}/benchmark_RELEASE/dataset/cls/*.mat exists",
    },
}


def find_voc_root(path: str | Path) -> Path:
    """The VOC2012 folder, given it or the VOCdevkit folder that holds it."""
    p = Path(path)
    for cand in (p, p / "VOC2012", p / "VOCdevkit" / "VOC2012"):
        if (cand / "JPEGImages").is_dir():
            return cand
    raise FileNotFoundError(
        f"{p} is not a VOC 2012 folder (no JPEGImages/ in it or in VOC2012/); "
        "run 'c3seg data download voc --root DIR' and use voc:DIR/VOCdevkit"
    )


def find_sbd(voc_root: Path, cfg: DataConfig) -> Path | None:
    """The SBD dataset folder (holding cls/ and train.txt), or None."""
    bases = [Path(cfg.sbd)] if cfg.sbd else []
    bases += [voc_root, voc_root.parent, voc_root.parent.parent]
    for base in bases:
        for cand in (base, base / "SBD", base / "benchmark_RELEASE" / "dataset", base / "dataset"):
            if (cand / "cls").is_dir() and (cand / "train.txt").exists():
                return cand
    if cfg.sbd:
        raise FileNotFoundError(f"data.sbd={cfg.sbd} has no cls/ folder and train.txt")
    return None


def read_sbd_mat(mat: Path) -> np.ndarray:
    """(H, W) uint8 class indices (0..20) of an SBD `cls/<id>.mat` file."""
    gt = scipy.io.loadmat(str(mat), struct_as_record=False, squeeze_me=True)["GTcls"]
    seg = np.asarray(gt.Segmentation)
    if seg.ndim != 2 or seg.size == 0 or seg.max() > 20:
        raise ValueError(f"{mat}: GTcls.Segmentation must be an (H, W) map of 0..20, got {seg.shape}")
    return seg.astype(np.uint8)


def train_aug_ids(
    voc_train: list[str], voc_val: list[str], sbd_train: list[str], sbd_val: list[str]
) -> list[str]:
    """(VOC train ∪ SBD train ∪ SBD val) − VOC val, sorted."""
    return sorted((set(voc_train) | set(sbd_train) | set(sbd_val)) - set(voc_val))


# what a broken .mat file raises (MatReadError is not an OSError)
MAT_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    AttributeError,
    NotImplementedError,
    scipy.io.matlab.MatReadError,
)


def _aug_mask(i: str, voc_root: Path, sbd: Path | None, out: Path) -> str | None:
    """Write out/<i>.png once (VOC's PNG first, else SBD's .mat); a problem description or None."""
    dst = out / f"{i}.png"
    if dst.exists():
        return None
    src = voc_root / "SegmentationClass" / f"{i}.png"
    try:
        if src.exists():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        elif sbd is not None and (sbd / "cls" / f"{i}.mat").exists():
            write_label_png(dst, read_sbd_mat(sbd / "cls" / f"{i}.mat"))
        else:
            return f"{i}: no mask in SegmentationClass/ nor in SBD cls/"
    except MAT_ERRORS as e:
        return f"{i}: cannot build {dst}: {e}"
    return None


def build_aug_masks(ids: list[str], voc_root: Path, sbd: Path | None, out: Path) -> list[str]:
    """Fill the SegmentationClassAug folder `out` for `ids` (threads); returns problems found."""
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i in ids if not (out / f"{i}.png").exists()]
    if todo:
        log.info("writing %d SegmentationClassAug masks to %s (once)", len(todo), out)
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = pool.map(lambda i: _aug_mask(i, voc_root, sbd, out), todo)
    return [p for p in found if p]


def _items(root: Path, ids: list[str], mask_dir: Path, sbd: Path | None = None) -> list[Item]:
    """Items of `ids`; an image missing from JPEGImages/ is taken from SBD's img/ when it is there."""
    items = []
    for i in ids:
        image = root / "JPEGImages" / f"{i}.jpg"
        if sbd is not None and not image.exists() and (sbd / "img" / f"{i}.jpg").exists():
            image = sbd / "img" / f"{i}.jpg"
        items.append(Item(i, image, mask_dir / f"{i}.png"))
    return items


def list_voc(path: str | Path, cfg: DataConfig) -> Listing:
    """VOC 2012 (+ SBD) as lists of files, building SegmentationClassAug if needed."""
    root = find_voc_root(path)
    sets = root / "ImageSets" / "Segmentation"
    voc_train, voc_val = read_ids(sets / "train.txt"), read_ids(sets / "val.txt")
    listing = Listing("voc", VOC_CLASSES, {}, root)
    listing.lists["val"] = _items(root, voc_val, root / "SegmentationClass")
    sbd = find_sbd(root, cfg)
    prebuilt = root / "SegmentationClassAug"
    if sbd is None and prebuilt.is_dir() and (sets / "train_aug.txt").exists():
        log.info("using the prebuilt %s and train_aug.txt", prebuilt)
        train = read_ids(sets / "train_aug.txt")
        listing.lists["train"] = _items(root, train, prebuilt)
    elif sbd is None:
        log.warning(
            "SBD not found beside %s (set data.sbd=PATH or run 'c3seg data download sbd'); "
            "training on VOC 2012 train only (%d images) instead of train_aug",
            root,
            len(voc_train),
        )
        listing.lists["train"] = _items(root, voc_train, root / "SegmentationClass")
        listing.problems += check_lists(listing)
        return listing
    else:
        train = train_aug_ids(
            voc_train, voc_val, read_ids(sbd / "train.txt", True), read_ids(sbd / "val.txt", True)
        )
        # a prebuilt folder is read as it is when it has every mask; c3seg never writes into it
        complete = prebuilt.is_dir() and all((prebuilt / f"{i}.png").exists() for i in train)
        out = prebuilt if complete else dataset_cache(root, cfg.root, "SegmentationClassAug")
        listing.problems += build_aug_masks(train, root, sbd, out)
        listing.lists["train"] = _items(root, train, out, sbd)
    if len(train) != TRAIN_AUG_SIZE:
        log.warning(
            "train_aug has %d ids, not the standard %d (fine for a sample)", len(train), TRAIN_AUG_SIZE
        )
    listing.problems += check_lists(listing)
    return listing


def load_voc(path: str | None, cfg: DataConfig) -> SegData:
    """PASCAL VOC 2012: train_aug (or VOC train) for training, VOC 2012 val for evaluation."""
    listing = list_voc(path or ".", cfg)
    refuse_problems(listing)  # e.g. masks that could not be built, images in both train and val
    cache = dataset_cache(listing.root, cfg.root, "image-labels.json")
    n = len(VOC_CLASSES)
    train = samples_from_items(listing.lists["train"], n, cache)
    val = samples_from_items(listing.lists["val"], n, cache)
    return SegData("voc", VOC_CLASSES, train, val, root=listing.root)


def download_and_extract_archive(url: str, root: Path, md5: str) -> None:
    """torchvision's downloader (MD5-checked), imported late so tests can replace it."""
    from torchvision.datasets.utils import download_and_extract_archive as dl

    dl(url, str(root), md5=md5)


def download_command(args: argparse.Namespace) -> int:
    """`c3seg data download voc|sbd --root DIR`: fetch, verify and extract an official archive."""
    what, root = args.what, Path(args.root)
    spec = DOWNLOADS[what]
    root.mkdir(parents=True, exist_ok=True)
    try:
        download_and_extract_archive(spec["url"], root, spec["md5"])
    except (OSError, RuntimeError) as e:  # URLError is an OSError; torchvision raises RuntimeError on bad MD5
        log.error(
            "could not download %s from %s (%s). Download it by hand (MD5 %s), put it in %s and %s",
            what,
            spec["url"],
            e,
            spec["md5"],
            root,
            spec["by_hand"].format(root=root),
        )
        return 1
    log.info("%s is ready under %s", what, root)
    return 0
