"""Split-sets (strong / weak categories) and the strong / weak partition of training images.

A training image that contains any weak category is a *weak image*: only its image-level labels
may reach training. `training_pairs` is the one place that hands (image, mask) pairs to the
training stages, and it raises `LeakageError` if a weak image's ground-truth mask would be among
them (the fully supervised reference is the one, explicit, exception).
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from c3seg.data.types import Sample, SegData, background_mask
from c3seg.io import read_yaml

log = logging.getLogger(__name__)

SPLIT_DIR = Path(__file__).parent / "splitsets"


class LeakageError(RuntimeError):
    """A weak image's ground-truth mask was about to reach a training stage."""


@dataclass(frozen=True)
class SplitSet:
    name: str
    strong: tuple[str, ...]
    weak: tuple[str, ...]
    extra_strong: str | None = None  # a second dataset providing strong images (split 4)


def builtin_splits() -> list[str]:
    return sorted(p.stem for p in SPLIT_DIR.glob("*.yaml"))


SPLIT_EXAMPLE = "'strong: [cat, dog]' (the weak classes are the others)"


def read_split_file(name_or_path: str | Path) -> tuple[Path, dict[str, typing.Any]]:
    """The file of a built-in split name or a split YAML, and what it says; malformed YAML, a file
    that is not a mapping, or a `strong` / `weak` that is not a list of names raise ValueError
    (run checks this before it writes anything)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SPLIT_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise FileNotFoundError(
            f"split {name_or_path!r} is neither a YAML file nor a built-in split; "
            f"built-in: {', '.join(builtin_splits())}"
        )
    spec = read_yaml(path, SPLIT_EXAMPLE)
    for key in ("strong", "weak"):
        if key in spec:
            class_list(spec, key, path)
    return path, spec


def load_split(name_or_path: str | Path, classes: Sequence[str]) -> SplitSet:
    """A built-in split name (see `builtin_splits()`) or a YAML file with `strong: [names]`.

    Weak categories are every foreground class that is not strong. Names are validated against
    `classes` (index 0 = background).
    """
    path, spec = read_split_file(name_or_path)
    strong = class_list(spec, "strong", path)
    foreground = tuple(classes[1:])
    unknown = [c for c in strong if c not in foreground]
    if unknown:
        raise ValueError(
            f"split {path.name}: unknown class {unknown[0]!r}; valid classes: {', '.join(foreground)}"
        )
    if len(set(strong)) != len(strong):
        raise ValueError(f"split {path.name}: a strong class is listed twice")
    weak = tuple(c for c in foreground if c not in strong)
    if "weak" in spec and sorted(class_list(spec, "weak", path)) != sorted(weak):
        raise ValueError(f"split {path.name}: 'weak' must be exactly the classes that are not strong: {weak}")
    return SplitSet(name=path.stem, strong=strong, weak=weak, extra_strong=spec.get("extra_strong"))


def class_list(spec: dict, key: str, path: Path) -> tuple[str, ...]:
    """The class names under `key` of a split YAML: a list (`strong: [car]`); one name written
    without brackets (`strong: car`) is refused, as it would be read as the letters c, a, r."""
    value = spec.get(key) or []
    if isinstance(value, str):
        raise ValueError(
            f"split {path.name}: '{key}' must be a list of class names, got the string {value!r}: "
            f"write '{key}: [{value}]' (several as '{key}: [car, bus]')"
        )
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValueError(
            f"split {path.name}: '{key}' must be a list of class names like [car, bus], got {value!r}"
        )
    return tuple(value)


def class_ids(data: SegData, names: Sequence[str]) -> list[int]:
    return [data.class_index(n) for n in names]


def is_weak(sample: Sample, weak_ids: set[int]) -> bool:
    return any(c in weak_ids for c in sample.labels)


def partition(data: SegData, split: SplitSet) -> tuple[list[Sample], list[Sample]]:
    """(strong images, weak images) of the training set. A strong image without a mask is dropped."""
    weak_ids = set(class_ids(data, split.weak))
    strong, weak, dropped = [], [], 0
    for s in data.train:
        if is_weak(s, weak_ids):
            weak.append(s)
        elif s.mask is not None:
            strong.append(s)
        else:
            dropped += 1
    if dropped:
        log.warning("%d strong training images have no mask and are not used", dropped)
    return strong, weak


def training_pairs(
    data: SegData,
    split: SplitSet,
    mode: str,
    pseudo_dir: Path | None = None,
) -> list[tuple[Path, Path]]:
    """(image, mask) pairs for a training stage.

    mode: 'full' (every ground-truth mask of the training set: the fully supervised reference),
    'strong' (strong images only), or 'pseudo' (strong images + weak images with pseudo labels from
    `pseudo_dir`). Strong images include a second dataset's extra strong images (split 4), with
    their masks in the main dataset's classes (`background_mask`: all background, void kept).
    """
    strong, weak = partition(data, split)
    pairs = [(s.image, typing.cast(Path, s.mask)) for s in strong]  # strong images have masks
    pairs += main_class_pairs(data.extra_strong, data)
    if mode == "full":
        return [(s.image, s.mask) for s in data.train if s.mask is not None]
    if mode == "pseudo":
        if pseudo_dir is None:
            raise ValueError("mode 'pseudo' needs pseudo_dir")
        missing = [s.id for s in weak if not (pseudo_dir / f"{s.id}.png").exists()]
        if missing:
            raise FileNotFoundError(
                f"{pseudo_dir} lacks pseudo labels for {len(missing)} weak images (e.g. {missing[0]}); "
                "run 'c3seg run --stages make-labels' first"
            )
        pairs += [(s.image, pseudo_dir / f"{s.id}.png") for s in weak]
    elif mode != "strong":
        raise ValueError(f"unknown mode {mode!r}; use full, strong or pseudo")
    assert_no_weak_masks(pairs, weak)
    return pairs


def assert_no_weak_masks(pairs: Sequence[tuple[Path, Path | None]], weak: Sequence[Sample]) -> None:
    """Raise LeakageError if any pair's mask is a weak image's ground-truth mask."""
    forbidden = {Path(s.mask).resolve() for s in weak if s.mask is not None}
    for image, mask in pairs:
        if mask is not None and Path(mask).resolve() in forbidden:
            raise LeakageError(
                f"the ground-truth mask {mask} of weak image {image} would reach training; weak images "
                "may contribute image-level labels and pseudo labels only"
            )


def strong_holdout(data: SegData, split: SplitSet, fraction: float) -> tuple[list[Sample], list[Sample]]:
    """(kept, held out) of every image with a strong mask: the main dataset's strong images and a
    second dataset's extra strong images (split 4, masks in their own classes), each by `holdout`,
    so that split 4, whose main dataset has no strong image, still has a strong hold-out."""
    strong, _ = partition(data, split)
    extra = [s for s in data.extra_strong if s.mask is not None]
    kept, held = holdout(strong, fraction)
    kept_x, held_x = holdout(extra, fraction)
    return kept + kept_x, held + held_x


def main_class_pairs(samples: Sequence[Sample], data: SegData) -> list[tuple[Path, Path]]:
    """(image, mask in the main dataset's classes) of strong samples: an extra strong image's
    `background_mask`, a main image's own mask."""
    extra = {s.image for s in data.extra_strong}
    return [
        (s.image, background_mask(s.mask) if s.image in extra else s.mask)
        for s in samples
        if s.mask is not None
    ]


def holdout(samples: Sequence[Sample], fraction: float) -> tuple[list[Sample], list[Sample]]:
    """(kept, held out): a deterministic fraction of samples (by a hash of the id) held out to
    choose checkpoints. Only strong images are ever held out this way - their masks may be used."""
    import zlib

    if fraction <= 0:
        return list(samples), []
    cut = int(fraction * 1000)
    held = [s for s in samples if zlib.crc32(s.id.encode()) % 1000 < cut]
    if not held and samples:
        held = [samples[-1]]
    held_ids = {s.id for s in held}
    return [s for s in samples if s.id not in held_ids], held
