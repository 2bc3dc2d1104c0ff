"""The image-level pretraining corpus: generated images of many categories, with labels only.

The paper's networks start from ImageNet, whose 1,000 image-level classes include the weak
categories. This corpus emulates that condition for the built-in benchmark:

- it is never the evaluation data: every image comes from its own RNG stream (seed, STREAM,
  index), a key no benchmark split uses, so no image equals a benchmark image of any bench_seed;
- it includes but is not limited to the target categories: the benchmark's 16 plus `extra` new
  procedural ones (`c3seg.data.synthetic.pretrain_shapes`);
- it has image-level labels only: 1-3 objects on the benchmark's backgrounds and distractors
  (`c3seg.data.synthetic.benchmark.scene`); a category counts when enough of it stays visible, and no mask
  is ever written.

On disk, one folder per setting under data.root, generated on first use by worker processes like
the benchmark (identical files whatever the pool size; renamed into place only when complete):

    pretrain-corpus-v1-s{seed}-{size}px-{images}-{K}c/
      categories.txt   `name family`, one a line; a label index is a line number (0-based)
      labels.csv       `id,labels`: the category names of each image, separated by spaces
      images/<id>.jpg
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c3seg.data.synthetic.benchmark import map_tasks, partial_folder, scene
from c3seg.data.synthetic.pretrain_shapes import corpus_categories
from c3seg.data.synthetic.shapes import CATEGORIES, Canvas
from c3seg.io import write_image

log = logging.getLogger(__name__)

STREAM = 1000  # RNG stream key of the corpus; benchmark splits use benchmark.SPLITS' keys (0, 1)
VERSION = 1  # in the folder name: bump when the drawing changes, so old caches are not reused
CHUNK = 50  # images per pool task


@dataclass(frozen=True)
class Corpus:
    folder: Path
    categories: tuple[str, ...]  # label index -> name; the benchmark's 16 first
    families: tuple[str, ...]  # label index -> layout family
    images: tuple[Path, ...]
    labels: tuple[tuple[int, ...], ...]  # per image: its category indices (possibly none)

    @property
    def num_categories(self) -> int:
        return len(self.categories)


def corpus_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of corpus image `index`: a stream no benchmark image is drawn from."""
    return np.random.default_rng([seed, STREAM, index])


def render_labelled(
    rng: np.random.Generator, size: int, draws: Sequence[Callable[[Canvas], None]]
) -> tuple[np.ndarray, tuple[int, ...]]:
    """One corpus image -> (image (H, W, 3) uint8, its category indices). A category occluded to
    a sliver is void in the scene's label map and so not counted."""
    image, label = scene(rng, size, draws, counts=(1, 2, 3), p=(0.5, 0.3, 0.2))
    return image, tuple(int(v) - 1 for v in np.unique(label) if 0 < v < 255)


def _write_chunk(task: tuple[Path, int, int, int, int, int]) -> list[tuple[str, tuple[int, ...]]]:
    root, start, stop, size, seed, extra = task
    draws = [draw for _, draw in corpus_categories(extra).values()]
    rows = []
    for i in range(start, stop):
        image, labels = render_labelled(corpus_rng(seed, i), size, draws)
        rows.append((f"p{i:06d}", labels))
        write_image(root / "images" / f"{rows[-1][0]}.jpg", image, quality=90)
    return rows


def generate_corpus(folder: Path, images: int, size: int, seed: int, extra: int, processes: int = 2) -> Path:
    """Write the corpus into `folder` (which must not exist) and return it; a pool of `processes`
    (spawn: a calling script needs the `if __name__ == "__main__":` guard) for 4 chunks or more."""
    categories = corpus_categories(extra)
    if len(categories) > 254:
        raise ValueError(f"at most 238 extra categories (scene labels are uint8), got {extra}")
    names = list(categories)
    start = time.perf_counter()
    with partial_folder(Path(folder)) as tmp:
        (tmp / "images").mkdir()
        tasks = [(tmp, i, min(i + CHUNK, images), size, seed, extra) for i in range(0, images, CHUNK)]
        rows = [row for chunk in map_tasks(_write_chunk, tasks, processes) for row in chunk]
        with open(tmp / "labels.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["id", "labels"])
            out.writerows([i, " ".join(names[c] for c in labels)] for i, labels in rows)
        (tmp / "categories.txt").write_text("".join(f"{n} {fam}\n" for n, (fam, _) in categories.items()))
    unlabelled = sum(not labels for _, labels in rows)
    log.info(
        "generated %d pretraining images of %d categories (%d with no visible object) in %.1f s: %s",
        images,
        len(names),
        unlabelled,
        time.perf_counter() - start,
        folder,
    )
    return Path(folder)


def corpus_folder(root: str | Path, images: int, size: int, seed: int, extra: int) -> Path:
    return Path(root) / f"pretrain-corpus-v{VERSION}-s{seed}-{size}px-{images}-{len(CATEGORIES) + extra}c"


def read_corpus(folder: Path) -> Corpus:
    """A generated corpus folder -> Corpus."""
    pairs = [line.split() for line in (folder / "categories.txt").read_text().splitlines() if line]
    index = {name: k for k, (name, _) in enumerate(pairs)}
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    return Corpus(
        folder=folder,
        categories=tuple(name for name, _ in pairs),
        families=tuple(fam for _, fam in pairs),
        images=tuple(folder / "images" / f"{i}.jpg" for i, _ in rows),
        labels=tuple(tuple(index[n] for n in names.split()) for _, names in rows),
    )


def load_corpus(
    root: str | Path, images: int, size: int, seed: int, extra: int, processes: int = 2
) -> Corpus:
    """The corpus under `root` (e.g. data.root), generated there first if missing."""
    folder = corpus_folder(root, images, size, seed, extra)
    if not (folder / "categories.txt").exists():
        log.info("generating the pretraining corpus into %s (first use)", folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            generate_corpus(folder, images, size, seed, extra, processes)
        except OSError:
            if not (folder / "categories.txt").exists():  # not a concurrent generator that won the race
                raise
    return read_corpus(folder)
