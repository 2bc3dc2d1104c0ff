"""The segmentation methods of the report (Table 2), shared by the pipeline and its stages.

Each method train-seg trains is a segmentation network on strong masks plus one pseudo-label
source for weak images (or no weak images / their true masks); `pnet` is the `lnet` network
refined by train-pnet (Eq. 3-5)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from c3seg.splits import holdout, partition, strong_holdout, training_pairs

if TYPE_CHECKING:
    from c3seg.config import Config
    from c3seg.data.types import SegData
    from c3seg.engine.run import Run
    from c3seg.splits import SplitSet

# method -> (mode of splits.training_pairs, pseudo-label source or None)
METHODS: dict[str, tuple[str, str | None]] = {
    "fully-supervised": ("full", None),
    "strong-only": ("strong", None),
    "cam-threshold": ("pseudo", "cam-threshold"),
    "lnet-cam": ("pseudo", "lnet-cam"),
    "diffusion-no-m": ("pseudo", "diffusion-no-m"),
    "lnet": ("pseudo", "diffusion"),
}
REPORT_ORDER = [*METHODS, "pnet"]
PNET_START = "lnet"  # train-pnet starts from this method's network
PNET_SOURCE = "diffusion"  # and trains on this label source


def label_source(method: str) -> str | None:
    """The pseudo-label source a method trains on (None: masks only)."""
    if method == "pnet":
        return PNET_SOURCE
    return METHODS[method][1]


# the pipeline's stages in order (c3seg.pipeline.STAGES maps each to its function); here so that
# the command line can list them without importing every stage
STAGE_NAMES = (
    "pretrain",
    "train-lnet",
    "train-affinity",
    "train-cam",
    "make-labels",
    "self-train",
    "train-seg",
    "train-pnet",
    "evaluate",
)


def method_pairs(
    cfg: Config, run: Run, data: SegData, split: SplitSet, method: str
) -> list[tuple[Path, Path]]:
    """The (image, mask) pairs a method trains on, minus the strong and weak hold-outs."""
    if method not in METHODS:
        raise KeyError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    mode, source = METHODS[method]
    pairs = training_pairs(data, split, mode, run.labels_dir(source) if source else None)
    _, weak = partition(data, split)
    held = strong_holdout(data, split, cfg.data.holdout)[1] + holdout(weak, cfg.data.holdout)[1]
    held_images = {s.image for s in held}
    return [p for p in pairs if p[0] not in held_images]
