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
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from c3seg import distributed as dist
from c3seg.config import Config, SegConfig
from c3seg.data.torchdata import PairSet, decoded_budget
from c3seg.data.transforms import train_transform
from c3seg.data.types import SegData
from c3seg.io import read_label
from c3seg.methods import METHODS, method_pairs
from c3seg.models import build_model
from c3seg.models.common import upsample
from c3seg.run import Run
from c3seg.splits import SplitSet
from c3seg.train_utils import (
    autocast,
    begin,
    checkpoint_dict,
    epoch_batches,
    finish,
    make_loader,
    make_optimizer,
    prepare,
    pretrained_weights,
    save_state,
    seed_everything,
    unwrap,
)

log = logging.getLogger(__name__)


def image_label_loss(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Image-level term (`seg.label_loss`): BCE of each foreground class's largest softmax
    probability against the image's label (SEC's expansion loss, Kolesnikov and Lampert 2016, with
    max pooling). It asks for every labelled class somewhere and no unlabelled one anywhere, which
    pseudo labels that miss an object cannot ask. log_probs (B, C, H, W) = log_softmax(logits, 1)
    (shared with the cross-entropy); labels (B, C-1) multi-hot. The maximum is read at each class's
    argmax (one pixel takes the gradient) instead of through amax, whose backward was the costliest
    part of this term in a CPU step profile."""
    fg = log_probs[:, 1:].flatten(2)  # (B, C-1, H*W)
    top = fg.gather(2, fg.detach().argmax(2, keepdim=True))[..., 0].exp()  # (B, C-1)
    return F.binary_cross_entropy(top.clamp(1e-6, 1 - 1e-6), labels)


def class_weights(pairs: list[tuple[Path, Path]], num_classes: int, power: float) -> torch.Tensor:
    """Per-class cross-entropy weights (median frequency / frequency) ** power from the pixel counts
    of the training masks (void 255 not counted). Classes absent from every mask get the largest
    weight of the present ones (they cannot be predicted from these masks anyway)."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for _, mask in pairs:
        label = read_label(mask)
        counts += np.bincount(label[label < num_classes].ravel(), minlength=num_classes)[:num_classes]
    present = counts > 0
    if not present.any():
        return torch.ones(num_classes)
    freq = counts / counts.sum()
    w = np.ones(num_classes)
    w[present] = (np.median(freq[present]) / freq[present]) ** power
    w[~present] = w[present].max()
    return torch.tensor(w, dtype=torch.float32)


def multi_hot(data: SegData, pairs: list[tuple[Path, Path]]) -> torch.Tensor:
    """(len(pairs), C-1) image-level labels of each pair's image (weak images: their given labels)."""
    labels = {s.image: s.labels for s in data.train}
    out = torch.zeros(len(pairs), data.num_classes - 1)
    for i, (image, _) in enumerate(pairs):
        for c in labels.get(image, ()):
            out[i, c - 1] = 1.0
    return out


SegLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def segmentation_loss(
    tc: SegConfig, data: SegData, pairs: list[tuple[Path, Path]], device: torch.device, name: str
) -> SegLoss:
    """J_m of Eq. 4, as train-seg and the P-Net's fine-tuning both use it: loss(logits (B, C, H, W),
    masks (B, H, W), idx (B,) = the images' positions in `pairs`) = cross-entropy, its classes
    weighted by `seg.class_balance` (class_weights over `pairs`' masks), plus `seg.label_loss` x
    image_label_loss against each image's image-level labels."""
    weight = None
    if tc.class_balance > 0:
        weight = class_weights(pairs, data.num_classes, tc.class_balance).to(device)
        log.info("%s: class weights %s", name, " ".join(f"{w:.2f}" for w in weight.tolist()))
    image_labels = multi_hot(data, pairs).to(device) if tc.label_loss > 0 else None

    def loss(logits: torch.Tensor, masks: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(logits, 1)  # once for both terms (F.cross_entropy's own first step)
        out = F.nll_loss(log_probs, masks, weight=weight, ignore_index=255)
        if image_labels is not None:
            out = out + tc.label_loss * image_label_loss(log_probs, image_labels[idx.to(device)])
        return out

    return loss


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
    model = prepare(build_model(tc.backbone, data.num_classes, pretrained_weights(tc, run)), device)
    opt = make_optimizer(model, tc)
    state, start, tlog = begin(run, stage, model, opt)
    log.info("%s: %d training images, %d epochs on %s", method, len(ds), tc.epochs, device)
    for epoch in range(start, tc.epochs):
        model.train()
        t0, losses = time.time(), []
        desc = f"{method} {epoch + 1}/{tc.epochs}"
        for images, masks, idx in epoch_batches(loader, opt, tc, epoch, cfg.seed, device, desc):
            with autocast(device, tc.amp):
                logits = upsample(model(images), masks.shape[-2:]).float()  # (B, C, H, W)
            loss = seg_loss(logits, masks, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        tlog.write(epoch=epoch, loss=sum(losses) / max(len(losses), 1), seconds=round(time.time() - t0, 3))
        save_state(
            run.state(stage), model=unwrap(model).state_dict(), optimizer=opt.state_dict(), epoch=epoch
        )
    ck = checkpoint_dict(model, tc.backbone, data.num_classes, method=method, classes=list(data.classes))
    return finish(run, stage, final, ck)


def train_seg_methods(cfg: Config, run: Run, data: SegData, split: SplitSet) -> Path:
    """The `train-seg` stage: every method in cfg.methods that train-seg trains."""
    for method in cfg.methods:
        if method in METHODS:
            train_seg(cfg, run, data, split, method)
    return run.seg_dir
