"""Figure panels composed with numpy + PIL (no matplotlib).

fig3: like the paper's Fig. 3, one row per weak image: image | M | CAM of each of its classes |
pseudo label (diffusion) | ground truth (shown for evaluation only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from c3seg.data.types import Sample
from c3seg.io import VOC_PALETTE, atomic_path, read_label
from c3seg.maps import network_maps
from c3seg.run import Run

TILE_H = 160
PAD = 4


def heatmap(x: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8, a blue-green-yellow-red ramp (jet-like)."""
    x = np.clip(x, 0, 1)[..., None]
    r = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return (255 * np.concatenate([r, g, b], -1)).astype(np.uint8)


def colorize(label: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 with the VOC palette."""
    palette = np.asarray(VOC_PALETTE, dtype=np.uint8).reshape(-1, 3)
    return palette[label]


def _tile(rgb: np.ndarray) -> Image.Image:
    h, w = rgb.shape[:2]
    return Image.fromarray(rgb).resize((max(1, round(w * TILE_H / h)), TILE_H), Image.Resampling.NEAREST)


def compose(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Rows of (H, W, 3) uint8 panels -> one white-padded uint8 image; rows may differ in length."""
    tiles = [[_tile(p) for p in row] for row in rows]
    width = max(sum(t.width + PAD for t in row) for row in tiles) + PAD
    canvas = Image.new("RGB", (width, len(tiles) * (TILE_H + PAD) + PAD), "white")
    for r, row in enumerate(tiles):
        x = PAD
        for t in row:
            canvas.paste(t, (x, PAD + r * (TILE_H + PAD)))
            x += t.width + PAD
    return np.asarray(canvas)


def write_fig3(
    run: Run,
    nets: tuple[torch.nn.Module, torch.nn.Module],
    samples: Sequence[Sample],
    device: torch.device,
    scales: Sequence[float] = (1.0,),
) -> Path:
    """run.figures / fig3.png for `samples` (weak images whose pseudo labels exist); `scales` as
    labels.scales, so the maps shown are the ones the labels were made from."""
    rows = []
    for s, im, m, cams in network_maps(nets, samples, 1, device, scales):
        row = [im, heatmap(m), *[heatmap(c) for c in cams]]
        row.append(colorize(read_label(run.label_path("diffusion", s.id))))
        if s.mask is not None:  # evaluation only: the ground truth is shown, never used
            row.append(colorize(read_label(s.mask)))
        rows.append(row)
    path = run.figures / "fig3.png"
    with atomic_path(path) as tmp:
        Image.fromarray(compose(rows)).save(tmp, format="PNG")
    return path
