"""`pretrain`: the backbone's image-level pretraining, in the role of the paper's ImageNet weights.

The paper initializes its networks from VGG-16 pre-trained on ImageNet, whose 1,000 image-level
classes include the weak categories. This stage trains `build_model(pretrain.backbone, K)` as a
classifier whose class score maps are pooled to logits (`pretrain.pool`), on one of two corpora
(`pretrain.corpus`):

- `shapes` (default), for the built-in benchmark: the generated corpus of
  `c3seg.data.synthetic.corpus` (the benchmark's 16 categories and `extra_categories` more, labels
  only, never the evaluation data); a multi-label classifier, sigmoid BCE, as train-cam.
- `imagefolder:PATH`, for photographs: an ImageFolder corpus (`c3seg.data.imagefolder`; ImageNet
  or the Tiny ImageNet subset); a single-label classifier over its classes, softmax cross-entropy,
  images random-resized-cropped to `pretrain.size` and flipped. Each epoch logs the val top-1
  (PATH/val, else a held-out part of train/) and the time spent so far (`total_seconds`).

It writes the network's weights without its output layer as safetensors, which
`lnet/cam/seg.pretrained=pretrain` load (`engine.training.pretrained_weights`) into a network of the
same backbone.

Neither corpus nor weights depend on the run's dataset or split, so the weights (and the generated
corpus) are cached under data.root, keyed by the settings that change them (`cache_settings`: for
an ImageFolder, also its resolved path, class list and file count), and shared by later runs (like
downloaded ImageNet weights); an ImageFolder is only read. The run folder gets its own copy
(`run.pretrain_weights`, hard-linked where the file system allows), the training log, and
`source.json` naming the cache it came from.
On the generated corpus each epoch logs the loss, F1 and mAP on a held-out part, and images per second.
Times and val top-1 on this corpus: docs/results.md.

Switch it on for the benchmark (the stage runs first, and only when some net asks for it;
`train.pretrained` sets lnet, cam and seg, never the pretrain stage itself):

    c3seg run --config benchmark --out runs/pre train.pretrained=pretrain

or on photographs, with the pretrained backbone the same as the nets':

    c3seg run --dataset folder:DATA --split SPLIT.yaml --out runs/photo \\
        pretrain.corpus=imagefolder:/data/tiny-imagenet-sub pretrain.size=64 \\
        pretrain.backbone=tiny-fast lnet.backbone=tiny-fast lnet.pretrained=pretrain ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from c3seg.config import Config, PretrainConfig
from c3seg.data import imagefolder
from c3seg.data.imagefolder import ImageFolderCorpus, ImageFolderSet, imagefolder_path, read_imagefolder
from c3seg.data.synthetic.corpus import Corpus, load_corpus
from c3seg.data.torchdata import LabelSet, decoded_budget
from c3seg.data.transforms import eval_transform, train_transform
from c3seg.data.types import SegData
from c3seg.engine import distributed as dist
from c3seg.engine.run import Run
from c3seg.engine.training import (
    PRETRAIN,
    JsonlLog,
    autocast,
    images_per_epoch,
    make_loader,
    make_optimizer,
    poly_lr,
    prepare,
    progress,
    restore,
    resume_state,
    save_state,
    seed_everything,
    set_lr,
    start_epoch,
    unwrap,
    use_bf16,
)
from c3seg.evaluation.scoring import evaluate_classifier, top1
from c3seg.inference.forward import pool_scores
from c3seg.io import atomic_path, read_jsonl, write_json
from c3seg.models import build_model
from c3seg.models.weights import save_weights
from c3seg.splits import SplitSet

log = logging.getLogger(__name__)

SCALE = (0.75, 1.25)  # random rescale range of training images
WEIGHTS = "backbone.safetensors"
# settings only the generated corpus reads: they leave an ImageFolder's weights unchanged
SHAPES_ONLY = ("images", "extra_categories", "crop", "hue", "colour", "affine")


def cache_settings(pc: PretrainConfig, corpus: ImageFolderCorpus | None = None) -> dict[str, Any]:
    """What the cache folder's name hashes (settings.json, source.json hold it): the generated
    corpus, every pretrain setting; an ImageFolder, the settings its training reads and, as
    `corpus`, its fingerprint."""
    settings = dataclasses.asdict(pc)
    if corpus is None:
        return settings
    return {k: v for k, v in settings.items() if k not in SHAPES_ONLY} | {"corpus": corpus.fingerprint()}


def cache_dir(cfg: Config, corpus: ImageFolderCorpus | None = None) -> Path:
    """The shared folder of the weights trained with cfg.pretrain: data.root/pretrain/<backbone>-
    [<ImageFolder name>-]<hash of `cache_settings`>. An ImageFolder corpus is listed unless given."""
    pc = cfg.pretrain
    folder = imagefolder_path(pc.corpus)
    if folder is not None and corpus is None:
        corpus = read_imagefolder(folder, pc.holdout)
    settings = cache_settings(pc, corpus)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{pc.backbone}-{key}" if corpus is None else f"{pc.backbone}-{corpus.root.name}-{key}"
    return Path(cfg.data.root) / "pretrain" / name


def corpus_sets(corpus: Corpus, pc: PretrainConfig, keep_mb: int = 0) -> tuple[LabelSet, LabelSet]:
    """(training set, held-out set): the last `pc.holdout` of the corpus is held out (its images
    are drawn independently, so any part is a fair sample)."""
    n_held = max(1, round(len(corpus.images) * pc.holdout)) if pc.holdout > 0 else 0
    cut = len(corpus.images) - n_held
    labels = [tuple(c + 1 for c in cats) for cats in corpus.labels]  # LabelSet counts 0 as background
    k = corpus.num_categories + 1
    tf = train_transform(pc.crop, *SCALE, pc.hue, pc.colour, pc.affine)
    return (
        LabelSet(corpus.images[:cut], labels[:cut], k, tf, keep_mb),
        LabelSet(corpus.images[cut:], labels[cut:], k, eval_transform()),
    )


def backbone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the output layer (`head_key`), whose classes are the corpus's."""
    head = getattr(model, "head_key", None)
    state = model.state_dict()
    return {k: v for k, v in state.items() if not (head and k.startswith(head + "."))}


def train_backbone(cfg: Config, cache: Path, corpus: Corpus) -> Path:
    """Train the classifier on the corpus into `cache`; returns cache/WEIGHTS. Resumes from the
    last finished epoch (cache/last.pt)."""
    pc = cfg.pretrain
    seed_everything(pc.seed)
    device = dist.local_device(cfg.device)
    ds, held_ds = corpus_sets(corpus, pc, decoded_budget(cfg.data))
    loader = make_loader(ds, pc.batch_size, cfg.data.workers, train=True, seed=pc.seed)
    model = prepare(build_model(pc.backbone, corpus.num_categories, pc.pretrained), device, pc)
    bf16 = use_bf16(pc, device)
    opt = make_optimizer(model, pc)
    state = resume_state(cache / "last.pt")
    start = restore(state, model, opt)
    tlog = JsonlLog(cache / "log.jsonl", fresh=state is None)
    total = pc.epochs * len(loader)
    log.info(
        "pretrain: %d corpus images of %d categories, %d held out, %d epochs on %s",
        len(ds),
        corpus.num_categories,
        len(held_ds),
        pc.epochs,
        device,
    )
    for epoch in range(start, pc.epochs):
        model.train()
        start_epoch(loader, pc.seed, epoch)
        t0, losses, seen = time.perf_counter(), [], 0
        for it, (images, targets, _) in enumerate(
            progress(loader, images_per_epoch(loader), f"pretrain {epoch + 1}/{pc.epochs}")
        ):
            set_lr(opt, poly_lr(pc.lr, epoch * len(loader) + it, total))
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            with autocast(device, bf16):
                maps = model(images)  # (B, K, h, w) class score maps
            logits = pool_scores(maps.float(), pc.pool)  # (B, K) image-level logits
            loss = F.binary_cross_entropy_with_logits(logits, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            seen += len(images)
        seconds = time.perf_counter() - t0
        metrics = evaluate_classifier(unwrap(model), held_ds, device, bf16, pc.pool)
        tlog.write(
            epoch=epoch,
            loss=sum(losses) / max(len(losses), 1),
            holdout_f1=metrics["f1"],
            holdout_map=metrics["map"],
            seconds=round(seconds, 3),
            images_per_s=round(seen * dist.world_size() / max(seconds, 1e-9), 1),
        )
        save_state(
            cache / "last.pt", model=unwrap(model).state_dict(), optimizer=opt.state_dict(), epoch=epoch
        )
    return _finish(cache, cache_settings(pc), model)


def _finish(cache: Path, settings: dict[str, Any], model: torch.nn.Module) -> Path:
    """Write the backbone weights and the settings they were trained with (what the folder name
    hashes) into the cache; the resumable state goes. Returns cache/WEIGHTS."""
    if dist.is_main():
        write_json(cache / "settings.json", settings)
        save_weights(cache / WEIGHTS, backbone_state(unwrap(model)))
        (cache / "last.pt").unlink(missing_ok=True)
    dist.barrier()
    return cache / WEIGHTS


def train_classifier(cfg: Config, cache: Path, corpus: ImageFolderCorpus) -> Path:
    """Train the single-label classifier over an ImageFolder's classes into `cache`; returns
    cache/WEIGHTS. Logs the val top-1 and the time spent so far each epoch; resumes from the last
    finished epoch (cache/last.pt)."""
    pc = cfg.pretrain
    seed_everything(pc.seed)
    device = dist.local_device(cfg.device)
    ds = ImageFolderSet(corpus.train, imagefolder.train_transform(pc.size))
    val_ds = ImageFolderSet(corpus.val, imagefolder.eval_transform(pc.size))
    loader = make_loader(ds, pc.batch_size, cfg.data.workers, train=True, seed=pc.seed)
    model = prepare(build_model(pc.backbone, corpus.num_classes, pc.pretrained), device, pc)
    bf16 = use_bf16(pc, device)
    opt = make_optimizer(model, pc)
    state = resume_state(cache / "last.pt")
    start = restore(state, model, opt)
    elapsed = state.get("total_seconds", 0.0) if state else 0.0  # of the epochs before a resume
    tlog = JsonlLog(cache / "log.jsonl", fresh=state is None)
    total = pc.epochs * len(loader)
    log.info(
        "pretrain: %d images of %d classes from %s, %d val images (from %s/), %d epochs on %s",
        len(ds),
        corpus.num_classes,
        corpus.root,
        len(val_ds),
        corpus.val_source,
        pc.epochs,
        device,
    )
    for epoch in range(start, pc.epochs):
        model.train()
        start_epoch(loader, pc.seed, epoch)
        t0, losses, correct, seen = time.perf_counter(), [], 0, 0
        for it, (images, targets, _) in enumerate(
            progress(loader, images_per_epoch(loader), f"pretrain {epoch + 1}/{pc.epochs}")
        ):
            set_lr(opt, poly_lr(pc.lr, epoch * len(loader) + it, total))
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            with autocast(device, bf16):
                maps = model(images)  # (B, K, h, w) class score maps
            logits = pool_scores(maps.float(), pc.pool)  # (B, K)
            loss = F.cross_entropy(logits, targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            correct += int((logits.argmax(1) == targets).sum())
            seen += len(images)
        seconds = time.perf_counter() - t0
        val_top1 = top1(unwrap(model), val_ds, device, bf16, pc.pool, pc.batch_size)
        eval_seconds = time.perf_counter() - t0 - seconds
        elapsed += seconds + eval_seconds
        tlog.write(
            epoch=epoch,
            loss=sum(losses) / max(len(losses), 1),
            train_top1=correct / max(seen, 1),  # this process's, on augmented images
            val_top1=val_top1,
            seconds=round(seconds, 3),
            eval_seconds=round(eval_seconds, 3),
            total_seconds=round(elapsed, 3),
            images_per_s=round(seen * dist.world_size() / max(seconds, 1e-9), 1),
        )
        save_state(
            cache / "last.pt",
            model=unwrap(model).state_dict(),
            optimizer=opt.state_dict(),
            epoch=epoch,
            total_seconds=elapsed,
        )
    log.info("pretrain: %d epochs on %s in %.1f min", pc.epochs, corpus.root.name, elapsed / 60)
    return _finish(cache, cache_settings(pc, corpus), model)


def _link_or_copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)  # the cache is only ever replaced by renames, so a hard link stays valid
        except OSError:
            shutil.copyfile(src, tmp)


def pretrain(cfg: Config, run: Run, data: SegData | None = None, split: SplitSet | None = None) -> Path:
    """Pretrain the backbone on pretrain.corpus (or reuse the cached weights of the same corpus and
    settings) and give this run a copy; returns `run.pretrain_weights`. Skips when the run has it.
    `data` and `split` are unused: the corpus is never the run's dataset."""
    out = run.pretrain_weights
    if out.exists():
        log.info("pretrain: %s exists, skipping", out)
        return out
    pc = cfg.pretrain
    if pc.pretrained == PRETRAIN:
        raise ValueError(
            "pretrain.pretrained=pretrain would start the stage from itself; use '' or a weights file"
        )
    folder = imagefolder_path(pc.corpus)
    images = read_imagefolder(folder, pc.holdout) if folder is not None else None
    cache = cache_dir(cfg, images)
    weights = cache / WEIGHTS
    if images is not None:
        if weights.exists():
            log.info("pretrain: reusing %s (same ImageFolder corpus and settings)", weights)
        else:
            train_classifier(cfg, cache, images)
    elif not weights.exists():
        if dist.is_main():  # one process generates the corpus, the others read it
            load_corpus(cfg.data.root, pc.images, pc.size, pc.seed, pc.extra_categories)
        dist.barrier()
        corpus = load_corpus(cfg.data.root, pc.images, pc.size, pc.seed, pc.extra_categories)
        train_backbone(cfg, cache, corpus)
    else:
        log.info("pretrain: reusing %s (same pretrain settings)", weights)
    if dist.is_main():
        out.parent.mkdir(parents=True, exist_ok=True)
        last = None
        if (cache / "log.jsonl").exists():
            shutil.copyfile(cache / "log.jsonl", run.train_log("pretrain"))
            rows = read_jsonl(run.train_log("pretrain"))
            last = rows[-1] if rows else None
        source = {"weights": str(weights), "last_epoch": last, "settings": cache_settings(pc, images)}
        write_json(run.pretrain_source, source)
        _link_or_copy(weights, out)  # last: its presence means the stage is done
    dist.barrier()
    return out
