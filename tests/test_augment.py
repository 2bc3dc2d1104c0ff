"""The L-Net's batched augmentation (c3seg.data.augment): each image its own draw, masks stay
aligned and keep their values (void outside), reproducible from the batch's seed."""

from __future__ import annotations

import torch

from c3seg.data.augment import Augment, augment, batch_seed
from c3seg.data.transforms import denormalize, normalize

ALL = Augment(hue=0.5, colour=True, affine=25)


def batch(b: int = 6, side: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose red channel encodes the mask (class * 40 + 10); a square of class 1, one of 2."""
    mask = torch.zeros(b, side, side, dtype=torch.int64)
    mask[:, 8:24, 6:30] = 1
    mask[:, 20:34, 22:36] = 2
    image = torch.zeros(b, 3, side, side, dtype=torch.uint8)
    image[:, 0] = (mask * 40 + 10).to(torch.uint8)
    image[:, 1] = 120
    image[:, 2] = 200
    return normalize(image), mask


def draw(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_nothing_asked_nothing_done() -> None:
    x, y = batch()
    out, masks = augment(x, y, Augment(), draw(0))
    assert out is x and masks is y


def test_geometry_keeps_labels_aligned_and_marks_the_outside_void() -> None:
    x, y = batch()
    out, masks = augment(x, y, Augment(affine=25), draw(1))
    assert masks is not None and masks.shape == y.shape and masks.dtype == y.dtype
    assert set(masks.unique().tolist()) <= {0, 1, 2, 255}
    assert (masks == 255).any(), "rotated corners come from outside the image"
    red = denormalize(out)[:, 0] * 255  # (B, H, W)
    edge = ((masks != masks.roll(1, -1)) | (masks != masks.roll(1, -2))).float()[:, None]
    keep = (masks != 255) & ~(torch.nn.functional.max_pool2d(edge, 3, 1, 1)[:, 0] > 0)
    err = (red[keep] - (masks[keep].float() * 40 + 10)).abs()  # bilinear vs nearest: image rim blends
    assert (err < 2).float().mean() > 0.98, "image and mask moved together"
    inside = (masks != 255).float()[:, None]
    deep_void = ~(torch.nn.functional.max_pool2d(inside, 5, 1, 2)[:, 0] > 0)  # away from the rim
    assert deep_void.any() and (denormalize(out)[:, 2][deep_void] < 0.01).all(), "outside is black"
    assert not torch.equal(masks[0], masks[1]), "each image its own rotation"


def test_colour_changes_each_image_differently_and_stays_in_range() -> None:
    x, y = batch()
    out, masks = augment(x, y, Augment(hue=0.5, colour=True), draw(2))
    assert masks is not None and torch.equal(masks, y), "colour leaves the labels alone"
    rgb = denormalize(out)
    assert rgb.min() >= 0 and rgb.max() <= 1
    means = rgb.mean((2, 3))  # (B, 3)
    assert torch.cdist(means, means).fill_diagonal_(1).min() > 1e-3, "no two images drawn alike"


def test_hue_shift_keeps_grey_grey_and_a_full_turn_is_identity() -> None:
    grey = normalize(torch.full((4, 3, 8, 8), 128, dtype=torch.uint8))
    out, _ = augment(grey, None, Augment(hue=0.5), draw(3))
    torch.testing.assert_close(denormalize(out), denormalize(grey), atol=1e-4, rtol=0)


def test_same_seed_same_augmentation_whatever_came_before() -> None:
    x, y = batch()
    seed = batch_seed(7, 3, 120)
    a = augment(x, y, ALL, draw(seed))
    torch.rand(5)  # the global stream moves on (a resumed run's would differ); the draw does not
    b = augment(x, y, ALL, draw(seed))
    assert torch.equal(a[0], b[0]) and a[1] is not None and b[1] is not None and torch.equal(a[1], b[1])
    c = augment(x, y, ALL, draw(batch_seed(7, 4, 120)))
    assert not torch.equal(a[0], c[0])
