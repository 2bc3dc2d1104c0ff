"""`c3seg bench diffusion`: how fast is self-diffusion (Eq. 2), and how good, with no network.

Generated 500x375 scenes with simulated M and CAMs (c3seg.diffusion.synthetic), 1/3/5 classes.
Timed per image, medians, one BLAS thread (threadpoolctl):
  graph       superpixel means (bincount) + adjacency + affinities z_ij + Laplacian
  solve       anchors + ONE splu of the free block, all classes as columns + assignment
  reference   the same graph solved with one scipy spsolve per class (the straightforward way)
  label making  CIELAB + superpixels + graph + solve + painting back to pixels (slic and fast)
Then the same label making over a process pool of 1 and N workers (images/s), and the pseudo-label
mIoU of each formulation with thresholds calibrated on other generated scenes.
The bench's table goes to stdout (print), the one place c3seg prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from c3seg.config import LabelConfig
from c3seg.diffusion import all_sources, diffuse_labels
from c3seg.diffusion.calibrate import calibrated, choose, image_confusions, miou
from c3seg.diffusion.graph import affinities, build_graph, features, laplacian, weight_matrix
from c3seg.diffusion.solve import anchors, assign, clamped_reference, class_scores
from c3seg.diffusion.superpixels import superpixels, to_lab
from c3seg.diffusion.synthetic import Scene, make_scene

CLASS_COUNTS = (1, 3, 5)


def _ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return 1000 * (time.perf_counter() - t), out


def _time_diffusion(scene: Scene, cfg: LabelConfig) -> dict[str, float]:
    """ms of graph / solve / reference solve / whole label making for one scene."""
    lab = to_lab(scene.image)
    sp, n = superpixels(lab, cfg)
    t_graph, g = _ms(lambda: build_graph(lab, scene.m, scene.cams, sp, n))

    def weights_and_anchors() -> tuple:
        w = weight_matrix(g.n, g.edges, affinities(features(g), g.edges, cfg.sigma))
        return w, laplacian(w), *anchors(g.cams, g.m, cfg)

    t_w, (w, lap, seeds, bg) = _ms(weights_and_anchors)
    k = g.cams.shape[1]
    t_solve, _ = _ms(lambda: assign(class_scores(w, lap, seeds, bg, k, cfg), cfg.min_q))
    onehot = np.zeros((n, k))
    onehot[seeds >= 0, seeds[seeds >= 0]] = 1
    t_ref, _ = _ms(lambda: clamped_reference(lap, (seeds >= 0) | bg, onehot))
    t_all, _ = _ms(lambda: diffuse_labels(scene.image, scene.m, scene.cams, scene.class_ids, cfg))
    fast = dataclasses.replace(cfg, superpixels="fast")
    t_fast, _ = _ms(lambda: diffuse_labels(scene.image, scene.m, scene.cams, scene.class_ids, fast))
    return {
        "superpixels_n": n,
        "diffusion_ms": t_graph + t_w + t_solve,
        "solve_ms": t_w + t_solve,
        "reference_ms": t_graph + t_w + t_ref,
        "reference_solve_ms": t_w + t_ref,
        "label_making_ms": t_all,
        "label_making_fast_ms": t_fast,
    }


def _init_worker(limit: bool) -> None:
    if limit:
        threadpool_limits(1)


def _label_one(args: tuple[Scene, LabelConfig]) -> int:
    scene, cfg = args
    return int(diffuse_labels(scene.image, scene.m, scene.cams, scene.class_ids, cfg).max())


def _pool_rate(scenes: list[Scene], cfg: LabelConfig, workers: int, limit_blas: bool) -> float:
    """Images per second of whole label making over a process pool (start-up excluded)."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(limit_blas,)) as pool:
        pool.map(_label_one, [(scenes[0], cfg)] * workers)  # warm up imports
        t = time.perf_counter()
        pool.map(_label_one, [(s, cfg) for s in scenes], chunksize=1)
        return len(scenes) / (time.perf_counter() - t)


def _quality(cfg: LabelConfig, n_calib: int, n_eval: int) -> dict[str, float]:
    """Pseudo-label mIoU (%) per source and formulation: calibrate on some scenes, score on others."""
    rng = np.random.default_rng(1)
    calib = [make_scene(rng, int(rng.choice(CLASS_COUNTS))) for _ in range(n_calib)]
    total = np.sum(
        [image_confusions(s.image, s.m, s.cams, s.class_ids, s.gt, 21, cfg) for s in calib], axis=0
    )
    result = choose(total, cfg.method, n_calib)
    cfgs = {
        "clamped": dataclasses.replace(cfg, method="clamped", **result["formulations"]["clamped"]["params"]),
        "ranking": dataclasses.replace(cfg, method="ranking", **result["formulations"]["ranking"]["params"]),
    }
    no_m = calibrated(cfg, result, "diffusion-no-m")
    base = calibrated(cfg, result, "cam-threshold")
    confs: dict[str, np.ndarray] = {}
    for s in [make_scene(rng, int(rng.choice(CLASS_COUNTS))) for _ in range(n_eval)]:
        preds = {name: all_sources(s.image, s.m, s.cams, s.class_ids, c, no_m) for name, c in cfgs.items()}
        rows = {
            "diffusion (clamped)": preds["clamped"]["diffusion"],
            "diffusion (ranking)": preds["ranking"]["diffusion"],
            "diffusion without M": preds[cfg.method]["diffusion-no-m"],
            "lnet-cam": preds[cfg.method]["lnet-cam"],
            "cam-threshold": all_sources(s.image, s.m, s.cams, s.class_ids, base)["cam-threshold"],
        }
        for name, pred in rows.items():
            c = np.bincount(s.gt.ravel().astype(np.int64) * 21 + pred.ravel(), minlength=441).reshape(21, 21)
            confs[name] = confs.get(name, 0) + c
    return {name: round(miou(c), 1) for name, c in confs.items()}


def bench_command(args: argparse.Namespace) -> int:
    """Print a table of per-image timings (and with --json one JSON object on the last line)."""
    repeats = max(int(getattr(args, "repeats", 20)), 1)
    workers = int(getattr(args, "workers", 0)) or 2
    cfg = LabelConfig()
    rng = np.random.default_rng(0)
    rows: dict[int, list[dict[str, float]]] = {}
    with threadpool_limits(1):
        for k in CLASS_COUNTS:
            scenes = [make_scene(rng, k) for _ in range(repeats)]
            _time_diffusion(scenes[0], cfg)  # warm-up
            rows[k] = [_time_diffusion(s, cfg) for s in scenes]
        quality = _quality(cfg, n_calib=8, n_eval=max(repeats, 8))
    med = {k: {key: float(np.median([r[key] for r in v])) for key in v[0]} for k, v in rows.items()}
    pool_scenes = [make_scene(rng, 3) for _ in range(max(2 * repeats, 4 * workers))]
    rate1 = _pool_rate(pool_scenes, cfg, 1, limit_blas=True)
    rate_n = _pool_rate(pool_scenes, cfg, workers, limit_blas=True)
    rate_n_free = _pool_rate(pool_scenes, cfg, workers, limit_blas=False)

    print(
        f"c3seg bench diffusion: 500x375, {repeats} images per row, medians; {platform.processor() or '?'},"
    )
    print(f"{os.cpu_count()} cores, one BLAS thread; superpixels slic n_segments={cfg.n_segments}")
    head = (
        "classes",
        "superpixels",
        "graph+solve",
        "solve",
        "reference",
        "ref solve",
        "label making",
        "fast",
    )
    print("{:>7} {:>11} {:>11} {:>7} {:>9} {:>9} {:>12} {:>6}".format(*head))
    for k, m in med.items():
        vals = [m[x] for x in ("diffusion_ms", "solve_ms", "reference_ms", "reference_solve_ms")]
        print(
            f"{k:>7} {m['superpixels_n']:>11.0f} "
            + " ".join(f"{v:>{w}.1f}" for v, w in zip(vals, (11, 7, 9, 9)))
            + f" {m['label_making_ms']:>12.1f} {m['label_making_fast_ms']:>6.1f}"
        )
    print(f"workers: 1 -> {rate1:.1f} img/s, {workers} -> {rate_n:.1f} img/s ({rate_n / rate1:.2f}x); ")
    print(f"{workers} workers without the BLAS limit: {rate_n_free:.1f} img/s")
    print("pseudo-label mIoU % on generated scenes: " + ", ".join(f"{k} {v}" for k, v in quality.items()))
    if getattr(args, "json", False):
        three = med[3]
        out = {
            "image": [375, 500],
            "classes": 3,
            "superpixels": three["superpixels_n"],
            "diffusion_ms": round(three["diffusion_ms"], 2),
            "solve_ms": round(three["solve_ms"], 2),
            "reference_ms": round(three["reference_ms"], 2),
            "reference_solve_ms": round(three["reference_solve_ms"], 2),
            "label_making_ms": round(three["label_making_ms"], 1),
            "label_making_fast_ms": round(three["label_making_fast_ms"], 1),
            "per_classes": {str(k): {kk: round(v, 2) for kk, v in m.items()} for k, m in med.items()},
            "workers": workers,
            "images_per_s_1": round(rate1, 2),
            "images_per_s_n": round(rate_n, 2),
            "workers_speedup": round(rate_n / rate1, 2),
            "images_per_s_n_no_blas_limit": round(rate_n_free, 2),
            "quality_miou": quality,
        }
        print(json.dumps(out))
    return 0
