"""train-seg's image-level term (seg.label_loss)."""

from pathlib import Path

import torch

from c3seg.data.types import Sample, SegData
from c3seg.losses import image_label_loss, multi_hot


def test_image_label_loss_wants_labelled_classes_and_no_others() -> None:
    labels = torch.tensor([[1.0, 0.0]])  # classes: background, a (labelled), b (not)
    finds_a = torch.zeros(1, 3, 8, 8)
    finds_a[0, 1, :4] = 8.0  # class a on the top half, background elsewhere
    misses_a = torch.zeros(1, 3, 8, 8)
    misses_a[0, 0] = 8.0  # background everywhere
    confuses = finds_a.clone()
    confuses[0, 2, 4:] = 16.0  # and class b, which the image is not labelled with
    lo, mid, hi = (image_label_loss(x.log_softmax(1), labels) for x in (finds_a, confuses, misses_a))
    assert lo < mid and lo < hi
    x = misses_a.clone().requires_grad_(True)
    image_label_loss(x.log_softmax(1), labels).backward()
    assert x.grad[0, 1].min() < 0  # raising class a's score anywhere lowers the loss


def test_multi_hot_uses_given_image_labels() -> None:
    train = (
        Sample("s", Path("s.png"), Path("s_mask.png"), (1,)),
        Sample("w", Path("w.png"), None, (1, 2)),
    )
    data = SegData("t", ("background", "a", "b"), train, ())
    y = multi_hot(data, [(Path("w.png"), Path("pseudo/w.png")), (Path("s.png"), Path("s_mask.png"))])
    assert y.tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_class_weights_follow_median_frequency(tmp_path) -> None:
    import numpy as np
    import pytest

    from c3seg.io import write_label_png
    from c3seg.losses import class_weights

    a = np.zeros((10, 10), np.uint8)  # 100 px: 70 background, 20 class 1, 10 class 2 ... and void
    a[:2] = 1
    a[2, :] = 2
    a[3, :5] = 255  # void: not counted
    write_label_png(tmp_path / "a.png", a)
    pairs = [(tmp_path / "a.png", tmp_path / "a.png")]
    w = class_weights(pairs, 4, 1.0)  # class 3 absent
    counts = np.array([65, 20, 10])
    freq = counts / counts.sum()
    expected = np.median(freq) / freq
    assert w[:3].tolist() == pytest.approx(expected.tolist(), rel=1e-5)
    assert w[3] == pytest.approx(expected.max())  # absent: the largest present weight
    half = class_weights(pairs, 4, 0.5)
    assert half[:3].tolist() == pytest.approx((expected**0.5).tolist(), rel=1e-5)
    assert class_weights(pairs, 4, 0.0).tolist() == pytest.approx([1.0] * 4)


def test_image_label_loss_reads_each_class_largest_probability() -> None:
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 5, generator=g)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    top = torch.softmax(x, 1)[:, 1:].flatten(2).amax(-1)  # (B, C-1)
    want = F.binary_cross_entropy(top.clamp(1e-6, 1 - 1e-6), labels)
    assert torch.allclose(image_label_loss(x.log_softmax(1), labels), want, atol=1e-6)
