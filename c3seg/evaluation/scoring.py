"""Scoring networks on held-out images at full resolution: confusion matrices of a segmentation
network over (image, mask) pairs (what evaluate, train-pnet and the tools score with; optionally
after a dense CRF, c3seg.inference.crf), F1 / mAP of a multi-label image-level classifier (train-cam, pretrain)
and top-1 of a single-label one (pretrain on an ImageFolder)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from c3seg.data.torchdata import LabelSet, PairSet
from c3seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from c3seg.engine import distributed as dist
from c3seg.engine.training import autocast, progress
from c3seg.evaluation.metrics import ConfusionMatrix
from c3seg.inference.crf import dense_crf, fast_crf
from c3seg.inference.forward import class_scores, pool_scores, segment


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    pairs: Sequence[tuple[Path, Path | None]],
    num_classes: int,
    device: torch.device,
    bf16: bool = False,
    batch_size: int = 16,
    workers: int = 0,
    crf: str = "none",
    timing: dict[str, float] | None = None,
) -> ConfusionMatrix:
    """One confusion matrix over full images; sharded under torchrun.

    Images are decoded by `workers` processes and consecutive images of equal size are
    forwarded together, up to `batch_size` (real datasets mix sizes; the benchmark does not).
    crf fast | exact: each prediction refined by `c3seg.inference.crf.dense_crf` first; the seconds it took
    are added to timing["crf_seconds"] (and the image count to timing["images"])."""
    model.eval()
    cm = ConfusionMatrix(num_classes)
    timing = {} if timing is None else timing
    mine = list(pairs)[dist.rank() :: dist.world_size()]
    loader = DataLoader(PairSet(mine, eval_transform()), batch_size=None, num_workers=workers)
    images: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []

    def flush() -> None:
        if images:
            with autocast(device, bf16):
                prob = segment(model, torch.stack(images).to(device))  # (B, C, H, W)
            if crf != "none":
                prob = _refine(torch.stack(images).to(device), prob, crf, timing)
            cm.update(torch.stack(masks), prob.argmax(1).cpu())
            images.clear()
            masks.clear()

    for image, mask, _ in progress(loader, len(mine), "evaluate", batched=False):
        if images and (image.shape != images[0].shape or len(images) == batch_size):
            flush()
        images.append(image)
        masks.append(mask)
    flush()
    if dist.world_size() > 1:
        cm.mat = dist.all_reduce_sum(cm.mat.to(device)).cpu()
    return cm


def _refine(images: torch.Tensor, prob: torch.Tensor, crf: str, timing: dict[str, float]) -> torch.Tensor:
    """Dense-CRF refinement of a batch: normalized images (B, 3, H, W) back to 0-255 RGB, then
    the CRF per image: the fast one where the tensors are (the GPU in a GPU run), the exact one
    (pydensecrf, CPU) on numpy copies. The time spent is added to timing."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    rgb = ((images.float() * std + mean) * 255).round().clamp(0, 255)
    t0 = time.perf_counter()
    if crf == "exact":
        rgb8 = rgb.byte().permute(0, 2, 3, 1).cpu().numpy()
        probs = prob.float().cpu().numpy()
        out = torch.from_numpy(
            np.stack([dense_crf(im, p, exact=True) for im, p in zip(rgb8, probs, strict=True)])
        )
    else:
        out = torch.stack([fast_crf(im, p) for im, p in zip(rgb, prob, strict=True)]).cpu()
    timing["crf_seconds"] = timing.get("crf_seconds", 0.0) + time.perf_counter() - t0
    timing["images"] = timing.get("images", 0.0) + len(rgb)
    return out


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-class AP (mean precision at each positive, ranked by score). (N, K), (N, K) -> (K,);
    NaN for a class without positives."""
    order = scores.argsort(0, descending=True)  # (N, K)
    hits = labels.gather(0, order)  # (N, K) 1 where the ranked image is positive
    precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=hits.dtype)[:, None]
    npos = hits.sum(0)
    return torch.where(npos > 0, (precision * hits).sum(0) / npos.clamp(min=1), torch.nan)


def multilabel_metrics(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Micro F1 at sigmoid 0.5 (logit 0) and mAP over classes with positives; (N, K) logits, (N, K) 0/1."""
    pred = scores > 0
    pos = labels > 0.5
    tp, fp, fn = (pred & pos).sum().item(), (pred & ~pos).sum().item(), (~pred & pos).sum().item()
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    ap = average_precision(scores.double(), labels.double())
    ap = ap[~ap.isnan()]
    return {"f1": f1, "map": ap.mean().item() if ap.numel() else float("nan")}


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, ds: LabelSet, device: torch.device, bf16: bool = False, pool: str = "gap"
) -> dict[str, float]:
    """F1 / mAP of the image-level logits (pooled class maps) on full images, batch 1 (sizes
    differ). Every process scores the whole (small) hold-out, so all ranks agree."""
    model.eval()
    scores, labels = [], []
    for i in range(len(ds)):
        image, y, _ = ds[i]  # (3, H, W), (C-1,)
        with autocast(device, bf16):
            scores.append(class_scores(model, image[None].to(device), pool)[0].cpu())  # (C-1,)
        labels.append(y)
    if not scores:
        return {"f1": float("nan"), "map": float("nan")}
    return multilabel_metrics(torch.stack(scores), torch.stack(labels))


@torch.no_grad()
def top1(
    model: nn.Module,
    ds: Dataset,
    device: torch.device,
    bf16: bool = False,
    pool: str = "gap",
    batch_size: int = 32,
) -> float:
    """Top-1 accuracy of the pooled class maps on (image, class index, index) items of equal size.
    Each process scores every world_size-th image and the counts are summed, so all ranks agree."""
    model.eval()
    part = Subset(ds, range(dist.rank(), len(ds), dist.world_size()))  # type: ignore[arg-type]
    counts = torch.zeros(2, dtype=torch.float64, device=device)  # (correct, seen)
    for images, targets, _ in DataLoader(part, batch_size=batch_size):
        with autocast(device, bf16):
            maps = model(images.to(device))  # (B, K, h, w)
        predicted = pool_scores(maps.float(), pool).argmax(1)  # (B,)
        counts[0] += (predicted == targets.to(device)).sum()
        counts[1] += len(targets)
    correct, seen = dist.all_reduce_sum(counts).tolist()
    return correct / max(seen, 1)
