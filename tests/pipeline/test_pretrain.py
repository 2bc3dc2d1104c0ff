"""The pretraining corpus and the `pretrain` stage; `pretrained=pretrain` in the training stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import toydata

import c3seg.data.synthetic.corpus as corpus_mod
import c3seg.engine.lnet as lnet_loop
import c3seg.stages.pretrain as pretrain_mod
import c3seg.stages.train_cam as train_cam_mod
import c3seg.stages.train_lnet as train_lnet_mod
import c3seg.stages.train_seg as train_seg_mod
from c3seg.config import Config, load_config
from c3seg.data.synthetic.benchmark import SPLITS, image_rng, render
from c3seg.data.synthetic.corpus import corpus_rng, generate_corpus, load_corpus, render_labelled
from c3seg.data.synthetic.pretrain_shapes import LAYOUTS, corpus_categories
from c3seg.data.synthetic.shapes import CATEGORIES, Canvas
from c3seg.engine.run import Run
from c3seg.io import read_image
from c3seg.models import build_model
from c3seg.models.weights import read_weights
from c3seg.pipeline import STAGES, needed, parse_stages
from c3seg.splits import SplitSet

torch.set_num_threads(1)

TINY = dict(images=12, size=32, seed=0, extra=8)
SPLIT = SplitSet("toy-split", strong=("red", "green"), weak=("blue",))
PROBE = "stem.0.0.weight"  # a backbone tensor of the tiny net


def tiny_cfg(root: Path, *extra: str) -> Config:
    return load_config(
        None,
        [
            f"data.root={root}",
            "data.workers=0",
            "data.crop=32",
            "device=cpu",
            "pretrain.images=40",
            "pretrain.size=32",
            "pretrain.crop=32",
            "pretrain.epochs=1",
            "pretrain.batch_size=8",
            "pretrain.holdout=0.2",
            *extra,
        ],
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_corpus_has_the_benchmark_categories_and_more():
    cats = corpus_categories(32)
    assert list(cats)[: len(CATEGORIES)] == list(CATEGORIES)  # the targets first, in benchmark order
    assert len(cats) == 48 and {fam for fam, _ in cats.values()} == set(LAYOUTS)
    assert list(corpus_categories(4)) == list(cats)[:20]  # more categories never change earlier ones


def test_every_extra_category_draws_its_own_object():
    drawings = []
    for name, (_, draw) in list(corpus_categories(12).items())[len(CATEGORIES) :]:
        y, x = np.mgrid[0:64, 0:64].astype(np.float32) - 32
        c = Canvas(np.random.default_rng(0), x / 20, y / 20, 20.0)
        draw(c)
        assert 0.02 < c.mask.mean() < 0.9, name
        drawings.append(c.rgb)
    for i in range(len(drawings)):
        for j in range(i):
            assert not np.array_equal(drawings[i], drawings[j])


def test_corpus_is_deterministic_with_labels_only(tmp_path):
    a = generate_corpus(tmp_path / "a", **TINY)
    b = generate_corpus(tmp_path / "b", **TINY)
    c = generate_corpus(tmp_path / "c", **{**TINY, "seed": 1})
    files = _files(a)
    assert files == _files(b) and files != _files(c)
    # labels only: images, a labels file and the category list; no mask anywhere
    assert {Path(f).suffix for f in files} == {".jpg", ".csv", ".txt"}
    corpus = load_corpus(tmp_path, **TINY)  # generated anew under its settings-keyed name
    assert corpus.folder.name == "pretrain-corpus-v1-s0-32px-12-24c"
    assert corpus.num_categories == 24 and corpus.categories[:16] == tuple(CATEGORIES)
    draws = [d for _, d in corpus_categories(TINY["extra"]).values()]
    for i, (path, labels) in enumerate(zip(corpus.images, corpus.labels)):
        image, expected = render_labelled(corpus_rng(0, i), 32, draws)
        assert labels == expected and all(0 <= k < 24 for k in labels)
        assert np.abs(read_image(path).astype(int) - image).mean() < 15  # JPEG of this image (noisy, 32 px)
    assert sum(map(len, corpus.labels)) >= len(corpus.labels)  # about one visible object an image or more


def test_corpus_never_draws_a_benchmark_image():
    assert corpus_mod.STREAM not in SPLITS.values()
    draws = [d for _, d in corpus_categories(8).values()]
    for seed in range(3):
        for i in range(4):
            image, _ = render_labelled(corpus_rng(seed, i), 48, draws)
            for split in SPLITS:
                assert not np.array_equal(image, render(image_rng(seed, split, i), 48)[0])


def test_pool_gives_the_same_corpus_as_one_process(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod, "CHUNK", 3)  # 4 tasks: enough to use the pool
    one = generate_corpus(tmp_path / "one", processes=1, **TINY)
    two = generate_corpus(tmp_path / "two", processes=2, **TINY)
    assert _files(one) == _files(two)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Run]:
    root = tmp_path_factory.mktemp("pretrain")
    cfg = tiny_cfg(root / "cache")
    run = Run(root / "run")
    assert pretrain_mod.pretrain(cfg, run, None, None) == run.pretrain_weights
    return cfg, run


def test_pretrain_stage_writes_backbone_weights_and_skips(pretrained, tmp_path, monkeypatch):
    cfg, run = pretrained
    weights = read_weights(run.pretrain_weights)
    assert PROBE in weights and not any(k.startswith("head.1.") for k in weights)  # no corpus-class head
    model = build_model("tiny", 3, str(run.pretrain_weights))  # loads into a net of another class count
    assert torch.equal(model.state_dict()[PROBE], weights[PROBE])
    rows = [json.loads(line) for line in run.train_log("pretrain").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0]
    assert np.isfinite(rows[0]["loss"]) and "holdout_map" in rows[0] and rows[0]["images_per_s"] > 0
    assert json.loads(run.pretrain_source.read_text())["settings"]["images"] == 40

    def no_training(*args, **kwargs):
        raise AssertionError("must not train again")

    monkeypatch.setattr(pretrain_mod, "train_backbone", no_training)
    assert pretrain_mod.pretrain(cfg, run, None, None) == run.pretrain_weights  # done: skips
    other = Run(tmp_path / "other-run")  # same settings: the cached weights, no training
    pretrain_mod.pretrain(cfg, other, None, None)
    assert other.pretrain_weights.read_bytes() == run.pretrain_weights.read_bytes()
    changed = tiny_cfg(Path(cfg.data.root), "pretrain.extra_categories=4")
    assert pretrain_mod.cache_dir(changed) != pretrain_mod.cache_dir(cfg)  # keyed by the settings


class _Built(Exception):
    """Raised by the patched `prepare`: the network is built and loaded, no need to train it."""


@pytest.mark.parametrize("stage", ["lnet", "cam", "seg"])
def test_pretrained_pretrain_initializes_the_networks(pretrained, stage, tmp_path, monkeypatch):
    cfg, run = pretrained
    data = toydata.make(tmp_path / "data", n_train=8, n_val=2, size=32)
    module = {"lnet": train_lnet_mod, "cam": train_cam_mod, "seg": train_seg_mod}[stage]
    built = []

    def capture(model, device, tc=None):
        built.append(model.state_dict()[PROBE].clone())
        raise _Built

    monkeypatch.setattr(lnet_loop if stage == "lnet" else module, "prepare", capture)  # the L-Net's loop

    def start(setting: str) -> torch.Tensor:
        c = load_config(
            None,
            [f"data.root={cfg.data.root}", "data.workers=0", "device=cpu", f"{stage}.pretrained={setting}"],
        )
        with pytest.raises(_Built):
            if stage == "seg":
                module.train_seg(c, run, data, SPLIT, "fully-supervised")
            else:
                getattr(module, f"train_{stage}")(c, run, data, SPLIT)
        return built[-1]

    expected = read_weights(run.pretrain_weights)[PROBE]
    assert torch.equal(start("pretrain"), expected)
    assert not torch.equal(start("none"), expected)


def test_missing_pretrain_output_says_what_to_run(tmp_path):
    cfg = load_config(None, ["data.workers=0", "lnet.pretrained=pretrain"])
    data = toydata.make(tmp_path / "data", n_train=8, n_val=2, size=32)
    with pytest.raises(FileNotFoundError, match="run 'c3seg run --stages pretrain' first"):
        train_lnet_mod.train_lnet(cfg, Run(tmp_path / "run"), data, SPLIT)


def test_pipeline_runs_pretrain_first_and_only_when_asked():
    assert list(STAGES)[0] == "pretrain" and parse_stages("train-cam,pretrain") == ["pretrain", "train-cam"]
    assert not needed("pretrain", load_config(None))  # the built-in defaults train from scratch
    assert needed("pretrain", load_config("benchmark"))  # the benchmark config pretrains every network
    for net in ("lnet", "cam", "seg"):
        assert needed("pretrain", load_config(None, [f"{net}.pretrained=pretrain"]))
    # the L-Net is not trained when no method uses pseudo labels, so it needs no pretraining either
    assert not needed("pretrain", load_config(None, ["lnet.pretrained=pretrain", "methods=fully-supervised"]))


def test_pretrain_settings():
    cfg = load_config(None, ["pretrain.images=100", "pretrain.extra_categories=8"])
    assert (cfg.pretrain.images, cfg.pretrain.extra_categories, cfg.pretrain.optimizer) == (100, 8, "adamw")
    assert Config().pretrain.images == 6000 and Config().pretrain.size == 112
    with pytest.raises(ValueError, match="from itself"):
        pretrain_mod.pretrain(load_config(None, ["pretrain.pretrained=pretrain"]), Run("/nonexistent"))
