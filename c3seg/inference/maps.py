"""The trained networks' maps of images, batched: M (the L-Net's foreground probability) and the
CAMs of each image's labelled classes (and, for make-labels when the run has one, the learned
affinity's embedding). What make-labels, self-train, the figures and the ceiling tool all read,
so it lives apart from any of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from c3seg.data.transforms import normalize
from c3seg.data.types import Sample
from c3seg.engine.run import Run
from c3seg.engine.training import load_model
from c3seg.inference.forward import affinity_embedding, class_activation_maps, foreground_prob
from c3seg.io import read_image


def load_nets(run: Run, device: torch.device, lnet: str = "lnet") -> tuple[torch.nn.Module, torch.nn.Module]:
    """(L-Net, CAM net) from the run folder; fails with the stage to run first. `lnet`: the
    L-Net's stage (a self-training round's, `run.selftrain_lnet(r)`, after the first)."""
    for stage in (lnet, "cam"):
        if not run.checkpoint(stage).exists():
            first = "train-cam" if stage == "cam" else "train-lnet" if stage == "lnet" else "self-train"
            raise FileNotFoundError(
                f"{run.checkpoint(stage)} is missing; run 'c3seg run --stages {first}' first"
            )
    return load_model(run.checkpoint(lnet), device, expect_channels=1), load_model(
        run.checkpoint("cam"), device
    )


def load_affinity(run: Run, device: torch.device) -> torch.nn.Module:
    """train-affinity's network from the run folder; fails with the stage to run first."""
    path = run.checkpoint("affinity")
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing, and affinity.enabled=true reads it; run 'c3seg run --stages "
            "train-affinity' first, or set affinity.enabled=false"
        )
    return load_model(path, device)


def network_maps(
    nets: tuple[torch.nn.Module, torch.nn.Module],
    samples: Sequence[Sample],
    batch_size: int,
    device: torch.device,
    scales: Sequence[float] = (1.0,),
) -> Iterator[tuple[Sample, np.ndarray, np.ndarray, np.ndarray]]:
    """(sample, image (H, W, 3) uint8, M (H, W), CAMs of its classes (K, H, W)); equal sizes batched;
    `scales` > 1 value: multi-scale + flip inference of both maps (labels.scales)."""
    for s, im, m, cams, _ in label_maps(nets, None, samples, batch_size, device, scales):
        yield s, im, m, cams


def label_maps(
    nets: tuple[torch.nn.Module, torch.nn.Module],
    affinity: torch.nn.Module | None,
    samples: Sequence[Sample],
    batch_size: int,
    device: torch.device,
    scales: Sequence[float] = (1.0,),
) -> Iterator[tuple[Sample, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
    """`network_maps` plus each image's learned-affinity embedding (D, H, W) from `affinity`
    (one pass at scale 1; None without an affinity network)."""
    multi = len(scales) > 1
    lnet, cam_net = nets
    batch: list[tuple[Sample, np.ndarray]] = []

    def flush() -> Iterator[tuple[Sample, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
        x = normalize(torch.from_numpy(np.stack([im for _, im in batch])).permute(0, 3, 1, 2).to(device))
        m = foreground_prob(lnet, x, scales, flip=multi).cpu().numpy()  # (B, H, W)
        cams = class_activation_maps(cam_net, x, scales=scales).cpu().numpy()  # (B, C-1, H, W)
        emb = [None] * len(batch) if affinity is None else affinity_embedding(affinity, x).cpu().numpy()
        for (s, im), mb, cb, eb in zip(batch, m, cams, emb, strict=True):
            yield s, im, mb, cb[[c - 1 for c in s.labels]], eb  # image-level labels only
        batch.clear()

    for s in samples:
        im = read_image(s.image)
        if batch and (im.shape != batch[0][1].shape or len(batch) >= batch_size):
            yield from flush()
        batch.append((s, im))
    if batch:
        yield from flush()
