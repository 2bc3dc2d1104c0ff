"""Networks. Every model maps images (B, 3, H, W) to score maps (B, K, H/s, W/s); upsampling,
losses and devices stay outside (see `c3seg.models.common.upsample`)."""

from c3seg.models.backbones import BACKBONES, build_model

__all__ = ["BACKBONES", "build_model"]
