"""`c3seg data check`: correct counts on good datasets, a named report and exit 1 on every malformed case."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from datatrees import shared_data, write_coco, write_folder, write_sbd, write_voc

from c3seg.cli import main
from c3seg.data.check import check_command
from c3seg.io import write_image, write_label_png

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("C3SEG_CACHE", str(tmp_path / "cache"))  # check's default cache folder


def check(capsys, dataset: str, split: str | None = None) -> tuple[int, str]:
    rc = check_command(argparse.Namespace(dataset=dataset, split=split))
    return rc, capsys.readouterr().out


def count(out: str, name: str) -> list[int]:
    """The numbers on the per-class line of `name`."""
    for line in out.splitlines():
        if line.strip().startswith(name + " ") and line.split()[-1].isdigit():
            return [int(x) for x in line[len(line) - len(line.lstrip()) + len(name) :].split()]
    raise AssertionError(f"no line for {name} in\n{out}")


def voc_copy(tmp_path: Path) -> Path:
    """A writable copy of the real VOC sample."""
    dst = tmp_path / "VOC2012"
    shutil.copytree(shared_data() / "voc2012-sample" / "VOC2012", dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def test_real_voc_sample_is_clean(capsys):
    sample = shared_data() / "voc2012-sample" / "VOC2012"
    rc, out = check(capsys, f"voc:{sample}", "voc-split1")
    assert rc == 0, out
    assert "train: 4 images" in out and "val: 1 images" in out and "OK" in out
    assert (
        count(out, "person") == [3, 0] and count(out, "aeroplane") == [1, 1] and count(out, "sofa") == [1, 0]
    )
    assert "strong training images: 1" in out and "weak training images:   3" in out


def test_real_coco_tiny_is_clean(capsys):
    rc, out = check(capsys, f"coco:{shared_data() / 'coco-tiny'}")
    assert rc == 0, out
    assert "81 classes" in out and "train: 80 images" in out and "val: 80 images" in out
    assert count(out, "person") == [40, 49] and count(out, "teddy bear") == [1, 3]


def test_real_voc_copy_with_three_bad_files(tmp_path, capsys):
    voc = voc_copy(tmp_path)
    jpg = voc / "JPEGImages" / "2007_000032.jpg"
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])  # truncated JPEG
    write_label_png(voc / "SegmentationClass" / "2011_000003.png", np.zeros((10, 10), np.uint8))  # wrong size
    small = voc / "SegmentationClass" / "2011_000025.png"
    from c3seg.io import read_label

    m = read_label(small)
    m[0, 0] = 77
    write_label_png(small, m)
    rc, out = check(capsys, f"voc:{voc}")
    assert rc == 1 and "FAILED" in out and "3 problem(s)" in out
    assert f"{jpg}: unreadable image" in out
    assert "2011_000003.png: mask is 10x10 but its image is" in out
    assert "2011_000025.png: mask values [77] are outside the 21 classes" in out
    assert main(["data", "check", f"voc:{voc}"]) == 1  # through the CLI too


@pytest.mark.parametrize("case", ["missing_image", "missing_mask", "rgb_mask", "no_list"])
def test_voc_fixture_malformed(tmp_path, capsys, case):
    devkit = write_voc(tmp_path, {"2007_000001": 1, "2007_000002": 15}, {"2007_000010": 7})
    voc = devkit / "VOC2012"
    if case == "missing_image":
        (voc / "JPEGImages" / "2007_000002.jpg").unlink()
        expect = "2007_000002.jpg: image is missing"
    elif case == "missing_mask":
        (voc / "SegmentationClass" / "2007_000010.png").unlink()
        expect = "2007_000010.png: mask is missing"
    elif case == "rgb_mask":
        write_image(voc / "SegmentationClass" / "2007_000001.png", np.zeros((24, 32, 3), np.uint8))
        expect = "2007_000001.png: mask is a RGB image, not an index PNG"
    else:
        (voc / "ImageSets" / "Segmentation" / "val.txt").unlink()
        expect = "val.txt does not exist"
    rc, out = check(capsys, f"voc:{devkit}")
    assert rc == 1 and expect in out, out


def test_voc_with_sbd_and_a_bad_mat(tmp_path, capsys):
    devkit = write_voc(
        tmp_path, {"2007_000001": 1}, {"2007_000010": 7}, extra_images=("2008_000100", "2008_000101")
    )
    sbd = write_sbd(tmp_path, {"2008_000100": 3}, {"2008_000101": 12})
    rc, out = check(capsys, f"voc:{devkit}", "voc-split3")
    assert rc == 0 and "train: 3 images" in out and count(out, "bird") == [1, 0], out
    (aug,) = (tmp_path / "cache").rglob("SegmentationClassAug")  # built in the cache, not the dataset
    (aug / "2008_000101.png").unlink()
    (sbd / "cls" / "2008_000101.mat").write_bytes(b"not a mat file")
    rc, out = check(capsys, f"voc:{devkit}")
    assert rc == 1 and "2008_000101: cannot build" in out and "2008_000101.png: mask is missing" in out


def test_folder_clean_and_malformed(tmp_path, capsys):
    root = write_folder(tmp_path / "mine")
    rc, out = check(capsys, f"folder:{root}")
    assert rc == 0 and "train: 3 images (2 with image-level labels only)" in out, out
    (root / "labels.csv").write_text("b,dog zebra\n")  # unknown class; c now has no labels at all
    rc, out = check(capsys, f"folder:{root}")
    assert rc == 1 and "unknown class 'zebra'" in out
    assert "SegmentationClass/b.png: mask is missing" in out and "c.png: mask is missing" in out


def test_coco_fixture_clean_and_malformed(tmp_path, capsys):
    root = write_coco(tmp_path / "coco")
    rc, out = check(capsys, f"coco:{root}")
    assert rc == 0 and "train: 3 images" in out and count(out, "toothbrush") == [1, 0], out
    f = root / "annotations" / "instances_train2017.json"
    d = json.loads(f.read_text())
    d["annotations"][0]["category_id"] = 999
    d["annotations"][1]["segmentation"] = {"size": [3, 3], "counts": "garbage"}
    d["images"][1]["height"] = 99
    f.write_text(json.dumps(d))
    (root / "train2017" / "000000000013.jpg").unlink()
    rc, out = check(capsys, f"coco:{root}")
    assert rc == 1, out
    assert "annotation 1 has unknown category_id 999" in out
    assert "annotation 2 has an undecodable segmentation" in out
    assert "000000000012.jpg: image is 24x32 but instances_train2017.json says 99x32" in out
    assert "000000000013.jpg: image is missing" in out


def test_split_unknown_class_and_split4(tmp_path, capsys):
    devkit = write_voc(tmp_path, {"2007_000001": 1}, {"2007_000010": 7})
    (tmp_path / "bad.yaml").write_text("strong: [aeroplane, unicorn]\n")
    rc, out = check(capsys, f"voc:{devkit}", str(tmp_path / "bad.yaml"))
    assert rc == 1 and "unknown class 'unicorn'; valid classes: aeroplane, bicycle" in out
    rc, out = check(capsys, f"voc:{devkit}", "voc-split4")
    assert rc == 1 and "voc:PATH+coco:PATH" in out
    root = write_coco(tmp_path / "coco")
    rc, out = check(capsys, f"voc:{devkit}+coco:{root}", "voc-split4")
    assert rc == 0 and "extra strong images (coco): 1" in out and "weak training images:   1" in out, out
