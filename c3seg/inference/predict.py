"""`c3seg predict`: images, folders or globs -> label maps (palette PNG), optional colour overlays,
with an optional dense CRF; or the L-Net's class-agnostic object masks (`--method lnet-foreground`).

Outputs mirror the input tree under --out (a/x.jpg and b/x.jpg -> OUT/a/x.png, OUT/b/x.png), so
no two inputs write the same file; each is named after the path given (a symbolic link after the
link, not its target). --out must lie outside every input (a folder, a file, or the folder a
glob searches) and hold none: an output can never replace an input, and a later predict never
reads c3seg's outputs as images. Unreadable images are skipped with a warning, counted at the
end, and make the exit status 1.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from c3seg.engine.distributed import check_device
from c3seg.inference.api import Segmenter, load
from c3seg.io import IMAGE_SUFFIXES, colorize, read_image, write_image, write_label_png

log = logging.getLogger(__name__)

FOREGROUND = "lnet-foreground"


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the label colours over the image (background left as is)."""
    colour = colorize(label)
    fg = (label > 0)[..., None]
    return np.where(fg, (1 - alpha) * image + alpha * colour, image).astype(np.uint8)


def _wild(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _is_glob(spec: str) -> bool:
    return _wild(spec) and not Path(spec).exists()


def expand_inputs(specs: list[str]) -> list[Path]:
    """Files, folders (every image below them) and glob patterns -> sorted unique image paths,
    absolute but with symbolic links kept: outputs are named after the paths the user gave."""
    found: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found += [f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        elif p.is_file():
            found.append(p)
        elif _is_glob(spec):
            matches = [Path(m) for m in sorted(glob.glob(spec, recursive=True))]
            found += [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES]
        else:
            raise FileNotFoundError(f"{spec}: no such file, folder or matching glob")
    unique = list(dict.fromkeys(Path(os.path.abspath(f)) for f in found))
    if not unique:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {' '.join(specs)}")
    return unique


def input_trees(specs: list[str]) -> list[Path]:
    """What each input reads: a file, a folder (everything below it), or for a glob the folder
    before its first wildcard ('photos/**/*.jpg' -> photos)."""
    trees = []
    for spec in specs:
        if _is_glob(spec):
            trees.append(Path(*itertools.takewhile(lambda part: not _wild(part), Path(spec).parts)))
        else:
            trees.append(Path(spec))
    return trees


def check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse, before anything is written, an --out that is a file, that is or lies inside an input
    (a file or a folder of `inputs`), or that holds one: its outputs would replace inputs, or be
    read as images by the next predict. Real locations are compared (links followed)."""
    if out.is_file():
        raise ValueError(f"--out {out} is a file; predict writes a folder of label maps: name a folder")
    where = out.resolve()
    for tree in inputs:
        real = tree.resolve()
        if where == real or real in where.parents:
            raise ValueError(
                f"--out {out} is inside the input {tree}: outputs could replace inputs and be read "
                "as images next time; choose an --out outside every input"
            )
        if where in real.parents:
            raise ValueError(
                f"the input {tree} is inside --out {out}: outputs could replace it; choose an --out "
                "that holds no input"
            )


def output_names(images: list[Path]) -> dict[Path, Path]:
    """Each image's output path relative to --out, without suffix: the input tree below the
    inputs' common folder; x.jpg beside x.png keeps its suffix in the name (x.jpg, x.png)."""
    root = Path(os.path.commonpath([p.parent for p in images]))
    stems: dict[tuple[Path, str], int] = {}
    for p in images:
        stems[(p.parent, p.stem)] = stems.get((p.parent, p.stem), 0) + 1
    return {
        p: p.relative_to(root).with_name(p.name if stems[(p.parent, p.stem)] > 1 else p.stem) for p in images
    }


def _readable(images: list[Path], failed: list[Path]) -> Iterator[tuple[Path, np.ndarray]]:
    for path in images:
        try:
            yield path, read_image(path)
        except (ValueError, OSError) as e:
            log.warning("skipping %s: %s", path, e)
            failed.append(path)


def predict_files(
    seg: Segmenter,
    images: list[Path],
    out: Path,
    method: str,
    crf: str = "none",
    batch_size: int = 8,
    overlays: bool = False,
    progress: bool | None = None,
) -> list[Path]:
    """Predict every image into `out`; returns the images that could not be read. An `out` that
    is an image or holds one is refused (`check_out`)."""
    check_out(out, images)
    names = output_names(images)
    failed: list[Path] = []
    bar = tqdm(
        total=len(images), unit="img", disable=not sys.stderr.isatty() if progress is None else not progress
    )
    batch: list[tuple[Path, np.ndarray]] = []

    def flush() -> None:
        if method == FOREGROUND:
            labels = [(seg.foreground(im) >= 0.5).astype(np.uint8) for _, im in batch]
        else:
            labels = seg.predict_batch([im for _, im in batch], crf=crf, batch_size=batch_size)
        for (path, im), label in zip(batch, labels, strict=True):
            base = out / names[path]
            write_label_png(base.with_name(base.name + ".png"), label)
            if overlays:
                write_image(base.with_name(base.name + "_overlay.jpg"), overlay(im, label))
            log.debug("%s -> %s (classes %s)", path, base, sorted(set(np.unique(label).tolist()) - {0}))
        bar.update(len(batch))
        batch.clear()

    for path, image in _readable(images, failed):
        batch.append((path, image))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    bar.update(len(failed))
    bar.close()
    return failed


def predict_command(args: argparse.Namespace) -> int:
    images = expand_inputs(args.images)
    check_out(args.out, input_trees(args.images))
    check_device(args.device, "--device cpu")
    if args.method == FOREGROUND:
        seg = load(args.run, method=_any_method(args.run), device=args.device)
    else:
        seg = load(args.run, method=args.method, device=args.device, lnet=False)
    failed = predict_files(seg, images, args.out, args.method, args.crf, args.batch_size, args.overlay)
    log.info("%d of %d images predicted into %s", len(images) - len(failed), len(images), args.out)
    if failed:
        log.error(
            "%d images could not be read and were skipped: %s", len(failed), ", ".join(map(str, failed[:5]))
        )
        return 1
    return 0


def _any_method(run: Path) -> str:
    """A method whose network a run folder has (for the L-Net's foreground, any will do); an
    exported file ignores it."""
    if not Path(run).is_dir():
        return "pnet"
    have = sorted(p.parent.name for p in (Path(run) / "seg").glob("*/model.pt"))
    return "pnet" if "pnet" in have or not have else have[0]
