"""`c3seg export`: a trained model as one self-describing file, and optionally as ONNX.

The safetensors file holds the segmentation network's weights (`seg.*`), the run's last L-Net's
(`lnet.*`, for `Segmenter.foreground`) and, as metadata, a `ModelInfo` (class names, which were
strong and weak, backbone, output stride, input normalization, the run's config and its report row
for the method). `c3seg.load(FILE)` rebuilds it; no pickle is involved.

The ONNX graph takes RGB images as float 0..255 (B, 3, H, W) of any size and returns class
probabilities (B, C, H, W) at the input size: normalization, upsampling and softmax are inside, so
a consumer needs nothing but onnxruntime. Parity with PyTorch is checked on export (largest
absolute difference of the probabilities <= ONNX_TOLERANCE on random images of two sizes).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from c3seg.inference.api import EXPORT_FORMAT, Segmenter, load_run_model
from c3seg.io import atomic_path

log = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-4  # probabilities in [0, 1]; measured differences on CPU are ~1e-7


def export_safetensors(seg: Segmenter, out: Path, with_lnet: bool = True) -> Path:
    """Write seg's weights and ModelInfo to `out` (safetensors)."""
    from safetensors.torch import save_file

    from c3seg import __version__

    tensors = {f"seg.{k}": v.detach().cpu().contiguous() for k, v in seg.net.state_dict().items()}
    meta = {"format": EXPORT_FORMAT, "c3seg": __version__, "info": seg.info.to_json()}
    if with_lnet and seg.lnet is not None:
        tensors.update({f"lnet.{k}": v.detach().cpu().contiguous() for k, v in seg.lnet.state_dict().items()})
        meta["lnet_backbone"] = str(seg.info.config.get("lnet", {}).get("backbone", seg.info.backbone))
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return out


class ProbabilityModel(nn.Module):
    """image (B, 3, H, W) float RGB 0..255 -> class probabilities (B, C, H, W): what ONNX exports."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.net((image - self.mean) / self.std)
        up = nn.functional.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return torch.softmax(up, 1)


def export_onnx(seg: Segmenter, out: Path, size: tuple[int, int] = (256, 256)) -> float:
    """Write the ONNX graph (dynamic batch and image size) and return the largest difference from
    PyTorch on random images of `size` and of a second size; raises when above ONNX_TOLERANCE."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ValueError(
            "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'c3seg[export]'"
        ) from None
    model = ProbabilityModel(seg.net, seg.info.mean, seg.info.std).cpu().eval()
    h, w = size
    example = torch.rand(1, 3, h, w) * 255
    dims = {
        0: torch.export.Dim("batch"),
        2: torch.export.Dim("height", min=16),
        3: torch.export.Dim("width", min=16),
    }
    with atomic_path(out) as tmp:
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            dynamo=True,
            input_names=["image"],
            output_names=["prob"],
            dynamic_shapes={"image": dims},
            verbose=False,
        )
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    g = torch.Generator().manual_seed(0)
    for shape in ((1, 3, h, w), (2, 3, h // 2 + 8, w + 24)):
        x = torch.rand(*shape, generator=g) * 255
        with torch.no_grad():
            ref = model(x).numpy()
        got = session.run(None, {"image": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - ref).max()))
    if worst > ONNX_TOLERANCE:
        raise ValueError(f"ONNX export of {out} differs from PyTorch by {worst:.2e} (> {ONNX_TOLERANCE})")
    return worst


def check_file_out(path: Path, flag: str, example: str) -> None:
    """Refuse, before any work, an output file path that is an existing folder."""
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder; export writes one file there: name a file, e.g. {path / example}")


def export_command(args: argparse.Namespace) -> int:
    check_file_out(args.out, "--out", "model.safetensors")
    if args.onnx:
        check_file_out(args.onnx, "--onnx", "model.onnx")
    seg = load_run_model(args.run, args.method, "cpu", with_lnet=not args.no_lnet)
    export_safetensors(seg, args.out, with_lnet=not args.no_lnet)
    log.info(
        "%s: %s of %s (%d classes, backbone %s)",
        args.out,
        args.method,
        args.run,
        len(seg.classes),
        seg.info.backbone,
    )
    if args.onnx:
        diff = export_onnx(seg, args.onnx, tuple(args.onnx_size))
        log.info(
            "%s: ONNX, largest difference from PyTorch %.1e (tolerance %.0e)", args.onnx, diff, ONNX_TOLERANCE
        )
    return 0
