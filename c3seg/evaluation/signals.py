"""What a run's choices may look at: scores on strong images and on image-level labels only.

Every threshold, checkpoint and setting of c3seg is chosen on these, never on a weak image's mask
or on val. The report shows them beside the val figures, so a change can be judged on them first:
- the CAM classifier's hold-out mAP and F1 (image-level labels of held-out training images);
- the L-Net's hold-out foreground IoU (strong hold-out masks);
- each label source's mIoU on the strong calibration images (labels/calibration.json), for the
  make-labels round and, with self-training, its last round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from c3seg.engine.run import Run
from c3seg.io import read_json, read_jsonl


def _calibration(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    return {name: s["miou"] for name, s in read_json(path).get("sources", {}).items()}


def legal_signals(run: Run, rounds: int) -> dict[str, Any]:
    """The scores above for the run folder `run` whose self-training ran `rounds` rounds (missing
    ones left out: a stage that did not run, or a run without calibration)."""
    out: dict[str, Any] = {}
    cam = (read_jsonl(run.train_log("cam")) or [{}])[-1]  # the last epoch: the checkpoint
    if "holdout_map" in cam:
        out["cam_holdout_map"] = round(100 * cam["holdout_map"], 2)
        out["cam_holdout_f1"] = round(100 * cam["holdout_f1"], 2)
    ious = [row["holdout_fg_iou"] for row in read_jsonl(run.train_log("lnet")) if "holdout_fg_iou" in row]
    if ious:  # the best epoch: the L-Net's checkpoint
        out["lnet_holdout_fg_iou"] = round(100 * max(ious), 2)
    for r in sorted({0, rounds}):
        calib = _calibration(run.at_round(r).calibration)
        if calib:
            out[f"calibration_round{r}"] = calib
    return out


def signals_md(signals: dict[str, Any]) -> str:
    """The signals as a short list ('' when there are none)."""
    lines = []
    if "cam_holdout_map" in signals:
        lines.append(
            f"- CAM classifier on held-out training images (image labels): mAP {signals['cam_holdout_map']:.1f}, "
            f"F1 {signals['cam_holdout_f1']:.1f}"
        )
    if "lnet_holdout_fg_iou" in signals:
        lines.append(
            f"- L-Net on the strong hold-out: foreground IoU {signals['lnet_holdout_fg_iou']:.1f} (best epoch)"
        )
    for key in sorted(k for k in signals if k.startswith("calibration_round")):
        r = key.removeprefix("calibration_round")
        scores = ", ".join(f"{name} {v:.1f}" for name, v in signals[key].items())
        lines.append(f"- label sources on the strong calibration images, round {r}, mIoU: {scores}")
    return "\n".join(lines)


__all__ = ["legal_signals", "signals_md"]
