"""`evaluate`: confusion-matrix mIoU of every trained method on val, and the Table 2 report."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from c3seg.config import Config
from c3seg.data.types import Sample, SegData
from c3seg.engine import distributed as dist
from c3seg.engine.records import file_hash
from c3seg.engine.run import Run
from c3seg.engine.training import load_model, use_bf16
from c3seg.evaluation.figures import weak_val_images, write_fig6
from c3seg.evaluation.plots import iou_bars, training_curves
from c3seg.evaluation.report import fmt_pct, method_row, write_report
from c3seg.evaluation.scoring import evaluate_model
from c3seg.evaluation.signals import legal_signals
from c3seg.io import load_checkpoint, read_json, write_json
from c3seg.methods import REPORT_ORDER
from c3seg.splits import SplitSet, class_ids

log = logging.getLogger(__name__)


def val_pairs(samples: Sequence[Sample]) -> list[tuple[Path, Path | None]]:
    pairs: list[tuple[Path, Path | None]] = [(s.image, s.mask) for s in samples if s.mask is not None]
    if not pairs:
        raise ValueError("no evaluation image has a mask; evaluation needs masks for the val list")
    return pairs


def val_fingerprint(samples: Sequence[Sample]) -> str:
    """A hash of the val images' ids and mask files (what an evaluation was computed on)."""
    text = "\n".join(f"{s.id}|{s.mask.name if s.mask else ''}" for s in samples)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trained_methods(run: Run) -> list[str]:
    """Methods with a finished segmentation checkpoint, in the report's order."""
    found = [p.parent.name for p in sorted(run.seg_dir.glob("*/model.pt"))]
    return sorted(found, key=lambda m: (REPORT_ORDER.index(m) if m in REPORT_ORDER else len(REPORT_ORDER), m))


def evaluate_method(cfg: Config, run: Run, data: SegData, method: str, crf: str = "none") -> dict:
    """Evaluate one method (after a dense CRF with crf fast | exact: row "<method>+crf"), or
    reuse its stored evaluation when that was made from the same checkpoint (by content hash), the
    same val images and the same CRF; returns the stored result."""
    ckpt = run.checkpoint(run.seg_stage(method))
    name = method if crf == "none" else f"{method}+crf"
    out = run.evaluation(name)
    made_from = {"checkpoint": file_hash(ckpt), "val": val_fingerprint(data.val)}
    if crf != "none":
        made_from["crf"] = crf
    if out.exists():
        old = read_json(out)
        legacy = "made_from" not in old and out.stat().st_mtime >= ckpt.stat().st_mtime
        if old.get("made_from") == made_from or legacy:
            return old
    device = dist.local_device(cfg.device)
    model = load_model(ckpt, device, expect_channels=data.num_classes)
    timing: dict[str, float] = {}
    cm = evaluate_model(
        model,
        val_pairs(data.val),
        data.num_classes,
        device,
        use_bf16(cfg.seg, device),
        workers=cfg.data.workers,
        crf=crf,
        timing=timing,
    )
    result = {
        "method": name,
        "confusion": cm.mat.tolist(),
        "iou": cm.iou().tolist(),
        "made_from": made_from,
    }
    if timing.get("images"):
        result["crf_ms_per_image"] = round(1000 * timing["crf_seconds"] / timing["images"], 1)
    if dist.is_main():
        write_json(out, result)
    return result


def pnet_selection(cfg: Config, run: Run) -> dict:
    """Which fine-tuning epoch train-pnet kept (0 = the lnet model unchanged) and the hold-out
    score that chose it, read from seg/pnet/model.pt on every call: the cached eval/pnet.json does
    not hold them. The score is the checkpoint's `selection_score` (criterion `selection`, i.e.
    pnet.select) or, in checkpoints written before those keys, its strong `holdout_miou`; None where
    the checkpoint lacks both (and `epoch`)."""
    ck = load_checkpoint(run.checkpoint(run.seg_stage("pnet")), "train-pnet")
    epoch = ck.get("epoch")
    score = ck.get("selection_score", ck.get("holdout_miou"))
    selection = ck.get("selection") or ("strong" if ck.get("holdout_miou") is not None else None)
    return {
        "selected_epoch": None if epoch is None else int(epoch),
        "selection_score": None if score is None else round(float(score), 2),  # percent
        "selection": selection,
        "finetune_epochs": ck.get("finetune_epochs", cfg.pnet.finetune_epochs),
    }


def evaluate_all(cfg: Config, run: Run, data: SegData, split: SplitSet) -> Path:
    methods = trained_methods(run)
    if not methods:
        raise FileNotFoundError(
            f"{run.seg_dir} holds no trained model; run 'c3seg run --stages train-seg' first"
        )
    rows = {}
    for m in methods:
        res = evaluate_method(cfg, run, data, m)
        rows[m] = method_row(np.array(res["iou"], dtype=float), data.classes, class_ids(data, split.weak))
        log.info(
            "%s: mIoU %s (strong %s, weak %s)",
            m,
            *(fmt_pct(rows[m][k]) for k in ("miou", "miou_strong", "miou_weak")),
        )
        if m == "pnet":
            rows[m].update(pnet_selection(cfg, run))
    for m in cfg.evaluate.crf_methods:
        if m not in methods:
            log.warning("evaluate.crf_methods names %s, which this run has not trained; skipped", m)
            continue
        res = evaluate_method(cfg, run, data, m, crf=cfg.evaluate.crf)
        row = method_row(np.array(res["iou"], dtype=float), data.classes, class_ids(data, split.weak))
        row.update(crf=cfg.evaluate.crf, crf_ms_per_image=res.get("crf_ms_per_image"))
        rows[f"{m}+crf"] = row
        log.info(
            "%s+crf (%s, %s ms an image): mIoU %.1f (weak %.1f)",
            m,
            cfg.evaluate.crf,
            res.get("crf_ms_per_image"),
            row["miou"],
            row["miou_weak"],
        )
    pseudo = {}
    for q in sorted(run.labels_root.glob("*/quality.json")):
        pseudo[q.parent.name] = read_json(q)
    if dist.is_main():
        write_pictures(cfg, run, data, split, rows)
        write_report(run, data, split, rows, pseudo, legal_signals(run, cfg.selftrain.rounds))
    return run.report_json


def write_pictures(cfg: Config, run: Run, data: SegData, split: SplitSet, rows: dict[str, dict]) -> None:
    """fig6 (labels.figure_images weak-category val images), iou.png and curves.png; skipped when
    figures/pictures.json says they were drawn from the same rows, checkpoints and training logs."""
    methods = [m for m in rows if "+" not in m]
    logs = sorted(run.root.rglob("log.jsonl"))
    key = {
        "rows": rows,
        "checkpoints": {m: file_hash(run.checkpoint(run.seg_stage(m))) for m in methods},
        "logs": {p.relative_to(run.root).as_posix(): file_hash(p) for p in logs},
        "figure_images": cfg.labels.figure_images,
    }
    record = run.figures / "pictures.json"
    names = ["iou.png", "curves.png"] + (["fig6.png"] if cfg.labels.figure_images > 0 else [])
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if record.exists() and read_json(record).get("made_from") == digest:
        if all((run.figures / n).exists() for n in names):
            return
    iou_bars(rows, data.classes, split.strong, run.figures / "iou.png")
    training_curves(run.root, run.figures / "curves.png")
    n = cfg.labels.figure_images
    samples = weak_val_images(data.val, class_ids(data, split.weak), n) if n > 0 else []
    if samples:
        write_fig6(run, samples, methods, data.classes, dist.local_device(cfg.device))
    write_json(record, {"made_from": digest})
