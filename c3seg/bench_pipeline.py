"""`c3seg bench pipeline`: what a whole run of a config costs at full scale (VOC: 10,582 training
and 1,449 val images), from a scaled-down run of every stage that is measured, not assumed.

The scaled-down run uses the config's networks, crop, batch sizes, workers, methods, CRF and
device on a generated benchmark of `--train` training and `--val` val images of side `--size`
(432² = 186,624 pixels ≈ VOC's typical 500×375 = 187,500), with `--epochs` epochs of every
network (no pretrained weights are loaded: a download is not what is timed, and the cost of a step
does not depend on the starting weights; self-training is off, as in the VOC config). Each unit's
wall time comes from RUN/timings.json and its epochs' times from its log.jsonl. Extrapolated to
`--full-train` / `--full-val` images and the config's own epochs:

  a training unit   overhead + (seconds of its last epoch) x (full / scaled training images) x
                    (the config's epochs), where overhead = unit seconds - the sum of its epoch
                    seconds (model building, checkpoint choice, saving: kept as measured). The last
                    epoch is the steady one: the first also pays the loader's start.
  make-labels       seconds x full / scaled training images (linear, setup included: a slight
                    over-estimate); the strong / weak share of the images is the generated split's
  evaluate          seconds x full / scaled val images (every method, and the CRF rows)

What is measured and what is extrapolated are both printed; the docs say which is which.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from c3seg.config import Config, load_config
from c3seg.distributed import local_device
from c3seg.pipeline import STAGES, run_stages, unit_seconds
from c3seg.run import Run

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
    for section in ("lnet", "cam", "seg"):
        over += [f"{section}.epochs={epochs}", f"{section}.pretrained="]
    return over


def _epoch_rows(run: Run, unit: str) -> list[dict[str, Any]]:
    stage = {"train-lnet": "lnet", "train-cam": "cam", "train-pnet": run.seg_stage("pnet")}.get(unit)
    if unit.startswith("train-seg/"):
        stage = run.seg_stage(unit.split("/", 1)[1])
    if stage is None or not run.train_log(stage).exists():
        return []
    lines = run.train_log(stage).read_text().splitlines()
    return [r for r in map(json.loads, lines) if "seconds" in r]


def _full_epochs(cfg: Config, unit: str, phase: str | None) -> int:
    if unit == "train-pnet":
        return cfg.pnet.pretrain_epochs if phase == "pretrain" else cfg.pnet.finetune_epochs
    return {"train-lnet": cfg.lnet, "train-cam": cfg.cam}.get(unit, cfg.seg).epochs


def extrapolate(
    run: Run, full_cfg: Config, train: int, val: int, full_train: int, full_val: int
) -> list[dict[str, Any]]:
    """One row per unit: measured seconds, and the estimate at full scale (see the module doc)."""
    rows = []
    for unit, seconds in unit_seconds(run).items():
        epochs = _epoch_rows(run, unit)
        if epochs:
            estimate = seconds - sum(r["seconds"] for r in epochs)  # overhead, kept as measured
            for phase in sorted({r.get("phase") for r in epochs}, key=str):
                last = [r for r in epochs if r.get("phase") == phase][-1]["seconds"]
                estimate += last * full_train / train * _full_epochs(full_cfg, unit, phase)
            how = "overhead + last epoch x images x epochs"
        else:
            scale = full_val / val if unit == "evaluate" else full_train / train
            estimate, how = seconds * scale, f"linear in {'val' if unit == 'evaluate' else 'train'} images"
        rows.append({"unit": unit, "measured_s": round(seconds, 1), "full_s": round(estimate, 1), "how": how})
    return rows


def bench_pipeline(
    config: str,
    overrides: list[str],
    out: Path,
    train: int,
    val: int,
    size: int,
    epochs: int,
    full_train: int = VOC_TRAIN,
    full_val: int = VOC_VAL,
) -> dict[str, Any]:
    """Run every stage of `config` scaled down into `out`, then extrapolate (see the module doc)."""
    full_cfg = load_config(config, overrides)
    cfg = load_config(
        config, [*overrides, *scaled_overrides(full_cfg, train, val, size, epochs, out / "data")]
    )
    run = Run(out / "run")
    run_stages(cfg, run, list(STAGES), force=True)
    rows = extrapolate(run, full_cfg, train, val, full_train, full_val)
    return {
        "config": config,
        "device": str(local_device(cfg.device)),
        "scaled": {"train": train, "val": val, "size": size, "epochs": epochs},
        "full": {"train": full_train, "val": full_val},
        "units": rows,
        "measured_s": round(sum(r["measured_s"] for r in rows), 1),
        "full_s": round(sum(r["full_s"] for r in rows), 1),
    }


def table_md(result: dict[str, Any]) -> str:
    s, f = result["scaled"], result["full"]
    lines = [
        f"{result['config']} on {result['device']}: measured on {s['train']} + {s['val']} generated "
        f"images of {s['size']}², {s['epochs']} epoch(s) a network; extrapolated to {f['train']} + {f['val']} "
        "images and the config's epochs",
        "",
        "| unit | measured s | extrapolated s (full) | how |",
        "|---|---|---|---|",
    ]
    for r in result["units"]:
        lines.append(
            f"| {r['unit']} | {r['measured_s']} | {r['full_s']} ({r['full_s'] / 60:.1f} min) | {r['how']} |"
        )
    lines.append(
        f"| **total** | {result['measured_s']} | {result['full_s']} ({result['full_s'] / 3600:.2f} h) | |"
    )
    return "\n".join(lines) + "\n"


def bench_pipeline_command(args: argparse.Namespace) -> int:
    def go(out: Path) -> dict[str, Any]:
        return bench_pipeline(
            args.config, list(args.overrides), out, args.train, args.val, args.size, args.epochs,
            args.full_train, args.full_val,
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
