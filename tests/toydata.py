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
