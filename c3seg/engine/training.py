"""Small helpers shared by the training stages, and `fit`: the epoch loop they share, with each
stage's loss of one batch and hold-out score passed in."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from c3seg.config import TrainConfig
from c3seg.engine import distributed as dist
from c3seg.engine.precision import resolve_bf16, resolve_compile
from c3seg.engine.run import Run
from c3seg.io import atomic_path, load_checkpoint, save_checkpoint

T = TypeVar("T")

log = logging.getLogger(__name__)

PRETRAIN = "pretrain"  # the `pretrained` value that means: the weights of this run's pretrain stage


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def start_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make an epoch's randomness a function of (seed, epoch) alone: the shuffle, the loader
    workers' augmentation streams (they are started anew each epoch from the loader's generator)
    and this process's RNGs (augmentations when workers=0, dropout). A run resumed at epoch e so
    draws what an uninterrupted run drew (c3seg.engine.training.save_state holds the rest)."""
    s = (seed * 1_000_003 + epoch) % (2**63)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
    if loader.generator is not None:
        loader.generator.manual_seed(s)
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)


def make_loader(ds: Dataset, batch_size: int, workers: int, train: bool, seed: int = 0) -> DataLoader:
    """A DataLoader that shards across torchrun processes when there are several."""
    sampler: DistributedSampler | None = None
    if dist.world_size() > 1:
        sampler = DistributedSampler(ds, shuffle=train, seed=seed, drop_last=train)
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        num_workers=workers,
        drop_last=train and len(ds) > batch_size,  # type: ignore[arg-type]  # map-style datasets
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0 and not train,  # training workers restart per epoch: start_epoch
        generator=g,
    )


def poly_lr(base: float, step: int, total: int, power: float = 0.9) -> float:
    """DeepLab's poly schedule: lr = base * (1 - step / total) ** power."""
    return base * (1 - min(step, total) / max(total, 1)) ** power


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1.0)


def make_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (DeepLab, the paper) or AdamW, from a stage's TrainConfig. With
    tc.head_lr_mult != 1 the output layer (the model's `head_key`, e.g. DeepLab's fc8) is a second
    parameter group whose learning rate is that multiple of the schedule's (`set_lr` applies it)."""
    params: list[dict[str, Any]] | Any = model.parameters()
    head = getattr(unwrap(model), "head_key", None)
    if tc.head_lr_mult != 1 and head:
        named = list(unwrap(model).named_parameters())
        in_head = [p for n, p in named if n.startswith(head + ".")]
        if not in_head:
            raise ValueError(f"{type(unwrap(model)).__name__} has no parameters under {head!r}")
        rest = [p for n, p in named if not n.startswith(head + ".")]
        params = [{"params": rest, "lr_mult": 1.0}, {"params": in_head, "lr_mult": tc.head_lr_mult}]
    if tc.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay
        )
    elif tc.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {tc.optimizer!r}; use sgd or adamw")
    set_lr(opt, tc.lr)
    return opt


def use_bf16(tc: TrainConfig, device: torch.device) -> bool:
    """Whether a stage with settings `tc` trains and scores in bf16 on `device` (its `precision`)."""
    return resolve_bf16(tc.precision, device, tc.amp)


def autocast(device: torch.device, bf16: bool = False) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` (CUDA or CPU) when `bf16` (a stage's `use_bf16`); fp32 otherwise."""
    if bf16 and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare(model: nn.Module, device: torch.device, tc: TrainConfig | None = None) -> nn.Module:
    """Move to device, channels_last on CUDA, wrap in DDP under torchrun, and torch.compile when
    tc.compile says so on this device (c3seg.engine.precision; tc None: eager). `unwrap` gives
    the plain network back (for state dicts and evaluation, which stays eager).

    Training on CPU stays contiguous: channels_last there is no faster for training, and its other
    rounding order trains other networks, so CPU results would change with it (docs/results.md).
    Inference (`load_model`) uses channels_last on every device: identical outputs, faster."""
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if dist.world_size() > 1:
        if device.type == "cuda" and any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if tc is not None and resolve_compile(tc.compile, device):
        log.info("compiling the training network (torch.compile, inductor)")
        model = torch.compile(model)  # type: ignore[assignment]  # an OptimizedModule
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain network inside `prepare`'s torch.compile and DDP wrappers."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def pretrained_weights(tc: TrainConfig, run: Run) -> str:
    """What `build_model` should load for a stage: tc.pretrained, with "pretrain" resolved to the
    weights written by this run's pretrain stage (`run.pretrain_weights`)."""
    if tc.pretrained != PRETRAIN:
        return tc.pretrained
    path = run.pretrain_weights
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained=pretrain, but {path} does not exist; run 'c3seg run --stages pretrain' "
            "first (same --out and settings), or run all stages"
        )
    return str(path)


def checkpoint_dict(model: nn.Module, backbone: str, out_channels: int, **extra: Any) -> dict[str, Any]:
    return {"model": unwrap(model).state_dict(), "backbone": backbone, "out_channels": out_channels, **extra}


def model_from_checkpoint(ck: dict[str, Any], path: Path, expect_channels: int | None = None) -> nn.Module:
    """The network of a `checkpoint_dict` checkpoint (loaded from `path`, named in errors), with
    its weights. A checkpoint that does not fit its backbone, or whose output count differs from
    `expect_channels` (the dataset's classes, say), is refused with both sides named."""
    from c3seg.models import BACKBONES, build_model

    missing = [k for k in ("model", "backbone", "out_channels") if k not in ck]
    if missing:
        raise ValueError(
            f"{path} is not a c3seg network checkpoint (no {', '.join(missing)}); "
            "checkpoints of c3seg's stages hold model, backbone and out_channels"
        )
    backbone, channels = ck["backbone"], ck["out_channels"]
    if backbone not in BACKBONES:
        raise ValueError(f"{path} is a {backbone!r} network; this c3seg knows {', '.join(BACKBONES)}")
    if expect_channels is not None and channels != expect_channels:
        raise ValueError(
            f"{path} predicts {channels} classes, but this run has {expect_channels}: it was trained "
            "on another dataset or split; use the run it came from, or retrain"
        )
    model = build_model(backbone, channels)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        detail = str(e).strip().splitlines()
        raise ValueError(
            f"{path} says backbone {backbone!r} with {channels} outputs, but its weights do not fit "
            f"that network (written by c3seg {ck.get('c3seg', '< 0.1')}): "
            f"{' '.join(detail[:3])[:400]}"
        ) from None
    return model


def load_model(
    path: Path, device: torch.device | str = "cpu", stage_hint: str = "", expect_channels: int | None = None
) -> nn.Module:
    """Rebuild a network from a checkpoint written with `checkpoint_dict`; eval mode, channels_last."""
    ck = load_checkpoint(path, stage_hint)
    model = model_from_checkpoint(ck, Path(path), expect_channels).to(device)
    return model.to(memory_format=torch.channels_last).eval()


def save_state(path: Path, **state: Any) -> None:
    """The resumable state of a training stage (model, optimizer, epoch, ...); main process only."""
    if dist.is_main():
        save_checkpoint(path, state)


def resume_state(path: Path) -> dict[str, Any] | None:
    if path.exists():
        log.info("resuming from %s", path)
        return load_checkpoint(path)
    return None


def restore(state: dict[str, Any] | None, model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Load a `resume_state` into model and optimizer; the epoch to start from (0 when fresh)."""
    if state is None:
        return 0
    unwrap(model).load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return state["epoch"] + 1


class JsonlLog:
    """Append-only training log, one JSON object a line (main process only)."""

    def __init__(self, path: Path, fresh: bool) -> None:
        self.path = path
        if fresh and dist.is_main():
            with atomic_path(path) as tmp:
                tmp.write_text("")

    def write(self, **row: Any) -> None:
        if dist.is_main():
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
            log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


def progress(batches: Iterable[T], total: int, desc: str, batched: bool = True) -> Iterator[T]:
    """Yield the batches (tuples whose first item is the image batch; with batched=False, one
    image each) with a progress bar counting images (img/s and ETA), on a terminal and on the main
    process only; quiet otherwise."""
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        unit="img",
        desc=desc,
        leave=False,
        dynamic_ncols=True,
        disable=not (sys.stderr.isatty() and dist.is_main()),
    )
    try:
        for batch in batches:
            yield batch
            bar.update(len(batch[0]) if batched else 1)  # type: ignore[index]
    finally:
        bar.close()


def images_per_epoch(loader: DataLoader) -> int:
    """How many images one epoch of the loader visits on this process (for `progress`)."""
    sampler = loader.sampler
    if isinstance(sampler, Sized):
        return len(sampler)
    return len(loader) * (loader.batch_size or 1)


def begin(
    run: Run, stage: str, model: nn.Module, opt: torch.optim.Optimizer
) -> tuple[dict[str, Any] | None, int, JsonlLog]:
    """Start or resume a training stage: (its saved state or None, the first epoch to run, its
    log). The opening of `fit` and of the loops that stages write out themselves."""
    state = resume_state(run.state(stage))
    start = restore(state, model, opt)
    return state, start, JsonlLog(run.train_log(stage), fresh=state is None)


def epoch_batches(
    loader: DataLoader,
    opt: torch.optim.Optimizer,
    tc: TrainConfig,
    epoch: int,
    seed: int,
    device: torch.device,
    desc: str,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch's (images, targets, indices) on the device, in the epoch's seeded order, with the
    poly learning rate of each step set before it is yielded."""
    start_epoch(loader, seed, epoch)
    total = tc.epochs * len(loader)
    for it, (images, targets, idx) in enumerate(progress(loader, images_per_epoch(loader), desc)):
        set_lr(opt, poly_lr(tc.lr, epoch * len(loader) + it, total))
        yield images.to(device, non_blocking=True), targets.to(device, non_blocking=True), idx


def finish(run: Run, stage: str, final: Path, checkpoint: dict[str, Any]) -> Path:
    """End a training stage: the main process writes its checkpoint and drops the resume state."""
    if dist.is_main():
        save_checkpoint(final, checkpoint)
        run.state(stage).unlink(missing_ok=True)
    dist.barrier()
    return final


def fit(
    run: Run,
    stage: str,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    loader: DataLoader,
    tc: TrainConfig,
    seed: int,
    device: torch.device,
    step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    score: Callable[[nn.Module], dict[str, float]] | None = None,
    keep_best: tuple[str, str] | None = None,
) -> tuple[int, float]:
    """Train `model` (as `prepare` gave it) for tc.epochs from run.state(stage) or epoch 0.

    Args:
        step: the loss of one batch (images, targets, indices), forward pass and autocast included.
        score: after each epoch, the hold-out scores of the plain network, logged under their keys.
        keep_best: (the score key to maximise, its name in the resume state), e.g. ("holdout_fg_iou",
            "best_iou"): the best epoch's weights end in `model` (when the score is NaN, the latest
            epoch's). None: the last epoch's weights stay.

    Returns (best epoch, its score): (-1, -1.0) without keep_best. The stage writes its checkpoint.
    """
    best_score, best_model, best_epoch = -1.0, None, -1
    state, start, tlog = begin(run, stage, model, opt)
    if state is not None and keep_best is not None:
        best_score, best_model, best_epoch = state[keep_best[1]], state["best_model"], state["best_epoch"]
    for epoch in range(start, tc.epochs):
        model.train()
        t0, losses = time.time(), []
        desc = f"{stage} {epoch + 1}/{tc.epochs}"
        for images, targets, idx in epoch_batches(loader, opt, tc, epoch, seed, device, desc):
            loss = step(images, targets, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        seconds = time.time() - t0
        scores = score(unwrap(model)) if score is not None else {}
        best: dict[str, Any] = {}  # what the log and the resume state add when keeping the best
        if keep_best is not None:
            key, state_key = keep_best
            # Keep the best hold-out epoch; when the hold-out cannot score (none, or nothing to score), the latest.
            s = scores.get(key, float("nan"))
            if not math.isfinite(s) or s >= best_score:
                best_score, best_epoch = (s if math.isfinite(s) else -1.0), epoch
                best_model = copy.deepcopy(unwrap(model).state_dict())
            best = {state_key: best_score, "best_model": best_model, "best_epoch": best_epoch}
        tlog.write(
            epoch=epoch,
            loss=sum(losses) / max(len(losses), 1),
            **scores,
            **({"best_epoch": best_epoch} if best else {}),
            seconds=round(seconds, 3),
        )
        model_state, opt_state = unwrap(model).state_dict(), opt.state_dict()
        save_state(run.state(stage), model=model_state, optimizer=opt_state, epoch=epoch, **best)
    if best_model is not None:
        unwrap(model).load_state_dict(best_model)
    return best_epoch, best_score
