"""`c3seg run --dataset folder:PATH` runs every stage on a user's own folder in which the weak
images have no mask at all, only a row in labels.csv."""

import json
from pathlib import Path

import numpy as np
from toydata import make

from c3seg.cli import main
from c3seg.io import read_image, read_label, write_image, write_label_png


def write_user_folder(tmp: Path) -> Path:
    """VOC layout + classes.txt + labels.csv; masks only for strong training images and val."""
    toy = make(tmp / "toy", n_train=30, n_val=6)
    root = tmp / "mine"
    (root / "classes.txt").parent.mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(toy.classes) + "\n")
    rows = ["id,labels"]
    for split, samples in (("train", toy.train), ("val", toy.val)):
        for s in samples:
            write_image(root / "JPEGImages" / f"{s.id}.jpg", read_image(s.image))
            weak = split == "train" and any(toy.classes[c] != "red" for c in s.labels)
            if weak:
                rows.append(f"{s.id},{' '.join(toy.classes[c] for c in s.labels)}")
            else:
                write_label_png(root / "SegmentationClass" / f"{s.id}.png", read_label(s.mask))
        ids = "\n".join(s.id for s in samples) + "\n"
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(ids)
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_whole_pipeline_on_a_custom_folder(tmp_path):
    root = write_user_folder(tmp_path)
    assert len(list((root / "SegmentationClass").glob("*.png"))) < 36  # weak images have no mask
    split = tmp_path / "split.yaml"
    split.write_text("strong: [red]\n")
    out = tmp_path / "run"
    args = [
        "run",
        "--dataset",
        f"folder:{root}",
        "--split",
        str(split),
        "--out",
        str(out),
        "--config",
        "tiny",
    ]
    overrides = [
        "data.crop=48",
        f"data.root={tmp_path / 'cache'}",
        "labels.n_segments=40",
        "data.holdout=0.2",
    ]
    assert main(args + overrides) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["weak"] == ["green", "blue"]
    assert set(report["methods"]) == {"fully-supervised", "strong-only", "cam-threshold", "lnet", "pnet"}
    labels = sorted((out / "labels" / "diffusion").glob("*.png"))
    assert len(labels) == (root / "labels.csv").read_text().count("\n") - 1
    assert all(np.isin(read_label(p), [0, 1, 2, 3]).all() for p in labels)
