"""train-lnet (Eq. 1) and train-cam (Zhou et al. 2016) on a tiny generated dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from toydata import draw_shapes

import c3seg.engine.training as training
import c3seg.evaluation.scoring as confusion
import c3seg.stages.train_cam as train_cam_mod
import c3seg.stages.train_lnet as train_lnet_mod
from c3seg.config import CamConfig, Config, DataConfig, TrainConfig
from c3seg.data.transforms import binarize, normalize
from c3seg.data.types import Sample, SegData
from c3seg.engine.run import Run
from c3seg.engine.training import load_model
from c3seg.inference.forward import class_activation_maps, foreground_prob
from c3seg.io import load_checkpoint, read_image, write_image, write_label_png
from c3seg.losses import lnet_loss
from c3seg.models import build_model
from c3seg.models.common import upsample
from c3seg.splits import SplitSet, partition

CLASSES = ("background", "red", "green", "blue")
SIDE = 48


def _draw(rng: np.random.Generator, classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return draw_shapes(rng, classes, SIDE, void_row=True)


def make_data(root: Path, n_train: int = 16, n_val: int = 4) -> SegData:
    rng = np.random.default_rng(0)
    plan = [[1], [2], [3], [1, 2], [1, 3], [2, 3], [1], [1]]  # strong = red only; the rest are weak images

    def samples(kind: str, n: int) -> tuple[Sample, ...]:
        out = []
        for i in range(n):
            classes = plan[i % len(plan)]
            img, lab = _draw(rng, classes)
            sid = f"{kind}{i:03d}"
            out.append(
                Sample(
                    sid,
                    write_image(root / "img" / f"{sid}.png", img),
                    write_label_png(root / "mask" / f"{sid}.png", lab),
                    tuple(classes),
                )
            )
        return tuple(out)

    return SegData("tiny", CLASSES, samples("tr", n_train), samples("va", n_val), root=root)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SegData:
    return make_data(tmp_path_factory.mktemp("tinydata"))


SPLIT = SplitSet("tiny-split", strong=("red",), weak=("green", "blue"))


def make_cfg(epochs: int = 2, lr: float = 0.05) -> Config:
    tc = TrainConfig(backbone="tiny", epochs=epochs, batch_size=4, lr=lr)
    return Config(
        data=DataConfig(crop=40, scale_min=0.9, scale_max=1.1, workers=0, holdout=0.2),
        lnet=tc,
        cam=CamConfig(backbone="tiny", epochs=epochs, batch_size=4, lr=lr, pool="gmp"),
        device="cpu",
    )


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_binarize_and_loss_ignore_void():
    mask = np.array([[0, 3, 255], [1, 254, 0]], np.uint8)
    assert binarize(mask).tolist() == [[0, 1, 255], [1, 1, 0]]
    logits = torch.zeros(1, 1, 2, 3, requires_grad=True)
    target = torch.from_numpy(binarize(mask)).long()[None]
    loss = lnet_loss(logits, target)
    assert loss.item() == pytest.approx(np.log(2), rel=1e-5)  # void pixel left out, the rest at p=0.5
    loss.backward()
    assert logits.grad[0, 0, 0, 2] == 0
    assert lnet_loss(logits, torch.full_like(target, 255)).item() == 0


def test_lnet_trains_skips_and_sees_strong_images_only(data, tmp_path, monkeypatch):
    seen: list[tuple[Path, Path]] = []
    real = train_lnet_mod.PairSet

    def spy(pairs, *args, **kwargs):
        seen.extend(pairs)
        return real(pairs, *args, **kwargs)

    monkeypatch.setattr(train_lnet_mod, "PairSet", spy)
    run = Run(tmp_path / "run")
    ckpt = train_lnet_mod.train_lnet(make_cfg(), run, data, SPLIT)
    assert ckpt == run.checkpoint("lnet") and ckpt.exists()
    assert not run.state("lnet").exists()
    strong, weak = partition(data, SPLIT)
    weak_images = {s.image for s in weak}
    assert seen and not weak_images & {p[0] for p in seen}
    assert {p[1] for p in seen} <= {s.mask for s in strong}
    rows = read_log(run.train_log("lnet"))
    assert [r["epoch"] for r in rows] == [0, 1]
    assert all(np.isfinite(r["loss"]) for r in rows) and "holdout_fg_iou" in rows[0]
    ck = load_checkpoint(ckpt)
    assert ck["out_channels"] == 1 and ck["epoch"] in (0, 1)
    model = load_model(ckpt)
    img = normalize(torch.from_numpy(read_image(data.val[0].image)).permute(2, 0, 1)[None])
    m = foreground_prob(model, img)  # (1, H, W)
    assert m.shape == (1, SIDE, SIDE) and 0 <= m.min() and m.max() <= 1
    mtime = ckpt.stat().st_mtime_ns
    assert train_lnet_mod.train_lnet(make_cfg(), run, data, SPLIT) == ckpt  # finished: skips
    assert ckpt.stat().st_mtime_ns == mtime


def test_lnet_adds_extra_strong_images(data, tmp_path):
    extra = make_data(tmp_path / "extra", n_train=4, n_val=0).train
    pairs, held = train_lnet_mod.lnet_pairs(
        make_cfg(), SegData(**{**vars(data), "extra_strong": extra}), SPLIT
    )
    extra_images, held_images = {s.image for s in extra}, {s.image for s in held}
    assert extra_images - held_images and extra_images - held_images <= {p[0] for p in pairs}
    assert extra_images & held_images  # the extra images have a hold-out of their own (split 4)
    assert not held_images & {p[0] for p in pairs}


def _interrupt_after_first_epoch(module, monkeypatch):
    real = module.save_state

    def save_then_fail(path, **state):
        real(path, **state)
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(module, "save_state", save_then_fail)


@pytest.mark.parametrize("module,stage", [(train_lnet_mod, "lnet"), (train_cam_mod, "cam")])
def test_interrupted_stage_resumes(data, tmp_path, monkeypatch, module, stage):
    run = Run(tmp_path / "run")
    fn = getattr(module, f"train_{stage}")
    with monkeypatch.context() as m:
        _interrupt_after_first_epoch(training, m)  # the epochs run in engine.training.fit
        with pytest.raises(KeyboardInterrupt):
            fn(make_cfg(), run, data, SPLIT)
    assert run.state(stage).exists() and not run.checkpoint(stage).exists()
    assert [r["epoch"] for r in read_log(run.train_log(stage))] == [0]
    fn(make_cfg(), run, data, SPLIT)
    assert run.checkpoint(stage).exists() and not run.state(stage).exists()
    assert [r["epoch"] for r in read_log(run.train_log(stage))] == [0, 1]  # epoch 0 not repeated


def test_cam_trains_on_labels_of_all_images_and_gives_normalized_cams(data, tmp_path, monkeypatch):
    seen: list[tuple[Path, ...]] = []
    real = train_cam_mod.LabelSet

    def spy(images, labels, *args, **kwargs):
        seen.append(tuple(images))
        return real(images, labels, *args, **kwargs)

    monkeypatch.setattr(train_cam_mod, "LabelSet", spy)
    run = Run(tmp_path / "run")
    ckpt = train_cam_mod.train_cam(make_cfg(epochs=2, lr=0.05), run, data, SPLIT)
    assert ckpt.exists() and load_checkpoint(ckpt)["out_channels"] == len(CLASSES) - 1
    # training + hold-out together are every training image, strong and weak
    assert {p for images in seen for p in images} == {s.image for s in data.train}
    rows = read_log(run.train_log("cam"))
    assert [r["epoch"] for r in rows] == [0, 1] and {"holdout_f1", "holdout_map"} <= set(rows[0])
    model = load_model(ckpt)
    img = normalize(torch.from_numpy(read_image(data.val[3].image)).permute(2, 0, 1)[None])
    cams = class_activation_maps(model, img)  # (1, C-1, H, W)
    assert cams.shape == (1, len(CLASSES) - 1, SIDE, SIDE)
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6
    peaks = cams.flatten(2).amax(-1)[0]  # (C-1,): 1 where a class has any positive activation, else 0
    assert all(p == pytest.approx(1.0, abs=1e-4) or p == 0 for p in peaks.tolist())
    assert train_cam_mod.train_cam(make_cfg(), run, data, SPLIT) == ckpt  # finished: skips


def test_multilabel_metrics():
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    perfect = confusion.multilabel_metrics(labels * 4 - 2, labels)
    assert perfect == {"f1": 1.0, "map": 1.0}
    ap = confusion.average_precision(torch.tensor([[0.9], [0.8], [0.1]]), torch.tensor([[0.0], [1.0], [1.0]]))
    assert ap.item() == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_multi_scale_maps_average_rescaled_and_mirrored_passes() -> None:
    torch.manual_seed(0)
    lnet, cam_net = build_model("tiny", 1).eval(), build_model("tiny", 4).eval()
    img = torch.randn(2, 3, 40, 48)
    m1 = foreground_prob(lnet, img)
    assert torch.equal(foreground_prob(lnet, img, (1.0,)), m1)  # one scale, no flip: the plain map
    ms = foreground_prob(lnet, img, (1.0, 1.5), flip=True)
    mirrored = torch.sigmoid(upsample(lnet(img.flip(-1)), img.shape[-2:])[:, 0]).flip(-1)
    big = F.interpolate(img, scale_factor=1.5, mode="bilinear", align_corners=False)
    upscaled = torch.sigmoid(upsample(lnet(big), img.shape[-2:])[:, 0])
    upscaled_m = torch.sigmoid(upsample(lnet(big.flip(-1)), img.shape[-2:])[:, 0]).flip(-1)
    torch.testing.assert_close(ms, (m1 + mirrored + upscaled + upscaled_m) / 4)
    cams = class_activation_maps(cam_net, img, scales=(0.75, 1.0, 1.5))
    assert cams.shape == (2, 4, 40, 48) and cams.min() >= 0 and cams.max() <= 1 + 1e-6
