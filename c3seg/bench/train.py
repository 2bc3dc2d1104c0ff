"""`c3seg bench train`: how fast the segmentation network trains and infers, alone and in the real
training loop, so that data loading is never assumed away.

For a config's segmentation backbone at its crop and batch size (or the ones given):
  model-only train   random tensors already on the device: forward, cross-entropy, backward, step
  model-only infer   a batch of full images (the config's eval size) without gradients
  real loop          generated JPEG/PNG pairs on disk read by the stages' own Dataset, transform
                     and DataLoader (workers, pinned memory), then the same train step
and the ratio real loop / model-only. On CUDA every combination of bf16 autocast and
channels_last is timed; on CPU fp32 with and without channels_last (bf16 on CPU is slower there).
Images/s are medians over timed steps after warm-up steps.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from c3seg.config import load_config
from c3seg.data.torchdata import PairSet
from c3seg.data.transforms import train_transform
from c3seg.engine.distributed import check_device
from c3seg.engine.training import autocast, make_loader
from c3seg.io import write_image, write_label_png
from c3seg.models import build_model
from c3seg.models.common import upsample


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step: Callable[[], int], device: torch.device, warmup: int, steps: int) -> float:
    """Median images/s of `step` (returns its image count) over `steps` timed calls."""
    for _ in range(warmup):
        step()
    _sync(device)
    rates = []
    for _ in range(steps):
        t0 = time.perf_counter()
        n = step()
        _sync(device)
        rates.append(n / (time.perf_counter() - t0))
    return float(np.median(rates))


def _train_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device, bf16: bool
) -> Callable[[torch.Tensor, torch.Tensor], int]:
    def step(images: torch.Tensor, masks: torch.Tensor) -> int:
        with autocast(device, bf16):
            logits = upsample(model(images), masks.shape[-2:]).float()
        loss = F.cross_entropy(logits, masks, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return len(images)

    return step


def _generated_pairs(folder: Path, n: int, side: int, classes: int) -> list[tuple[Path, Path]]:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        image = rng.integers(0, 256, (side, side * 4 // 3, 3), dtype=np.uint8)
        mask = rng.integers(0, classes, (side, side * 4 // 3), dtype=np.uint8)
        pairs.append((write_image(folder / f"{i}.jpg", image), write_label_png(folder / f"{i}.png", mask)))
    return pairs


def _bench_combo(
    backbone: str,
    classes: int,
    pairs: list[tuple[Path, Path]],
    crop: int,
    batch: int,
    eval_size: tuple[int, int],
    device: torch.device,
    workers: int,
    bf16: bool,
    channels_last: bool,
    steps: int,
    warmup: int,
) -> dict[str, Any]:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(backbone, classes).to(device).to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    step = _train_step(model, opt, device, bf16)
    x = torch.randn(batch, 3, crop, crop, device=device).to(memory_format=fmt)
    y = torch.randint(0, classes, (batch, crop, crop), device=device)
    model_only = _rate(lambda: step(x, y), device, warmup, steps)

    loader = make_loader(
        PairSet(pairs, train_transform(crop, 0.75, 1.25)), batch, workers, train=True, seed=0
    )
    batches = iter(loader)

    def real() -> int:
        images, masks, _ = next(batches)
        images = images.to(device, non_blocking=True).to(memory_format=fmt)
        return step(images, masks.to(device, non_blocking=True))

    loop = _rate(real, device, warmup, max(1, min(steps, len(loader) - warmup)))
    model.eval()
    h, w = eval_size
    xe = torch.randn(batch, 3, h, w, device=device).to(memory_format=fmt)

    @torch.no_grad()
    def infer() -> int:
        with autocast(device, bf16):
            model(xe)
        return batch

    return {
        "backbone": backbone,
        "device": device.type,
        "bf16": bf16,
        "channels_last": channels_last,
        "crop": crop,
        "batch": batch,
        "workers": workers,
        "model_train_img_s": round(model_only, 1),
        "loop_train_img_s": round(loop, 1),
        "loop_over_model": round(loop / model_only, 3),
        "infer_img_s": round(_rate(infer, device, warmup, steps), 1),
        "infer_size": f"{w}x{h}",
    }


def bench_backbone(
    backbone: str,
    classes: int,
    crop: int,
    batch: int,
    eval_size: tuple[int, int],
    device: torch.device,
    workers: int,
    steps: int = 10,
    warmup: int = 3,
) -> list[dict[str, Any]]:
    """One row per precision / memory-format combination (see the module docstring)."""
    combos = (
        [(False, False), (False, True)]
        if device.type == "cpu"
        else [(b, c) for b in (False, True) for c in (False, True)]
    )
    with tempfile.TemporaryDirectory() as tmp:
        pairs = _generated_pairs(Path(tmp), batch * (steps + warmup), int(crop * 1.25), classes)
        return [
            _bench_combo(
                backbone, classes, pairs, crop, batch, eval_size, device, workers, b, c, steps, warmup
            )
            for b, c in combos
        ]


def bench_train_command(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, [])
    device = check_device(args.device, "--device cpu")
    backbones = args.backbones.split(",") if args.backbones else [cfg.seg.backbone]
    crop = args.crop or cfg.data.crop
    batch = args.batch or cfg.seg.batch_size
    eval_size = (
        tuple(args.eval_size)
        if args.eval_size
        else ((375, 500) if crop > 200 else (cfg.data.bench_size,) * 2)
    )
    workers = cfg.data.workers if args.workers is None else args.workers
    rows = []
    for b in backbones:
        rows += bench_backbone(b, 21, crop, batch, eval_size, device, workers, args.steps)
    print(
        f"train-step throughput, {device}, crop {crop}, batch {batch}, {workers} loader workers, median of {args.steps}"
    )
    print(
        "| backbone | bf16 | channels_last | model-only train img/s | real loop img/s | loop / model | inference img/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backbone']} | {r['bf16']} | {r['channels_last']} | {r['model_train_img_s']} | "
            f"{r['loop_train_img_s']} | {r['loop_over_model']:.2f} | {r['infer_img_s']} ({r['infer_size']}) |"
        )
    if args.json:
        print(json.dumps({"train": rows}))
    return 0
