"""Split-set 4 (the paper's cross-dataset result): every VOC category weak, strong masks from COCO
images with no VOC category. Every stage must take its strong images from the second dataset."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from datatrees import shared_data, write_coco, write_voc

from c3seg.cli import main
from c3seg.config import DataConfig
from c3seg.data.load import load_dataset
from c3seg.data.types import background_mask
from c3seg.io import read_json, read_label
from c3seg.methods import REPORT_ORDER
from c3seg.splits import holdout, load_split, main_class_pairs, strong_holdout, training_pairs

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def split4(tmp_path):
    devkit = write_voc(tmp_path, {"2007_000001": 1, "2007_000002": 12}, {"2007_000010": 7})
    root = write_coco(tmp_path / "coco")
    data = load_dataset(DataConfig(root=str(tmp_path / "cache"), dataset=f"voc:{devkit}+coco:{root}"))
    return data, load_split("voc-split4", data.classes)


def test_extra_masks_in_main_classes_are_background_with_void_kept(split4):
    data, _ = split4
    (s,) = data.extra_strong
    raw, mapped = read_label(s.mask), read_label(background_mask(s.mask))
    assert set(np.unique(raw)) == {0, 4}  # a COCO category, in COCO's classes
    assert set(np.unique(mapped)) == {0}  # no VOC category in the image: all background for VOC
    assert np.array_equal(mapped == 255, raw == 255)


def test_training_pairs_take_the_extra_images_except_the_reference(split4):
    data, split = split4
    (s,) = data.extra_strong
    assert split.strong == () and len(split.weak) == 20
    extra = (s.image, background_mask(s.mask))
    assert training_pairs(data, split, "strong") == [extra]  # strong-only = the extra images only
    assert extra in training_pairs(data, split, "pseudo", pseudo_dir=_labels(data))
    assert extra not in training_pairs(data, split, "full")  # VOC's masks only: the paper's reference


def _labels(data):
    folder = data.extra_strong[0].mask.parent.parent / "pseudo"
    folder.mkdir(exist_ok=True)
    for x in data.train:
        (folder / f"{x.id}.png").write_bytes(b"")
    return folder


def test_strong_holdout_draws_from_the_extra_images(split4):
    data, split = split4
    kept, held = strong_holdout(data, split, 0.1)
    assert kept == [] and held == list(data.extra_strong)  # one image: it is held out
    assert holdout(list(data.extra_strong), 0.1)[1] == held
    assert main_class_pairs(held, data) == [(held[0].image, background_mask(held[0].mask))]


@pytest.mark.skipif(not (shared_data() / "coco-tiny").exists(), reason="../shared/data is absent")
def test_split4_end_to_end_on_the_real_samples(tmp_path, caplog):
    """VOC 2012 sample (4 train + 1 val images, all weak) + COCO-tiny's train images without a VOC
    category (15 strong): every stage runs and the report has every method's row."""
    voc = shared_data() / "voc2012-sample" / "VOC2012"
    coco_root = shared_data() / "coco-tiny"
    out = tmp_path / "run"
    args = [
        "run", "--config", "tiny", "--dataset", f"voc:{voc}+coco:{coco_root}", "--split", "voc-split4",
        "--out", str(out), f"data.root={tmp_path / 'cache'}",
    ]  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    report = read_json(out / "report.json")
    assert set(report["methods"]) == set(REPORT_ORDER) - {"lnet-cam", "diffusion-no-m"}
    for row in report["methods"].values():
        assert row["miou_strong"] is None and row["miou_weak"] is not None
    text = caplog.text
    assert "cannot be calibrated" in text  # no strong VOC image: the config's thresholds
    assert "strong-only: 13 training images" in text  # the COCO images minus their hold-out
    assert "2 hold-out images" in text  # the P-Net chose on COCO images held out


def test_split4_end_to_end_on_generated_trees(tmp_path):
    """The same on generated VOC + COCO trees (runs where ../shared/data is absent): 4 weak VOC
    training images, 10 COCO images without a VOC category."""
    devkit = write_voc(
        tmp_path,
        {"2007_000001": 1, "2007_000002": 12, "2007_000003": 15, "2007_000004": 7},
        {"2007_000010": 7},
    )
    coco_root = write_coco(tmp_path / "coco", extra_strong=10)
    out = tmp_path / "run"
    args = [
        "run", "--config", "tiny", "--dataset", f"voc:{devkit}+coco:{coco_root}", "--split", "voc-split4",
        "--out", str(out), f"data.root={tmp_path / 'cache'}", "data.crop=24", "labels.n_segments=20",
    ]  # fmt: skip
    assert main(args) == 0
    report = read_json(out / "report.json")
    assert {"fully-supervised", "strong-only", "cam-threshold", "lnet", "pnet"} <= set(report["methods"])
