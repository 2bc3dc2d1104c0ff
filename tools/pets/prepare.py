"""A downscaled copy of a `folder:` dataset, for development runs on real photographs on a CPU.

    python tools/pets/prepare.py SRC [--side 160] [--out DIR]

Writes SRC's layout (classes.txt, labels.csv, ImageSets/, JPEGImages/, SegmentationClass/) with
every image's longer side at most `--side` pixels (images bilinear, masks nearest, so labels and
the void band keep their values) to DIR, by default ~/.cache/c3seg/<name>-<side>. SRC is only
read. The pets development set (Oxford-IIIT Pet sample, photos of about 500x375) is run at 160 px
so that a training crop of 128 sees most of the animal, as the built-in benchmark's crops do.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from PIL import Image, ImageOps


def scaled(size: tuple[int, int], side: int) -> tuple[int, int]:
    w, h = size
    f = min(1.0, side / max(w, h))
    return max(1, round(w * f)), max(1, round(h * f))


def prepare(src: Path, out: Path, side: int) -> Path:
    if not (src / "classes.txt").exists():
        raise SystemExit(f"{src} has no classes.txt: expected a folder: dataset")
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "JPEGImages").mkdir(parents=True)
    (tmp / "SegmentationClass").mkdir()
    for name in ("classes.txt", "labels.csv"):
        if (src / name).exists():
            shutil.copyfile(src / name, tmp / name)
    shutil.copytree(src / "ImageSets", tmp / "ImageSets")
    for f in sorted((src / "JPEGImages").iterdir()):
        with Image.open(f) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            size = scaled(im.size, side)
            im.resize(size, Image.BILINEAR).save(tmp / "JPEGImages" / f"{f.stem}.jpg", quality=95)
        mask = src / "SegmentationClass" / f"{f.stem}.png"
        if mask.exists():
            with Image.open(mask) as m:
                m.resize(size, Image.NEAREST).save(tmp / "SegmentationClass" / mask.name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--side", type=int, default=160, help="longest image side in pixels (default: 160)")
    ap.add_argument("--out", type=Path, default=None, help="default: ~/.cache/c3seg/<name>-<side>")
    a = ap.parse_args()
    cache = Path(os.environ.get("C3SEG_CACHE", Path.home() / ".cache" / "c3seg"))
    out = a.out or cache / f"{a.src.resolve().name}-{a.side}"
    print(prepare(a.src, out, a.side))


if __name__ == "__main__":
    main()
