"""Small dataset trees in the real on-disk formats (VOC, SBD .mat, COCO json, custom folder) for tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from pycocotools import mask as mask_utils

from c3seg.io import write_image, write_label_png

H, W = 24, 32


def shared_data() -> Path:
    """The real samples folder (/work/shared/data), or skip the test when this clone has none."""
    for cand in (Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")):
        if cand.is_dir():
            return cand
    pytest.skip("no shared/data samples here")


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3)).astype(np.uint8)


def label_map(cls: int, seed: int = 0) -> np.ndarray:
    """Background with one rectangle of `cls`, outlined in 255 like VOC."""
    m = np.zeros((H, W), np.uint8)
    y = 2 + seed % 5
    m[y : y + 10, 4:20] = 255
    m[y + 1 : y + 9, 5:19] = cls
    return m


def write_voc(
    root: Path, train: dict[str, int], val: dict[str, int], extra_images: tuple[str, ...] = ()
) -> Path:
    """VOCdevkit/VOC2012 under root; train/val map id -> the class in its mask. Returns VOCdevkit."""
    voc = root / "VOCdevkit" / "VOC2012"
    for k, (i, c) in enumerate({**train, **val}.items()):
        write_image(voc / "JPEGImages" / f"{i}.jpg", _image(k))
        write_label_png(voc / "SegmentationClass" / f"{i}.png", label_map(c, k))
    for k, i in enumerate(extra_images):  # images that only SBD annotates
        write_image(voc / "JPEGImages" / f"{i}.jpg", _image(100 + k))
    sets = voc / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("".join(f"{i}\n" for i in train))
    (sets / "val.txt").write_text("".join(f"{i}\n" for i in val))
    (sets / "trainval.txt").write_text("".join(f"{i}\n" for i in {**train, **val}))
    return root / "VOCdevkit"


def write_sbd_mat(path: Path, seg: np.ndarray) -> None:
    """An SBD cls/*.mat file: struct GTcls with Segmentation, Boundaries, CategoriesPresent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    present = np.array([c for c in np.unique(seg) if c], np.uint8)
    boundaries = np.empty((20, 1), dtype=object)
    for k in range(20):
        boundaries[k, 0] = np.zeros(seg.shape, np.uint8)
    gt = {"Segmentation": seg.astype(np.uint8), "Boundaries": boundaries, "CategoriesPresent": present}
    scipy.io.savemat(str(path), {"GTcls": gt})


def write_sbd(root: Path, train: dict[str, int], val: dict[str, int]) -> Path:
    """SBD's dataset folder (cls/, train.txt, val.txt) as benchmark_RELEASE/dataset under root."""
    sbd = root / "benchmark_RELEASE" / "dataset"
    for k, (i, c) in enumerate({**train, **val}.items()):
        seg = label_map(c, k)
        seg[seg == 255] = 0  # SBD has no void boundaries
        write_sbd_mat(sbd / "cls" / f"{i}.mat", seg)
    (sbd / "train.txt").write_text("".join(f"{i}\n" for i in train))
    (sbd / "val.txt").write_text("".join(f"{i}\n" for i in val))
    return sbd


COCO_CATS = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 5, "name": "airplane", "supercategory": "vehicle"},
    {"id": 27, "name": "backpack", "supercategory": "accessory"},
    {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
]


def _rle(m: np.ndarray, compressed: bool) -> dict:
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    if compressed:
        return {"size": r["size"], "counts": r["counts"].decode()}
    flat = m.T.flatten()  # column-major runs, starting with zeros
    runs, last, n = [], 0, 0
    for v in flat:
        if v != last:
            runs.append(n)
            last, n = v, 0
        n += 1
    runs.append(n)
    return {"size": list(m.shape), "counts": runs}


def write_coco(root: Path, year: str = "2017", extra_strong: int = 0) -> Path:
    """A tiny COCO: 3 train + 1 val images with polygons, compressed and uncompressed RLE, and crowd;
    `extra_strong` more train images (ids 100, 101, ...) with one non-VOC object each (split 4)."""
    anns: dict[str, list] = {"train": [], "val": []}
    images: dict[str, list] = {"train": [], "val": []}
    big = np.zeros((H, W), np.uint8)
    big[2:20, 2:28] = 1
    crowd = np.zeros((H, W), np.uint8)
    crowd[0:6, 20:32] = 1
    poly = [[6.0, 6.0, 14.0, 6.0, 14.0, 14.0, 6.0, 14.0]]  # a square inside `big`
    plan = {
        "train": [
            (
                11,
                [
                    (1, poly, 0, 64.0),
                    (27, _rle(big, True), 0, float(big.sum())),
                    (1, _rle(crowd, True), 1, 72.0),
                ],
            ),
            (12, [(90, _rle(big, False), 0, float(big.sum()))]),  # no VOC category: split-4 strong
            (13, []),  # no annotations
            *[
                (
                    100 + k,
                    [((27, 90)[k % 2], [[4.0 + k % 5, 4.0, 24.0, 4.0, 24.0, 18.0, 4.0, 18.0]], 0, 280.0)],
                )
                for k in range(extra_strong)
            ],
        ],
        "val": [(21, [(5, poly, 0, 64.0)])],
    }
    aid = 1
    for which, rows in plan.items():
        for img_id, objs in rows:
            name = f"COCO_{which}{year}_{img_id:012d}.jpg" if year == "2014" else f"{img_id:012d}.jpg"
            write_image(root / f"{which}{year}" / name, _image(img_id))
            images[which].append({"id": img_id, "file_name": name, "height": H, "width": W})
            for cat, seg, iscrowd, area in objs:
                anns[which].append(
                    {"id": aid, "image_id": img_id, "category_id": cat, "segmentation": seg, "iscrowd": iscrowd,
                     "area": area, "bbox": [0, 0, W, H]}
                )  # fmt: skip
                aid += 1
    for which in ("train", "val"):
        f = root / "annotations" / f"instances_{which}{year}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(
            json.dumps({"images": images[which], "annotations": anns[which], "categories": COCO_CATS})
        )
    return root


def write_folder(root: Path, with_csv: bool = True) -> Path:
    """A custom dataset: classes cat/dog/bird; train a (mask), b, c (CSV labels only), val v (mask)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("background\ncat\ndog\nbird\n")
    for k, i in enumerate(["a", "b", "c", "v"]):
        write_image(root / "JPEGImages" / f"{i}.jpg", _image(k))
    write_label_png(root / "SegmentationClass" / "a.png", label_map(1))
    write_label_png(root / "SegmentationClass" / "v.png", label_map(2))
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("a\nb\nc\n" if with_csv else "a\n")
    (sets / "val.txt").write_text("v\n")
    if with_csv:
        (root / "labels.csv").write_text("id,labels\nb,dog bird\nc,cat;dog\n")
    return root


def write_turned_jpeg(path: Path, displayed: np.ndarray, orientation: int = 6) -> Path:
    """A phone-style JPEG: `displayed` (H, W, 3) stored turned back, plus the EXIF orientation tag
    that turns it upright (6: stored as (W, H), shown turned 90 degrees clockwise)."""
    from PIL import Image

    undo = {6: np.rot90(displayed, 1), 8: np.rot90(displayed, -1), 3: np.rot90(displayed, 2)}
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(undo[orientation])).save(path, quality=95, exif=exif.tobytes())
    return path
