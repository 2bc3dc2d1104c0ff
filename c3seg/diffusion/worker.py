"""What one label-making worker process does for one image: every source, written atomically.

Kept free of torch so worker processes start fast; BLAS is limited to one thread per worker
(`limit_threads`, run as the pool initializer; without it two workers ran no faster than one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from c3seg.config import LabelConfig
from c3seg.diffusion import all_sources
from c3seg.io import write_label_png

BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads() -> None:
    """One BLAS / OpenMP thread in this process (threadpoolctl, or the environment if absent)."""
    for key in BLAS_ENV:
        os.environ[key] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the environment variables still reach processes started from here
        return
    threadpool_limits(1)


@dataclass(frozen=True)
class Task:
    """One weak image: its pixels, M (H, W), its classes' CAMs (K, H, W), the learned-affinity
    embedding (D, H, W) when the run has one, and where each source goes."""

    image: np.ndarray
    m: np.ndarray
    cams: np.ndarray
    class_ids: list[int]
    outputs: dict[str, Path]  # source -> PNG path
    cfg: LabelConfig
    cfg_no_m: LabelConfig
    emb: np.ndarray | None = None


def run_task(task: Task) -> str:
    """Make and write every label source of one image; returns the diffusion PNG's path."""
    labels = all_sources(task.image, task.m, task.cams, task.class_ids, task.cfg, task.cfg_no_m, task.emb)
    for source, path in task.outputs.items():
        write_label_png(path, labels[source])
    return str(task.outputs["diffusion"])
