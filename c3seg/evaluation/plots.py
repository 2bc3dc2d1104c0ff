"""The run's pictures, drawn with matplotlib (object API, no display needed) and linked from
report.md:

- fig3.png (make-labels): like the paper's Fig. 3, one row per weak training image: image | M |
  CAM of each of its classes | pseudo label | ground truth (shown for evaluation only).
- fig6.png (evaluate): like the paper's Fig. 6, one row per val image showing a weak category:
  image | each method's prediction | ground truth.
- iou.png (evaluate): per-class IoU of each method, strong categories marked *.
- curves.png (evaluate): every training stage's log.jsonl against the logged epoch: losses (solid,
  left axis), hold-out scores and the P-Net's discriminator accuracy in percent (dashed, right).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from c3seg.io import VOC_PALETTE, atomic_path, colorize, read_jsonl

PANEL = 1.9  # inches per image panel


def _legend(classes: Sequence[str], present: set[int]) -> list[Patch]:
    palette = np.asarray(VOC_PALETTE, dtype=float).reshape(-1, 3) / 255
    return [Patch(color=palette[c], label=classes[c]) for c in sorted(present) if c < len(classes)]


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def panel_grid(
    rows: Sequence[Sequence[tuple[np.ndarray, str]]],
    path: Path,
    classes: Sequence[str],
    row_titles: Sequence[str] = (),
    cmap: str = "jet",
) -> Path:
    """Rows of (panel, title) into one PNG: (H, W, 3) uint8 panels are shown as they are, (H, W)
    float panels as heat maps in [0, 1]; a legend names every class whose colour appears in a
    label panel (uint8 (H, W) panels are class indices)."""
    ncol = max(len(r) for r in rows)
    fig = Figure(figsize=(PANEL * ncol, PANEL * len(rows) + 0.6))
    axes = fig.subplots(len(rows), ncol, squeeze=False)
    present: set[int] = set()
    for r, row in enumerate(rows):
        for c in range(ncol):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(row):
                continue
            img, title = row[c]
            if img.ndim == 2 and img.dtype == np.uint8:
                present |= set(np.unique(img[img != 255]).tolist()) - {0}
                img = colorize(img)
            if img.ndim == 2:
                ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
            else:
                ax.imshow(img)
            ax.set_title(title, fontsize=8)
        if r < len(row_titles):
            axes[r][0].text(
                -0.05,
                0.5,
                row_titles[r],
                transform=axes[r][0].transAxes,
                rotation=90,
                ha="right",
                va="center",
                fontsize=8,
            )
    if present:
        fig.legend(
            handles=_legend(classes, present),
            loc="lower center",
            ncol=min(8, len(present)),
            fontsize=7,
            frameon=False,
        )
    return _save(fig, path)


def iou_bars(
    rows: dict[str, dict[str, Any]], classes: Sequence[str], strong_names: Sequence[str], path: Path
) -> Path:
    """Per-class IoU of each method's report row (`rows[m]["iou"]`: class -> IoU %), strong
    categories marked *."""
    strong = set(strong_names)
    methods = [m for m in rows if rows[m].get("iou")]
    fig = Figure(figsize=(max(6.0, 0.45 * len(classes) * max(1, len(methods)) / 2), 3.6))
    ax = fig.subplots()
    x = np.arange(len(classes))
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        iou = rows[m]["iou"]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, [iou.get(c) or 0 for c in classes], width, label=m)
    for i, c in enumerate(classes):
        if c in strong:
            ax.axvspan(i - 0.5, i + 0.5, color="0.92", zorder=0)
    ax.set_xticks(x, [f"{c}*" if c in strong else c for c in classes], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title("IoU per class on val (* and grey: strong categories; the rest weak)", fontsize=9)
    ax.legend(fontsize=7, ncol=min(4, len(methods)))
    return _save(fig, path)


def training_curves(root: Path, path: Path) -> Path | None:
    """One subplot per training log under the run folder (lnet, cam, seg/<method>, self-training
    rounds, the P-Net): losses on the left axis, hold-out scores on the right. None without logs."""
    logs = sorted(root.rglob("log.jsonl"))
    logs = [p for p in logs if read_jsonl(p)]
    if not logs:
        return None
    ncol = min(3, len(logs))
    nrow = (len(logs) + ncol - 1) // ncol
    fig = Figure(figsize=(4.2 * ncol, 2.8 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for k, p in enumerate(logs):
        ax = axes[k // ncol][k % ncol]
        rows = read_jsonl(p)
        step = np.arange(1, len(rows) + 1)
        keys = [
            key
            for key in dict.fromkeys(k2 for r in rows for k2 in r)
            if key not in ("epoch", "seconds", "best_epoch", "phase")
            and all(isinstance(r.get(key, 0), int | float) for r in rows)
        ]
        right = ax.twinx()
        colours = [f"C{i % 10}" for i in range(len(keys))]  # one colour a key across both axes
        for key, colour in zip(keys, colours, strict=True):
            found = [(s, r[key]) for s, r in zip(step, rows, strict=True) if r.get(key) is not None]
            xs, ys = [s for s, _ in found], [float(y) for _, y in found]
            loss = "loss" in key or key.startswith("seg_")
            if not loss and ys and max(abs(y) for y in ys) <= 1:
                ys = [100 * y for y in ys]  # fractions (IoU, F1, mAP, accuracy) as percent
            (ax if loss else right).plot(xs, ys, "-" if loss else "--", marker=".", color=colour, label=key)
        ax.set_title(p.parent.relative_to(root).as_posix(), fontsize=9)
        ax.set_xlabel("logged epoch", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        right.set_ylabel("hold-out score / accuracy (%)", fontsize=8)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = right.get_legend_handles_labels()
        if h1 or h2:
            ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="best")
    for k in range(len(logs), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    fig.tight_layout()
    return _save(fig, path)
