"""A user's own dataset folder: classes.txt, masks for strong / val images, labels.csv for weak ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from datatrees import write_folder

from c3seg.config import DataConfig
from c3seg.data.folder import load_folder
from c3seg.data.load import load_dataset
from c3seg.splits import load_split, partition, training_pairs


def cfg(tmp_path: Path, **kw: str) -> DataConfig:
    return DataConfig(root=str(tmp_path / "cache"), **kw)


def test_folder_with_label_csv(tmp_path):
    root = write_folder(tmp_path / "mine")
    data = load_dataset(cfg(tmp_path, dataset=f"folder:{root}"))
    assert data.classes == ("background", "cat", "dog", "bird")
    assert [(s.id, s.labels, s.mask is None) for s in data.train] == [
        ("a", (1,), False),
        ("b", (2, 3), True),
        ("c", (1, 2), True),
    ]
    assert [(s.id, s.labels) for s in data.val] == [("v", (2,))]


def test_folder_without_csv(tmp_path):
    data = load_folder(str(write_folder(tmp_path / "mine", with_csv=False)), cfg(tmp_path))
    assert [(s.id, s.labels) for s in data.train] == [("a", (1,))]


def test_split_yaml_on_folder_and_no_mask_reaches_training(tmp_path):
    data = load_folder(str(write_folder(tmp_path / "mine")), cfg(tmp_path))
    (tmp_path / "s.yaml").write_text("strong: [cat]\n")
    split = load_split(tmp_path / "s.yaml", data.classes)
    assert split.weak == ("dog", "bird")
    strong, weak = partition(data, split)
    assert [s.id for s in strong] == ["a"] and [s.id for s in weak] == ["b", "c"]
    assert training_pairs(data, split, "strong") == [(data.train[0].image, data.train[0].mask)]


def test_split_yaml_unknown_class_names_it_and_lists_valid(tmp_path):
    (tmp_path / "s.yaml").write_text("strong: [cat, horse]\n")
    with pytest.raises(ValueError, match=r"unknown class 'horse'; valid classes: cat, dog, bird"):
        load_split(tmp_path / "s.yaml", ("background", "cat", "dog", "bird"))


def test_csv_unknown_class_is_an_error_naming_it(tmp_path):
    root = write_folder(tmp_path / "mine")
    (root / "labels.csv").write_text("b,dog zebra\nc,cat\n")
    with pytest.raises(ValueError, match=r"unknown class 'zebra'; valid classes: cat, dog, bird"):
        load_folder(str(root), cfg(tmp_path))


def test_weak_image_without_mask_or_labels_fails_loudly(tmp_path):
    root = write_folder(tmp_path / "mine")
    (root / "labels.csv").write_text("b,dog\n")  # c has neither
    with pytest.raises(FileNotFoundError, match="c3seg data check"):
        load_folder(str(root), cfg(tmp_path))


def test_missing_classes_txt(tmp_path):
    root = write_folder(tmp_path / "mine")
    (root / "classes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="background first"):
        load_folder(str(root), cfg(tmp_path))
