"""Ceilings of the method on a run, by breaking its protocol ON PURPOSE (evaluation only).

Never part of the pipeline: both commands put weak images' ground-truth masks where the method
may not, to measure how far a perfect component would carry it. Run them on a COPY of a run
folder that holds lnet/, cam/ and config.yaml, then train and evaluate as usual:

    cp -r runs/demo /tmp/ceil && rm -rf /tmp/ceil/{labels,seg,eval}
    python tools/ceiling.py lnet-all /tmp/ceil      # L-Net trained on EVERY training mask
    c3seg run --config /tmp/ceil/config.yaml --out /tmp/ceil \\
        --stages make-labels,train-seg,evaluate methods=lnet

    python tools/ceiling.py oracle-m /tmp/ceil      # M = ground-truth foreground, real CAMs
    c3seg run --config /tmp/ceil/config.yaml --out /tmp/ceil --stages train-seg,evaluate methods=lnet

    python tools/ceiling.py pseudo /tmp/ceil 300     # pseudo-label mIoU: real / oracle M / oracle CAM

`lnet-all` keeps the L-Net's iteration budget: epochs are scaled by strong / all training images.
`oracle-m` needs labels/calibration.json (run make-labels once first) and writes labels/diffusion.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import torch

import c3seg.stages.train_lnet as train_lnet_stage
from c3seg.config import load_config
from c3seg.data.load import load_dataset
from c3seg.diffusion import diffuse_labels
from c3seg.engine.run import Run
from c3seg.inference.maps import label_maps, load_affinity, load_nets
from c3seg.io import read_json, read_label, write_label_png
from c3seg.splits import holdout, load_split, partition
from c3seg.stages.make_labels import source_configs


def _open(run: Run) -> tuple:
    """(config, dataset, split-set) of a run folder."""
    cfg = load_config(run.config)
    data = load_dataset(cfg.data)
    return cfg, data, load_split(cfg.data.split, data.classes)


def _weak_maps(run: Run, n: int | None = None) -> tuple:
    """(config, dataset, split, diffusion settings as calibrated, iterator of (sample, image, M,
    CAMs, learned-affinity embedding or None) of weak images), as make-labels sees them."""
    cfg, data, split = _open(run)
    run = run.at_round(cfg.selftrain.rounds)  # the labels train-seg reads: the last round's
    _, weak = partition(data, split)
    cfg_diff, _ = source_configs(cfg.labels, read_json(run.calibration))
    device = torch.device("cpu")
    return (
        cfg,
        data,
        split,
        cfg_diff,
        # the L-Net that made the run's labels: the last self-training round's, if any
        label_maps(
            load_nets(run, device, run.selftrain_lnet(cfg.selftrain.rounds)),
            load_affinity(run, device) if cfg.affinity.enabled else None,
            weak[:n],
            8,
            device,
            cfg.labels.scales,
        ),
    )


def gt_foreground(gt: np.ndarray) -> np.ndarray:
    return ((gt > 0) & (gt != 255)).astype(np.float32)


def lnet_all(run: Run) -> None:
    cfg, data, split = _open(run)
    strong, _ = partition(data, split)
    kept, held = holdout(data.train, cfg.data.holdout)
    epochs = max(1, round(cfg.lnet.epochs * len(strong) / len(data.train)))
    cfg = dataclasses.replace(cfg, lnet=dataclasses.replace(cfg.lnet, epochs=epochs))
    shutil.rmtree(run.stage_dir("lnet"), ignore_errors=True)
    print(f"L-Net on all {len(kept)} training masks for {epochs} epochs")
    own_pairs = train_lnet_stage.lnet_pairs
    train_lnet_stage.lnet_pairs = lambda cfg, data, split: ([(s.image, s.mask) for s in kept], held)
    try:
        train_lnet_stage.train_lnet(cfg, run, data, split)
    finally:
        train_lnet_stage.lnet_pairs = own_pairs


def oracle_m(run: Run) -> None:
    cfg, *_, cfg_diff, maps = _weak_maps(run)
    run = run.at_round(cfg.selftrain.rounds)
    written = 0
    for s, image, _, cams, emb in maps:
        m = gt_foreground(read_label(s.mask))
        label = diffuse_labels(image, m, cams, list(s.labels), cfg_diff, emb=emb)
        write_label_png(run.label_path("diffusion", s.id), label)
        written += 1
    print(f"wrote {written} oracle-M labels to {run.labels_dir('diffusion')}")


def pseudo(run: Run, n: int) -> None:
    """Weak-class pseudo-label mIoU on the first n weak training images with real M and CAMs,
    with M = ground-truth foreground, with CAMs = ground-truth class maps, and with both."""
    from c3seg.evaluation.metrics import ConfusionMatrix, mean_iou
    from c3seg.splits import class_ids

    _, data, split, cfg_diff, maps = _weak_maps(run, n)
    cms = {k: ConfusionMatrix(data.num_classes) for k in ("real", "oracle M", "oracle CAM", "both")}
    for s, image, m, cams, emb in maps:
        gt = read_label(s.mask)
        fg = gt_foreground(gt)
        gt_cams = np.stack([(gt == c).astype(np.float32) for c in s.labels])
        for k, (mm, cc) in {
            "real": (m, cams),
            "oracle M": (fg, cams),
            "oracle CAM": (m, gt_cams),
            "both": (fg, gt_cams),
        }.items():
            label = diffuse_labels(image, mm, cc, list(s.labels), cfg_diff, emb=emb)
            cms[k].update(gt, np.where(label == 255, 0, label))
    weak_ids = class_ids(data, split.weak)
    for k, cm in cms.items():
        print(
            f"{k:>10}: mIoU {100 * mean_iou(cm.iou()):.1f}, weak classes {100 * mean_iou(cm.iou(), weak_ids):.1f}"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["lnet-all", "oracle-m", "pseudo"])
    p.add_argument("run", type=Path)
    p.add_argument("images", type=int, nargs="?", default=300, help="pseudo: weak images scored")
    a = p.parse_args()
    if a.what == "pseudo":
        pseudo(Run(a.run), a.images)
    else:
        {"lnet-all": lnet_all, "oracle-m": oracle_m}[a.what](Run(a.run))
