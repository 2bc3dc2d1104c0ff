"""One way to name a dataset everywhere: `benchmark`, `voc:PATH`, `coco:PATH`, `folder:PATH`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from c3seg.config import DataConfig
from c3seg.data.types import SegData

# kind -> "module:function"; each function takes (path or None, DataConfig) and returns SegData.
DATASETS = {
    "benchmark": "c3seg.data.benchmark:load_benchmark",
    "voc": "c3seg.data.voc:load_voc",
    "coco": "c3seg.data.coco:load_coco",
    "folder": "c3seg.data.folder:load_folder",
}


def parse_spec(spec: str) -> tuple[str, str | None]:
    kind, _, path = spec.partition(":")
    if kind not in DATASETS:
        raise ValueError(f"unknown dataset {spec!r}; use benchmark, voc:PATH, coco:PATH or folder:PATH")
    if kind != "benchmark" and not path:
        raise ValueError(f"dataset {spec!r} needs a path: {kind}:PATH")
    return kind, path or None


def loader(kind: str) -> Callable[[str | None, DataConfig], SegData]:
    module, func = DATASETS[kind].split(":")
    return getattr(importlib.import_module(module), func)


def load_dataset(cfg: DataConfig, spec: str | None = None) -> SegData:
    kind, path = parse_spec(spec or cfg.dataset)
    return loader(kind)(path, cfg)
