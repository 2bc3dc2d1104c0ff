"""`train-cam`: the multi-label classifier whose class activation maps A^c seed self-diffusion
(Zhou et al. 2016, "Learning Deep Features for Discriminative Localization").

Zhou et al. score class c as w_c · GAP(f) and read A^c = w_c · f at every position. Both steps are
linear, so GAP(w_c · f) == w_c · GAP(f): we build the backbone with C-1 output channels (one score
map per foreground class) and average it globally to get the image-level logits. The pre-pooling
map is exactly the CAM that `c3seg.inference.forward.class_activation_maps` reads.

Loss: sigmoid binary cross-entropy over the C-1 foreground classes (multi-label soft margin) on
the image-level labels of ALL training images, strong and weak. Only labels are read, never a
mask (`LabelSet`). A deterministic part of the training images (`data.holdout`, by a hash of the
id) is kept out to log multi-label F1 and mAP each epoch; the final checkpoint is the last epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from c3seg.config import Config
from c3seg.data.torchdata import LabelSet, decoded_budget
from c3seg.data.transforms import eval_transform, train_transform
from c3seg.data.types import Sample, SegData
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
from c3seg.evaluation.scoring import evaluate_classifier
from c3seg.inference.forward import pool_scores
from c3seg.models import build_model
from c3seg.splits import SplitSet, holdout

log = logging.getLogger(__name__)

STAGE = "cam"


def label_set(samples: Sequence[Sample], num_classes: int, transform: Callable, keep_mb: int = 0) -> LabelSet:
    """Images with their image-level labels only: a LabelSet never opens a mask."""
    return LabelSet([s.image for s in samples], [s.labels for s in samples], num_classes, transform, keep_mb)


def train_cam(cfg: Config, run: Run, data: SegData, split: SplitSet) -> Path:
    """Train the CAM classifier (Zhou et al. 2016) on image-level labels of every training image;
    returns its checkpoint. Skips when finished, resumes from the last finished epoch."""
    final = run.checkpoint(STAGE)
    if final.exists():
        log.info("cam: %s exists, skipping", final)
        return final
    tc = cfg.cam
    k = data.num_classes - 1  # foreground classes; background has no CAM
    seed_everything(cfg.seed)
    device = dist.local_device(cfg.device)
    train, held = holdout(list(data.train), cfg.data.holdout)
    tf = train_transform(cfg.data.crop, cfg.data.scale_min, cfg.data.scale_max)
    ds = label_set(train, data.num_classes, tf, decoded_budget(cfg.data))
    held_ds = label_set(held, data.num_classes, eval_transform())
    loader = make_loader(ds, tc.batch_size, cfg.data.workers, train=True, seed=cfg.seed)
    model = prepare(build_model(tc.backbone, k, pretrained_weights(tc, run)), device, tc)
    bf16 = use_bf16(tc, device)
    opt = make_optimizer(model, tc)
    log.info(
        "cam: %d training images (strong and weak, labels only), %d held out, %d classes, %d epochs on %s",
        len(ds),
        len(held_ds),
        k,
        tc.epochs,
        device,
    )

    def step(images: torch.Tensor, targets: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        with autocast(device, bf16):
            maps = model(images)  # (B, C-1, h, w): the class activation maps before pooling
        logits = pool_scores(maps.float(), tc.pool)  # (B, C-1): image-level logits
        return F.binary_cross_entropy_with_logits(logits, targets)  # multi-label soft margin

    def score(net: nn.Module) -> dict[str, float]:
        metrics = evaluate_classifier(net, held_ds, device, bf16, tc.pool)
        return {"holdout_f1": metrics["f1"], "holdout_map": metrics["map"]}

    fit(run, STAGE, model, opt, loader, tc, cfg.seed, device, step, score)  # the last epoch is final
    return finish(run, STAGE, final, checkpoint_dict(model, tc.backbone, k))
