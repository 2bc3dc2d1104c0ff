"""`train-affinity` (beyond the paper; off unless `affinity.enabled`): a class-agnostic pixel
affinity learned from strong masks, for make-labels' graph (RETAB, BMVC 2022; AffinityNet, Ahn and
Kwak 2018).

The network is the segmentation backbone with a D-channel head (`affinity.dim`): an embedding e
at the backbone's output stride. Two pixels are alike when

    a_ij = exp(-|e_i - e_j|_1)

is near 1. Pairs within `affinity.radius` cells of the feature grid are labelled from the strong
masks brought to that grid (`losses.grid_labels`: cells that straddle a boundary or hold void are
left out): same class -> positive (object-object or background-background), different -> negative;
`losses.affinity_loss` is AffinityNet's 1/4 fg-pos + 1/4 bg-pos + 1/2 neg. Class identity is never
learned, only "same region or not", which is what transfers to weak categories.

Training images are the L-Net's (`engine.lnet.lnet_pairs`): the strong training images, extra
strong ones included, minus the strong hold-out; no weak image is read. After every epoch the
balanced pair accuracy on the strong hold-out (a_ij > 0.5 means "same"; 1/4 fg-pos + 1/4 bg-pos +
1/2 neg, as the loss weighs them) is logged and the best epoch's weights become the checkpoint.
make-labels reads it when affinity.enabled (c3seg.diffusion.graph.mixed_affinities).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from c3seg.config import Config
from c3seg.data.torchdata import PairSet, decoded_budget
from c3seg.data.transforms import eval_transform, train_transform
from c3seg.data.types import SegData
from c3seg.engine import distributed as dist
from c3seg.engine.lnet import lnet_pairs
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
from c3seg.losses import affinity_loss, affinity_pairs, grid_labels
from c3seg.models import build_model
from c3seg.splits import SplitSet

log = logging.getLogger(__name__)

STAGE = "affinity"
SAME = math.log(2.0)  # a_ij > 0.5  <=>  |e_i - e_j|_1 < ln 2


@torch.no_grad()
def pair_accuracy(
    model: nn.Module,
    pairs: Sequence[tuple[Path, Path | None]],
    radius: int,
    device: torch.device,
    bf16: bool = False,
) -> dict[str, float]:
    """Accuracy of a_ij > 0.5 ("same region") on the pixel pairs of full images (batch 1: sizes
    differ), per group (fg_pos, bg_pos, neg) and balanced = 1/4 fg_pos + 1/4 bg_pos + 1/2 neg, as
    the loss weighs them (a group without pairs leaves the balance to the others). NaN when no
    pair can be scored. Sharded under torchrun."""
    model.eval()
    ds = PairSet(pairs, eval_transform())
    counts = torch.zeros(3, 2, dtype=torch.float64)  # (fg_pos, bg_pos, neg) x (correct, total)
    for i in range(dist.rank(), len(ds), dist.world_size()):
        image, mask, _ = ds[i]  # (3, H, W), (H, W)
        with autocast(device, bf16):
            emb = model(image[None].to(device)).float()  # (1, D, h, w)
        labels = grid_labels(mask[None].to(device), emb.shape[-2:])  # (1, h, w)
        for d, fg, bg, neg in affinity_pairs(emb, labels, radius):
            same = d < SAME
            for k, (group, right) in enumerate(((fg, same), (bg, same), (neg, ~same))):
                counts[k, 0] += (group & right).sum().item()
                counts[k, 1] += group.sum().item()
    if dist.world_size() > 1:
        counts = dist.all_reduce_sum(counts.to(device)).cpu()
    acc = [c / t if t > 0 else float("nan") for c, t in counts.tolist()]
    weights = [0.25, 0.25, 0.5]
    scored = [(w, a) for w, a in zip(weights, acc, strict=True) if math.isfinite(a)]
    total = sum(w for w, _ in scored)
    balanced = sum(w * a for w, a in scored) / total if scored else float("nan")
    return {"fg_pos": acc[0], "bg_pos": acc[1], "neg": acc[2], "balanced": balanced}


def train_affinity(cfg: Config, run: Run, data: SegData, split: SplitSet) -> Path:
    """Train the affinity embedding on strong masks; returns its checkpoint. Skips when finished,
    resumes from the last finished epoch when interrupted; the final weights are those of the
    best hold-out epoch (balanced pair accuracy)."""
    final = run.checkpoint(STAGE)
    if final.exists():
        log.info("affinity: %s exists, skipping", final)
        return final
    ac = cfg.affinity
    seed_everything(cfg.seed)
    pairs, held = lnet_pairs(cfg, data, split)  # strong training images only, the hold-out apart
    if not pairs:
        raise ValueError(f"split {split.name} leaves no strong training image with a mask for train-affinity")
    held_pairs = [(s.image, s.mask) for s in held]
    tf = train_transform(cfg.data.crop, cfg.data.scale_min, cfg.data.scale_max, ac.hue, ac.colour, ac.affine)
    ds = PairSet(pairs, tf, keep_mb=decoded_budget(cfg.data))  # class masks as they are: 255 void
    device = dist.local_device(cfg.device)
    model = prepare(build_model(ac.backbone, ac.dim, pretrained_weights(ac, run)), device, ac)
    bf16 = use_bf16(ac, device)
    loader = make_loader(ds, ac.batch_size, cfg.data.workers, train=True, seed=cfg.seed)
    opt = make_optimizer(model, ac)
    log.info(
        "affinity: %d images, %d held out, D=%d, radius %d, %d epochs on %s",
        len(ds), len(held_pairs), ac.dim, ac.radius, ac.epochs, device,
    )  # fmt: skip

    def step(images: torch.Tensor, masks: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        with autocast(device, bf16):
            emb = model(images)  # (B, D, h, w) at the backbone's stride
        return affinity_loss(emb.float(), grid_labels(masks, emb.shape[-2:]), ac.radius)

    def score(net: nn.Module) -> dict[str, float]:
        acc = pair_accuracy(net, held_pairs, ac.radius, device, bf16) if held_pairs else {}
        return {f"holdout_pair_acc_{k}": v for k, v in acc.items()}

    best = ("holdout_pair_acc_balanced", "best_acc")
    best_epoch, best_acc = fit(run, STAGE, model, opt, loader, ac, cfg.seed, device, step, score, best)
    ck = checkpoint_dict(
        model, ac.backbone, ac.dim, epoch=best_epoch, holdout_pair_acc=best_acc, radius=ac.radius
    )
    return finish(run, STAGE, final, ck)
