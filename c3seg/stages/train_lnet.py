"""`train-lnet`: the L-Net, class-agnostic segmentation learned from strong categories (Eq. 1).

    min_θL  Σ_{C_s} J_b(L'_s, O_L(C_s; θ_L))                                        (Eq. 1)

L'_s is the strong ground truth binarized (any class 1..254 -> 1, background 0 -> 0; void 255 is
left out of the loss) and J_b the element-wise binary cross-entropy. The network is the
segmentation backbone with a one-channel head; M = sigmoid(O_L) is read by
`c3seg.inference.forward.foreground_prob`.

Training images are the strong images, `data.extra_strong` included when a second dataset
provides strong images (split 4: COCO's non-VOC categories, their masks read class-agnostically),
minus the strong hold-out (`splits.strong_holdout`: each dataset's strong images by the same hash
rule), checked by the leakage guard. After every epoch the foreground IoU on the strong hold-out is
logged and the best epoch's weights become the final checkpoint. Weak masks are never read here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from c3seg.config import Config
from c3seg.data.torchdata import PairSet, decoded_budget
from c3seg.data.transforms import binarize, train_transform
from c3seg.data.types import SegData
from c3seg.engine.lnet import fit_lnet, lnet_pairs
from c3seg.engine.run import Run
from c3seg.engine.training import (
    pretrained_weights,
    seed_everything,
)
from c3seg.models import build_model
from c3seg.splits import SplitSet

log = logging.getLogger(__name__)

STAGE = "lnet"


def train_lnet(cfg: Config, run: Run, data: SegData, split: SplitSet) -> Path:
    """Train the L-Net (Eq. 1); returns its checkpoint. Skips when finished, resumes from the last
    finished epoch when interrupted; the final weights are those of the best hold-out epoch."""
    final = run.checkpoint(STAGE)
    if final.exists():
        log.info("lnet: %s exists, skipping", final)
        return final
    tc = cfg.lnet
    seed_everything(cfg.seed)
    pairs, held = lnet_pairs(cfg, data, split)
    if not pairs:
        raise ValueError(f"split {split.name} leaves no strong training image with a mask for the L-Net")
    tf = train_transform(cfg.data.crop, cfg.data.scale_min, cfg.data.scale_max, tc.hue, tc.colour, tc.affine)
    ds = PairSet(pairs, tf, target=binarize, keep_mb=decoded_budget(cfg.data))
    model = build_model(tc.backbone, 1, pretrained_weights(tc, run))
    extra = {x.image for x in data.extra_strong}
    log.info("lnet: %d training images (%d of them extra strong)", len(ds), sum(p[0] in extra for p in pairs))
    return fit_lnet(cfg, tc, run, STAGE, model, ds, [(s.image, s.mask) for s in held])


