"""The procedural benchmark: determinism, VOC layout, class coverage, split-sets, atomic generation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from c3seg.config import DataConfig
from c3seg.data.synthetic import benchmark
from c3seg.data.synthetic.benchmark import (
    CLASSES,
    FAMILIES,
    generate_benchmark,
    image_rng,
    load_benchmark,
    render,
)
from c3seg.io import read_image, read_label
from c3seg.splits import load_split

SMALL = dict(ntrain=12, nval=6, size=64)


def _ids(root: Path, split: str) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()


def test_families_and_classes():
    assert CLASSES[0] == "background" and len(CLASSES) - 1 >= 12
    assert len(FAMILIES) >= 4 and all(len(members) >= 2 for members in FAMILIES.values())


def test_same_seed_same_files_other_seed_differs(tmp_path):
    a = generate_benchmark(tmp_path / "a", seed=3, **SMALL)
    b = generate_benchmark(tmp_path / "b", seed=3, **SMALL)
    c = generate_benchmark(tmp_path / "c", seed=4, **SMALL)
    ids = _ids(a, "train") + _ids(a, "val")
    assert ids == _ids(b, "train") + _ids(b, "val")
    for i in ids:
        ma, mb = (r / "SegmentationClass" / f"{i}.png" for r in (a, b))
        assert ma.read_bytes() == mb.read_bytes()
        assert np.array_equal(
            read_image(a / "JPEGImages" / f"{i}.jpg"), read_image(b / "JPEGImages" / f"{i}.jpg")
        )
    assert any(
        not np.array_equal(
            read_label(a / "SegmentationClass" / f"{i}.png"), read_label(c / "SegmentationClass" / f"{i}.png")
        )
        for i in ids
    )


def test_pool_gives_the_same_files_as_one_process(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark, "CHUNK", 4)  # 5 tasks: enough to use the pool
    one = generate_benchmark(tmp_path / "one", seed=0, processes=1, **SMALL)
    two = generate_benchmark(tmp_path / "two", seed=0, processes=2, **SMALL)
    assert _ids(one, "train") == _ids(two, "train") and _ids(one, "val") == _ids(two, "val")
    for i in _ids(one, "train") + _ids(one, "val"):
        name = f"SegmentationClass/{i}.png"
        assert (one / name).read_bytes() == (two / name).read_bytes()


def test_voc_layout_and_values(tmp_path):
    root = generate_benchmark(tmp_path / "bench", seed=0, **SMALL)
    assert (root / "classes.txt").read_text().splitlines() == list(CLASSES)
    assert len(_ids(root, "train")) == 12 and len(_ids(root, "val")) == 6
    assert not set(_ids(root, "train")) & set(_ids(root, "val"))
    allowed = set(range(len(CLASSES))) | {255}
    for i in _ids(root, "train") + _ids(root, "val"):
        image = read_image(root / "JPEGImages" / f"{i}.jpg")
        mask = read_label(root / "SegmentationClass" / f"{i}.png")
        assert image.shape == (64, 64, 3) and mask.shape == (64, 64)
        assert set(np.unique(mask).tolist()) <= allowed
        fg = (mask > 0) & (mask < 255)
        if fg.any():  # every object is outlined by void: foreground never touches background directly
            assert (mask == 255).any()
            assert not (fg[:, 1:] & (mask[:, :-1] == 0)).any() and not (fg[:, :-1] & (mask[:, 1:] == 0)).any()
            assert not (fg[1:] & (mask[:-1] == 0)).any() and not (fg[:-1] & (mask[1:] == 0)).any()


def test_every_class_appears_and_objects_are_small_parts_of_the_image():
    labels = [render(image_rng(0, "train", i), 64)[1] for i in range(150)]
    seen = set(np.unique(np.stack(labels)).tolist())
    assert set(range(1, len(CLASSES))) <= seen
    fg = np.mean([((m > 0) & (m < 255)).mean() for m in labels])
    assert 0.05 < fg < 0.5  # background dominates, as in VOC


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_write(path, label):
        calls.append(path)
        if len(calls) > 5:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-way
        return Path(path)

    monkeypatch.setattr(benchmark, "write_label_png", failing_write)
    cfg = DataConfig(root=str(tmp_path), bench_train=12, bench_val=6, bench_size=64)
    with pytest.raises(KeyboardInterrupt):
        load_benchmark(None, cfg)
    assert list(tmp_path.iterdir()) == []  # neither the final folder nor a partial sibling


def test_load_benchmark_generates_once_and_reads_labels(tmp_path, monkeypatch):
    cfg = DataConfig(root=str(tmp_path / "unused"), bench_train=12, bench_val=6, bench_size=64, bench_seed=1)
    data = load_benchmark(str(tmp_path), cfg)
    assert data.root == tmp_path / "benchmark-s1-64px-12-6"
    assert data.classes == CLASSES and len(data.train) == 12 and len(data.val) == 6
    for s in data.train + data.val:
        assert s.labels == tuple(v for v in np.unique(read_label(s.mask)).tolist() if 0 < v < 255)
    assert (data.root / "image-labels.json").exists()

    def no_generation(*args, **kwargs):
        raise AssertionError("the benchmark exists and must not be generated again")

    monkeypatch.setattr(benchmark, "generate_benchmark", no_generation)
    assert load_benchmark(str(tmp_path), cfg).train == data.train
    other = replace(cfg, bench_seed=2)
    with pytest.raises(AssertionError):
        load_benchmark(str(tmp_path), other)  # a different seed is a different folder


@pytest.mark.parametrize("name", ["bench-half", "bench-30"])
def test_split_sets_cover_every_family(name):
    split = load_split(name, CLASSES)
    assert set(split.strong) | set(split.weak) == set(CLASSES[1:])
    for family, members in FAMILIES.items():
        assert set(members) & set(split.strong), f"{name}: family {family} has no strong category"
        assert set(members) & set(split.weak), f"{name}: family {family} has no weak category"
    share = len(split.strong) / (len(CLASSES) - 1)
    assert share == 0.5 if name == "bench-half" else 0.2 < share < 0.4
