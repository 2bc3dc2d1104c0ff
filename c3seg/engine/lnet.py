"""The L-Net's training loop (Eq. 1), shared by `train-lnet` and the self-training rounds.

`fit_lnet` trains from given weights on a dataset of (image, 0 / 1 / 255 target) pairs; after
every epoch it scores the foreground IoU on the strong hold-out (`foreground_iou`) and keeps the
best epoch's weights. `lnet_pairs` gives the strong training pairs and the strong hold-out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from c3seg.config import Config, TrainConfig
from c3seg.data.torchdata import PairSet
from c3seg.data.transforms import VOID, binarize, eval_transform
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
    unwrap,
    use_bf16,
)
from c3seg.inference.forward import foreground_prob
from c3seg.losses import lnet_loss
from c3seg.models.common import upsample
from c3seg.splits import SplitSet, assert_no_weak_masks, partition, strong_holdout

log = logging.getLogger(__name__)


def lnet_pairs(cfg: Config, data: SegData, split: SplitSet) -> tuple[list[tuple[Path, Path]], list]:
    """(training pairs, held-out strong samples): the strong images, extra_strong included (their
    masks in their own classes: the L-Net reads them class-agnostically), minus the strong hold-out."""
    _, weak = partition(data, split)
    kept, held = strong_holdout(data, split, cfg.data.holdout)
    pairs = [(s.image, s.mask) for s in kept if s.mask is not None]
    assert_no_weak_masks(pairs, weak)  # extra_strong comes from another dataset; guard it too
    return pairs, held


@torch.no_grad()
def foreground_iou(
    model: nn.Module,
    pairs: Sequence[tuple[Path, Path | None]],
    device: torch.device,
    bf16: bool = False,
    threshold: float = 0.5,
) -> float:
    """Foreground IoU of M > threshold against binarized masks, accumulated over all pairs (full
    images, batch 1: sizes differ); sharded under torchrun. NaN when there is no pixel to score."""
    model.eval()
    ds = PairSet(pairs, eval_transform(), target=binarize)
    counts = torch.zeros(3, dtype=torch.float64)  # tp, fp, fn
    for i in range(dist.rank(), len(ds), dist.world_size()):
        image, target, _ = ds[i]  # (3, H, W), (H, W)
        with autocast(device, bf16):
            pred = foreground_prob(model, image[None].to(device))[0].cpu() > threshold  # (H, W)
        valid = target != VOID
        fg = (target == 1) & valid
        counts += torch.tensor(
            [(pred & fg).sum().item(), (pred & ~fg & valid).sum().item(), (~pred & fg).sum().item()],
            dtype=torch.float64,
        )
    if dist.world_size() > 1:
        counts = dist.all_reduce_sum(counts.to(device)).cpu()
    tp, fp, fn = counts.tolist()
    return tp / (tp + fp + fn) if tp + fp + fn > 0 else float("nan")


def fit_lnet(
    cfg: Config,
    tc: TrainConfig,
    run: Run,
    stage: str,
    model: nn.Module,
    ds: Dataset,
    held_pairs: list[tuple[Path, Path | None]],
    keep_best: bool = True,
) -> Path:
    """The L-Net's training loop (Eq. 1) on `ds` (targets 0 / 1 / 255) from `model`'s weights,
    written to run.checkpoint(stage): per epoch the foreground IoU on the strong hold-out is logged,
    and the best epoch's weights are kept (`keep_best`; else the last epoch's). Resumes from
    run.state(stage). Also used by self-training (c3seg.stages.self_train), which fine-tunes the
    L-Net on strong masks plus weak-image targets."""
    device = dist.local_device(cfg.device)
    loader = make_loader(ds, tc.batch_size, cfg.data.workers, train=True, seed=cfg.seed)
    model = prepare(model, device, tc)
    bf16 = use_bf16(tc, device)
    opt = make_optimizer(model, tc)
    log.info(
        "%s: %d images, %d held out, %d epochs on %s",
        stage,
        len(ds),  # type: ignore[arg-type]  # map-style datasets have a length
        len(held_pairs),
        tc.epochs,
        device,
    )

    def step(images: torch.Tensor, masks: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        with autocast(device, bf16):
            logits = upsample(model(images), masks.shape[-2:])  # (B, 1, H, W)
        return lnet_loss(logits.float(), masks)

    def score(net: nn.Module) -> dict[str, float]:
        iou = foreground_iou(net, held_pairs, device, bf16) if held_pairs else float("nan")
        return {"holdout_fg_iou": iou}

    keep = ("holdout_fg_iou", "best_iou") if keep_best else None
    epoch, iou = fit(run, stage, model, opt, loader, tc, cfg.seed, device, step, score, keep)
    if not keep_best:  # the last epoch's weights, and its hold-out score for the record
        epoch, iou = tc.epochs - 1, score(unwrap(model))["holdout_fg_iou"]
    ck = checkpoint_dict(model, tc.backbone, 1, epoch=epoch, holdout_fg_iou=iou)
    return finish(run, stage, run.checkpoint(stage), ck)
