"""Training / evaluation transforms: shapes, 255 padding of masks, image and mask kept aligned."""

from __future__ import annotations

import torch
from torchvision import tv_tensors

from c3seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize, eval_transform, train_transform


def pair(h: int = 20, w: int = 30) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """An image whose red channel encodes the mask (class * 40) and whose green channel is x."""
    mask = torch.zeros(h, w, dtype=torch.uint8)
    mask[4:12, 5:20] = 1
    mask[10:18, 15:28] = 2
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[0] = mask * 40 + 10
    image[1] = torch.arange(w, dtype=torch.uint8).expand(h, w) * 8
    image[2] = 200
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def test_small_image_is_padded_with_void_and_stays_aligned():
    torch.manual_seed(0)
    t = train_transform(64, 1.0, 1.0)
    for _ in range(10):  # random crops and flips
        image, mask = pair()
        x, y = t(image, mask)
        assert x.shape == (3, 64, 64) and x.dtype == torch.float32
        assert y.shape == (64, 64)
        valid = y != 255
        assert valid.sum() == 20 * 30, "every original pixel is kept, the padding is 255"
        red = denormalize(x[None])[0, 0] * 255  # (64, 64)
        torch.testing.assert_close(red[valid], y[valid].float() * 40 + 10, atol=1.0, rtol=0)
        blue = denormalize(x[None])[0, 2]
        assert torch.all(blue[~valid] < 0.01), "image padding is black"


def test_flip_and_crop_keep_alignment_at_every_scale():
    torch.manual_seed(1)
    t = train_transform(16, 0.5, 2.0)
    for _ in range(20):
        image, mask = pair()
        x, y = t(image, mask)
        assert x.shape == (3, 16, 16) and y.shape == (16, 16)
        red = denormalize(x[None])[0, 0] * 255
        # away from label edges (antialiased image vs nearest mask) the colour matches the class
        edge = ((y != y.roll(1, -1)) | (y != y.roll(1, -2))).float()[None]
        near_edge = torch.nn.functional.max_pool2d(edge, 3, 1, 1)[0] > 0
        keep = (y != 255) & ~near_edge
        if keep.any():
            assert (red[keep] - (y[keep].float() * 40 + 10)).abs().median() < 12
        assert set(torch.unique(y).tolist()) <= {0, 1, 2, 255}


def test_eval_transform_keeps_the_full_image():
    image, mask = pair()
    x, y = eval_transform()(image, mask)
    assert x.shape == (3, 20, 30) and torch.equal(y, mask)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(x, (image.float() / 255 - mean) / std)


def test_lnet_colour_and_affine_keep_mask_values_and_alignment():
    torch.manual_seed(2)
    t = train_transform(24, 1.0, 1.0, hue=0.5, colour=True, affine=25)
    plain = train_transform(24, 1.0, 1.0, affine=25)
    for _ in range(10):
        image, mask = pair()
        x, y = t(image, mask)
        assert x.shape == (3, 24, 24) and set(torch.unique(y).tolist()) <= {0, 1, 2, 255}
        _, y_plain = plain(image, mask)
        assert set(torch.unique(y_plain).tolist()) <= {0, 1, 2, 255}
    # geometry alone: away from label edges the (untouched) red channel still encodes the class
    torch.manual_seed(3)
    for _ in range(10):
        image, mask = pair(40, 40)
        x, y = plain(image, mask)
        red = denormalize(x[None])[0, 0] * 255
        edge = ((y != y.roll(1, -1)) | (y != y.roll(1, -2))).float()[None]
        keep = (y != 255) & ~(torch.nn.functional.max_pool2d(edge, 3, 1, 1)[0] > 0)
        if keep.any():
            assert (red[keep] - (y[keep].float() * 40 + 10)).abs().median() < 12
