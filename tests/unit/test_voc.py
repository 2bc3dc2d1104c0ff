"""PASCAL VOC 2012 + SBD: train_aug, SegmentationClassAug, label caches, download errors, real sample."""

from __future__ import annotations

import argparse
import logging
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from datatrees import label_map, shared_data, write_sbd, write_sbd_mat, write_voc

from c3seg.config import DataConfig
from c3seg.data import voc
from c3seg.data.load import load_dataset
from c3seg.io import TMP_GLOB, read_label

TRAIN = {"2007_000001": 1, "2007_000002": 15}
VAL = {"2007_000010": 7}


def cfg(tmp_path: Path, **kw: str) -> DataConfig:
    return DataConfig(root=str(tmp_path / "cache"), **kw)


def test_voc_without_sbd_trains_on_voc_train_and_warns(tmp_path, caplog):
    devkit = write_voc(tmp_path, TRAIN, VAL)
    with caplog.at_level(logging.WARNING):
        data = voc.load_voc(str(devkit), cfg(tmp_path))
    assert "SBD not found" in caplog.text
    assert [s.id for s in data.train] == list(TRAIN) and [s.id for s in data.val] == list(VAL)
    assert [s.labels for s in data.train] == [(1,), (15,)] and data.val[0].labels == (7,)
    assert data.num_classes == 21 and data.classes[20] == "tvmonitor"
    assert list((tmp_path / "cache").rglob("image-labels.json"))  # the cache folder, not the dataset
    assert not (devkit / "VOC2012" / ".c3seg-labels.json").exists()


@pytest.mark.parametrize("which", ["VOCdevkit", "VOC2012"])
def test_train_aug_with_sbd(tmp_path, caplog, which):
    sbd_only = {"2008_000100": 3, "2008_000101": 12}
    devkit = write_voc(tmp_path, TRAIN, VAL, extra_images=tuple(sbd_only))
    # SBD also annotates a VOC train id (with another class: VOC's PNG must win) and a VOC val id
    write_sbd(tmp_path, {"2007_000001": 9, "2008_000100": 3}, {"2008_000101": 12, "2007_000010": 7})
    path = devkit if which == "VOCdevkit" else devkit / "VOC2012"
    with caplog.at_level(logging.WARNING):
        data = load_dataset(cfg(tmp_path, dataset=f"voc:{path}"))
    assert "not the standard 10582" in caplog.text
    ids = [s.id for s in data.train]
    assert ids == sorted([*TRAIN, *sbd_only])  # minus VOC val
    aug = data.train[0].mask.parent
    assert aug.name == "SegmentationClassAug" and (tmp_path / "cache") in aug.parents
    assert all(s.mask.parent == aug for s in data.train), "train_aug must use SegmentationClassAug"
    assert not (devkit / "VOC2012" / "SegmentationClassAug").exists(), "nothing written into the dataset"
    labels = {s.id: s.labels for s in data.train}
    assert labels == {"2007_000001": (1,), "2007_000002": (15,), "2008_000100": (3,), "2008_000101": (12,)}
    mat = voc.read_sbd_mat(tmp_path / "benchmark_RELEASE" / "dataset" / "cls" / "2008_000101.mat")
    assert set(np.unique(mat)) == {0, 12}
    np.testing.assert_array_equal(read_label(aug / "2008_000101.png"), mat)
    assert set(np.unique(read_label(aug / "2007_000001.png"))) == {0, 1, 255}  # VOC's own PNG
    assert data.val[0].mask.parent.name == "SegmentationClass"
    # converted once: a second load does not rewrite the PNGs
    before = (aug / "2008_000100.png").stat().st_mtime_ns
    load_dataset(cfg(tmp_path, dataset=f"voc:{path}"))
    assert (aug / "2008_000100.png").stat().st_mtime_ns == before
    assert not list(aug.glob(TMP_GLOB)), "no temporary files left behind"


def test_a_complete_prebuilt_aug_folder_is_read_and_never_written(tmp_path):
    devkit = write_voc(tmp_path, TRAIN, VAL, extra_images=("2008_000100",))
    write_sbd(tmp_path, {"2008_000100": 3}, {})
    prebuilt = devkit / "VOC2012" / "SegmentationClassAug"
    prebuilt.mkdir()
    for i in TRAIN:  # one mask short of train_aug: built in the cache, the folder left as it is
        (prebuilt / f"{i}.png").write_bytes((devkit / "VOC2012" / "SegmentationClass" / f"{i}.png").read_bytes())
    data = voc.load_voc(str(devkit), cfg(tmp_path))
    assert sorted(p.name for p in prebuilt.iterdir()) == sorted(f"{i}.png" for i in TRAIN)
    assert all((tmp_path / "cache") in s.mask.parents for s in data.train)
    (prebuilt / "2008_000100.png").write_bytes(data.train[-1].mask.read_bytes())  # now complete
    data = voc.load_voc(str(devkit), cfg(tmp_path))
    assert all(s.mask.parent == prebuilt for s in data.train)


def test_read_only_dataset_puts_caches_under_root(tmp_path):
    devkit = write_voc(tmp_path, TRAIN, VAL, extra_images=("2008_000100",))
    write_sbd(tmp_path, {"2008_000100": 3}, {})
    root = devkit / "VOC2012"
    root.chmod(0o555)
    try:
        data = voc.load_voc(str(devkit), cfg(tmp_path))
    finally:
        root.chmod(0o755)
    assert not (root / "SegmentationClassAug").exists() and not list(root.rglob("*labels.json"))
    cache = tmp_path / "cache"
    assert all(str(s.mask).startswith(str(cache)) for s in data.train)
    assert list(cache.rglob("image-labels.json"))
    assert {s.id: s.labels for s in data.train}["2008_000100"] == (3,)


def test_sbd_mat_roundtrip_and_bad_values(tmp_path):
    seg = label_map(4)
    seg[seg == 255] = 0
    write_sbd_mat(tmp_path / "a.mat", seg)
    np.testing.assert_array_equal(voc.read_sbd_mat(tmp_path / "a.mat"), seg)
    write_sbd_mat(tmp_path / "b.mat", np.full((4, 4), 77, np.uint8))
    with pytest.raises(ValueError, match="0..20"):
        voc.read_sbd_mat(tmp_path / "b.mat")


def test_train_aug_ids_is_the_set_formula():
    assert voc.train_aug_ids(["a", "b"], ["v"], ["b", "c", "v"], ["d"]) == ["a", "b", "c", "d"]


def test_missing_voc_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="c3seg data download voc"):
        voc.load_voc(str(tmp_path), cfg(tmp_path))


def test_download_unreachable_host_explains_manual_setup(tmp_path, monkeypatch, caplog):
    def offline(url, root, md5):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(voc, "download_and_extract_archive", offline)
    with caplog.at_level(logging.ERROR):
        rc = voc.download_command(argparse.Namespace(what="sbd", root=tmp_path))
    assert rc == 1
    assert "by hand" in caplog.text and "benchmark_RELEASE/dataset" in caplog.text
    assert voc.DOWNLOADS["sbd"]["md5"] in caplog.text


def test_download_passes_official_url_and_md5(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(voc, "download_and_extract_archive", lambda *a: calls.append(a))
    assert voc.download_command(argparse.Namespace(what="voc", root=tmp_path / "d")) == 0
    assert calls == [(voc.DOWNLOADS["voc"]["url"], tmp_path / "d", "6cd6e144f989b92b3379bac3b3de84fd")]


SAMPLE_VALUES = {
    "2007_000032": {0, 1, 15, 255},
    "2007_000033": {0, 1, 255},
    "2011_000003": {0, 5, 15, 255},
    "2011_000006": {0, 9, 15, 18, 255},
    "2011_000025": {0, 6, 7, 255},
}


def test_real_voc_sample(tmp_path):
    sample = shared_data() / "voc2012-sample" / "VOC2012"
    data = voc.load_voc(str(sample), cfg(tmp_path))
    assert len(data.train) == 4 and [s.id for s in data.val] == ["2007_000033"]
    for s in (*data.train, *data.val):
        values = set(np.unique(read_label(s.mask)).tolist())
        assert values == SAMPLE_VALUES[s.id]
        assert s.labels == tuple(sorted(v for v in values if 0 < v < 255))
    assert list((tmp_path / "cache").rglob("image-labels.json")), "the cache under cfg.root"
