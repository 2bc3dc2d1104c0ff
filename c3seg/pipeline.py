"""`c3seg run`: the stages of the paper in order, each reading and writing the run folder.

A stage skips itself when its outputs are complete and resumes when they are partial (each
stage's own function decides what "complete" means: a final checkpoint, every label file).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence

from c3seg import distributed as dist
from c3seg.config import Config, save_config
from c3seg.data.load import load_dataset
from c3seg.data.types import SegData
from c3seg.run import Run
from c3seg.splits import SplitSet, load_split

log = logging.getLogger(__name__)

# stage name -> "module:function"; every function is f(cfg, run, data, split) -> Path.
STAGES = {
    "pretrain": "c3seg.stages.pretrain:pretrain",  # ImageNet's role: only where a net has pretrained=pretrain
    "train-lnet": "c3seg.stages.train_lnet:train_lnet",  # Eq. 1
    "train-cam": "c3seg.stages.train_cam:train_cam",  # Zhou et al. 2016
    "make-labels": "c3seg.stages.make_labels:make_labels",  # Eq. 2
    "self-train": "c3seg.stages.self_train:self_train",  # beyond the paper: only with selftrain.rounds > 0
    "train-seg": "c3seg.stages.train_seg:train_seg_methods",  # DeepLab on strong masks + L_w
    "train-pnet": "c3seg.stages.train_pnet:train_pnet",  # Eq. 3-5
    "evaluate": "c3seg.stages.evaluate:evaluate_all",  # Table 2
}


def stage_fn(name: str) -> Callable:
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    module, func = STAGES[name].split(":")
    return getattr(importlib.import_module(module), func)


def parse_stages(text: str) -> list[str]:
    """'all', or a comma list like 'train-lnet,make-labels', run in pipeline order."""
    if text in ("all", ""):
        return list(STAGES)
    names = [s.strip() for s in text.split(",") if s.strip()]
    for n in names:
        stage_fn(n)
    return [s for s in STAGES if s in names]


def needed(stage: str, cfg: Config) -> bool:
    """Whether a stage is needed: pseudo labels only for methods trained on them; the pretrain
    stage only for a needed network with pretrained=pretrain."""
    from c3seg.stages.train_seg import METHODS
    from c3seg.train_utils import PRETRAIN

    if stage == "pretrain":
        users = {"train-lnet": cfg.lnet, "train-cam": cfg.cam, "train-seg": cfg.seg}
        return any(tc.pretrained == PRETRAIN and needed(s, cfg) for s, tc in users.items())

    sources = {METHODS[m][1] for m in cfg.methods if m in METHODS and METHODS[m][1]}
    if "pnet" in cfg.methods:
        sources.add("diffusion")
    if stage in ("train-lnet", "train-cam", "make-labels"):
        return bool(sources)
    if stage == "self-train":
        return bool(sources) and cfg.selftrain.rounds > 0
    if stage == "train-pnet":
        return "pnet" in cfg.methods
    return True


def setup(cfg: Config, run: Run) -> tuple[SegData, SplitSet]:
    dist.init()
    run.root.mkdir(parents=True, exist_ok=True)
    if dist.is_main():
        save_config(cfg, run.config)
    data = load_dataset(cfg.data)
    split = load_split(cfg.data.split, data.classes)
    return data, split


def check_methods(cfg: Config) -> None:
    """Fail before any work when cfg.methods names a method that no stage trains."""
    from c3seg.stages.train_seg import REPORT_ORDER

    unknown = [m for m in cfg.methods if m not in REPORT_ORDER]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r} in methods; choose from {', '.join(REPORT_ORDER)}")


def run_stages(cfg: Config, run: Run, stages: Sequence[str]) -> None:
    check_methods(cfg)
    data, split = setup(cfg, run)
    log.info(
        "dataset %s: %d train / %d val images, %d classes; split %s: %d strong, %d weak",
        data.name,
        len(data.train),
        len(data.val),
        data.num_classes,
        split.name,
        len(split.strong),
        len(split.weak),
    )
    for name in stages:
        if not needed(name, cfg):
            if name == "pretrain":
                log.info("== pretrain: no network to train has pretrained=pretrain, skipped ==")
            else:
                log.info("== %s: not needed by methods %s, skipped ==", name, ", ".join(cfg.methods))
            continue
        log.info("== %s ==", name)
        stage_fn(name)(cfg, run, data, split)
        dist.barrier()
