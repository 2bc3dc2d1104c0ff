"""Small helpers around models: upsampling score maps to the input size, devices."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample(logits: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """(B, K, h, w) -> (B, K, H, W), bilinear."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
