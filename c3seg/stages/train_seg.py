"""`train-seg`: the segmentation network (DeepLab-LargeFOV in the paper) with multi-class
cross-entropy on strong masks plus the pseudo labels L_w of weak images.

Each method differs only in which masks it trains on:

| method            | strong images   | weak images                         |
|-------------------|-----------------|-------------------------------------|
| fully-supervised  | ground truth    | ground truth (the reference ceiling) |
| strong-only       | ground truth    | not used                            |
| cam-threshold     | ground truth    | CAM-threshold labels (AE's role)    |
| lnet-cam          | ground truth    | L-Net foreground x CAM argmax       |
| diffusion-no-m    | ground truth    | self-diffusion without M            |
| lnet              | ground truth    | self-diffusion labels (the method)  |

A deterministic part of the strong and of the weak images (`data.holdout`) is kept out of
training in every method; train-pnet chooses its checkpoint on it (strong: masks, weak: image-level
labels only).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from c3seg.config import Config
from c3seg.data.torchdata import PairSet, decoded_budget
from c3seg.data.transforms import train_transform
from c3seg.data.types import SegData
from c3seg.engine import distributed as dist
from c3seg.engine.run import Run
from c3seg.engine.training import (
    autocast,
    checkpoint_dict,
    finish,
    fit,
    make_loader,
    make_optimizer,
    prepare,
    pretrained_weights,
    seed_everything,
    use_bf16,
)
from c3seg.losses import segmentation_loss
from c3seg.methods import METHODS, method_pairs
from c3seg.models import build_model
from c3seg.models.common import upsample
from c3seg.splits import SplitSet

log = logging.getLogger(__name__)


def train_seg(cfg: Config, run: Run, data: SegData, split: SplitSet, method: str) -> Path:
    """Train one method's segmentation network; returns its checkpoint. Skips when finished,
    resumes from the last finished epoch when interrupted."""
    stage = run.seg_stage(method)
    final = run.checkpoint(stage)
    if final.exists():
        log.info("%s: %s exists, skipping", method, final)
        return final
    tc = cfg.seg
    seed_everything(cfg.seed)
    device = dist.local_device(cfg.device)
    pairs = method_pairs(cfg, run, data, split, method)
    tf = train_transform(cfg.data.crop, cfg.data.scale_min, cfg.data.scale_max)
    ds = PairSet(pairs, tf, keep_mb=decoded_budget(cfg.data))
    seg_loss = segmentation_loss(tc, data, pairs, device, method)
    loader = make_loader(ds, tc.batch_size, cfg.data.workers, train=True, seed=cfg.seed)
    model = prepare(build_model(tc.backbone, data.num_classes, pretrained_weights(tc, run)), device, tc)
    bf16 = use_bf16(tc, device)
    opt = make_optimizer(model, tc)
    log.info("%s: %d training images, %d epochs on %s", method, len(ds), tc.epochs, device)

    def step(images: torch.Tensor, masks: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        with autocast(device, bf16):
            logits = upsample(model(images), masks.shape[-2:]).float()  # (B, C, H, W)
        return seg_loss(logits, masks, idx)

    fit(run, stage, model, opt, loader, tc, cfg.seed, device, step)
    ck = checkpoint_dict(model, tc.backbone, data.num_classes, method=method, classes=list(data.classes))
    return finish(run, stage, final, ck)


def train_seg_methods(cfg: Config, run: Run, data: SegData, split: SplitSet) -> Path:
    """The `train-seg` stage: every method in cfg.methods that train-seg trains."""
    for method in cfg.methods:
        if method in METHODS:
            train_seg(cfg, run, data, split, method)
    return run.seg_dir
