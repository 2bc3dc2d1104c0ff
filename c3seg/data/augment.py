"""The L-Net's appearance and shape augmentation, on a whole batch at once where the network is.

`hue`, `colour` and `affine` make class colour and exact class shape stop being cues, so that the
class-agnostic L-Net learns object cues that transfer to categories it never saw (c3seg.stages.
train_lnet). Done per image in the loader, with torchvision's transforms, they cost ~8 ms an image
on one CPU core (rotation, shear and the hue round trip through HSV): about half of the L-Net's
epoch on the benchmark. Here every image of the batch still gets its own draw, but the work is a
few batched tensor operations: a rotation and shear by one `grid_sample`, colour as per-image
scalars and 3x3 colour matrices.

The draws come from a generator seeded by the caller (seed, epoch, first sample of the batch), not
from torch's global stream, so a resumed run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from c3seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize

# RGB -> YIQ (NTSC); a hue shift is a rotation of the (I, Q) chroma plane.
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, torchvision's rgb_to_grayscale
VOID = 255


@dataclass(frozen=True)
class Augment:
    """hue: hue shift drawn from [-hue, hue] turns (0.5 = any hue). colour: brightness and
    contrast in [0.6, 1.4], saturation in [0.2, 1.8], grey with probability 0.2, channels shuffled.
    affine: rotation in [-affine, affine] degrees, shear in [-0.8 affine, 0.8 affine] on each axis."""

    hue: float = 0.0
    colour: bool = False
    affine: float = 0.0

    @property
    def active(self) -> bool:
        return self.hue > 0 or self.colour or self.affine > 0


def batch_seed(seed: int, epoch: int, first_index: int) -> int:
    """The generator seed of one batch: fixed by the run's seed, the epoch and the batch's first
    sample, so it does not depend on resumption or on which process draws it."""
    return (seed * 1_000_003 + epoch * 10_007 + first_index) % (2**63)


def augment(
    images: torch.Tensor, masks: torch.Tensor | None, aug: Augment, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment a normalized batch (B, 3, H, W) and its masks (B, H, W) (int, void 255, may be None).

    Geometry first (outside the image: black, mask void), then colour; returns the normalized batch."""
    if not aug.active:
        return images, masks
    x = denormalize(images)  # (B, 3, H, W) in [0, 1]
    if aug.affine > 0:
        x, masks = _affine(x, masks, aug.affine, generator)
    if aug.colour:
        x = _jitter(x, generator)
    if aug.hue > 0:
        x = _hue(x, aug.hue, generator)
    if aug.colour:
        x = _grey_and_shuffle(x, generator)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std, masks


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)  # (n,) on the CPU


def _affine(
    x: torch.Tensor, masks: torch.Tensor | None, degrees: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rotate and shear each image about its centre (as torchvision's RandomAffine)."""
    b = x.shape[0]
    angle = torch.deg2rad(_uniform(b, -degrees, degrees, generator))
    shear = torch.deg2rad(_uniform(2 * b, -0.8 * degrees, 0.8 * degrees, generator)).tan().view(b, 2)
    cos, sin = angle.cos(), angle.sin()
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    one, zero = torch.ones(b), torch.zeros(b)
    shx = torch.stack([torch.stack([one, shear[:, 0]], -1), torch.stack([zero, one], -1)], -2)
    shy = torch.stack([torch.stack([one, zero], -1), torch.stack([shear[:, 1], one], -1)], -2)
    forward = rot @ shx @ shy  # (B, 2, 2): input -> output coordinates
    theta = torch.cat([torch.linalg.inv(forward), torch.zeros(b, 2, 1)], 2)  # output -> input
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if masks is None:
        return out, None
    # nearest sampling of the labels, and of ones to see which pixels came from outside the image
    lab = torch.stack([masks.to(x.dtype), torch.ones_like(masks, dtype=x.dtype)], 1)  # (B, 2, H, W)
    lab = F.grid_sample(lab, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    new = torch.where(lab[:, 1] > 0.5, lab[:, 0], float(VOID)).round().to(masks.dtype)  # (B, H, W)
    return out, new


def _grey(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_GREY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)  # (B, 1, H, W)


def _jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation (torchvision's ColorJitter(0.4, 0.4, 0.8)), each image its
    own factors; one fixed order where torchvision shuffles it."""
    b = x.shape[0]

    def per_image(lo: float, hi: float) -> torch.Tensor:
        return _uniform(b, lo, hi, generator).to(x.device, x.dtype).view(b, 1, 1, 1)

    x = (x * per_image(0.6, 1.4)).clamp(0, 1)  # brightness
    c = per_image(0.6, 1.4)
    x = (c * x + (1 - c) * _grey(x).mean((2, 3), keepdim=True)).clamp(0, 1)  # contrast
    s = per_image(0.2, 1.8)
    return (s * x + (1 - s) * _grey(x)).clamp(0, 1)  # saturation


def _hue(x: torch.Tensor, hue: float, generator: torch.Generator) -> torch.Tensor:
    """Shift hue by rotating the chroma plane in YIQ (a linear stand-in for the HSV round trip)."""
    b = x.shape[0]
    phi = 2 * math.pi * _uniform(b, -hue, hue, generator)
    cos, sin = phi.cos(), phi.sin()
    one, zero = torch.ones(b), torch.zeros(b)
    rot = torch.stack(
        [
            torch.stack([one, zero, zero], -1),
            torch.stack([zero, cos, -sin], -1),
            torch.stack([zero, sin, cos], -1),
        ],
        -2,
    )  # (B, 3, 3)
    m = (torch.linalg.inv(_YIQ) @ rot @ _YIQ).to(x.device, x.dtype)  # (B, 3, 3) on RGB
    return torch.einsum("bij,bjhw->bihw", m, x).clamp(0, 1)


def _grey_and_shuffle(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Grey with probability 0.2 (RandomGrayscale), then a random channel order per image."""
    b = x.shape[0]
    grey = (torch.rand(b, generator=generator) < 0.2).to(x.device).view(b, 1, 1, 1)
    x = torch.where(grey, _grey(x).expand_as(x), x)
    order = torch.rand(b, 3, generator=generator).argsort(1).to(x.device)  # (B, 3)
    return x.gather(1, order.view(b, 3, 1, 1).expand_as(x))
