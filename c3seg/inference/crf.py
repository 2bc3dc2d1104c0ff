"""Dense-CRF refinement of class probabilities (Krähenbühl & Koltun 2011), two ways.

- exact (`dense_crf(..., exact=True)`, needs `pip install pydensecrf2`, imported as `pydensecrf`):
  the permutohedral mean field with the DeepLab ports' settings: 10 iterations,
  Gaussian kernel sxy 1, weight 3; bilateral kernel sxy 67, srgb 3, weight 4.
- fast (the default): the same mean field, but messages pass only within an 11x11 window of a 4x
  downsampled grid (as ConvCRF, Teichmann & Cipolla 2018), so it needs no compiled extension and
  runs on CPU or GPU. Its kernels are set for that grid, not copied from the exact one: Gaussian
  sxy 3, weight 3; bilateral sxy 67, srgb 13, weight 4 (distances in full-resolution pixels).
  `evaluate.crf_methods` reports what each changes on a run (docs/results.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _local_crf(
    image: torch.Tensor,
    prob: torch.Tensor,
    iters: int,
    window: int,
    scale: int,
    sxy_g: float,
    w_g: float,
    sxy_b: float,
    srgb: float,
    w_b: float,
) -> torch.Tensor:
    """image (3, H, W) float 0-255, prob (C, H, W) -> refined prob (C, H, W)."""
    C, H, W = prob.shape
    h, w = max(1, H // scale), max(1, W // scale)
    img = F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False)[0]  # (3, h, w)
    unary = torch.log(
        F.interpolate(prob[None], size=(h, w), mode="bilinear", align_corners=False)[0].clamp(min=1e-6)
    )
    r = window // 2
    steps = torch.arange(-r, r + 1.0, device=prob.device)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    dist2 = ((dy**2 + dx**2) * scale**2).reshape(-1, 1, 1)  # (K, 1, 1) squared pixel distance
    patches = F.unfold(img[None], window, padding=r).view(3, window * window, h, w)  # (3, K, h, w)
    rgb2 = ((patches - img[:, None]) ** 2).sum(0)  # (K, h, w)
    kernel = w_g * torch.exp(-dist2 / (2 * sxy_g**2)) + w_b * torch.exp(
        -dist2 / (2 * sxy_b**2) - rgb2 / (2 * srgb**2)
    )
    kernel[window * window // 2] = 0  # no message to itself
    q = torch.softmax(unary, 0)
    for _ in range(iters):
        nb = F.unfold(q[None], window, padding=r).view(C, window * window, h, w)  # (C, K, h, w)
        msg = (nb * kernel[None]).sum(1)  # (C, h, w)
        q = torch.softmax(unary + msg, 0)  # Potts compatibility: reward agreeing labels
    return F.interpolate(q[None], size=(H, W), mode="bilinear", align_corners=False)[0]


def exact_crf_module():  # noqa: ANN201 (pydensecrf has no types)
    """pydensecrf's densecrf module and unary_from_softmax, or a clear error naming the package."""
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError:
        raise ValueError(
            "the exact dense CRF needs pydensecrf2 (a C++ extension, builds with g++): "
            "pip install 'c3seg[crf]', or use the fast PyTorch CRF (evaluate.crf=fast, --crf fast)"
        ) from None
    return dcrf, unary_from_softmax


def dense_crf(image: np.ndarray, prob: np.ndarray, iters: int = 10, exact: bool = False) -> np.ndarray:
    """image (H, W, 3) uint8, prob (C, H, W) float -> refined prob (C, H, W) float32."""
    if exact:
        dcrf, unary_from_softmax = exact_crf_module()

        C, H, W = prob.shape
        d = dcrf.DenseCRF2D(W, H, C)
        d.setUnaryEnergy(unary_from_softmax(prob.astype(np.float32)))
        d.addPairwiseGaussian(sxy=1, compat=3)
        d.addPairwiseBilateral(sxy=67, srgb=3, rgbim=np.ascontiguousarray(image), compat=4)
        return np.array(d.inference(iters), np.float32).reshape(C, H, W)
    return fast_crf(torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(prob), iters).numpy()


def fast_crf(image: torch.Tensor, prob: torch.Tensor, iters: int = 10) -> torch.Tensor:
    """The fast CRF on the tensors' own device (a GPU's in evaluation: no copy to the CPU):
    image (3, H, W) 0-255 (any dtype), prob (C, H, W) -> refined prob (C, H, W) float32."""
    return _local_crf(
        image.float(),
        prob.float(),
        iters,
        window=11,
        scale=4,
        sxy_g=3.0,
        w_g=3.0,
        sxy_b=67.0,
        srgb=13.0,
        w_b=4.0,
    )
