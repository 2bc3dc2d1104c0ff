"""P-Net (Table 1), the product encoding, and the train-pnet stage (Eq. 4-5) on tiny generated data."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from toydata import draw_shapes

import c3seg.stages.train_pnet as train_pnet_mod
from c3seg.config import Config, DataConfig, PNetConfig, SegConfig
from c3seg.data.types import Sample, SegData
from c3seg.engine.run import Run
from c3seg.engine.training import checkpoint_dict
from c3seg.io import load_checkpoint, read_label, save_checkpoint, write_image, write_label_png
from c3seg.models import build_model
from c3seg.models.pnet import PNet, label_maps, product_encoding
from c3seg.splits import holdout, load_split, partition

CLASSES = ("background", "red", "green")
SIDE = 48


@pytest.mark.parametrize("size,num_classes", [(32, 3), (64, 21), (48, 2)])
def test_pnet_layers_match_table1(size: int, num_classes: int) -> None:
    net = PNet(num_classes, size)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64, 128, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert convs[0].in_channels == 3 * num_classes
    pools = [m for m in net.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    assert net.fc4.in_features == 128 * (size // 8) ** 2
    assert (net.fc4.out_features, net.fc5.out_features, net.fc6.out_features) == (256, 512, 1)
    x = torch.rand(2, 3 * num_classes, size, size)
    feats = net.conv3(net.conv2(net.conv1(x)))
    assert feats.shape == (2, 128, size // 8, size // 8)
    assert net(x).shape == (2,)
    with pytest.raises(ValueError, match="expects"):
        net(torch.rand(1, 3 * num_classes, size + 8, size + 8))


def test_product_encoding_shapes_and_values() -> None:
    images = torch.rand(2, 3, 5, 7)
    maps = torch.softmax(torch.randn(2, 4, 5, 7), 1)
    enc = product_encoding(images, maps)
    assert enc.shape == (2, 12, 5, 7)
    for c in range(4):
        assert torch.allclose(enc[:, 3 * c : 3 * c + 3], images * maps[:, c : c + 1])
    # summing the C blocks recovers the image, since the maps sum to 1 per pixel
    assert torch.allclose(enc.view(2, 4, 3, 5, 7).sum(1), images, atol=1e-6)


def test_label_maps_one_hot_and_void_takes_prediction() -> None:
    masks = torch.tensor([[[0, 1], [2, 255]]])  # (1, 2, 2)
    probs = torch.softmax(torch.randn(1, 3, 2, 2), 1)
    maps = label_maps(masks, probs)
    assert maps.shape == (1, 3, 2, 2)
    assert maps[0, :, 0, 0].tolist() == [1, 0, 0] and maps[0, :, 1, 0].tolist() == [0, 0, 1]
    assert torch.equal(maps[0, :, 1, 1], probs[0, :, 1, 1])  # void: identical real and fake input


def _draw(rng: np.random.Generator, classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return draw_shapes(rng, classes, SIDE, void_row=False)


def make_data(root: Path, n_train: int = 12) -> SegData:
    """Strong class 'red' (squares), weak class 'green' (discs)."""
    rng = np.random.default_rng(0)
    plan = [[1], [2], [1, 2], [1]]

    def samples(kind: str, n: int) -> tuple[Sample, ...]:
        out = []
        for i in range(n):
            img, lab = _draw(rng, plan[i % len(plan)])
            sid = f"{kind}{i:03d}"
            image = write_image(root / "img" / f"{sid}.png", img)
            mask = write_label_png(root / "mask" / f"{sid}.png", lab)
            out.append(Sample(sid, image, mask, tuple(sorted(set(np.unique(lab).tolist()) - {0, 255}))))
        return tuple(out)

    return SegData("tiny", CLASSES, samples("train", n_train), samples("val", 2), root=root)


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Config, Run, SegData, object]:
    data = make_data(tmp_path / "data")
    (tmp_path / "split.yaml").write_text("strong: [red]\n")
    split = load_split(tmp_path / "split.yaml", data.classes)
    run = Run(tmp_path / "run")
    _, weak = partition(data, split)
    for s in weak:  # pseudo labels: the weak class only (strong objects missed, as L_w can)
        lab = read_label(s.mask).copy()
        lab[lab == 1] = 0
        write_label_png(run.label_path("diffusion", s.id), lab)
    torch.manual_seed(0)
    seg = build_model("tiny", data.num_classes)
    save_checkpoint(run.checkpoint("seg/lnet"), checkpoint_dict(seg, "tiny", data.num_classes, method="lnet"))
    cfg = Config(
        data=DataConfig(crop=32, workers=0, holdout=0.25),
        seg=SegConfig(amp=False),
        pnet=PNetConfig(
            pretrain_epochs=2,
            finetune_epochs=2,
            batch_size=4,
            lr_seg=1e-3,
            lr_pnet=1e-3,
            optim_pnet="adam",
            input_size=16,
        ),
        device="cpu",
    )
    return cfg, run, data, split


def test_train_pnet_stage(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, run, data, split = setup
    strong, _ = partition(data, split)
    _, held = holdout(strong, cfg.data.holdout)
    held_images = {s.image for s in held}
    evaluated: list[set[Path]] = []
    real_eval = train_pnet_mod.evaluate_model

    def spy(model, pairs, num_classes, device, amp=True):
        evaluated.append({p[0] for p in pairs})
        return real_eval(model, pairs, num_classes, device, amp)

    monkeypatch.setattr(train_pnet_mod, "evaluate_model", spy)
    out = train_pnet_mod.train_pnet(cfg, run, data, split)
    assert out == run.checkpoint("seg/pnet") and out.exists()
    # chosen on the strong hold-out only: epoch 0 plus each fine-tuning epoch (eval_every=1)
    assert len(evaluated) == 1 + cfg.pnet.finetune_epochs
    assert all(imgs == held_images for imgs in evaluated)
    ck = load_checkpoint(out)
    assert ck["method"] == "pnet" and ck["backbone"] == "tiny" and ck["out_channels"] == 3
    assert 0 <= ck["epoch"] <= cfg.pnet.finetune_epochs
    disc = load_checkpoint(run.checkpoint("pnet"))
    PNet(3, disc["input_size"]).load_state_dict(disc["model"])
    rows = [json.loads(line) for line in run.train_log("seg/pnet").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["start", "pretrain", "pretrain", "finetune", "finetune"]
    for r in rows[1:]:
        assert np.isfinite(r["d_loss"]) and 0 <= r["d_acc_real"] <= 1 and 0 <= r["d_acc_fake"] <= 1
    assert all("seg_ce" in r and "holdout_miou" in r and "weak_label_f1" in r for r in rows[3:])
    assert max(r.get("score", -1) for r in rows) == pytest.approx(ck["selection_score"])
    assert ck["selection"] == "strong+labels"
    assert not run.state("seg/pnet").exists()
    # a second call skips
    mtime = out.stat().st_mtime
    evaluated.clear()
    assert train_pnet_mod.train_pnet(cfg, run, data, split) == out
    assert out.stat().st_mtime == mtime and not evaluated


def test_train_pnet_resumes_and_keeps_best(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, run, data, split = setup
    calls = iter([50.0, 40.0, 60.0, 55.0])  # epoch 0, then fine-tuning epochs

    def fake_score(*args, **kwargs):
        x = next(calls)
        return {"holdout_miou": x, "score": x}

    monkeypatch.setattr(train_pnet_mod, "selection_score", fake_score)
    original = train_pnet_mod.run_epoch
    n = {"epochs": 0}

    def crash_after_three(*args, **kwargs):
        if n["epochs"] == 3:
            raise KeyboardInterrupt
        n["epochs"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(train_pnet_mod, "run_epoch", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        train_pnet_mod.train_pnet(cfg, run, data, split)
    assert run.state("seg/pnet").exists() and not run.checkpoint("seg/pnet").exists()
    monkeypatch.setattr(train_pnet_mod, "run_epoch", original)
    train_pnet_mod.train_pnet(cfg, run, data, split)  # resumes at the 2nd fine-tuning epoch
    ck = load_checkpoint(run.checkpoint("seg/pnet"))
    assert ck["epoch"] == 2 and ck["holdout_miou"] == 60.0  # the best epoch, not the last (55)


def test_train_pnet_needs_lnet(setup) -> None:
    cfg, run, data, split = setup
    run.checkpoint("seg/lnet").unlink()
    with pytest.raises(FileNotFoundError, match="lnet"):
        train_pnet_mod.train_pnet(cfg, run, data, split)


class _Constant(torch.nn.Module):
    """A 'segmentation net' that predicts one class everywhere."""

    def __init__(self, num_classes: int, cls: int) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(num_classes))
        with torch.no_grad():
            self.logits[cls] = 5.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[None, :, None, None].expand(x.shape[0], -1, x.shape[2] // 4, x.shape[3] // 4)


def test_selection_with_labels_sees_weak_classes(setup) -> None:
    """strong+labels scores a net that finds the weak class above one that calls it background,
    from image-level labels of the weak hold-out alone."""
    cfg, run, data, split = setup
    weak_held = train_pnet_mod.weak_holdout(cfg, data, split)
    assert weak_held and all(2 in s.labels for s in weak_held)
    held = train_pnet_mod.holdout_pairs(cfg, data, split)
    dev = torch.device("cpu")
    finds = train_pnet_mod.selection_score(_Constant(3, 2), held, weak_held, cfg, data, dev)
    misses = train_pnet_mod.selection_score(_Constant(3, 0), held, weak_held, cfg, data, dev)
    assert finds["weak_label_f1"] > misses["weak_label_f1"] == 0.0
    assert finds["score"] == pytest.approx(0.5 * (finds["holdout_miou"] + finds["weak_label_f1"]))
    strong_only = replace(cfg, pnet=replace(cfg.pnet, select="strong"))
    s = train_pnet_mod.selection_score(_Constant(3, 2), held, weak_held, strong_only, data, dev)
    assert s["score"] == s["holdout_miou"] and "weak_label_f1" not in s
    with pytest.raises(ValueError, match="pnet.select"):
        bad = replace(cfg, pnet=replace(cfg.pnet, select="val"))
        train_pnet_mod.selection_score(_Constant(3, 2), held, weak_held, bad, data, dev)


def test_finetuning_uses_train_segs_loss(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """J_m of Eq. 4 is train-seg's loss (class balance, image-label term), built on the pairs the
    P-Net fine-tunes on and called with each batch's positions in them."""
    cfg, run, data, split = setup
    cfg = dataclasses.replace(cfg, seg=SegConfig(amp=False, label_loss=1.0, class_balance=0.25))
    built, calls = [], []
    real = train_pnet_mod.segmentation_loss

    def spy(tc, data_, pairs, device, name):
        built.append((tc, len(pairs)))
        loss = real(tc, data_, pairs, device, name)

        def counted(logits, masks, idx):
            calls.append(idx.clone())
            assert int(idx.max()) < len(pairs)
            return loss(logits, masks, idx)

        return counted

    monkeypatch.setattr(train_pnet_mod, "segmentation_loss", spy)
    train_pnet_mod.train_pnet(cfg, run, data, split)
    assert built and built[0][0].label_loss == 1.0 and built[0][0].class_balance == 0.25
    assert calls  # every fine-tuning batch
