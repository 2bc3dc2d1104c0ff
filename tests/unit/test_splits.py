from pathlib import Path

import pytest

from c3seg.data.types import Sample, SegData
from c3seg.splits import (
    LeakageError,
    assert_no_weak_masks,
    builtin_splits,
    holdout,
    load_split,
    partition,
    training_pairs,
)

VOC = (
    "background aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike "
    "person pottedplant sheep sofa train tvmonitor"
).split()


def test_voc_splits_match_the_paper():
    s1 = load_split("voc-split1", VOC)
    assert len(s1.strong) == 10 and len(s1.weak) == 10
    assert set(s1.strong) == {
        "bicycle",
        "boat",
        "bus",
        "car",
        "cat",
        "chair",
        "cow",
        "diningtable",
        "person",
        "tvmonitor",
    }
    s2 = load_split("voc-split2", VOC)
    assert set(s2.strong) == set(s1.weak) and set(s2.weak) == set(s1.strong)
    s3 = load_split("voc-split3", VOC)
    assert set(s3.strong) == {"chair", "cow", "dog", "motorbike", "person", "train"} and len(s3.weak) == 14
    s4 = load_split("voc-split4", VOC)
    assert s4.strong == () and len(s4.weak) == 20 and s4.extra_strong == "coco"
    assert {"voc-split1", "voc-split2", "voc-split3", "voc-split4"} <= set(builtin_splits())


def test_split4_coco_indices_are_the_voc_categories():
    import yaml

    from c3seg.splits import SPLIT_DIR

    spec = yaml.safe_load((SPLIT_DIR / "voc-split4.yaml").read_text())
    assert spec["coco_voc_indices"] == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        8,
        14,
        15,
        16,
        17,
        18,
        19,
        39,
        56,
        57,
        58,
        60,
        62,
    ]


def test_unknown_class_names_the_valid_ones(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("strong: [cat, unicorn]\n")
    with pytest.raises(ValueError, match="unicorn.*valid classes: aeroplane"):
        load_split(f, VOC)
    with pytest.raises(FileNotFoundError, match="built-in"):
        load_split("no-such-split", VOC)


def _data(tmp_path: Path) -> SegData:
    def s(i: str, labels: tuple[int, ...], mask: bool = True) -> Sample:
        return Sample(i, tmp_path / f"{i}.jpg", tmp_path / f"{i}.png" if mask else None, labels)

    # classes: 1 cat (strong), 2 dog (weak), 3 car (strong)
    train = (s("a", (1,)), s("b", (2,)), s("c", (1, 2)), s("d", (3,)), s("e", ()), s("f", (3,), mask=False))
    return SegData("toy", ("background", "cat", "dog", "car"), train, ())


def test_partition_any_weak_class_makes_an_image_weak(tmp_path):
    data = _data(tmp_path)
    split = load_split(_yaml(tmp_path, "strong: [cat, car]"), data.classes)
    strong, weak = partition(data, split)
    assert [x.id for x in strong] == ["a", "d", "e"]  # f has no mask: unusable as strong
    assert [x.id for x in weak] == ["b", "c"]


def _yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "split.yaml"
    p.write_text(text + "\n")
    return p


def test_training_pairs_never_hold_a_weak_mask(tmp_path):
    data = _data(tmp_path)
    split = load_split(_yaml(tmp_path, "strong: [cat, car]"), data.classes)
    pairs = training_pairs(data, split, "strong")
    assert {m.name for _, m in pairs} == {"a.png", "d.png", "e.png"}
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    with pytest.raises(FileNotFoundError, match="make-labels"):
        training_pairs(data, split, "pseudo", pseudo)
    for i in ("b", "c"):
        (pseudo / f"{i}.png").touch()
    pairs = training_pairs(data, split, "pseudo", pseudo)
    assert {m.parent for _, m in pairs if m.stem in "bc"} == {pseudo}
    # the full reference is the one explicit exception
    assert len(training_pairs(data, split, "full")) == 5


def test_leakage_guard_raises(tmp_path):
    data = _data(tmp_path)
    split = load_split(_yaml(tmp_path, "strong: [cat, car]"), data.classes)
    _, weak = partition(data, split)
    with pytest.raises(LeakageError, match="weak image"):
        assert_no_weak_masks([(weak[0].image, weak[0].mask)], weak)


def test_holdout_is_deterministic_and_disjoint(tmp_path):
    samples = [Sample(f"img{i}", Path(f"{i}.jpg"), Path(f"{i}.png"), (1,)) for i in range(200)]
    kept, held = holdout(samples, 0.1)
    kept2, held2 = holdout(samples, 0.1)
    assert [s.id for s in held] == [s.id for s in held2]
    assert 5 < len(held) < 40 and len(kept) + len(held) == 200
    assert not {s.id for s in kept} & {s.id for s in held}
