"""`train-pnet`: adversarial refinement of the segmentation net with the P-Net (Fig. 4, Eq. 3-5).

1. Start the segmentation net S from method "lnet" (strong GT + self-diffusion pseudo labels).
2. Pre-train the P-Net P on strong images only, S fixed (Eq. 5):
       min_P  J_b(1, P(I ⊗ L_I)) + J_b(0, P(I ⊗ S(I)))
3. Fine-tune both on every training image of "lnet" (label maps L_I = strong GT or pseudo labels),
   alternating per batch: Eq. 5 for P, then Eq. 4 for S:
       min_S  J_m(L_I, S(I)) + λ J_b(1, P(I ⊗ S(I)))
   (⊗ = the product encoding, `c3seg.models.pnet.product_encoding`).
4. The segmentation checkpoint is chosen on held-out training images (`splits.holdout`, never
   trained on by train-seg or here), evaluated before fine-tuning (epoch 0 = the lnet model) and
   every `pnet.eval_every` epochs; the best is kept, so fine-tuning never returns a worse model on
   the hold-out than it started from. `pnet.select`: "strong" = mIoU on the strong hold-out (its
   masks); "strong+labels" = the mean of that and the agreement of predictions on the WEAK
   hold-out with their image-level labels (`metrics.label_f1`): strong mIoU alone rewards a model
   that suppresses weak classes, the labels see them. Weak masks are never used to choose anything.

Outputs: seg/pnet/model.pt (what `evaluate` reports as "pnet"), pnet/model.pt (the P-Net at the
chosen epoch), seg/pnet/log.jsonl (per epoch: discriminator loss and accuracy on real and fake,
segmentation losses, hold-out mIoU). A healthy P-Net loss (`d_loss`, the mean of the two J_b
terms; 0.69 = chance) sits around 0.2-0.5; 0.69 with accuracy 1/0 means it learns nothing (seen with
the paper's SGD 1e-3 on the tiny net), near 0 means it has won and Eq. 4's term saturates.

Settings: `PNetConfig` (the paper's values, lr_seg=1e-5 / lr_pnet=1e-3 with SGD, stay reachable).
Void pixels (255) of label maps take the prediction's probabilities (`models.pnet.label_maps`).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from c3seg.config import Config
from c3seg.data.torchdata import PairSet, decoded_budget
from c3seg.data.transforms import normalize, train_transform
from c3seg.data.types import Sample, SegData
from c3seg.engine import distributed as dist
from c3seg.engine.run import Run
from c3seg.engine.training import (
    JsonlLog,
    autocast,
    checkpoint_dict,
    images_per_epoch,
    make_loader,
    model_from_checkpoint,
    prepare,
    progress,
    resume_state,
    save_state,
    seed_everything,
    start_epoch,
    unwrap,
    use_bf16,
)
from c3seg.evaluation.metrics import label_f1, mean_iou
from c3seg.evaluation.scoring import evaluate_model
from c3seg.inference.forward import segment
from c3seg.io import load_checkpoint, read_image, save_checkpoint
from c3seg.losses import SegLoss, segmentation_loss
from c3seg.methods import PNET_START, method_pairs
from c3seg.models.common import upsample
from c3seg.models.pnet import PNet, label_maps, pnet_input
from c3seg.splits import SplitSet, holdout, main_class_pairs, partition, strong_holdout

log = logging.getLogger(__name__)

DISC_STAGE = "pnet"


def adversarial_optimizer(
    params: Any, name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """'sgd' (the paper's) or 'adam' (betas 0.5, 0.999: the usual setting for adversarial training)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; use sgd or adam")


def holdout_pairs(cfg: Config, data: SegData, split: SplitSet) -> list[tuple[Path, Path]]:
    """(image, GT mask) of the strong hold-out, split 4's extra strong images included (masks in
    the main dataset's classes): with the weak hold-out's image-level labels, the only images that
    choose the checkpoint."""
    _, held = strong_holdout(data, split, cfg.data.holdout)
    if not held:
        raise ValueError("the strong hold-out is empty; set data.holdout > 0 to choose the P-Net checkpoint")
    return main_class_pairs(held, data)


def discriminator_step(
    seg_probs: torch.Tensor,
    images: torch.Tensor,
    masks: torch.Tensor,
    pnet: nn.Module,
    opt: torch.optim.Optimizer,
    size: int,
    cast: tuple[torch.device, bool],
) -> dict[str, float]:
    """One P-Net update with Eq. 5 on a batch; seg_probs (B, C, H, W) is detached here.

    Real and fake go through the P-Net in one batch (one forward for DDP)."""
    probs = seg_probs.detach()
    real = pnet_input(images, label_maps(masks, probs), size)  # (B, 3C, S, S), label 1
    fake = pnet_input(images, probs, size)  # (B, 3C, S, S), label 0
    b = images.shape[0]
    with autocast(*cast):
        logits = pnet(torch.cat([real, fake])).float()  # (2B,)
    loss_real = F.binary_cross_entropy_with_logits(logits[:b], torch.ones(b, device=logits.device))
    loss_fake = F.binary_cross_entropy_with_logits(logits[b:], torch.zeros(b, device=logits.device))
    opt.zero_grad(set_to_none=True)
    (loss_real + loss_fake).backward()  # Eq. 5
    opt.step()
    return {
        "d_loss_real": loss_real.item(),
        "d_loss_fake": loss_fake.item(),
        "d_acc_real": (logits[:b] > 0).float().mean().item(),
        "d_acc_fake": (logits[b:] < 0).float().mean().item(),
    }


def run_epoch(
    cfg: Config,
    loader: torch.utils.data.DataLoader,
    seg: nn.Module,
    pnet: nn.Module,
    opt_p: torch.optim.Optimizer,
    opt_s: torch.optim.Optimizer | None,
    device: torch.device,
    seg_loss: SegLoss | None = None,
) -> dict[str, float]:
    """One epoch. opt_s None: P-Net pre-training with S fixed (Eq. 5); otherwise fine-tuning,
    alternating Eq. 5 (P) and Eq. 4 (S) per batch, J_m = seg_loss (train-seg's loss; plain
    cross-entropy when None). Returns epoch means."""
    pc, cast = cfg.pnet, (device, use_bf16(cfg.seg, device))  # autocast(*cast) for both nets
    seg.train(opt_s is not None)
    pnet.train()
    sums: dict[str, float] = {}
    n = 0
    for images, masks, idx in progress(loader, images_per_epoch(loader), "pnet"):
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        with torch.set_grad_enabled(opt_s is not None), autocast(*cast):
            logits = upsample(seg(images), masks.shape[-2:]).float()  # (B, C, H, W)
        probs = torch.softmax(logits, 1)  # (B, C, H, W)
        row = discriminator_step(probs, images, masks, pnet, opt_p, pc.input_size, cast)
        if opt_s is not None:
            ce = (  # J_m
                seg_loss(logits, masks, idx) if seg_loss else F.cross_entropy(logits, masks, ignore_index=255)
            )
            disc = unwrap(pnet)  # P is fixed in this step: no DDP reduction, no weight gradients
            disc.requires_grad_(False)
            with autocast(*cast):
                fooled = disc(pnet_input(images, probs, pc.input_size)).float()  # (B,)
            disc.requires_grad_(True)
            adv = F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))  # J_b(1, P(S(I)))
            opt_s.zero_grad(set_to_none=True)
            (ce + pc.lam * adv).backward()  # Eq. 4
            opt_s.step()
            row.update(seg_ce=ce.item(), seg_adv=adv.item())
        for k, v in row.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
    out = {k: v / max(n, 1) for k, v in sums.items()}
    out["d_loss"] = 0.5 * (
        out.get("d_loss_real", 0.0) + out.get("d_loss_fake", 0.0)
    )  # mean J_b; chance = 0.69
    return out


def weak_holdout(cfg: Config, data: SegData, split: SplitSet) -> list[Sample]:
    """Weak images held out of train-seg (same hash rule as the strong hold-out); only their
    image-level labels are read."""
    _, weak = partition(data, split)
    return holdout(weak, cfg.data.holdout)[1] if weak else []


@torch.no_grad()
def weak_label_f1(seg: nn.Module, samples: list[Sample], device: torch.device, bf16: bool) -> float:
    """Mean `metrics.label_f1` (in %) of predictions on weak hold-out images; no mask is read."""
    seg = unwrap(seg)
    seg.eval()
    scores = []
    for s in samples:
        x = normalize(torch.from_numpy(read_image(s.image)).permute(2, 0, 1)[None].to(device))
        with autocast(device, bf16):
            pred = segment(seg, x).argmax(1)[0].cpu().numpy()  # (H, W)
        scores.append(label_f1(pred, s.labels))
    return 100.0 * sum(scores) / len(scores) if scores else float("nan")


def selection_score(
    seg: nn.Module, held: list, weak_held: list[Sample], cfg: Config, data: SegData, device: torch.device
) -> dict[str, float]:
    """What chooses the checkpoint (`pnet.select`): strong hold-out mIoU, or its mean with the weak
    hold-out's label agreement. Both in %."""
    cm = evaluate_model(unwrap(seg), held, data.num_classes, device, use_bf16(cfg.seg, device))
    out = {"holdout_miou": 100.0 * mean_iou(cm.iou())}
    if cfg.pnet.select == "strong+labels" and weak_held:
        out["weak_label_f1"] = weak_label_f1(seg, weak_held, device, use_bf16(cfg.seg, device))
        out["score"] = 0.5 * (out["holdout_miou"] + out["weak_label_f1"])
    elif cfg.pnet.select in ("strong", "strong+labels"):
        out["score"] = out["holdout_miou"]
    else:
        raise ValueError(f"unknown pnet.select {cfg.pnet.select!r}; use strong or strong+labels")
    return out


def start_network(run: Run, data: SegData) -> tuple[str, nn.Module]:
    """(backbone, network) of the lnet method: where the adversarial refinement starts."""
    path = run.checkpoint(run.seg_stage(PNET_START))
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; train-pnet starts from the lnet segmentation net: run "
            "'c3seg run --stages train-seg methods=lnet' (after make-labels) first"
        )
    ck = load_checkpoint(path)
    return ck["backbone"], model_from_checkpoint(ck, path, expect_channels=data.num_classes)


def candidate(epoch: int, sel: dict[str, float], seg: nn.Module, pnet: nn.Module | None) -> dict[str, Any]:
    """A checkpoint candidate: its fine-tuning epoch (0 = the lnet model), hold-out scores, weights."""
    return {
        "epoch": epoch,
        **sel,
        "seg": copy.deepcopy(unwrap(seg).state_dict()),
        "pnet": copy.deepcopy(unwrap(pnet).state_dict()) if pnet is not None else None,
    }


def save_choice(
    cfg: Config, run: Run, data: SegData, best: dict[str, Any], seg: nn.Module, pnet: nn.Module, backbone: str
) -> None:
    """Write the chosen candidate: the segmentation net as method "pnet" and its discriminator."""
    log.info(
        "pnet: chose fine-tuning epoch %d (%s score %.1f)", best["epoch"], cfg.pnet.select, best["score"]
    )
    unwrap(seg).load_state_dict(best["seg"])
    disc = {
        "model": best["pnet"] or unwrap(pnet).state_dict(),
        "num_classes": data.num_classes,
        "input_size": cfg.pnet.input_size,
        "epoch": best["epoch"],
    }
    save_checkpoint(run.checkpoint(DISC_STAGE), disc)
    save_checkpoint(
        run.checkpoint(run.seg_stage("pnet")),
        checkpoint_dict(
            seg,
            backbone,
            data.num_classes,
            method="pnet",
            classes=list(data.classes),
            epoch=best["epoch"],
            holdout_miou=best["holdout_miou"],
            selection=cfg.pnet.select,
            selection_score=best["score"],
            weak_label_f1=best.get("weak_label_f1"),
        ),
    )


def train_pnet(cfg: Config, run: Run, data: SegData, split: SplitSet) -> Path:
    """The `train-pnet` stage; returns the segmentation checkpoint of method "pnet". Skips when it
    exists, resumes from the last finished epoch (pre-training and fine-tuning count as one run of
    pretrain_epochs + finetune_epochs epochs)."""
    stage = run.seg_stage("pnet")
    final = run.checkpoint(stage)
    if final.exists():
        log.info("pnet: %s exists, skipping", final)
        return final
    pc = cfg.pnet
    seed_everything(cfg.seed)
    device = dist.local_device(cfg.device)
    backbone, seg = start_network(run, data)
    seg = prepare(seg, device, cfg.seg)  # both networks train with seg.precision and seg.compile
    pnet = prepare(PNet(data.num_classes, pc.input_size), device, cfg.seg)
    opt_s = adversarial_optimizer(
        seg.parameters(), pc.optim_seg, pc.lr_seg, cfg.seg.momentum, cfg.seg.weight_decay
    )
    opt_p = adversarial_optimizer(pnet.parameters(), pc.optim_pnet, pc.lr_pnet, 0.9, 0.0)

    transform = train_transform(cfg.data.crop, cfg.data.scale_min, cfg.data.scale_max)
    keep = decoded_budget(cfg.data)
    strong_pairs = method_pairs(cfg, run, data, split, "strong-only")  # hold-out excluded
    strong_set = PairSet(strong_pairs, transform, keep_mb=keep)
    all_pairs = method_pairs(cfg, run, data, split, PNET_START)
    all_set = PairSet(all_pairs, transform, keep_mb=keep)
    seg_loss = segmentation_loss(cfg.seg, data, all_pairs, device, "pnet")  # train-seg's J_m
    strong_loader = make_loader(strong_set, pc.batch_size, cfg.data.workers, train=True, seed=cfg.seed)
    all_loader = make_loader(all_set, pc.batch_size, cfg.data.workers, train=True, seed=cfg.seed)
    held, weak_held = holdout_pairs(cfg, data, split), weak_holdout(cfg, data, split)

    start, best = 0, None
    state = resume_state(run.state(stage))
    if state is not None:
        unwrap(seg).load_state_dict(state["seg"])
        unwrap(pnet).load_state_dict(state["pnet"])
        opt_s.load_state_dict(state["opt_seg"])
        opt_p.load_state_dict(state["opt_pnet"])
        start, best = state["epoch"] + 1, state["best"]
    tlog = JsonlLog(run.train_log(stage), fresh=state is None)
    if best is None:  # epoch 0: the lnet model itself is the first candidate
        sel = selection_score(seg, held, weak_held, cfg, data, device)
        best = candidate(0, sel, seg, None)
        tlog.write(phase="start", epoch=0, **sel)
    log.info(
        "pnet: %d strong images for pre-training, %d for fine-tuning, %d hold-out images; %d + %d epochs on %s",
        len(strong_set), len(all_set), len(held), pc.pretrain_epochs, pc.finetune_epochs, device,
    )  # fmt: skip
    total = pc.pretrain_epochs + pc.finetune_epochs
    for epoch in range(start, total):
        finetune = epoch >= pc.pretrain_epochs
        loader = all_loader if finetune else strong_loader
        start_epoch(loader, cfg.seed, epoch)
        t0 = time.time()
        row: dict[str, Any] = run_epoch(
            cfg, loader, seg, pnet, opt_p, opt_s if finetune else None, device, seg_loss
        )
        ft_epoch = epoch - pc.pretrain_epochs + 1  # 1-based fine-tuning epoch
        if finetune and (ft_epoch % max(pc.eval_every, 1) == 0 or epoch == total - 1):
            sel = selection_score(seg, held, weak_held, cfg, data, device)
            row.update(sel)
            if sel["score"] > best["score"]:
                best = candidate(ft_epoch, sel, seg, pnet)
        phase, logged = ("finetune", ft_epoch) if finetune else ("pretrain", epoch + 1)
        tlog.write(phase=phase, epoch=logged, **row, seconds=round(time.time() - t0, 3))
        save_state(
            run.state(stage),
            seg=unwrap(seg).state_dict(),
            pnet=unwrap(pnet).state_dict(),
            opt_seg=opt_s.state_dict(),
            opt_pnet=opt_p.state_dict(),
            epoch=epoch,
            best=best,
        )
    if dist.is_main():
        save_choice(cfg, run, data, best, seg, pnet, backbone)
        run.state(stage).unlink(missing_ok=True)
    dist.barrier()
    return final
