"""`c3seg bench train`: how fast the segmentation network trains and infers, alone and in the real
training loop, so that data loading is never assumed away.

For a config's segmentation backbone at its crop and batch size (or the ones given):
  model-only train   random tensors already on the device: forward, cross-entropy, backward, step
  model-only infer   a batch of full images (the config's eval size) without gradients
  real loop          generated JPEG/PNG pairs on disk read by the stages' own Dataset, transform
                     and DataLoader (workers, pinned memory), then the same train step
and the ratio real loop / model-only, for each variant of VARIANTS (fp32 eager contiguous, bf16
autocast, channels_last, torch.compile and their combinations; bf16 rows on a CPU only where it has
native bf16, c3seg.engine.precision.cpu_bf16), plus a row `default`: the variant the stages use
here with the config's seg settings (precision, compile; channels_last on CUDA only). Each row also
gives the achieved training GFLOP/s: FlopCounterMode's count of one forward (2 FLOPs a
multiply-add) x 3 for forward and backward, times model-only images/s. The machine's peak is a
large fp32 and a large bf16 matmul timed in the same run. Images/s are medians over timed steps
after warm-up steps (compilation happens in the first; `first_step_s` shows its cost).
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
from torch.utils.flop_counter import FlopCounterMode

from c3seg.config import load_config
from c3seg.data.torchdata import PairSet
from c3seg.data.transforms import train_transform
from c3seg.engine.distributed import check_device
from c3seg.engine.precision import cpu_bf16, resolve_compile
from c3seg.engine.training import autocast, make_loader, use_bf16
from c3seg.io import write_image, write_label_png
from c3seg.models import build_model
from c3seg.models.common import upsample

# row name -> (bf16 autocast, channels_last, torch.compile)
VARIANTS = {
    "fp32-eager": (False, False, False),
    "bf16": (True, False, False),
    "channels_last": (False, True, False),
    "compile": (False, False, True),
    "bf16+channels_last": (True, True, False),
    "bf16+compile": (True, False, True),
    "channels_last+compile": (False, True, True),
    "bf16+channels_last+compile": (True, True, True),
}
# timed without --rows: the last two compile as long as the others together (about a minute each
# on 2 CPU cores)
DEFAULT_ROWS = ("fp32-eager", "bf16", "channels_last", "compile", "bf16+channels_last", "bf16+compile")


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


def _bench_variant(
    name: str,
    backbone: str,
    classes: int,
    pairs: list[tuple[Path, Path]],
    crop: int,
    batch: int,
    eval_size: tuple[int, int],
    device: torch.device,
    workers: int,
    steps: int,
    warmup: int,
) -> dict[str, Any]:
    bf16, channels_last, compiled = VARIANTS[name]
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    eager = build_model(backbone, classes).to(device).to(memory_format=fmt).train()
    model: torch.nn.Module = torch.compile(eager) if compiled else eager  # type: ignore[assignment]
    opt = torch.optim.SGD(eager.parameters(), lr=1e-3, momentum=0.9)
    step = _train_step(model, opt, device, bf16)
    x = torch.randn(batch, 3, crop, crop, device=device).to(memory_format=fmt)
    y = torch.randint(0, classes, (batch, crop, crop), device=device)
    t0 = time.perf_counter()
    step(x, y)
    _sync(device)
    first = time.perf_counter() - t0
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
        "name": name,
        "backbone": backbone,
        "device": device.type,
        "bf16": bf16,
        "channels_last": channels_last,
        "compile": compiled,
        "crop": crop,
        "batch": batch,
        "workers": workers,
        "model_train_img_s": round(model_only, 1),
        "loop_img_s": round(loop, 1),
        "loop_over_model": round(loop / model_only, 3),
        "infer_img_s": round(_rate(infer, device, warmup, steps), 1),
        "infer_size": f"{w}x{h}",
        "first_step_s": round(first, 2),
    }


def forward_flops(backbone: str, classes: int, crop: int, device: torch.device) -> float:
    """FLOPs (2 a multiply-add) of one crop x crop image's forward pass, fp32, counted by torch."""
    model = build_model(backbone, classes).to(device).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 3, crop, crop, device=device))
    return counter.get_total_flops() / 2


def peak_matmul(device: torch.device, n: int = 0, repeats: int = 5) -> dict[str, Any]:
    """GFLOP/s of an n x n by n x n matmul (2 n^3 FLOPs) in fp32 and in bf16: the machine's peak."""
    n = n or (8192 if device.type == "cuda" else 2048)
    out: dict[str, Any] = {"matmul_n": n}
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))

        def matmul(a: torch.Tensor = a, b: torch.Tensor = b) -> int:
            torch.mm(a, b)
            return 1

        rate = _rate(matmul, device, 1, repeats)  # matmuls / s
        out[f"{label}_gflop_s"] = round(2 * n**3 * rate / 1e9, 1)
    return out


def stage_variant(config_seg: Any, device: torch.device) -> str:
    """The VARIANTS name the training stages use on `device` with the seg section's settings."""
    want = (use_bf16(config_seg, device), device.type == "cuda", resolve_compile(config_seg.compile, device))
    return next(k for k, v in VARIANTS.items() if v == want)


def bench_backbone(
    backbone: str,
    classes: int,
    crop: int,
    batch: int,
    eval_size: tuple[int, int],
    device: torch.device,
    workers: int,
    names: list[str],
    default: str,
    steps: int = 10,
    warmup: int = 3,
) -> list[dict[str, Any]]:
    """One row per variant in `names`, then `default` (a copy of the row of the same variant,
    timed on its own when `names` lacks it); see the module docstring."""
    flops = forward_flops(backbone, classes, crop, device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pairs = _generated_pairs(Path(tmp), batch * (steps + warmup), int(crop * 1.25), classes)
        for name in names + ([] if default in names else [default]):
            row = _bench_variant(
                name, backbone, classes, pairs, crop, batch, eval_size, device, workers, steps, warmup
            )
            row["train_gflop_s"] = round(row["model_train_img_s"] * 3 * flops / 1e9, 1)
            rows.append(row)
    same = next(r for r in rows if r["name"] == default)
    rows = [r for r in rows if r["name"] in names]
    return rows + [{**same, "name": "default", "same_as": default}]


def variant_names(arg: str | None, device: torch.device) -> list[str]:
    """The --rows list (default: DEFAULT_ROWS), without bf16 ones on a CPU lacking native bf16."""
    names = arg.split(",") if arg else list(DEFAULT_ROWS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"--rows: unknown {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if device.type == "cpu" and not cpu_bf16():
        names = [n for n in names if not VARIANTS[n][0]]
    return names


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
    names, default = variant_names(args.rows, device), stage_variant(cfg.seg, device)
    peak = peak_matmul(device, args.peak_n)
    rows = []
    for b in backbones:
        rows += bench_backbone(b, 21, crop, batch, eval_size, device, workers, names, default, args.steps)
    print(
        f"train-step throughput, {device} ({torch.get_num_threads()} threads), crop {crop}, batch {batch}, "
        f"{workers} loader workers, median of {args.steps}; default = {default} "
        f"(seg.precision={cfg.seg.precision}, seg.compile={cfg.seg.compile}); native CPU bf16: {cpu_bf16()}"
    )
    print(
        f"peak: {peak['matmul_n']}^2 matmul fp32 {peak['fp32_gflop_s']} GFLOP/s, bf16 {peak['bf16_gflop_s']} GFLOP/s"
    )
    print(
        "| backbone | variant | model-only train img/s | real loop img/s | loop / model | "
        "inference img/s | train GFLOP/s | first step s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backbone']} | {r['name']} | {r['model_train_img_s']} | {r['loop_img_s']} | "
            f"{r['loop_over_model']:.2f} | {r['infer_img_s']} ({r['infer_size']}) | {r['train_gflop_s']} | "
            f"{r['first_step_s']} |"
        )
    if args.json:
        print(json.dumps({"train": rows, "peak": peak}))
    return 0
