"""The built-in procedural benchmark: 16 categories in 4 families, generated on first use.

Each image has a textured background (smooth noise, fine grain, stripes) with non-object
distractors in colours that also occur on objects (blobs, stripe patches, triangles, thin lines,
rings), 1-4 objects at a 3x range of scale with occlusion, some distractors drawn in front of
objects, and a 1 px void band (255) around every object, as in VOC. Categories are drawn by
`c3seg.data.synthetic.shapes`; see `CATEGORIES` there for the family of each.

On disk it is the VOC layout (see `c3seg.data.voclayout`) plus `classes.txt`. Every image is a
pure function of (seed, split, index), so generation runs in a process pool and gives identical
files whatever the pool size. The folder is written under a temporary sibling name and renamed
into place only when complete, so an interrupted generation never leaves a half dataset.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from c3seg.config import DataConfig
from c3seg.data.synthetic.shapes import CATEGORIES, OBJECT_COLOURS, Canvas, value_noise
from c3seg.data.types import SegData
from c3seg.data.voclayout import read_split
from c3seg.engine.workers import children_ignore_ctrl_c
from c3seg.io import write_image, write_label_png

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = ("background", *CATEGORIES)
FAMILIES: dict[str, tuple[str, ...]] = {}
for _name, (_family, _) in CATEGORIES.items():
    FAMILIES[_family] = (*FAMILIES.get(_family, ()), _name)
SPLITS = {"train": 0, "val": 1}  # split name -> RNG stream key
CHUNK = 50  # images per pool task


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The RNG of one image: independent of every other image, so any order gives the same data."""
    return np.random.default_rng([seed, SPLITS[split], index])


def _frame(rng: np.random.Generator, size: int, px: float, margin: float = 0.1) -> Canvas:
    """A Canvas at a random position, rotation and mirror, with `px` pixels per object unit."""
    cx, cy = rng.uniform(margin, 1 - margin, 2) * size
    a = rng.uniform(-0.3, 0.3)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = x - cx, y - cy
    u = (dx * np.cos(a) + dy * np.sin(a)) / px * rng.choice([-1.0, 1.0])
    v = (-dx * np.sin(a) + dy * np.cos(a)) / px
    return Canvas(rng, u, v, px)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """Half the time an object colour (so colour is no foreground cue), otherwise any colour."""
    if rng.random() < 0.5:
        base = np.asarray(OBJECT_COLOURS[rng.integers(len(OBJECT_COLOURS))], float)
        return tuple(np.clip(base + rng.normal(0, 15, 3), 0, 255).astype(int))
    return tuple(rng.integers(0, 256, 3))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(H, W, 3) float: two colours mixed by smooth noise, fine grain, often a stripe field."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    t = value_noise(rng, x, y, int(rng.integers(2, 6)))[..., None]
    img = np.asarray(_colour(rng), np.float32) * (1 - t) + np.asarray(_colour(rng), np.float32) * t
    img += (value_noise(rng, x, y, int(rng.integers(12, 40)))[..., None] - 0.5) * rng.uniform(20, 70)
    if rng.random() < 0.5:
        a, freq = rng.uniform(0, np.pi), rng.uniform(5, 18)
        on = np.mod((x * np.cos(a) + y * np.sin(a)) * freq, 1.0) < 0.5
        region = value_noise(rng, x, y, 2) > rng.uniform(0.2, 0.6)
        alpha = rng.uniform(0.3, 0.8)
        img[on & region] = img[on & region] * (1 - alpha) + np.asarray(_colour(rng)) * alpha
    return img


def _distractor(rng: np.random.Generator, size: int) -> Canvas:
    """A non-object shape: blob, stripe patch, triangle, thin line or ring."""
    c = _frame(rng, size, size * rng.uniform(0.06, 0.25), margin=0.0)
    kind = rng.integers(5)
    if kind == 0:
        blob = c.ellipse(0, 0, 1, rng.uniform(0.4, 1)) & (c.spots(4, 0.3) | c.ellipse(0, 0, 0.6, 0.3))
        c.paint(blob, _colour(rng))
    elif kind == 1:
        c.paint(c.box(-1, -0.6, 1, 0.6), _colour(rng), _colour(rng), c.stripes(rng.uniform(2, 6)))
    elif kind == 2:
        c.paint(c.triangle(*[tuple(rng.uniform(-1, 1, 2)) for _ in range(3)]), _colour(rng))
    elif kind == 3:
        x0, y0, x1, y1 = rng.uniform(-1.5, 1.5, 4)
        c.paint(c.segment(x0, y0, x1, y1, rng.uniform(0.03, 0.15)), _colour(rng))
    else:
        r = rng.uniform(0.3, 0.8)
        c.paint(c.ellipse(0, 0, r, r) & ~c.ellipse(0, 0, r * 0.6, r * 0.6), _colour(rng))
    return c


def _max3x3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return np.max([p[i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=0)


def render(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene -> (image (H, W, 3) uint8, label (H, W) uint8: 0 bg, 1..16 classes, 255 void)."""
    return scene(rng, size, [draw for _, draw in CATEGORIES.values()])


def scene(
    rng: np.random.Generator,
    size: int,
    draws: Sequence[Callable[[Canvas], None]],
    counts: Sequence[int] = (1, 2, 3, 4),
    p: Sequence[float] = (0.3, 0.35, 0.2, 0.15),
) -> tuple[np.ndarray, np.ndarray]:
    """A scene of `counts` objects (drawn with probabilities `p`), each of a category drawn
    uniformly from `draws` -> (image (H, W, 3) uint8, label (H, W) uint8: 0 background,
    k for draws[k - 1], 255 void). Also the pretraining corpus's scenes (c3seg.data.synthetic.corpus)."""
    img = _background(rng, size)
    for _ in range(rng.integers(3, 9)):
        d = _distractor(rng, size)
        img[d.mask] = d.rgb[d.mask]
    inst = np.zeros((size, size), np.int32)  # 0 background, k = k-th object in paint order
    classes, drawn = [0], [0]
    for k in range(1, int(rng.choice(counts, p=p)) + 1):
        cls = int(rng.integers(1, len(draws) + 1))
        c = _frame(rng, size, size * rng.uniform(0.1, 0.3))
        draws[cls - 1](c)
        img[c.mask] = c.rgb[c.mask]
        inst[c.mask] = k
        classes.append(cls)
        drawn.append(int(c.mask.sum()))
    for _ in range(rng.integers(0, 3)):  # occluders in front of the objects
        d = _distractor(rng, size)
        keep = d.mask & (rng.random() < 0.6)
        img[keep] = d.rgb[keep]
        inst[keep] = 0
    label = np.asarray(classes, np.uint8)[inst]
    visible = np.bincount(inst.ravel(), minlength=len(classes))
    for k in range(1, len(classes)):  # slivers left by occlusion or the image border: void
        if visible[k] < max(12, 0.2 * drawn[k]):
            label[inst == k] = 255
    label[inst < _max3x3(inst)] = 255  # void band on the outer / occluded side of every boundary
    # anti-aliasing blur, sensor noise, a global colour cast
    img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1) + np.roll(img, (1, 1), (0, 1))) / 4
    img = img * rng.uniform(0.85, 1.15, 3) + rng.normal(0, rng.uniform(3, 9), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), label


def _write_chunk(task: tuple[Path, str, int, int, int, int]) -> list[str]:
    root, split, start, stop, size, seed = task
    ids = []
    for i in range(start, stop):
        image, label = render(image_rng(seed, split, i), size)
        ids.append(f"{split}_{i:05d}")
        write_image(root / "JPEGImages" / f"{ids[-1]}.jpg", image, quality=90)
        write_label_png(root / "SegmentationClass" / f"{ids[-1]}.png", label)
    return ids


@contextmanager
def partial_folder(folder: Path) -> Iterator[Path]:
    """A temporary sibling of `folder` to fill, renamed onto `folder` when the block succeeds and
    deleted when it fails, so an interrupted generation never leaves a half-written folder.
    Raises OSError when `folder` appeared meanwhile (a concurrent generator won the race)."""
    tmp = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def map_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], processes: int) -> list[Any]:
    """[fn(t) for t in tasks], by a pool of `processes` started with 'spawn' (no inherited torch
    threads or locks) when there are 4 tasks or more; `fn` must be a module-level function."""
    if processes <= 1 or len(tasks) < 4:
        return [fn(t) for t in tasks]
    with children_ignore_ctrl_c():  # Ctrl-C: one line from the main process, no worker tracebacks
        pool = multiprocessing.get_context("spawn").Pool(processes)  # starts every worker now
    with pool:
        return pool.map(fn, tasks, chunksize=1)


def generate_benchmark(
    folder: Path, ntrain: int, nval: int, size: int, seed: int, processes: int | None = None
) -> Path:
    """Write the benchmark into `folder` (which must not exist) and return it.

    Files go to a temporary sibling first, renamed onto `folder` only when every image is written.
    Small sets (< 4 chunks) are written in this process; larger ones by a pool of `processes`
    started with 'spawn', so a script that calls this needs the usual `if __name__ == "__main__":`
    guard. `processes` defaults to the machine's cores (at most 16); the images do not depend on it
    (each chunk has its own seed).
    """
    start = time.perf_counter()
    processes = processes or min(os.cpu_count() or 1, 16)
    with partial_folder(Path(folder)) as tmp:
        (tmp / "ImageSets" / "Segmentation").mkdir(parents=True)
        tasks = [
            (tmp, split, i, min(i + CHUNK, n), size, seed)
            for split, n in (("train", ntrain), ("val", nval))
            for i in range(0, n, CHUNK)
        ]
        done = map_tasks(_write_chunk, tasks, processes)
        for split in SPLITS:
            ids = [i for t, chunk in zip(tasks, done) if t[1] == split for i in chunk]
            (tmp / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        (tmp / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    log.info(
        "generated %d+%d benchmark images in %.1f s: %s", ntrain, nval, time.perf_counter() - start, folder
    )
    return folder


def benchmark_folder(path: str | None, cfg: DataConfig) -> Path:
    return Path(path or cfg.root) / (
        f"benchmark-s{cfg.bench_seed}-{cfg.bench_size}px-{cfg.bench_train}-{cfg.bench_val}"
    )


def load_benchmark(path: str | None, cfg: DataConfig) -> SegData:
    """The benchmark under `path` (default `cfg.root`), generated there first if missing."""
    folder = benchmark_folder(path, cfg)
    if not (folder / "classes.txt").exists():
        log.info("generating the benchmark into %s (first use)", folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            generate_benchmark(folder, cfg.bench_train, cfg.bench_val, cfg.bench_size, cfg.bench_seed)
        except OSError:
            if not (folder / "classes.txt").exists():  # not a concurrent generator that won the race
                raise
    classes = tuple((folder / "classes.txt").read_text().split())
    if classes != CLASSES:
        raise ValueError(f"{folder}/classes.txt does not match this c3seg version; delete {folder}")
    cache = folder / "image-labels.json"
    return SegData(
        name="benchmark",
        classes=classes,
        train=read_split(folder, "train", len(classes), cache=cache),
        val=read_split(folder, "val", len(classes), cache=cache),
        root=folder,
    )
