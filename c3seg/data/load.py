"""One way to name a dataset everywhere: `benchmark`, `voc:PATH`, `coco:PATH`, `folder:PATH`.

Split 4 needs two datasets: the evaluation dataset and one that supplies extra strong images
(SegData.extra_strong). Name them together as `voc:PATH+coco:PATH`, or set `data.extra=coco:PATH`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from c3seg.config import DataConfig
from c3seg.data.coco import load_coco, load_coco_extra_strong
from c3seg.data.folder import load_folder
from c3seg.data.synthetic.benchmark import load_benchmark
from c3seg.data.types import SegData
from c3seg.data.voc import load_voc

# kind -> loader taking (path or None, DataConfig) and returning SegData
DATASETS: dict[str, Callable[[str | None, DataConfig], SegData]] = {
    "benchmark": load_benchmark,
    "voc": load_voc,
    "coco": load_coco,
    "folder": load_folder,
}


def parse_spec(spec: str) -> tuple[str, str | None]:
    kind, _, path = spec.partition(":")
    if kind not in DATASETS:
        raise ValueError(f"unknown dataset {spec!r}; use benchmark, voc:PATH, coco:PATH or folder:PATH")
    if kind != "benchmark" and not path:
        raise ValueError(f"dataset {spec!r} needs a path: {kind}:PATH")
    return kind, path or None


def loader(kind: str) -> Callable[[str | None, DataConfig], SegData]:
    return DATASETS[kind]


# kind -> function taking (path, DataConfig, main dataset's classes) -> extra strong samples
EXTRA_STRONG = {"coco": load_coco_extra_strong}


def split_specs(spec: str, extra: str = "") -> tuple[str, list[str]]:
    """`voc:A+coco:B` (and/or an `extra` setting) -> ("voc:A", ["coco:B"])."""
    main, *extras = spec.split("+")
    extras += [e for e in extra.split("+") if e]
    return main, extras


def load_dataset(cfg: DataConfig, spec: str | None = None) -> SegData:
    main, extras = split_specs(spec or cfg.dataset, cfg.extra)
    kind, path = parse_spec(main)
    data = loader(kind)(path, cfg)
    for e in extras:
        ekind, epath = parse_spec(e)
        if ekind not in EXTRA_STRONG:
            raise ValueError(f"{e!r} cannot supply extra strong images; supported: {', '.join(EXTRA_STRONG)}")
        more = EXTRA_STRONG[ekind](epath, cfg, data.classes)
        data = dataclasses.replace(data, extra_strong=data.extra_strong + tuple(more))
    return data
