"""`c3seg bench crf`: milliseconds an image of the two dense CRFs (c3seg.inference.crf), at VOC's size
(500x375, 21 classes) and at the benchmark's (112x112, 17 classes): the fast PyTorch one and the
exact one (pydensecrf2, when installed), both on one CPU thread, and the fast one on the GPU when
there is one (as evaluation runs it there). Medians over --repeats random probability maps; the mIoU each
costs or gains is measured by `evaluate.crf_methods` on a real run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from c3seg.inference.crf import dense_crf, fast_crf

SIZES = ((375, 500, 21), (112, 112, 17))  # (H, W, classes)


def _case(h: int, w: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    logits = rng.normal(0, 2, (c, h, w)).astype(np.float32)
    prob = np.exp(logits - logits.max(0))
    return image, (prob / prob.sum(0)).astype(np.float32)


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def crf_timings(repeats: int = 5) -> list[dict]:
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for h, w, c in SIZES:
            image, prob = _case(h, w, c, 0)
            row: dict = {"size": f"{w}x{h}", "classes": c}
            row["fast_cpu_ms"] = round(_median_ms(partial(dense_crf, image, prob), repeats), 1)
            if torch.cuda.is_available():
                im, pr = torch.from_numpy(image).permute(2, 0, 1).cuda(), torch.from_numpy(prob).cuda()

                def on_gpu(im: torch.Tensor = im, pr: torch.Tensor = pr) -> None:
                    fast_crf(im, pr)
                    torch.cuda.synchronize()

                row["fast_cuda_ms"] = round(_median_ms(on_gpu, repeats), 2)
            try:
                import pydensecrf.densecrf  # noqa: F401

                exact = partial(dense_crf, image, prob, exact=True)
                row["exact_cpu_ms"] = round(_median_ms(exact, repeats), 1)
            except ImportError:
                row["exact_cpu_ms"] = None
            rows.append(row)
    finally:
        torch.set_num_threads(threads)
    return rows


def bench_crf_command(args: argparse.Namespace) -> int:
    rows = crf_timings(args.repeats)
    print(
        f"dense CRF, 10 mean-field iterations, median of {args.repeats}, 1 CPU thread ({platform.processor() or platform.machine()})"
    )
    print("| size | classes | fast (PyTorch) ms | exact (pydensecrf2) ms | fast on the GPU ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        exact = "not installed" if r["exact_cpu_ms"] is None else f"{r['exact_cpu_ms']:.1f}"
        gpu = r.get("fast_cuda_ms", "no GPU")
        print(f"| {r['size']} | {r['classes']} | {r['fast_cpu_ms']:.1f} | {exact} | {gpu} |")
    if args.json:
        print(json.dumps({"crf": rows}))
    return 0
