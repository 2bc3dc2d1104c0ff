"""Small helpers around models: upsampling score maps to the input size, devices."""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=64)
def bilinear_matrix(n_in: int, n_out: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(n_out, n_in) weights of 1-D bilinear resampling as F.interpolate(mode="bilinear",
    align_corners=False, antialias=False) computes it: output i reads the source coordinate
    (i + 0.5) * n_in / n_out - 0.5, clamped at 0, from its two neighbours."""
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo
    rows = torch.arange(n_out)
    a = torch.zeros(n_out, n_in, dtype=torch.float64)
    a.index_put_((rows, lo), 1 - frac, accumulate=True)
    a.index_put_((rows, hi), frac, accumulate=True)
    return a.to(device=device, dtype=dtype)


def upsample(logits: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """(B, K, h, w) -> (B, K, H, W), bilinear (align_corners=False), as two matrix products.

    Rows then columns are interpolated by the dense matrices of `bilinear_matrix`
    (A_h @ X @ A_w^T), which gives the same values and gradients as F.interpolate up to float
    rounding; the input is returned as it is when it already has the size."""
    (h, w), (H, W) = logits.shape[-2:], tuple(size)
    if (h, w) == (H, W):
        return logits
    a_h = bilinear_matrix(h, H, logits.device, logits.dtype)  # (H, h)
    a_w = bilinear_matrix(w, W, logits.device, logits.dtype)  # (W, w)
    return a_h @ (logits @ a_w.T)


