"""Generated scenes with simulated M and CAMs, for the benchmark and the tests (no network).

A scene is a smooth textured background with K elliptical objects of distinct colours. M is the
foreground blurred, with low-frequency noise and a false-positive blob (an imperfect L-Net); each
CAM peaks inside its object and covers only part of it, normalized to max 1 (like
c3seg.inference.forward.class_activation_maps).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    gt: np.ndarray  # (H, W) uint8 class indices
    m: np.ndarray  # (H, W) float32 in [0, 1]
    cams: np.ndarray  # (K, H, W) float32, each max 1
    class_ids: list[int]


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    small = rng.normal(size=(max(h // scale, 2), max(w // scale, 2))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_scene(rng: np.random.Generator, k: int, h: int = 375, w: int = 500, num_classes: int = 21) -> Scene:
    """One scene with k objects of k different classes out of 1..num_classes-1."""
    base = rng.uniform(60, 200, 3)
    image = base + 40 * np.stack([_smooth_noise(rng, h, w, 60) for _ in range(3)], -1)
    gt = np.zeros((h, w), np.uint8)
    class_ids = sorted(int(c) for c in rng.choice(np.arange(1, num_classes), size=k, replace=False))
    yy, xx = np.mgrid[:h, :w]
    cams = np.zeros((k, h, w), np.float32)
    for i, c in enumerate(class_ids):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ay, ax = rng.uniform(0.1, 0.25) * h, rng.uniform(0.1, 0.25) * w
        r = ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2
        inside = r < 1
        gt[inside] = c
        image[inside] = base + rng.uniform(-90, 90, 3) + 35 * _smooth_noise(rng, h, w, 20)[inside, None]
        # CAM: peaked at a point off the centre, covering the most discriminative part only
        py, px = cy + rng.uniform(-0.3, 0.3) * ay, cx + rng.uniform(-0.3, 0.3) * ax
        cams[i] = np.exp(-(((yy - py) / (0.6 * ay)) ** 2 + ((xx - px) / (0.6 * ax)) ** 2))
    for i, c in enumerate(class_ids):  # occluded parts get little activation
        cams[i] *= np.where(gt == c, 1.0, 0.35)
        cams[i] = np.clip(cams[i] + 0.08 * _smooth_noise(rng, h, w, 40), 0, None)
        cams[i] /= max(cams[i].max(), 1e-5)
    image = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    fg = cv2.GaussianBlur((gt > 0).astype(np.float32), (0, 0), 6)
    blob = np.exp(-(((yy - rng.uniform(0, h)) / 40) ** 2 + ((xx - rng.uniform(0, w)) / 40) ** 2))
    m = np.clip(0.75 * fg + 0.3 * _smooth_noise(rng, h, w, 50) + 0.6 * blob, 0, 1).astype(np.float32)
    return Scene(image=image, gt=gt, m=m, cams=cams, class_ids=class_ids)
