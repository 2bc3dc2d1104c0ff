"""COCO: rasterized semantic masks (polygons, RLE, crowd, overlaps), 2014/2017 names, split 4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from datatrees import shared_data, write_coco, write_voc

from c3seg.config import DataConfig
from c3seg.data import coco
from c3seg.data.load import load_dataset
from c3seg.data.voc import VOC_CLASSES
from c3seg.io import TMP_GLOB, read_label
from c3seg.splits import SPLIT_DIR

# pycocotools' decode trips numpy 2's copy-keyword deprecation on every call
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def cfg(tmp_path: Path, **kw: str) -> DataConfig:
    return DataConfig(root=str(tmp_path / "cache"), **kw)


def reference_mask(api, image_id: int, value: dict[int, int]) -> np.ndarray:
    """Independent of coco.rasterize: each pixel takes the smallest (area, id) non-crowd annotation
    covering it (pycocotools' annToMask), else 255 under a crowd region, else 0."""
    info = api.imgs[image_id]
    anns = api.imgToAnns.get(image_id, [])
    out = np.zeros((info["height"], info["width"]), np.uint8)
    crowd = [a for a in anns if a["iscrowd"]]
    objs = sorted((a for a in anns if not a["iscrowd"]), key=lambda a: (a["area"], a["id"]))
    for a in crowd:
        out[api.annToMask(a) > 0] = 255
    if objs:
        stack = np.stack([api.annToMask(a) > 0 for a in objs])  # (N, H, W), smallest first
        covered = stack.any(0)
        first = stack.argmax(0)
        vals = np.array([value[a["category_id"]] for a in objs], np.uint8)
        out[covered] = vals[first[covered]]
    return out


@pytest.mark.parametrize("year", ["2017", "2014"])
def test_coco_fixture_loads(tmp_path, year):
    root = write_coco(tmp_path / "coco", year)
    data = load_dataset(cfg(tmp_path, dataset=f"coco:{root}"))
    assert data.classes == ("background", "person", "airplane", "backpack", "toothbrush")
    assert [s.id for s in data.train] == ["11", "12", "13"] and [s.id for s in data.val] == ["21"]
    assert all(s.image.exists() for s in (*data.train, *data.val))
    assert [s.labels for s in data.train] == [(1, 3), (4,), ()]  # crowd annotations give no label
    m = read_label(data.train[0].mask)
    assert m[10, 10] == 1  # the small person square lies on top of the large backpack
    assert m[1, 25] == 255  # crowd only
    assert m[3, 25] == 3  # an object inside a crowd region keeps its class
    assert m[22, 30] == 0
    big = np.zeros_like(m)
    big[2:20, 2:28] = 4
    np.testing.assert_array_equal(read_label(data.train[1].mask), big)  # uncompressed RLE
    assert set(np.unique(read_label(data.train[2].mask))) == {0}
    assert set(np.unique(read_label(data.val[0].mask))) == {0, 2}


def test_masks_are_cached_once_under_root(tmp_path):
    root = write_coco(tmp_path / "coco")
    data = coco.load_coco(str(root), cfg(tmp_path))
    cache = tmp_path / "cache" / "coco-masks"
    assert all(cache in s.mask.parents for s in data.train)
    before = data.train[0].mask.stat().st_mtime_ns
    coco.load_coco(str(root), cfg(tmp_path))
    assert data.train[0].mask.stat().st_mtime_ns == before
    assert not list(cache.rglob(TMP_GLOB))


def test_missing_annotations(tmp_path):
    with pytest.raises(FileNotFoundError, match="instances_train"):
        coco.load_coco(str(tmp_path), cfg(tmp_path))


@pytest.mark.parametrize("how", ["spec", "extra"])
def test_split4_extra_strong(tmp_path, how):
    devkit = write_voc(tmp_path, {"2007_000001": 1}, {"2007_000010": 7})
    root = write_coco(tmp_path / "coco")
    if how == "spec":
        c = cfg(tmp_path, dataset=f"voc:{devkit}+coco:{root}")
    else:
        c = cfg(tmp_path, dataset=f"voc:{devkit}", extra=f"coco:{root}")
    data = load_dataset(c)
    assert data.classes == VOC_CLASSES and len(data.train) == 1
    # image 11 has person and airplane is VOC, 13 has no annotation: only 12 (toothbrush) stays
    assert [s.id for s in data.extra_strong] == ["12"]
    s = data.extra_strong[0]
    assert s.labels == () and s.image.exists() and set(np.unique(read_label(s.mask))) == {0, 4}


def test_extra_must_be_coco(tmp_path):
    devkit = write_voc(tmp_path, {"2007_000001": 1}, {"2007_000010": 7})
    with pytest.raises(ValueError, match="cannot supply extra strong"):
        load_dataset(cfg(tmp_path, dataset=f"voc:{devkit}+voc:{devkit}"))


def test_split4_yaml_matches_coco_voc_indices():
    spec = yaml.safe_load((SPLIT_DIR / "voc-split4.yaml").read_text())
    assert tuple(spec["coco_voc_indices"]) == coco.COCO_VOC_INDICES
    assert spec["extra_strong"] == "coco" and spec["strong"] == []


def real_coco() -> Path:
    return shared_data() / "coco-tiny"


def test_real_coco_tiny_masks_match_pycocotools(tmp_path):
    data = coco.load_coco(str(real_coco()), cfg(tmp_path))
    assert data.num_classes == 81 and len(data.train) == 80 and len(data.val) == 80
    for which, samples in (("train", data.train), ("val", data.val)):
        api = coco.load_api(real_coco() / "annotations" / f"instances_{which}2017.json")
        _, value = coco.coco_classes(api)
        assert data.classes[1:] == tuple(c["name"] for c in sorted(api.cats.values(), key=lambda c: c["id"]))
        for s in samples:
            got = read_label(s.mask)
            np.testing.assert_array_equal(got, reference_mask(api, int(s.id), value), err_msg=s.id)


def test_real_coco_tiny_split4(tmp_path):
    ann = real_coco() / "annotations" / "instances_train2017.json"
    api = coco.load_api(ann)
    names, value = coco.coco_classes(api)
    assert coco.shared_categories(names[1:], VOC_CLASSES) == list(coco.COCO_VOC_INDICES)
    voc_values = {k + 1 for k in coco.COCO_VOC_INDICES}
    expect = [
        str(i)
        for i in sorted(api.imgs)
        if api.imgToAnns.get(i) and not {value[a["category_id"]] for a in api.imgToAnns[i]} & voc_values
    ]
    samples = coco.load_coco_extra_strong(str(real_coco()), cfg(tmp_path), VOC_CLASSES)
    assert [s.id for s in samples] == expect and expect
    for s in samples:
        assert not set(np.unique(read_label(s.mask)).tolist()) & voc_values
