"""`pretrain`: the backbone's image-level pretraining, in the role of the paper's ImageNet weights.

The paper initializes its networks from VGG-16 pre-trained on ImageNet, whose 1,000 image-level
classes include the weak categories. For the built-in benchmark this stage trains
`build_model(pretrain.backbone, K)` as a multi-label classifier on the generated corpus of
`c3seg.data.synthetic.corpus` (the benchmark's 16 categories and `extra_categories` more, labels
only, never the evaluation data): class score maps pooled to logits (`pretrain.pool`), sigmoid
BCE, as train-cam. It writes the network's weights without its output layer as safetensors,
which `lnet/cam/seg.pretrained=pretrain` load (`train_utils.pretrained_weights`).

Neither the corpus nor the weights depend on the run's dataset or split, so both are cached
under data.root, keyed by the pretrain settings, and shared by later runs (like downloaded
ImageNet weights); the run folder gets its own copy (`run.pretrain_weights`, hard-linked where
the file system allows), the training log, and `source.json` naming the cache it came from.
Each epoch logs the loss, F1 and mAP on a held-out part of the corpus, and images per second.
Measured with the defaults on one CPU thread (tiny net, 6000 images at 112 px, crop 96): the corpus
takes 96 s to generate in one process (16 ms an image), an epoch 301 s (19 img/s, 5700 images)
plus 7 s for the 300 held-out ones; hold-out mAP 0.06 after one epoch (chance is about 0.035).

Switch it on for the benchmark (the stage runs first, and only when some net asks for it):

    c3seg run --config benchmark --out runs/pre \\
        lnet.pretrained=pretrain cam.pretrained=pretrain seg.pretrained=pretrain
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

import torch
import torch.nn.functional as F

from c3seg.config import Config, PretrainConfig
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
from c3seg.evaluation.scoring import evaluate_classifier
from c3seg.inference.forward import pool_scores
from c3seg.io import write_json
from c3seg.models import build_model
from c3seg.models.weights import save_weights
from c3seg.splits import SplitSet

log = logging.getLogger(__name__)

SCALE = (0.75, 1.25)  # random rescale range of training images
WEIGHTS = "backbone.safetensors"


def cache_dir(cfg: Config) -> Path:
    """The shared folder of the weights trained with cfg.pretrain: data.root/pretrain/<backbone>-<hash
    of every pretrain setting>."""
    pc = cfg.pretrain
    key = hashlib.sha256(json.dumps(dataclasses.asdict(pc), sort_keys=True).encode()).hexdigest()[:10]
    return Path(cfg.data.root) / "pretrain" / f"{pc.backbone}-{key}"


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
    if dist.is_main():
        write_json(cache / "settings.json", dataclasses.asdict(pc))  # what the folder name hashes
        save_weights(cache / WEIGHTS, backbone_state(unwrap(model)))
        (cache / "last.pt").unlink(missing_ok=True)
    dist.barrier()
    return cache / WEIGHTS


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)  # the cache is only ever replaced by renames, so a hard link stays valid
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def pretrain(cfg: Config, run: Run, data: SegData | None = None, split: SplitSet | None = None) -> Path:
    """Pretrain the backbone on the generated corpus (or reuse the cached weights of the same
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
    cache = cache_dir(cfg)
    weights = cache / WEIGHTS
    if not weights.exists():
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
            rows = run.train_log("pretrain").read_text().splitlines()
            last = json.loads(rows[-1]) if rows else None
        source = {"weights": str(weights), "last_epoch": last, "settings": dataclasses.asdict(pc)}
        write_json(run.pretrain_source, source)
        _link_or_copy(weights, out)  # last: its presence means the stage is done
    dist.barrier()
    return out
