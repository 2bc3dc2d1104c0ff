"""Datasets keep decoded images in memory when asked (workers 0) and give the same samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import c3seg.data.torchdata as td
from c3seg.config import DataConfig
from c3seg.data.transforms import train_transform


def tree(tmp_path: Path, n: int = 6, side: int = 24) -> list[tuple[Path, Path | None]]:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        img, lab = tmp_path / f"{i}.jpg", tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(img)
        Image.fromarray(rng.integers(0, 3, (side, side), dtype=np.uint8), mode="L").save(lab)
        pairs.append((img, lab))
    return pairs


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    reads: list[Path] = []
    real = td.read_image

    def counted(path: Path) -> np.ndarray:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(td, "read_image", counted)
    return reads


def samples(ds: td.PairSet, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    return [ds[i][:2] for i in range(len(ds))]


def test_kept_images_are_read_once_and_give_the_same_samples(tmp_path: Path, monkeypatch) -> None:
    pairs, tf = tree(tmp_path), train_transform(16)
    reads = count_reads(monkeypatch)
    plain, kept = td.PairSet(pairs, tf), td.PairSet(pairs, tf, keep_mb=1)
    for epoch in range(3):
        for (x, y), (xk, yk) in zip(samples(plain, epoch), samples(kept, epoch), strict=True):
            assert torch.equal(x, xk) and torch.equal(y, yk)
    assert len(reads) == 3 * 6 + 6, "the plain set decodes every read, the kept one each image once"


def test_a_set_over_the_budget_is_not_kept(tmp_path: Path, monkeypatch) -> None:
    pairs = tree(tmp_path, n=4, side=600)  # 4 x (600 x 600 x 4 bytes) = 5.5 MiB > 1 MiB
    reads = count_reads(monkeypatch)
    ds = td.PairSet(pairs, train_transform(16), keep_mb=1)
    samples(ds, 0), samples(ds, 1)
    assert len(reads) == 8 and not ds.decoded.kept


def test_label_sets_keep_too_and_loader_processes_never_do(tmp_path: Path, monkeypatch) -> None:
    pairs = tree(tmp_path)
    reads = count_reads(monkeypatch)
    ds = td.LabelSet([p[0] for p in pairs], [[1]] * len(pairs), 3, train_transform(16), keep_mb=1)
    for _ in range(2):
        for i in range(len(ds)):
            ds[i]
    assert len(reads) == 6
    assert td.decoded_budget(DataConfig(workers=0, keep_decoded_mb=64)) == 64
    assert td.decoded_budget(DataConfig(workers=2, keep_decoded_mb=64)) == 0
