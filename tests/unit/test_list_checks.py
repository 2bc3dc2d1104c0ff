"""Lists and text files that would train or score wrong are refused before training (and named by
`c3seg data check`); what is unambiguous is read: a byte-order mark, blank lines, `.JPG`."""

from __future__ import annotations

import argparse
import codecs
from pathlib import Path

import pytest
from datatrees import write_folder, write_voc

from c3seg.config import DataConfig
from c3seg.data.check import check_command
from c3seg.data.folder import load_folder
from c3seg.splits import load_split

SETS = Path("ImageSets") / "Segmentation"


def _load(root: Path):
    return load_folder(str(root), DataConfig(root=str(root.parent / "cache")))


def _check(root: Path, capsys, split: str | None = None) -> tuple[int, str]:
    rc = check_command(argparse.Namespace(dataset=f"folder:{root}", split=split))
    return rc, capsys.readouterr().out


def test_an_image_in_train_and_val_is_an_error(tmp_path, capsys):
    root = write_folder(tmp_path / "mine")
    (root / SETS / "val.txt").write_text("v\na\n")
    rc, out = _check(root, capsys)
    assert rc == 1 and "1 images are listed in both train and val (e.g. a)" in out, out
    with pytest.raises(ValueError, match="listed in both train and val"):
        _load(root)
    devkit = write_voc(tmp_path / "voc", {"2007_000001": 1, "2007_000002": 15}, {"2007_000002": 15})
    from c3seg.data.voc import load_voc

    with pytest.raises(ValueError, match=r"1 images are listed in both train and val \(e.g. 2007_000002\)"):
        load_voc(str(devkit), DataConfig(root=str(tmp_path / "cache")))


def test_an_id_listed_twice_is_used_once_with_a_warning(tmp_path, capsys, caplog):
    root = write_folder(tmp_path / "mine")
    (root / SETS / "train.txt").write_text("a\nb\nc\na\nb\n")
    rc, out = _check(root, capsys)
    assert rc == 0, out
    assert "the train list names 2 images more than once (2 extra lines, e.g. a, b); each is used once" in out
    assert [s.id for s in _load(root).train] == ["a", "b", "c"]
    assert "names 2 images more than once" in caplog.text


def test_labels_csv_conflicts_are_errors_and_repeats_warnings(tmp_path, capsys):
    root = write_folder(tmp_path / "mine")
    (root / "labels.csv").write_text("id,labels\nb,dog bird\nc,cat;dog\nc,dog cat\n")
    rc, out = _check(root, capsys)
    assert rc == 0 and "labels.csv: 1 rows repeat an earlier row's image and labels (e.g. c)" in out, out
    (root / "labels.csv").write_text("id,labels\nb,dog bird\nc,cat;dog\nb,cat\n")
    rc, out = _check(root, capsys)
    assert (
        rc == 1
        and "labels.csv gives 1 images two different label sets (e.g. b: line 2 'dog bird', line 4 'cat')"
        in out
    )
    with pytest.raises(ValueError, match="two different label sets"):
        _load(root)


def test_byte_order_marks_and_blank_lines_are_read(tmp_path, capsys):
    root = write_folder(tmp_path / "mine")
    bom = codecs.BOM_UTF8
    (root / "labels.csv").write_bytes(bom + b"\n\nid,labels\r\nb,dog bird\r\nc,cat;dog\r\n")
    (root / SETS / "train.txt").write_bytes(bom + b"a\nb\nc\n")
    (root / "classes.txt").write_bytes(bom + b"background\ncat\ndog\nbird\n")
    data = _load(root)
    assert [(s.id, s.labels) for s in data.train] == [("a", (1,)), ("b", (2, 3)), ("c", (1, 2))]
    rc, out = _check(root, capsys)
    assert rc == 0, out


def test_upper_case_suffixes_are_found(tmp_path, capsys):
    root = write_folder(tmp_path / "mine")
    (root / "JPEGImages" / "a.jpg").rename(root / "JPEGImages" / "a.JPG")
    (root / "SegmentationClass" / "v.png").rename(root / "SegmentationClass" / "v.PNG")
    data = _load(root)
    assert data.train[0].image.name == "a.JPG" and data.val[0].mask.name == "v.PNG"
    rc, out = _check(root, capsys)
    assert rc == 0, out


def test_a_class_name_with_a_space_is_refused_with_the_reason(tmp_path):
    root = write_folder(tmp_path / "mine")
    (root / "classes.txt").write_text("background\ncat\nhot dog\nbird\n")
    with pytest.raises(ValueError, match=r"class name 'hot dog' holds a space.*write it as 'hot_dog'"):
        _load(root)


def test_a_val_image_with_labels_but_no_mask_is_told_it_needs_one(tmp_path, capsys):
    root = write_folder(tmp_path / "mine")
    (root / "SegmentationClass" / "v.png").unlink()
    (root / "labels.csv").write_text("id,labels\nb,dog bird\nc,cat;dog\nv,dog\n")
    message = r"1 val images have no mask .*\(e.g. v\) \(1 have image-level labels in labels.csv.*val images need masks to be scored"
    with pytest.raises(ValueError, match=message):
        _load(root)
    rc, out = _check(root, capsys)
    assert rc == 1 and "val images need masks to be scored" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "strong: cat\n",
            r"'strong' must be a list of class names, got the string 'cat': write 'strong: \[cat\]'",
        ),
        (
            "strong: [cat]\nweak: dog bird\n",
            r"'weak' must be a list of class names, got the string 'dog bird'",
        ),
        ("strong: [1, cat]\n", r"'strong' must be a list of class names like \[car, bus\], got \[1, 'cat'\]"),
        ("- cat\n", r"holds a list, not keys and values; write e.g. 'strong: \[cat, dog\]'"),
    ],
)
def test_split_yaml_class_names_must_be_a_list(tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_split(tmp_path / "s.yaml", ("background", "cat", "dog", "bird"))
