"""Malformed inputs get a clear error naming the file or setting (see docs/bad-input.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c3seg.cli import main
from c3seg.config import load_config
from c3seg.io import TMP_MARK, read_image, read_label, write_image, write_json


def test_truncated_and_non_image_files_are_named(tmp_path: Path) -> None:
    jpg = write_image(tmp_path / "a.jpg", np.full((64, 64, 3), 128, np.uint8))
    jpg.write_bytes(jpg.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"a\.jpg: cannot read the image"):
        read_image(jpg)
    txt = tmp_path / "b.jpg"
    txt.write_text("not an image")
    with pytest.raises(ValueError, match=r"b\.jpg: cannot read the image.*data check"):
        read_image(txt)
    png = tmp_path / "m.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ValueError, match=r"m\.png: cannot read the label map"):
        read_label(png)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.jpg")


def test_sixteen_bit_masks(tmp_path: Path) -> None:
    small = np.array([[0, 1], [2, 255]], np.uint16)
    Image.fromarray(small).save(tmp_path / "ok.png")  # a 16-bit greyscale PNG
    assert read_label(tmp_path / "ok.png").tolist() == [[0, 1], [2, 255]]
    big = np.array([[0, 300], [2, 1]], np.uint16)  # cast to uint8, 300 would become 44
    Image.fromarray(big).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match=r"big\.png holds values up to 300.*8-bit index PNG"):
        read_label(tmp_path / "big.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="not an index PNG"):
        read_label(tmp_path / "rgb.png")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.crop=-5", r"data.crop=-5: must be at least 8"),
        ("seg.batch_size=0", r"seg.batch_size=0: must be at least 1"),
        ("data.holdout=1.5", r"data.holdout=1.5: must be between 0.0 and 0.9"),
        ("seg=3", r"seg is a section of settings, not one value"),
        ("data.scale_min=2", r"data.scale_min=2.0 is above data.scale_max"),
    ],
)
def test_settings_out_of_range(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config("tiny", [override])


def test_a_network_pretrained_on_another_backbone_is_refused_before_pretraining() -> None:
    with pytest.raises(
        ValueError,
        match=r"cam.backbone=tiny-fast with cam.pretrained=pretrain, but the "
        r"pretrain stage trains pretrain.backbone=tiny: set train.backbone",
    ):
        load_config("tiny", ["train.pretrained=pretrain", "cam.backbone=tiny-fast"])
    load_config("tiny", ["train.pretrained=pretrain", "train.backbone=tiny-fast"])  # shared: fine
    load_config("tiny", ["train.pretrained=pretrain", "cam.backbone=tiny-fast", "cam.pretrained="])
    load_config(
        "tiny", ["train.pretrained=pretrain", "affinity.backbone=tiny-fast", "affinity.enabled=false"]
    )
    for name in ("benchmark", "photos", "voc"):
        load_config(name)


def test_cli_reports_bad_settings_without_traceback(tmp_path: Path, caplog) -> None:
    assert main(["run", "--out", str(tmp_path / "r"), "data.crop=-5"]) == 2
    assert "data.crop=-5: must be at least 8" in caplog.text
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_json_has_no_nan(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", {"miou_weak": float("nan"), "rows": [1.0, math.inf], "n": 3})
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert json.loads(path.read_text()) == {"miou_weak": None, "rows": [1.0, None], "n": 3}


def _folder(tmp_path: Path) -> Path:
    from datatrees import write_folder

    return write_folder(tmp_path / "mine")


def _load(root: Path):
    from c3seg.config import DataConfig
    from c3seg.data.folder import load_folder

    return load_folder(str(root), DataConfig(dataset=f"folder:{root}", root=str(root.parent / "cache")))


def test_folder_class_list_mistakes_are_refused(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "classes.txt").write_text("cat\ndog\nbird\n")  # no background: every index off by one
    with pytest.raises(ValueError, match="must list background first.*got 'cat'"):
        _load(root)
    (root / "classes.txt").write_text("background\ncat\ndog\ncat\n")
    with pytest.raises(ValueError, match="'cat' more than once"):
        _load(root)


def test_folder_mask_value_above_the_class_count_is_named(tmp_path: Path) -> None:
    from c3seg.io import write_label_png

    root = _folder(tmp_path)
    label = read_label(root / "SegmentationClass" / "a.png")
    label[0, 0] = 7  # classes.txt has 4 classes
    write_label_png(root / "SegmentationClass" / "a.png", label)
    with pytest.raises(ValueError, match=r"a.png: mask values \[7\] are outside the dataset's 4 classes"):
        _load(root)


def test_folder_empty_list_and_dataset_one_level_down(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n")
    with pytest.raises(ValueError, match="val.txt is empty"):
        _load(root)
    with pytest.raises(FileNotFoundError, match=f"one level down: use folder:{root}"):
        _load(tmp_path)


def test_files_get_the_umask_mode(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        f = write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == 0o644


@pytest.mark.slow  # runs the train-lnet stage
def test_full_disk_leaves_nothing_half_written(tmp_path: Path, monkeypatch, caplog) -> None:
    import errno

    import torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "run"
    args = [
        "run",
        "--config",
        "tiny",
        "--out",
        str(out),
        "--stages",
        "train-lnet",
        f"data.root={tmp_path / 'data'}",
    ]
    assert main(args) == 2
    assert f"no space left on {out / 'lnet'}" in caplog.text and "rerun the same command" in caplog.text
    leftovers = [p for p in out.rglob("*") if p.is_file() and (TMP_MARK in p.name or p.suffix == ".pt")]
    assert leftovers == []
    monkeypatch.undo()
    assert main(args) == 0  # space again: the same command finishes
    assert (out / "lnet" / "model.pt").exists()


def test_fuzzed_dataset_files_fail_clearly(tmp_path: Path) -> None:
    """Random byte flips in images, masks, classes.txt and labels.csv, a fixed count of seeded
    cases (the same cases on every machine): each read either works or raises ValueError /
    FileNotFoundError naming the file."""
    import shutil

    from c3seg.data.torchdata import PairSet
    from c3seg.data.transforms import eval_transform

    clean = _folder(tmp_path / "clean")
    rng = np.random.default_rng(0)
    files = sorted(
        p for p in clean.rglob("*") if p.is_file() and p.suffix in (".jpg", ".png", ".txt", ".csv")
    )
    cases, tries, failures = 120, 0, 0
    while tries < cases:
        root = tmp_path / f"f{tries}"
        shutil.copytree(clean, root)
        victim = root / files[tries % len(files)].relative_to(clean)
        data = bytearray(victim.read_bytes())
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        if rng.random() < 0.3:
            data = data[: int(rng.integers(len(data)))]  # truncated too
        victim.write_bytes(bytes(data))
        tries += 1
        try:
            ds = _load(root)
            pairs = PairSet([(s.image, s.mask) for s in (*ds.train, *ds.val)], eval_transform())
            for i in range(len(pairs)):
                pairs[i]
        except (ValueError, FileNotFoundError, KeyError) as e:
            failures += 1
            text = str(e)
            assert victim.name in text or str(victim) in text or victim.parent.name in text, (victim, text)
    assert failures > 0


@pytest.mark.parametrize(
    "override, message",
    [
        ("seg.epochs=abc", "seg.epochs='abc': expected int"),
        ("seg.amp=maybe", "seg.amp='maybe': expected bool"),
        ("labels.scales=[1,x]", r"labels.scales='\[1,x\]': expected a list of float"),
        ("evaluate.crf=dense", "evaluate.crf='dense': choose fast or exact"),
    ],
)
def test_settings_of_the_wrong_type_name_themselves(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config("tiny", [override])


def test_mask_of_the_wrong_size_names_both_files(tmp_path: Path) -> None:
    from c3seg.data.torchdata import PairSet
    from c3seg.data.transforms import eval_transform
    from c3seg.io import write_label_png

    root = _folder(tmp_path)
    write_label_png(root / "SegmentationClass" / "a.png", np.zeros((7, 9), np.uint8))
    data = _load(root)
    a = next(s for s in data.train if s.id == "a")
    with pytest.raises(ValueError, match=r"mask .*a.png is \(7, 9\) but image .*a.jpg is"):
        PairSet([(a.image, a.mask)], eval_transform())[0]


def test_labels_csv_ids_in_no_list_are_skipped_with_a_count(tmp_path: Path, caplog) -> None:
    root = _folder(tmp_path)
    (root / "labels.csv").write_text("id,labels\nb,dog bird\nc,cat;dog\nghost,cat\nghost2,dog\n")
    data = _load(root)
    assert {s.id for s in data.train} == {"a", "b", "c"}
    assert "labels.csv: 2 ids are in no image list and were skipped (e.g. ghost, ghost2)" in caplog.text
