"""`self-train` (beyond the paper, off unless `selftrain.rounds` > 0): the L-Net learns from the
weak images' own pseudo labels, then the labels are made again with it.

The L-Net learns objectness from strong categories only, and on the benchmark it misses much of
the unseen ones (M is the component that limits the pseudo labels). Each round
r = 1 .. rounds:

1. targets for weak training images (the weak hold-out excluded) from round r-1's pseudo labels
   (`labels/diffusion` for r = 1): 1 where a labelled class was assigned, 0 where the diffusion's confident
   background anchor holds pixel-wise (M < bg_fg_threshold and every labelled CAM <
   bg_cam_threshold, the calibrated thresholds), 255 (no loss) elsewhere and in a band of
   `void_band` pixels around each object; image-level labels and the run's own maps only.
   With the calibrated thresholds the background is rare (0.7% of the benchmark's weak pixels,
   91% void): the round teaches M mostly where the weak objects are. Marking all of the pseudo
   label's background 0 instead made the L-Net better on strong images and the weak labels
   worse on both development sets (docs/results.md, Table 4.4);
2. the L-Net of round r-1 is fine-tuned for `epochs` on strong masks (Eq. 1) plus these targets
   (`engine.lnet.fit_lnet`), the last epoch kept (`selftrain.keep`). The strong hold-out cannot
   score what the round is for, the weak categories: choosing the round's epoch on it (`keep=best`)
   left the pets development set's weak labels 2.6 points lower (docs/results.md, Table 4.5);
3. make-labels makes every source again with round r's L-Net into selftrain/round<r>/labels/
   (thresholds calibrated again on strong images); labels/ keeps round 0's.

train-seg then trains on the last round's labels (`Run.at_round`). selftrain/rounds.json lists each
round's L-Net hold-out score and pseudo-label quality (evaluation only, from each round's
quality.json). A round is done when its L-Net and its labels are: each step skips what exists.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import binary_dilation
from torch.utils.data import ConcatDataset

from c3seg.config import Config
from c3seg.data.torchdata import PairSet, decoded_budget
from c3seg.data.transforms import binarize, train_transform
from c3seg.data.types import Sample, SegData
from c3seg.diffusion import SOURCES
from c3seg.engine import distributed as dist
from c3seg.engine.lnet import fit_lnet, lnet_pairs
from c3seg.engine.run import Run
from c3seg.engine.training import model_from_checkpoint
from c3seg.inference.maps import load_nets, network_maps
from c3seg.io import load_checkpoint, read_json, read_label, write_json, write_label_png
from c3seg.splits import SplitSet, holdout, partition

log = logging.getLogger(__name__)

# make-labels: f(cfg, run, data, split, lnet=<the L-Net's stage name>) -> the labels folder
MakeLabels = Callable[..., Path]


def weak_target(
    pseudo: np.ndarray, m: np.ndarray, cams: np.ndarray, bg_fg: float, bg_cam: float, band: int
) -> np.ndarray:
    """(H, W) uint8 L-Net target of one weak image: 1 labelled object, 0 confident background,
    255 void. pseudo (H, W) its pseudo label, m (H, W) M, cams (K, H, W) its classes' CAMs."""
    fg = (pseudo > 0) & (pseudo != 255)
    top = cams.max(axis=0) if len(cams) else np.zeros_like(m)
    bg = (pseudo == 0) & (m < bg_fg) & (top < bg_cam)
    if band > 0 and fg.any():
        bg &= ~binary_dilation(fg, np.ones((3, 3), bool), iterations=band)
    out = np.full(pseudo.shape, 255, np.uint8)
    out[bg] = 0
    out[fg] = 1
    return out


def write_targets(cfg: Config, run: Run, r: int, weak: list[Sample]) -> None:
    """Round r's targets from round r-1's labels and L-Net (skips existing files)."""
    todo = [s for s in weak if not run.selftrain_target(r, s.id).exists()]
    if not todo:
        return
    before = run.at_round(r - 1)
    params = read_json(before.calibration)["sources"]["diffusion"]["params"]
    bg_fg = params.get("bg_fg_threshold", cfg.labels.bg_fg_threshold)
    bg_cam = params.get("bg_cam_threshold", cfg.labels.bg_cam_threshold)
    device = dist.local_device(cfg.device)
    nets = load_nets(run, device, run.selftrain_lnet(r - 1))
    lc = cfg.labels
    for s, _, m, cams in network_maps(nets, todo, lc.batch_size, device, lc.scales):
        pseudo = read_label(before.label_path("diffusion", s.id))
        target = weak_target(pseudo, m, cams, bg_fg, bg_cam, cfg.selftrain.void_band)
        write_label_png(run.selftrain_target(r, s.id), target)


def train_round(cfg: Config, run: Run, data: SegData, split: SplitSet, r: int, weak: list[Sample]) -> Path:
    """Round r's L-Net: round r-1's weights fine-tuned on strong masks + round r's weak targets."""
    stage = run.selftrain_lnet(r)
    if run.checkpoint(stage).exists():
        return run.checkpoint(stage)
    if dist.is_main():
        write_targets(cfg, run, r, weak)
    dist.barrier()
    st, tc = cfg.selftrain, cfg.lnet
    tc = dataclasses.replace(tc, epochs=st.epochs, lr=st.lr)
    pairs, held = lnet_pairs(cfg, data, split)
    tf = train_transform(cfg.data.crop, cfg.data.scale_min, cfg.data.scale_max, tc.hue, tc.colour, tc.affine)
    keep = decoded_budget(cfg.data)
    ds: ConcatDataset = ConcatDataset(
        [
            PairSet(pairs, tf, target=binarize, keep_mb=keep),
            PairSet([(s.image, run.selftrain_target(r, s.id)) for s in weak], tf, keep_mb=keep),
        ]
    )
    start = run.checkpoint(run.selftrain_lnet(r - 1))
    model = model_from_checkpoint(load_checkpoint(start), start, expect_channels=1)
    torch.manual_seed(cfg.seed + r)
    log.info("self-train round %d: %d strong + %d weak images", r, len(pairs), len(weak))
    held_pairs = [(s.image, s.mask) for s in held]
    return fit_lnet(cfg, tc, run, stage, model, ds, held_pairs, keep_best=st.keep == "best")


def round_summary(run: Run, r: int, labels: Path) -> dict:
    ck = load_checkpoint(run.checkpoint(run.selftrain_lnet(r)))
    quality = {}
    for src in SOURCES:
        q = labels / src / "quality.json"
        if q.exists():
            d = read_json(q)
            quality[src] = {"miou": d["miou"], "miou_weak": d["miou_weak"]}
    return {"round": r, "lnet_holdout_fg_iou": ck.get("holdout_fg_iou"), "pseudo_labels": quality}


def self_train(cfg: Config, run: Run, data: SegData, split: SplitSet, make_labels: MakeLabels) -> Path:
    """The `self-train` stage: `selftrain.rounds` rounds; each skips when done (resumable).
    `make_labels` is the make-labels stage (the pipeline passes it: stages do not import stages)."""
    rounds = cfg.selftrain.rounds
    if rounds <= 0:
        log.info("self-train: selftrain.rounds=0, nothing to do")
        return run.at_round(rounds).labels_root
    _, weak = partition(data, split)
    weak = holdout(weak, cfg.data.holdout)[0]  # the weak hold-out chooses P-Net checkpoints: kept out
    for r in range(1, rounds + 1):
        train_round(cfg, run, data, split, r, weak)
        make_labels(cfg, run.at_round(r), data, split, lnet=run.selftrain_lnet(r))
    if dist.is_main():
        summary = [round_summary(run, r, run.at_round(r).labels_root) for r in range(rounds + 1)]
        write_json(run.selftrain_summary, summary)
        for row in summary:
            q = row["pseudo_labels"].get("diffusion", {})
            log.info("self-train round %d: L-Net hold-out fg IoU %s, pseudo labels weak-class mIoU %s",
                     row["round"], row["lnet_holdout_fg_iou"], q.get("miou_weak"))  # fmt: skip
    return run.at_round(rounds).labels_root
