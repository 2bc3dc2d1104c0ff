"""make-labels: pseudo labels L_w for weak training images by self-diffusion (Eq. 2, Fig. 3).

For every weak training image: M from the L-Net and the CAMs of its image-level classes (network
forward passes, batched by equal size, in this process on cfg.device); then superpixels, the
graph and Eq. 2 in a pool of `labels.workers` CPU processes (c3seg.diffusion). Four sources are
written, one folder each (run.labels_dir): diffusion, diffusion-no-m, lnet-cam, cam-threshold.

Thresholds are calibrated on STRONG training images against their masks (labels/calibration.json);
weak images' masks are read only by the final evaluation (labels/<source>/quality.json), after
every label exists. Resumable (existing PNGs are skipped) and shardable (labels.shard = "i/n").

With affinity.enabled, train-affinity's embedding of each image joins the diffusion's graph
(c3seg.diffusion.graph.edge_weights), its weight labels.affinity_weight calibrated with the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from c3seg.config import Config, LabelConfig
from c3seg.data.types import Sample, SegData
from c3seg.diffusion import SOURCES
from c3seg.diffusion.calibrate import calibrated, choose, image_confusions
from c3seg.diffusion.worker import Task, limit_threads, run_task
from c3seg.engine import distributed as dist
from c3seg.engine.distributed import local_device
from c3seg.engine.run import Run
from c3seg.engine.workers import children_ignore_ctrl_c
from c3seg.evaluation.figures import write_fig3
from c3seg.evaluation.metrics import ConfusionMatrix, mean_iou
from c3seg.evaluation.report import NOT_SCORED
from c3seg.inference.maps import label_maps, load_affinity, load_nets
from c3seg.io import read_json, read_label, write_json
from c3seg.splits import SplitSet, class_ids, partition, strong_holdout

log = logging.getLogger(__name__)
CALIB_KEYS = (
    "method",
    "superpixels",
    "n_segments",
    "compactness",
    "slic_iters",
    "alpha",
    "calib_tolerance",
    "calib_set",
    "scales",
)


def parse_shard(text: str) -> tuple[int, int]:
    i, _, n = text.partition("/")
    if not (i.isdigit() and n.isdigit()) or not 0 <= int(i) < int(n):
        raise ValueError(f"labels.shard must look like i/n with 0 <= i < n, got {text!r}")
    return int(i), int(n)


def _pool(workers: int) -> ProcessPoolExecutor | None:
    """`workers` processes (None for one: work in this process), all started now, ignoring Ctrl-C."""
    if workers <= 1:
        return None
    with children_ignore_ctrl_c():
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=limit_threads)
        for _ in range(workers):  # each submit to a pool with no idle worker starts one
            pool.submit(int)
    return pool


def _drain(pending: list[Future], keep: int, bar: tqdm | None = None) -> list[Any]:
    out = []
    while len(pending) > keep:
        out.append(pending.pop(0).result())
        if bar is not None:
            bar.update(1)
    return out


def calibrate(
    cfg: Config,
    run: Run,
    data: SegData,
    split: SplitSet,
    strong: list[Sample],
    nets: Any,
    device: Any,
    affinity: Any = None,
) -> dict:
    """Grid-search the thresholds on strong images' masks (labels.calib_set), with the `affinity`
    network over labels.affinity_weight too. Written into the labels folder, so an interrupted
    make-labels resumes without calibrating again (its record says whether the folder is still
    current: a change of settings removes it)."""
    path = run.calibration
    lc = cfg.labels
    key = {k: list(v) if isinstance(v := getattr(lc, k), tuple) else v for k in CALIB_KEYS}  # as JSON reads
    if affinity is not None:
        key["affinity"] = True
    if path.exists():
        return read_json(path)
    # train: spread over all strong training images; holdout: the strong hold-out, which neither
    # network saw (smaller, so near-tied settings are picked more by chance)
    if lc.calib_set == "holdout":
        strong = strong_holdout(data, split, cfg.data.holdout)[1]
        strong = [s for s in strong if s.image not in {x.image for x in data.extra_strong}]
    with_mask = [s for s in strong if s.mask is not None]
    subset = with_mask[:: max(len(with_mask) // max(lc.calib_images, 1), 1)][: lc.calib_images]
    if not subset:
        raise ValueError("calibration needs strong training images with masks; set labels.calibrate=false")
    log.info("calibrating thresholds on %d strong images", len(subset))
    pool, pending, total = _pool(lc.workers), [], 0
    with limit_context():
        for s, im, m, cams, emb in label_maps(nets, affinity, subset, lc.batch_size, device, lc.scales):
            assert s.mask is not None  # calibration images are strong: they have masks
            args = (im, m, cams, list(s.labels), read_label(s.mask), data.num_classes, lc, emb)
            pending.append(pool.submit(image_confusions, *args) if pool else _done(image_confusions(*args)))
            total = total + sum(_drain(pending, 2 * lc.workers))
        total = total + sum(_drain(pending, 0))
    if pool:
        pool.shutdown()
    result = choose(total, lc.method, len(subset), lc.calib_tolerance, affinity is not None) | {
        "settings": key
    }
    write_json(path, result)
    log.info("calibration: %s", {k: v["miou"] for k, v in result["formulations"].items()})
    if "affinity_weights" in result:
        log.info("calibration: diffusion mIoU by affinity weight %s", result["affinity_weights"])
    return result


def _done(value: Any) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f


def limit_context() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def source_configs(lc: LabelConfig, calib: dict | None) -> tuple[LabelConfig, LabelConfig]:
    """(config of diffusion, of diffusion-no-m); both carry the calibrated CAM threshold."""
    if calib is None:
        return lc, lc
    cam = calib["sources"]["cam-threshold"]["params"]
    return (
        dataclasses.replace(calibrated(lc, calib, "diffusion"), **cam),
        dataclasses.replace(calibrated(lc, calib, "diffusion-no-m"), **cam),
    )


def label_quality(run: Run, data: SegData, split: SplitSet, weak: list[Sample], source: str) -> dict:
    """Pseudo-label IoU (%) of one source on the weak training images that have masks (EVALUATION
    ONLY); with none (a folder dataset's weak images have labels only), images 0 and no scores."""
    cm = ConfusionMatrix(data.num_classes)
    scored = [s for s in weak if s.mask is not None]
    for s in scored:
        pred = read_label(run.label_path(source, s.id))
        assert s.mask is not None  # only weak images with masks are scored
        cm.update(
            read_label(s.mask), np.where(pred == 255, 0, pred)
        )  # void pseudo label scored as background
    iou = cm.iou()
    weak_ids = class_ids(data, split.weak)
    result = {
        "source": source,
        "images": len(scored),
        "miou": round(100 * mean_iou(iou), 2),
        "miou_weak": round(100 * mean_iou(iou, weak_ids), 2),
        "per_class": {
            n: None if np.isnan(v) else round(100 * float(v), 2) for n, v in zip(data.classes, iou)
        },
    }
    write_json(run.label_quality(source), result)
    return result


def quality_line(q: dict) -> str:
    """One log line of a label source's quality (`label_quality`)."""
    if q["images"] == 0:
        return f"pseudo labels {q['source']:<15} {NOT_SCORED}"
    return f"pseudo labels {q['source']:<15} mIoU {q['miou']:.1f} (weak classes {q['miou_weak']:.1f})"


def make_labels(cfg: Config, run: Run, data: SegData, split: SplitSet, lnet: str = "lnet") -> Path:
    """Write every label source for this shard's weak images; evaluate once all of them exist.
    `lnet`: which L-Net makes M (see `load_nets`)."""
    lc = cfg.labels
    shard_i, shard_n = parse_shard(lc.shard)
    # under torchrun every process takes its own slice of this machine's shard
    shard_i, shard_n = shard_i * dist.world_size() + dist.rank(), shard_n * dist.world_size()
    strong, weak = partition(data, split)
    finished = all(run.label_quality(src).exists() for src in SOURCES) and (
        lc.figure_images == 0 or (run.figures / "fig3.png").exists()
    )
    if finished and all(run.label_path(src, s.id).exists() for s in weak for src in SOURCES):
        log.info("make-labels: every label, quality report and figure exists, skipping")
        return run.labels_dir("diffusion")
    mine = weak[shard_i::shard_n]
    todo = [s for s in mine if not all(run.label_path(src, s.id).exists() for src in SOURCES)]
    log.info("make-labels: %d weak images, shard %s: %d, %d to do", len(weak), lc.shard, len(mine), len(todo))
    device = local_device(cfg.device)
    nets: Any = None
    if todo:
        nets = load_nets(run, device, lnet)
        affinity = load_affinity(run, device) if cfg.affinity.enabled else None
        calib = None
        if lc.calibrate and not strong:  # partition keeps only strong images with masks
            # split 4: the extra strong images' categories are not the CAM classifier's, so no
            # pseudo label of theirs can be scored; the thresholds stay the config's
            log.warning(
                "labels.calibrate: the main dataset has no strong image (split %s), and the CAM "
                "classifier has no class of the extra strong images, so the thresholds cannot be "
                "calibrated; using the labels.* settings as they are",
                split.name,
            )
        elif lc.calibrate:
            calib = calibrate(cfg, run, data, split, strong, nets, device, affinity)
        cfg_diff, cfg_no_m = source_configs(lc, calib)
        pool, pending = _pool(lc.workers), []
        bar = tqdm(total=len(todo), unit="img", desc="make-labels", dynamic_ncols=True)
        with limit_context():
            for s, im, m, cams, emb in label_maps(nets, affinity, todo, lc.batch_size, device, lc.scales):
                outputs = {src: run.label_path(src, s.id) for src in SOURCES}
                task = Task(im, m, cams, list(s.labels), outputs, cfg_diff, cfg_no_m, emb)
                pending.append(pool.submit(run_task, task) if pool else _done(run_task(task)))
                _drain(pending, 2 * lc.workers, bar)
            _drain(pending, 0, bar)
        bar.close()
        if pool:
            pool.shutdown()
    dist.barrier()
    missing = sum(not run.label_path(src, s.id).exists() for s in weak for src in SOURCES)
    if not dist.is_main():
        return run.labels_dir("diffusion")
    if missing:
        log.info("%d label files of other shards are missing; quality and figures wait for them", missing)
        return run.labels_dir("diffusion")
    for src in SOURCES:
        log.info("%s", quality_line(label_quality(run, data, split, weak, src)))
    if lc.figure_images > 0 and weak:
        nets = nets or load_nets(run, device, lnet)
        write_fig3(run, nets, weak[: lc.figure_images], device, data.classes, lc.scales)
    return run.labels_dir("diffusion")
