"""The tiny CPU networks: `tiny-fast` is `tiny` at a fraction of the cost, seeing about as far."""

import pytest
import torch
from torch import nn

from c3seg.models import build_model
from c3seg.models.backbones import TinyNet


def _macs(model: nn.Module, size: int) -> int:
    """Multiply-adds of the convolutions for one (3, size, size) image."""
    total = 0

    def hook(m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(m, nn.Conv2d)
        total += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


def _receptive_field(model: nn.Module, size: int = 161) -> int:
    """Side of the input square that moves the centre output pixel (gradient non-zero)."""
    model.eval()
    for m in model.modules():  # positive weights: no cancellation hides a pixel
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 0.01)
    x = torch.ones(1, 3, size, size, requires_grad=True)  # every ReLU open
    out = model(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    assert x.grad is not None
    rows = torch.nonzero(x.grad.abs().sum((0, 1)).sum(1))
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("size", [96, 97, 112, 45])
def test_tiny_fast_gives_stride_four_scores_for_any_size(size: int) -> None:
    tiny, fast = build_model("tiny", 5), build_model("tiny-fast", 5)
    x = torch.randn(2, 3, size, size + 3)
    assert fast.eval()(x).shape == tiny.eval()(x).shape  # (2, 5, ceil(H/4), ceil(W/4))
    assert fast.output_stride == tiny.output_stride == 4


def test_tiny_fast_costs_under_a_third_of_tiny_and_sees_about_as_far() -> None:
    tiny, fast = build_model("tiny", 17), build_model("tiny-fast", 17)
    assert _macs(fast, 96) < 0.3 * _macs(tiny, 96)
    rf_tiny, rf_fast = _receptive_field(tiny), _receptive_field(fast)
    assert rf_fast >= 0.9 * rf_tiny and rf_tiny > 100  # the large field of view survives (139 px vs 147)


def test_deep_stride_is_checked() -> None:
    with pytest.raises(ValueError, match="deep_stride"):
        TinyNet(3, deep_stride=2)


@pytest.mark.parametrize(
    ("shape", "size"), [((2, 17, 24, 24), (96, 96)), ((1, 3, 13, 17), (50, 61)), ((2, 5, 30, 40), (12, 9))]
)
def test_upsample_gives_f_interpolate_values_and_gradients(shape, size) -> None:
    import torch.nn.functional as F

    from c3seg.models.common import upsample

    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0), requires_grad=True)
    ref = x.detach().clone().requires_grad_(True)
    got, want = upsample(x, size), F.interpolate(ref, size=size, mode="bilinear", align_corners=False)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
    g = torch.randn_like(want)
    got.backward(g)
    want.backward(g)
    assert torch.allclose(x.grad, ref.grad, atol=1e-4)
    assert upsample(x, shape[-2:]) is x  # same size: nothing to do
