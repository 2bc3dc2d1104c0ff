"""Reading and atomically writing images, label maps, JSON and checkpoints.

Every file c3seg writes goes through `atomic_path`: it is written to a temporary name in the
same folder and renamed into place, so an interrupted stage never leaves a half-written output
that a resumed run would mistake for a finished one. Temporary names are unmistakably c3seg's,
`.<name>.c3seg-tmp-<pid>-<random><suffix>`, and `remove_temporaries` removes only those (of
processes that are gone): a user's own `.x.tmp` files are never touched.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps


def voc_palette(n: int = 256) -> list[int]:
    """The PASCAL VOC colour map (bit-interleaved), as a flat [r, g, b, ...] list of 3*n ints."""
    palette = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


VOC_PALETTE = voc_palette()
_PALETTE_RGB = np.asarray(VOC_PALETTE, dtype=np.uint8).reshape(-1, 3)


def colorize(label: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 in the VOC palette (what the label PNGs show)."""
    return _PALETTE_RGB[label]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


TMP_MARK = ".c3seg-tmp-"  # in every temporary file name c3seg writes, and in no other name
TMP_GLOB = f".*{TMP_MARK}*"
NO_SPACE = "no space left on"  # how a write that found the disk full begins its message


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files below `folder` that `atomic_path` left when its process died
    (their names say which process wrote them); returns them. Nothing else is touched."""
    removed = []
    for tmp in Path(folder).rglob(TMP_GLOB):
        pid = tmp.name.split(TMP_MARK, 1)[1].split("-", 1)[0]
        if pid.isdigit() and tmp.is_file() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _disk_full(e: BaseException) -> bool:
    """Whether a write failed for want of space. torch.save reports it as a RuntimeError from its
    zip writer (`[enforce fail at inline_container.cc:...] . unexpected pos 576 vs 534`, or
    `PytorchStreamWriter failed writing file ...`), not as an OSError."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(e)
    return isinstance(e, RuntimeError) and ("unexpected pos" in text or "PytorchStreamWriter failed" in text)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.
    A write that fails for want of space raises OSError(ENOSPC, "no space left on <folder> ...")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}{TMP_MARK}{os.getpid()}-", suffix=path.suffix
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        Path(tmp).unlink(missing_ok=True)
        if _disk_full(e):
            raise OSError(
                errno.ENOSPC,
                f"{NO_SPACE} {path.parent} (writing {path.name}; nothing half-written was kept): "
                "free some space and rerun the same command; finished outputs are kept",
            ) from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(obj: Any) -> Any:
    """NaN and infinities as None (null): JSON has no NaN, and readers of report.json choke on it."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically; NaN / infinite floats become null (e.g. a weak mIoU where no class is weak)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")
    return Path(path)


def read_text_file(path: str | Path) -> str:
    """A UTF-8 text file of a dataset (a list, classes.txt, labels.csv); a file that is not text
    is refused naming it."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is dropped
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a UTF-8 text file ({e.reason} at byte {e.start})") from None


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a training log (log.jsonl, one JSON object a line); a line cut by a kill is
    skipped, and a missing file has none."""
    path = Path(path)
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def read_yaml(path: str | Path, example: str) -> dict[str, Any]:
    """A YAML file of keys and values, as a dict (an empty file: {}). A file that is not valid
    YAML, or that holds something else (a list, a number), raises ValueError naming the file and,
    for a mapping of the wrong shape, `example` of what to write instead."""
    import yaml

    try:
        tree = yaml.safe_load(read_text_file(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"{path} is not valid YAML ({problem}{where}); fix it and rerun") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ValueError(f"{path} holds a {type(tree).__name__}, not keys and values; write e.g. {example}")
    return tree


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_label_png(path: str | Path, label: np.ndarray) -> Path:
    """Write an (H, W) uint8 label map as a VOC-palette PNG (values are class indices, 255 void)."""
    if label.ndim != 2:
        raise ValueError(f"label map must be (H, W), got shape {label.shape}")
    img = Image.fromarray(label.astype(np.uint8), mode="P")
    img.putpalette(VOC_PALETTE)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def write_image(path: str | Path, image: np.ndarray, quality: int = 95) -> Path:
    """Write an (H, W, 3) uint8 RGB image; JPEG or PNG by the file's suffix."""
    fmt = "JPEG" if Path(path).suffix.lower() in (".jpg", ".jpeg") else "PNG"
    with atomic_path(path) as tmp:
        kwargs = {"quality": quality} if fmt == "JPEG" else {}
        Image.fromarray(image).save(tmp, format=fmt, **kwargs)
    return Path(path)


# the image files c3seg finds in folders (dataset folders and `predict`), by suffix in any case
# (x.JPG as x.jpg); where one name has several, the first suffix here wins
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
# greyscale modes of more than 8 bits a pixel: PIL's convert("RGB") clips them to 255 (white)
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
EXIF_ORIENTATION = 0x0112  # 1 = as stored; 5..8 turn the image by 90 degrees (width <-> height)


def exif_orientation(img: Image.Image) -> int:
    """The EXIF Orientation tag of an opened image (1..8; 1 when it has none)."""
    value = img.getexif().get(EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def displayed_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image as `read_image` returns it (after its EXIF orientation), from the header."""
    with Image.open(path) as img:
        w, h = img.size
        return (w, h) if exif_orientation(img) >= 5 else (h, w)


def _rgb(img: Image.Image, path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 of a decoded image; 16-bit greyscale scaled from 0..65535 to 0..255."""
    if img.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(img)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"{path}: a mode-{img.mode} image with values outside 0..65535 ({values.min()}..{values.max()}); "
                "save it as an 8-bit RGB JPEG or PNG"
            )
        grey = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        raise ValueError(f"{path}: a floating-point (F) image; save it as an 8-bit RGB JPEG or PNG")
    return np.array(img.convert("RGB"))


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB, as the image is displayed: turned by its EXIF orientation (phones store
    a portrait photo as landscape pixels plus a tag), so a mask must match the turned image; 16-bit
    greyscale scaled to 8 bits. The one way c3seg reads an image (training, evaluation, predict,
    data check). An unreadable file (truncated, corrupt, not an image) raises ValueError naming it."""
    try:
        img = Image.open(path)
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError) as e:  # PIL: UnidentifiedImageError is an OSError
        raise _unreadable(path, e) from None
    with img:
        try:
            ImageOps.exif_transpose(img, in_place=True)  # decodes the file; a no-op without a tag
        except (OSError, SyntaxError, ValueError) as e:  # a truncated JPEG fails here
            raise _unreadable(path, e) from None
        return _rgb(img, path)


def _unreadable(path: str | Path, e: Exception) -> ValueError:
    return ValueError(
        f"{path}: cannot read the image ({type(e).__name__}: {e}); replace or remove it "
        "(c3seg data check lists every such file)"
    )


def read_label(path: str | Path) -> np.ndarray:
    """(H, W) uint8 class indices of an index/palette PNG (the palette is ignored, not applied).
    Values must fit 0..255 (255 = void): a 16-bit mask with larger values is refused, not wrapped."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L", "I", "I;16"):
                raise ValueError(
                    f"{path} is a {img.mode} image, not an index PNG; label maps must hold class "
                    "indices (palette 'P' or greyscale 'L' mode)"
                )
            values = np.array(img)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ValueError(
            f"{path}: cannot read the label map ({type(e).__name__}: {e}); replace or remove it "
            "(c3seg data check lists every such file)"
        ) from None
    if values.dtype != np.uint8:
        if values.size and (values.min() < 0 or values.max() > 255):
            raise ValueError(
                f"{path} holds values up to {int(values.max())} ({img.mode} image); label maps hold "
                "class indices 0..254 and 255 for void: save it as an 8-bit index PNG"
            )
        values = values.astype(np.uint8)
    return values


# the layout of c3seg's checkpoints: a dict of tensors and plain values (str, int, float, bool,
# None, lists, dicts), loaded with weights_only=True; a newer layout is refused by an older c3seg
CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, obj: dict[str, Any]) -> Path:
    """Write a checkpoint dict (tensors and plain values only) atomically, stamped with
    `format` (CHECKPOINT_FORMAT) and the c3seg version that wrote it."""
    import torch

    from c3seg import __version__

    obj = {"format": CHECKPOINT_FORMAT, "c3seg": __version__, **obj}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, stage_hint: str = "") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` without unpickling code (weights_only=True).

    A file holding anything but tensors and plain values is refused, not run: a checkpoint from an
    untrusted source cannot execute code here. Checkpoints written before the `format` key are
    format 1."""
    import pickle

    import torch

    path = Path(path)
    if not path.exists():
        hint = f"; run 'c3seg run --stages {stage_hint}' first" if stage_hint else ""
        raise FileNotFoundError(f"{path} does not exist{hint}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{path} is not a c3seg checkpoint: it holds more than tensors and plain values, so it "
            f"was not loaded (it could run code). Delete it and rerun its stage, or re-save it "
            f"from a trusted source as a state dict. ({first})"
        ) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(
            f"{path} cannot be read as a checkpoint ({type(e).__name__}: {e}); it is truncated or "
            "not a PyTorch file: delete it and rerun the stage that writes it"
        ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a c3seg checkpoint dict")
    fmt = obj.get("format", 1)
    if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} has checkpoint format {fmt} (written by c3seg {obj.get('c3seg', '?')}); this "
            f"c3seg reads format {CHECKPOINT_FORMAT} and older: upgrade c3seg to load it"
        )
    return obj
