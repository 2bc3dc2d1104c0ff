"""`predict`: images -> label maps (palette PNG) and overlays, with an optional dense CRF."""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

from c3seg import distributed as dist
from c3seg.crf import dense_crf
from c3seg.data.transforms import normalize
from c3seg.infer import segment
from c3seg.io import VOC_PALETTE, read_image, write_image, write_label_png
from c3seg.run import Run
from c3seg.train_utils import load_model

log = logging.getLogger(__name__)

_PALETTE = np.array(VOC_PALETTE, np.uint8).reshape(-1, 3)


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the label colours over the image (background left as is)."""
    colour = _PALETTE[label]
    fg = (label > 0)[..., None]
    return np.where(fg, (1 - alpha) * image + alpha * colour, image).astype(np.uint8)


@torch.no_grad()
def predict_image(
    model: torch.nn.Module, image: np.ndarray, device: torch.device, crf: bool = False
) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 class indices."""
    x = normalize(torch.from_numpy(image).permute(2, 0, 1)[None].to(device))
    prob = segment(model, x)[0].cpu().numpy()  # (C, H, W)
    if crf:
        prob = dense_crf(image, prob)
    return prob.argmax(0).astype(np.uint8)


def predict_command(args: argparse.Namespace) -> int:
    run = Run(args.run)
    device = dist.local_device("auto")
    model = load_model(run.checkpoint(run.seg_stage(args.method)), device, stage_hint="train-seg")
    for path in args.images:
        image = read_image(path)
        label = predict_image(model, image, device, args.crf)
        write_label_png(args.out / f"{path.stem}.png", label)
        write_image(args.out / f"{path.stem}_overlay.jpg", overlay(image, label))
        log.info(
            "%s -> %s (classes %s)",
            path,
            args.out / f"{path.stem}.png",
            sorted(set(np.unique(label).tolist()) - {0}),
        )
    return 0
