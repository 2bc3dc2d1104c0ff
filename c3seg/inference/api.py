"""Using a trained model from Python: `c3seg.load(...)` returns a `Segmenter`.

    seg = c3seg.load("runs/demo", method="pnet", device="cuda")   # a run folder
    seg = c3seg.load("model.safetensors")                          # or a `c3seg export` file
    label = seg.predict(image)              # (H, W) uint8 class indices; image (H, W, 3) uint8 RGB
    label, prob = seg.predict(image, probs=True)                   # prob (C, H, W) float32
    labels = seg.predict_batch(images)      # equal-size images share a forward pass
    m = seg.foreground(image)               # the L-Net's class-agnostic object map, (H, W) in [0, 1]
    seg.classes, seg.strong, seg.weak       # class names (index 0: background)

Predictions of `predict`, `predict_batch`, `c3seg predict` and an exported file are the same
computation: the network's softmax at the image's own size, optionally refined by a dense CRF.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from c3seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from c3seg.engine.distributed import check_device
from c3seg.engine.run import Run
from c3seg.inference.crf import dense_crf
from c3seg.inference.forward import foreground_prob, segment

CRF_MODES = ("none", "fast", "exact")


@dataclass(frozen=True)
class ModelInfo:
    """What a trained segmentation model is: everything an export records beside its weights."""

    classes: list[str]
    strong: list[str] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)
    method: str = ""
    backbone: str = ""
    output_stride: int = 0
    mean: tuple[float, ...] = IMAGENET_MEAN  # input normalization on 0..1 RGB
    std: tuple[float, ...] = IMAGENET_STD
    config: dict[str, Any] = field(default_factory=dict)  # the run's settings
    metrics: dict[str, Any] = field(default_factory=dict)  # the run's report row for this method

    def to_json(self) -> str:
        d = dict(self.__dict__)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        d = json.loads(text)
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {got}; c3seg.io.read_image reads one")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"the image is empty ({image.shape[0]}x{image.shape[1]} pixels); pass one of 1x1 or more")
    return image


class Segmenter:
    """A trained segmentation network (and, when it has one, the run's L-Net) ready to predict."""

    def __init__(
        self,
        seg: nn.Module,
        info: ModelInfo,
        lnet: nn.Module | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = check_device(str(device), 'device="cpu"')
        self.net = seg.to(self.device).eval()
        self.lnet = lnet.to(self.device).eval() if lnet is not None else None
        self.info = info

    @property
    def classes(self) -> list[str]:
        return self.info.classes

    @property
    def strong(self) -> list[str]:
        return self.info.strong

    @property
    def weak(self) -> list[str]:
        return self.info.weak

    def _batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack([_check_image(im) for im in images])).permute(0, 3, 1, 2)
        return normalize(x.to(self.device))

    @torch.no_grad()
    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities (B, C, H, W) float32 of equal-size images, without CRF."""
        return segment(self.net, self._batch(images)).cpu().numpy()

    def predict(
        self, image: np.ndarray, probs: bool = False, crf: str = "none"
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """(H, W) uint8 class indices of one (H, W, 3) uint8 RGB image; with probs=True also the
        (C, H, W) float32 probabilities. crf: none | fast (c3seg.inference.crf, PyTorch) | exact (pydensecrf)."""
        return self.predict_batch([image], probs=probs, crf=crf)[0]

    def predict_batch(
        self, images: Sequence[np.ndarray], probs: bool = False, crf: str = "none", batch_size: int = 8
    ) -> list[Any]:
        """`predict` of each image, in order; consecutive equal-size images share a forward pass of
        at most batch_size images (results equal one-at-a-time prediction)."""
        if crf not in CRF_MODES:
            raise ValueError(f"crf={crf!r}: choose from {', '.join(CRF_MODES)}")
        out: list[Any] = []
        i = 0
        while i < len(images):
            j = i + 1
            while j < len(images) and j - i < batch_size and images[j].shape == images[i].shape:
                j += 1
            for im, p in zip(images[i:j], self.probabilities(images[i:j]), strict=True):
                if crf != "none":
                    p = dense_crf(im, p, exact=crf == "exact")
                label = p.argmax(0).astype(np.uint8)
                out.append((label, p) if probs else label)
            i = j
        return out

    @torch.no_grad()
    def foreground(self, image: np.ndarray) -> np.ndarray:
        """M, the L-Net's class-agnostic foreground probability (Eq. 1's network), (H, W) float32:
        objects of any category, seen in training or not (the paper's Fig. 5)."""
        if self.lnet is None:
            raise ValueError("this model has no L-Net: load a run folder, or export with the L-Net included")
        return foreground_prob(self.lnet, self._batch([image]))[0].cpu().numpy()


EXPORT_FORMAT = "c3seg-export-1"


def _latest_lnet(run: Run) -> Path:
    """The run's last L-Net: the last self-training round's, else train-lnet's."""
    rounds = sorted(run.root.glob("selftrain/round*/lnet/model.pt"), key=lambda p: int(p.parts[-3][5:]))
    return rounds[-1] if rounds else run.checkpoint("lnet")


def run_info(run: Run, method: str, ck: dict[str, Any]) -> ModelInfo:
    """A run's ModelInfo for one method, from the checkpoint, config.yaml and report.json."""
    from c3seg.config import config_dict, load_config
    from c3seg.io import read_json
    from c3seg.models import build_model

    report = read_json(run.report_json) if run.report_json.exists() else {}
    classes = ck.get("classes") or report.get("classes")
    if not classes:
        classes = ["background"] + [f"class{k}" for k in range(1, ck["out_channels"])]
    config = config_dict(load_config(str(run.config), [])) if run.config.exists() else {}
    strong = report.get("strong", [])
    if not strong and config:
        from c3seg.splits import load_split

        try:
            strong = list(load_split(config["data"]["split"], classes).strong)
        except (ValueError, KeyError, FileNotFoundError):
            strong = []
    weak = [c for c in classes[1:] if c not in strong] if strong else []
    metrics = report.get("methods", {}).get(method, {})
    stride = int(getattr(build_model(ck["backbone"], 1), "output_stride", 0))
    return ModelInfo(
        classes=list(classes),
        strong=list(strong),
        weak=weak,
        method=method,
        backbone=ck["backbone"],
        output_stride=stride,
        config=config,
        metrics=metrics,
    )


def load_run_model(
    root: Path, method: str, device: str | torch.device = "cpu", with_lnet: bool = True
) -> Segmenter:
    """The Segmenter of one method of a run folder (see `load`)."""
    from c3seg.engine.training import load_model, model_from_checkpoint
    from c3seg.io import load_checkpoint

    run = Run(root)
    path = run.checkpoint(run.seg_stage(method))
    if not path.exists():
        have = sorted(p.parent.name for p in run.seg_dir.glob("*/model.pt"))
        raise FileNotFoundError(
            f"{path} does not exist: the run has no trained {method!r} network; "
            + (f"it has {', '.join(have)}" if have else "train it with 'c3seg run --out RUN' first")
        )
    ck = load_checkpoint(path, "train-seg")
    seg = model_from_checkpoint(ck, path)
    lnet_path = _latest_lnet(run)
    lnet = load_model(lnet_path, "cpu", expect_channels=1) if with_lnet and lnet_path.exists() else None
    return Segmenter(seg, run_info(run, method, ck), lnet, device)


def load_export(path: Path, device: str | torch.device = "cpu") -> Segmenter:
    """The Segmenter of a file written by `c3seg export` (safetensors: weights plus metadata)."""
    from safetensors import SafetensorError, safe_open

    from c3seg.models import build_model

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path} is not a safetensors file ({e}); export one with 'c3seg export'") from None
    if meta.get("format") != EXPORT_FORMAT:
        raise ValueError(
            f"{path} is not a c3seg export (format {meta.get('format')!r}, expected {EXPORT_FORMAT!r}); "
            "write one with 'c3seg export --run RUN --method METHOD --out FILE'"
        )
    info = ModelInfo.from_json(meta["info"])
    nets: dict[str, nn.Module] = {}
    for name, backbone, channels in (
        ("seg", info.backbone, len(info.classes)),
        ("lnet", meta.get("lnet_backbone", ""), 1),
    ):
        state = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        if not state:
            continue
        net = build_model(backbone, channels)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(
                f"{path}: the {name} weights do not fit a {backbone!r} network ({str(e)[:300]})"
            ) from None
        nets[name] = net
    if "seg" not in nets:
        raise ValueError(f"{path} holds no segmentation weights (no 'seg.*' tensors)")
    return Segmenter(nets["seg"], info, nets.get("lnet"), device)


def load(
    source: str | Path, method: str = "pnet", device: str | torch.device = "cpu", lnet: bool = True
) -> Segmenter:
    """A Segmenter from a run folder (its `method`'s network, and its last L-Net when lnet=True)
    or from a file written by `c3seg export` (method is then the one exported)."""
    path = Path(source)
    if path.is_dir():
        return load_run_model(path, method, device, with_lnet=lnet)
    if path.is_file():
        return load_export(path, device)
    raise FileNotFoundError(f"{path} is neither a run folder nor an exported model file")
