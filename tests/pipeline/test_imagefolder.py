"""The ImageFolder pretraining corpus (c3seg.data.imagefolder) and `pretrain.corpus=imagefolder:PATH`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import c3seg.stages.pretrain as pretrain_mod
from c3seg.config import Config, load_config
from c3seg.data.imagefolder import ImageFolderSet, eval_transform, read_imagefolder, train_transform
from c3seg.engine import records
from c3seg.engine.run import Run
from c3seg.models import build_model
from c3seg.models.weights import read_weights

torch.set_num_threads(1)

COLOURS = {"ant": (220, 40, 40), "bee": (40, 200, 40), "cow": (40, 60, 220)}  # one colour a class


def write_imagefolder(root: Path, per_class: int = 6, val: int = 2, size: int = 16) -> Path:
    """root/train/<class>/*.JPEG (a few .png) and root/val/<class>/*.jpg: noisy images whose
    colour gives the class, so a tiny net can learn them in an epoch or two."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", val)):
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = np.clip(np.array(colour) + rng.normal(0, 30, (size, size, 3)), 0, 255)
                suffix = ".png" if i % 3 == 2 else (".JPEG" if split == "train" else ".jpg")
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{name}_{i}{suffix}")
    (root / "train" / "ant" / "notes.txt").write_text("not an image")  # ignored
    return root


def folder_cfg(root: Path, corpus: Path, *extra: str) -> Config:
    return load_config(
        None,
        [
            f"data.root={root}",
            "data.workers=0",
            "device=cpu",
            f"pretrain.corpus=imagefolder:{corpus}",
            "pretrain.size=16",
            "pretrain.epochs=2",
            "pretrain.batch_size=6",
            "pretrain.lr=0.01",
            *extra,
        ],
    )


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_read_imagefolder_classes_val_and_held_out(tmp_path):
    corpus = read_imagefolder(write_imagefolder(tmp_path / "in"))
    assert corpus.classes == ("ant", "bee", "cow") and corpus.val_source == "val"
    assert (len(corpus.train), len(corpus.val), corpus.files) == (18, 6, 24)
    assert {c for _, c in corpus.train} == {0, 1, 2} and all(
        p.parent.name == "ant" for p, c in corpus.val if c == 0
    )
    fp = corpus.fingerprint()
    assert fp["path"] == str((tmp_path / "in").resolve()) and (fp["classes"], fp["files"]) == (3, 24)

    no_val = tmp_path / "noval"
    write_imagefolder(no_val)
    for f in (no_val / "val").rglob("*"):
        if f.is_file():
            f.unlink()
    held = read_imagefolder(no_val, holdout=0.2)  # the last image (by name) of every class
    assert held.val_source == "train" and (len(held.train), len(held.val)) == (15, 3)
    assert sorted(c for _, c in held.val) == [0, 1, 2] and not set(held.val) & set(held.train)

    image, label, _ = ImageFolderSet(corpus.train, train_transform(12))[0]
    assert image.shape == (3, 12, 12) and image.dtype == torch.float32 and label == 0
    assert ImageFolderSet(corpus.val, eval_transform(12))[0][0].shape == (3, 12, 12)


def test_bad_layout_gives_a_one_line_error(tmp_path):
    good = write_imagefolder(tmp_path / "good")
    (tmp_path / "flat").mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"flat has no train/<class>/ folders: expected the ImageFolder"
    ):
        read_imagefolder(tmp_path / "flat")
    with pytest.raises(FileNotFoundError, match="use imagefolder:.*good$"):  # pointed at train/ itself
        read_imagefolder(good / "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_imagefolder(tmp_path / "missing")
    (good / "train" / "dog").mkdir()
    with pytest.raises(ValueError, match="train/dog has no images"):
        read_imagefolder(good)
    (good / "train" / "dog").rmdir()
    (good / "val" / "eel").mkdir()
    with pytest.raises(ValueError, match="val/eel is a class that train/ does not have"):
        read_imagefolder(good)
    with pytest.raises(ValueError, match="use shapes or imagefolder:PATH"):
        load_config(None, ["pretrain.corpus=imagenet"])
    cfg = folder_cfg(tmp_path / "cache", tmp_path / "flat")
    with pytest.raises(FileNotFoundError, match="no train/<class>/ folders"):  # before any training
        pretrain_mod.pretrain(cfg, Run(tmp_path / "run"))


def test_imagefolder_pretrain_records_top1_and_reuses_the_cache(tmp_path, monkeypatch):
    corpus = write_imagefolder(tmp_path / "corpus")
    before = _listing(corpus)
    cfg = folder_cfg(tmp_path / "cache", corpus)
    run = Run(tmp_path / "run")
    assert pretrain_mod.pretrain(cfg, run) == run.pretrain_weights
    assert _listing(corpus) == before  # the corpus folder is only read

    rows = [json.loads(line) for line in run.train_log("pretrain").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert all(0 <= r["val_top1"] <= 1 and np.isfinite(r["loss"]) for r in rows)
    assert rows[-1]["total_seconds"] > rows[0]["total_seconds"] > 0  # time so far, in ms steps
    cache = pretrain_mod.cache_dir(cfg)
    assert cache.parent == tmp_path / "cache" / "pretrain" and cache.name.startswith("tiny-corpus-")
    source = json.loads(run.pretrain_source.read_text())
    assert source["weights"] == str(cache / pretrain_mod.WEIGHTS) and source["last_epoch"] == rows[-1]
    assert source["settings"]["corpus"]["classes"] == 3 and "extra_categories" not in source["settings"]
    weights = read_weights(run.pretrain_weights)
    assert not any(k.startswith("head.1.") for k in weights)  # no 3-class head
    model = build_model("tiny", 5, str(run.pretrain_weights))  # what lnet/cam/seg.pretrained=pretrain do
    assert torch.equal(model.state_dict()["stem.0.0.weight"], weights["stem.0.0.weight"])

    def no_training(*args, **kwargs):
        raise AssertionError("must not train again")

    monkeypatch.setattr(pretrain_mod, "train_classifier", no_training)
    other = Run(tmp_path / "other-run")  # same corpus and settings: the cached weights
    pretrain_mod.pretrain(cfg, other)
    assert other.pretrain_weights.read_bytes() == run.pretrain_weights.read_bytes()
    assert pretrain_mod.cache_dir(folder_cfg(tmp_path / "cache", corpus, "pretrain.images=7")) == cache
    assert pretrain_mod.cache_dir(folder_cfg(tmp_path / "cache", corpus, "pretrain.seed=1")) != cache

    key = records.unit_key("pretrain", cfg, "")
    (corpus / "train" / "bee" / "extra.png").write_bytes((corpus / "val" / "bee" / "bee_0.jpg").read_bytes())
    assert pretrain_mod.cache_dir(cfg) != cache  # another file count: another cache
    assert records.unit_key("pretrain", cfg, "") != key  # and the run's pretrain output is stale


def test_the_generated_corpus_cache_is_shared_by_datasets_and_keyed_by_its_settings(tmp_path):
    """The backbone pretrained on the generated corpus depends on the pretrain settings only: runs
    on other datasets or splits share it; another corpus setting gets another cache."""
    root = f"data.root={tmp_path}"
    base = pretrain_mod.cache_dir(load_config(None, [root]))
    assert base.parent == tmp_path / "pretrain" and base.name.startswith("tiny-")
    assert pretrain_mod.cache_dir(load_config(None, [root, "data.split=bench-30", "seed=3"])) == base
    assert pretrain_mod.cache_dir(load_config(None, [root, "pretrain.images=100"])) != base
    assert records.unit_key("pretrain", Config(), "")["pretrain"]["corpus"] == "shapes"


def test_photos_refuse_the_generated_corpus(tmp_path, caplog):
    """The generated corpus is the benchmark's stand-in for ImageNet: a photo dataset must name a real one."""
    from datatrees import write_folder

    from c3seg.cli import main

    root = write_folder(tmp_path / "photos")
    (tmp_path / "split.yaml").write_text("strong: [cat]\n")
    args = ["run", "--config", "photos", "--out", str(tmp_path / "run"), f"data.dataset=folder:{root}",
            f"data.split={tmp_path / 'split.yaml'}", f"data.root={tmp_path / 'cache'}"]  # fmt: skip
    assert main(args) == 2
    assert "give pretrain.corpus=imagefolder:PATH" in caplog.text
    assert not (tmp_path / "run").exists()  # refused before anything is written
    corpus = write_imagefolder(tmp_path / "corpus")
    assert load_config("photos", [f"pretrain.corpus=imagefolder:{corpus}"]).lnet.pretrained == "pretrain"
