"""`c3seg bench pipeline`: what a whole run of a config costs at full scale (VOC: 10,582 training
and 1,449 val images), from a scaled-down run of every stage that is measured, not assumed.

The scaled-down runs use the config's networks, crop, batch sizes, workers, methods, CRF and
device on a generated benchmark of `--train` training and `--val` val images of side `--size`
(432² = 186,624 pixels ≈ VOC's typical 500×375 = 187,500), with `--epochs` epochs of every
network (no pretrained weights are loaded: a download is not what is timed, and the cost of a step
does not depend on the starting weights; self-training is off, as in the VOC config). Each unit's
wall time comes from RUN/timings.json and its epochs' times from its log.jsonl.

With two or more sizes (`--train 300,600 --val 40,80`), each cost is fitted as a line, fixed cost
+ cost per image, and read at `--full-train` / `--full-val` images; with one size it is taken as
proportional to the images (which multiplies fixed costs too: an over-estimate). So

  a training unit   overhead + (seconds of its last epoch, at the full image count) x (the
                    config's epochs); overhead = unit seconds - the sum of its epoch seconds
                    (model building, checkpoint choice, saving). The last epoch is the steady one:
                    the first also pays cuDNN's autotuning.
  make-labels       its seconds at the full training images (calibration and label-quality
                    checks included); the strong / weak share of the images is the generated split's
  evaluate          its seconds at the full val images (every method, and the CRF rows)

What is measured and what is extrapolated are both printed; the docs say which is which.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from c3seg.config import Config, load_config
from c3seg.engine.distributed import local_device
from c3seg.engine.run import Run
from c3seg.pipeline import STAGES, run_stages, unit_seconds

VOC_TRAIN, VOC_VAL = 10_582, 1_449


def scaled_overrides(cfg: Config, train: int, val: int, size: int, epochs: int, root: Path) -> list[str]:
    """Settings that shrink a config's run to `train`/`val` generated images and `epochs` epochs a
    network, leaving everything whose cost is timed (networks, crop, batches, workers) as it is."""
    over = [
        "data.dataset=benchmark",
        "data.split=bench-half",
        f"data.bench_train={train}",
        f"data.bench_val={val}",
        f"data.bench_size={size}",
        f"data.root={root}",
        "selftrain.rounds=0",
        f"pnet.pretrain_epochs={epochs}",
        f"pnet.finetune_epochs={epochs}",
        f"labels.calib_images={min(cfg.labels.calib_images, max(2, train // 4))}",
    ]
    for section in ("lnet", "affinity", "cam", "seg"):
        over += [f"{section}.epochs={epochs}", f"{section}.pretrained="]
    return over


def _epoch_rows(run: Run, unit: str) -> list[dict[str, Any]]:
    stage = run.unit_stage(unit)
    if stage is None or not run.train_log(stage).exists():
        return []
    lines = run.train_log(stage).read_text().splitlines()
    return [r for r in map(json.loads, lines) if "seconds" in r]


def _full_epochs(cfg: Config, unit: str, phase: str | None) -> int:
    if unit == "train-pnet":
        return cfg.pnet.pretrain_epochs if phase == "pretrain" else cfg.pnet.finetune_epochs
    return {"train-lnet": cfg.lnet, "train-affinity": cfg.affinity, "train-cam": cfg.cam}.get(
        unit, cfg.seg
    ).epochs


def _at(points: Sequence[tuple[float, float]], x: float, per_image: bool = False) -> float:
    """y at x: proportional to x from one size (y/x0 * x); from two or more, the least-squares
    line through them (fixed cost + cost per image), its slope kept >= 0. A cost that `per_image`
    grows with the images (an epoch) is read as proportional where the measured slope is not
    positive: at small sizes that slope is timing noise, and a flat line would price the full
    size like the scaled one."""
    xs, ys = zip(*points, strict=True)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((a - mx) ** 2 for a in xs)
    slope = sum((a - mx) * (b - my) for a, b in points) / spread if spread else 0.0
    if spread == 0 or (per_image and slope <= 0):  # one size (or the same one twice), or noise
        return my * x / mx
    return my + max(0.0, slope) * (x - mx)


def extrapolate(
    runs: list[tuple[Run, int, int]], full_cfg: Config, full_train: int, full_val: int
) -> list[dict[str, Any]]:
    """One row per unit: seconds measured in each scaled run (Run, train images, val images),
    and the estimate at full scale (see the module doc)."""
    rows = []
    times = [unit_seconds(run) for run, _, _ in runs]
    for unit in times[0]:
        measured = [t.get(unit) for t in times]
        if any(m is None for m in measured):
            continue
        seconds = [float(m) for m in measured if m is not None]
        logs = [_epoch_rows(run, unit) for run, _, _ in runs]
        if all(logs):
            overhead = [t - sum(r["seconds"] for r in log) for t, log in zip(seconds, logs, strict=True)]
            # one size: the overhead as measured; several: its line too (hold-out checks grow with images)
            points = [(n, o) for (_, n, _), o in zip(runs, overhead, strict=True)]
            estimate = max(0.0, overhead[0] if len(runs) == 1 else _at(points, full_train))
            for phase in sorted({r.get("phase") for r in logs[0]}, key=str):
                last = [
                    (n, [r for r in log if r.get("phase") == phase][-1]["seconds"])
                    for (_, n, _), log in zip(runs, logs, strict=True)
                ]
                estimate += _at(last, full_train, per_image=True) * _full_epochs(full_cfg, unit, phase)
            how = "overhead + last epoch's seconds at full size x epochs"
        else:
            on_val = unit == "evaluate"
            points = [(v if on_val else n, t) for (_, n, v), t in zip(runs, seconds, strict=True)]
            estimate = _at(points, full_val if on_val else full_train)
            how = f"seconds at full {'val' if on_val else 'train'} size"
        rows.append(
            {
                "unit": unit,
                "measured_s": [round(t, 1) for t in seconds],
                "full_s": round(estimate, 1),
                "how": how,
            }
        )
    return rows


def bench_pipeline(
    config: str,
    overrides: list[str],
    out: Path,
    sizes: list[tuple[int, int]],
    size: int,
    epochs: int,
    full_train: int = VOC_TRAIN,
    full_val: int = VOC_VAL,
) -> dict[str, Any]:
    """Run every stage of `config` scaled down to each (train, val) of `sizes` into out/run-<train>,
    then extrapolate (see the module doc)."""
    full_cfg = load_config(config, overrides)
    taken = [out / f"run-{t}" for t, _ in sizes if (out / f"run-{t}").exists()]
    if taken:
        raise ValueError(
            f"{taken[0]} exists: bench pipeline times every stage from scratch, so give an --out "
            "without run folders in it (or none: a temporary folder)"
        )
    runs = []
    for train, val in sizes:
        scaled = scaled_overrides(full_cfg, train, val, size, epochs, out / "data")
        cfg = load_config(config, [*overrides, *scaled])
        run = Run(out / f"run-{train}")
        run_stages(cfg, run, list(STAGES), force=True)
        runs.append((run, train, val))
    rows = extrapolate(runs, full_cfg, full_train, full_val)
    return {
        "config": config,
        "device": str(local_device(full_cfg.device)),
        "scaled": {"sizes": [list(s) for s in sizes], "size": size, "epochs": epochs},
        "full": {"train": full_train, "val": full_val},
        "units": rows,
        "measured_s": [round(sum(r["measured_s"][i] for r in rows), 1) for i in range(len(sizes))],
        "full_s": round(sum(r["full_s"] for r in rows), 1),
    }


def table_md(result: dict[str, Any]) -> str:
    s, f = result["scaled"], result["full"]
    runs = " and ".join(f"{t} + {v}" for t, v in s["sizes"])
    lines = [
        f"{result['config']} on {result['device']}: measured on {runs} generated images of {s['size']}², "
        f"{s['epochs']} epoch(s) a network; extrapolated to {f['train']} + {f['val']} images and the "
        "config's epochs",
        "",
        f"| unit | measured s ({runs}) | extrapolated s (full) | how |",
        "|---|---|---|---|",
    ]
    for r in result["units"]:
        m = " / ".join(str(t) for t in r["measured_s"])
        lines.append(f"| {r['unit']} | {m} | {r['full_s']} ({r['full_s'] / 60:.1f} min) | {r['how']} |")
    total = " / ".join(str(t) for t in result["measured_s"])
    lines.append(f"| **total** | {total} | {result['full_s']} ({result['full_s'] / 3600:.2f} h) | |")
    return "\n".join(lines) + "\n"


def _counts(text: str, flag: str) -> list[int]:
    try:
        counts = [int(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise ValueError(f"{flag} {text!r}: give an image count, or several separated by commas (300,600)")
    return counts


def bench_pipeline_command(args: argparse.Namespace) -> int:
    trains, vals = _counts(args.train, "--train"), _counts(args.val, "--val")
    if len(trains) != len(vals):
        raise ValueError(
            f"--train {args.train} and --val {args.val}: give as many val counts as train counts"
        )

    def go(out: Path) -> dict[str, Any]:
        return bench_pipeline(
            args.config, list(args.overrides), out, list(zip(trains, vals, strict=True)), args.size,
            args.epochs, args.full_train, args.full_val,
        )  # fmt: skip

    if args.out:
        result = go(args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="c3seg-bench-") as tmp:
            result = go(Path(tmp))
    print(table_md(result))
    if args.json:
        print(json.dumps(result))
    return 0
