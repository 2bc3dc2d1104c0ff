"""A toy SegData for tests: coloured squares on noise, classes red, green, blue."""

from pathlib import Path

import numpy as np

from c3seg.data.types import Sample, SegData
from c3seg.io import write_image, write_label_png


def make(root: Path, n_train=24, n_val=6, size=48, seed=0):
    rng = np.random.default_rng(seed)
    cols = {1: (220, 30, 30), 2: (30, 220, 30), 3: (30, 30, 220)}

    def one(i, split):
        img = rng.integers(0, 120, (size, size, 3)).astype(np.uint8)
        m = np.zeros((size, size), np.uint8)
        labels = sorted(set(rng.integers(1, 4, rng.integers(1, 3)).tolist()))
        for c in labels:
            y, x = rng.integers(0, size - 16, 2)
            img[y : y + 16, x : x + 16] = cols[c]
            m[y : y + 16, x : x + 16] = c
        write_image(root / f"{split}{i}.jpg", img)
        write_label_png(root / f"{split}{i}.png", m)
        return Sample(f"{split}{i}", root / f"{split}{i}.jpg", root / f"{split}{i}.png", tuple(labels))

    tr = tuple(one(i, "t") for i in range(n_train))
    va = tuple(one(i, "v") for i in range(n_val))
    return SegData("toy", ("background", "red", "green", "blue"), tr, va, root=root)


SHAPE_COLOURS = {1: (220, 40, 40), 2: (40, 200, 60), 3: (50, 60, 230)}


def draw_shapes(rng, classes, side=48, void_row=False):
    """Noise image with one square (classes 1, 3) or disc (class 2) per class -> (H, W, 3), (H, W);
    `void_row` marks each shape's top row 255, as VOC marks boundaries."""
    img = rng.integers(60, 140, (side, side, 3)).astype(np.uint8)
    lab = np.zeros((side, side), np.uint8)
    yy, xx = np.mgrid[:side, :side]
    for c in classes:
        r = int(rng.integers(7, 11))
        cy, cx = (int(v) for v in rng.integers(r, side - r, 2))
        if c == 2:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            inside = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        img[inside] = SHAPE_COLOURS[c]
        lab[inside] = c
        if void_row:
            lab[inside & ~np.roll(inside, 1, 0)] = 255
    return img, lab
