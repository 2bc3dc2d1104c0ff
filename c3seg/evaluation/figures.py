"""The paper's figures from a run's networks (panels drawn by c3seg.evaluation.plots):

- fig3 (make-labels): one row per weak training image: image | M | CAM of each of its classes |
  pseudo label (diffusion) | ground truth (shown for evaluation only).
- fig6 (evaluate): one row per val image that shows a weak category: image | each method's
  prediction | ground truth (evaluation only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from c3seg.data.types import Sample
from c3seg.engine.run import Run
from c3seg.engine.training import load_model
from c3seg.evaluation.plots import panel_grid
from c3seg.inference.api import ModelInfo, Segmenter
from c3seg.inference.maps import network_maps
from c3seg.io import read_image, read_label


def write_fig3(
    run: Run,
    nets: tuple[torch.nn.Module, torch.nn.Module],
    samples: Sequence[Sample],
    device: torch.device,
    classes: Sequence[str],
    scales: Sequence[float] = (1.0,),
) -> Path:
    """run.figures / fig3.png for `samples` (weak images whose pseudo labels exist); `scales` as
    labels.scales, so the maps shown are the ones the labels were made from."""
    rows = []
    for s, im, m, cams in network_maps(nets, samples, 1, device, scales):
        row = [(im, "image"), (m, "M (L-Net)")]
        row += [(cam, f"CAM: {classes[c]}") for c, cam in zip(s.labels, cams, strict=True)]
        row.append((read_label(run.label_path("diffusion", s.id)), "pseudo label"))
        if s.mask is not None:  # evaluation only: the ground truth is shown, never used
            row.append((read_label(s.mask), "ground truth"))
        rows.append(row)
    return panel_grid(rows, run.figures / "fig3.png", classes, [s.id for s in samples])


def weak_val_images(val: Sequence[Sample], weak_ids: Sequence[int], n: int) -> list[Sample]:
    """The first n val images whose mask shows a weak category."""
    weak = set(weak_ids)
    out = []
    for s in val:
        if s.mask is not None and weak & set(np.unique(read_label(s.mask)).tolist()):
            out.append(s)
            if len(out) == n:
                break
    return out


def write_fig6(
    run: Run, samples: Sequence[Sample], methods: Sequence[str], classes: Sequence[str], device: torch.device
) -> Path:
    """run.figures / fig6.png: image | each method's prediction | ground truth, one row a sample."""
    images = [read_image(s.image) for s in samples]
    preds: dict[str, list[np.ndarray]] = {}
    for m in methods:
        net = load_model(run.checkpoint(run.seg_stage(m)), device, expect_channels=len(classes))
        preds[m] = Segmenter(net, ModelInfo(classes=list(classes)), device=device).predict_batch(images)
    rows = []
    for i, s in enumerate(samples):
        row = [(images[i], "image"), *[(preds[m][i], m) for m in methods]]
        if s.mask is not None:
            row.append((read_label(s.mask), "ground truth"))
        rows.append(row)
    return panel_grid(rows, run.figures / "fig6.png", classes, [s.id for s in samples])
