"""Segmentation backbones, looked up by name in BACKBONES.

- `tiny`: a small CPU network (about 0.4M parameters, output stride 4, a dilated context block
  in the spirit of LargeFOV) for the tests.
- `tiny-fast`: the same design, 24 channels wide, its deep layers at stride 8 (dilations halved:
  receptive field 139 px against 147) and upsampled onto the stride-4 features: 65M multiply-adds
  for a 96-px image against 285M, about 2-3x the training throughput of `tiny` on a 2-core CPU.
- `vgg16-largefov`: the paper's DeepLab-LargeFOV (VGG-16; pool4/pool5 stride 1, conv5 dilation 2,
  fc6 3x3 dilation 12 with 1024 channels, fc7 1x1 1024, fc8), output stride 8.
- `deeplabv3-resnet50`: torchvision's DeepLabV3 for users who want accuracy, output stride 8.

`build_model(name, K, pretrained)` loads pretrained weights through `c3seg.models.weights`; each
network names its output layer in `head_key`, which is skipped when the class count differs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from c3seg.config import pretrained_setting
from c3seg.models.common import upsample
from c3seg.models.weights import load_pretrained


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyNet(nn.Module):
    """Stem and stage2 to stride 4, then stage3 + a dilated context block at `deep_stride` (4 or 8,
    dilations scaled to keep about the same receptive field), concatenated with stage2 at stride 4."""

    head_key = "head.1"  # the 1x1 conv producing K channels

    def __init__(self, out_channels: int, width: int = 32, deep_stride: int = 4) -> None:
        super().__init__()
        if deep_stride not in (4, 8):
            raise ValueError(f"deep_stride must be 4 or 8, not {deep_stride}")
        w, d = width, 8 // deep_stride  # stage3's dilation: 2 at stride 4, 1 at stride 8
        self.stem = nn.Sequential(_conv(3, w, 2), _conv(w, w))  # H/2
        self.stage2 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))  # H/4
        first = _conv(2 * w, 3 * w, 1, 2) if deep_stride == 4 else _conv(2 * w, 3 * w, 2)
        self.stage3 = nn.Sequential(first, _conv(3 * w, 3 * w, 1, d))  # H/deep_stride
        ctx = (_conv(3 * w, 4 * w, 1, 2 * d), _conv(4 * w, 4 * w, 1, 4 * d))
        self.context = nn.Sequential(*ctx)  # large FOV
        self.head = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(4 * w + 2 * w, out_channels, 1))
        self.output_stride = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = self.stage2(self.stem(x))  # (B, 2w, H/4, W/4)
        x4 = self.context(self.stage3(x2))  # (B, 4w, H/s, W/s)
        if x4.shape[-2:] != x2.shape[-2:]:
            x4 = upsample(x4, x2.shape[-2:])
        return self.head(torch.cat([x4, x2], 1))  # (B, K, H/4, W/4)


class VGG16LargeFOV(nn.Module):
    """DeepLab-LargeFOV (Chen et al. 2015) on VGG-16, as the paper uses for L-Net and segmentation.

    `features.*` keep torchvision's VGG-16 names, so its ImageNet state dict loads into them."""

    head_key = "fc8"

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        from torchvision.models import vgg16

        vgg = vgg16(weights=None).features
        layers = list(vgg.children())
        # VGG-16 features: pools at indices 4, 9, 16, 23, 30. Keep pool1-3 (stride 8); pool4 and
        # pool5 become 3x3 stride-1 max pools; conv5 layers (24, 26, 28) get dilation 2.
        for i in (23, 30):
            layers[i] = nn.MaxPool2d(3, 1, 1)
        for i in (24, 26, 28):
            layers[i].dilation, layers[i].padding = (2, 2), (2, 2)
        for i in (4, 9, 16):
            layers[i] = nn.MaxPool2d(3, 2, 1)
        self.features = nn.Sequential(*layers, nn.AvgPool2d(3, 1, 1))
        self.fc6 = nn.Conv2d(512, 1024, 3, padding=12, dilation=12)  # LargeFOV
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        self.fc8 = nn.Conv2d(1024, out_channels, 1)
        self.drop = nn.Dropout(0.5)  # DeepLab's (Caffe) dropout: element-wise, after fc6 and fc7
        self.output_stride = 8
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)  # type: ignore[arg-type]  # Conv2d has a bias by default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 512, H/8, W/8)
        x = self.drop(torch.relu(self.fc6(x)))
        x = self.drop(torch.relu(self.fc7(x)))
        return self.fc8(x)  # (B, K, H/8, W/8)


class DeepLabV3ResNet50(nn.Module):
    head_key = "net.classifier.4"  # DeepLabHead's last 1x1 conv

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        from torchvision.models.segmentation import deeplabv3_resnet50

        self.net = deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=out_channels, aux_loss=False
        )
        self.output_stride = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.net.backbone(x)["out"]  # (B, 2048, H/8, W/8)
        return self.net.classifier(feats)  # (B, K, H/8, W/8)


BACKBONES: dict[str, Callable[[int], nn.Module]] = {
    "tiny": TinyNet,
    "tiny-fast": partial(TinyNet, width=24, deep_stride=8),
    "vgg16-largefov": VGG16LargeFOV,
    "deeplabv3-resnet50": DeepLabV3ResNet50,
}

# what pretrained=imagenet (formerly pretrained=true) loads for each backbone
IMAGENET_WEIGHTS = {
    "vgg16-largefov": "VGG16_Weights.IMAGENET1K_V1",  # features.*; fc6/fc7 by decimation of its fc layers
    "deeplabv3-resnet50": "ResNet50_Weights.IMAGENET1K_V1",  # into net.backbone.*
}


def build_model(name: str, out_channels: int, pretrained: str | bool = "") -> nn.Module:
    """A backbone with K = out_channels outputs.

    Args:
        name: a key of BACKBONES.
        out_channels: K, the channels of the output score map.
        pretrained: "" / "none" (from scratch), "imagenet", a torchvision weights name such as
            "ResNet50_Weights.IMAGENET1K_V2", or a .pt/.pth/.safetensors file (see
            c3seg.models.weights); true/false mean "imagenet" / "".
    """
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    model = BACKBONES[name](out_channels)
    spec = pretrained_setting(pretrained)
    if spec == "imagenet":
        if name not in IMAGENET_WEIGHTS:
            raise ValueError(
                f"the {name} backbone has no ImageNet weights; set pretrained='' (from scratch) or "
                "pretrained=/path/to/weights.safetensors (weights saved from a network of this backbone)"
            )
        spec = IMAGENET_WEIGHTS[name]
    if spec:
        load_pretrained(model, spec)
    return model
