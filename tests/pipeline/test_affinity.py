"""The learned affinity (train-affinity, beyond the paper): AffinityNet's loss on hand-made
embeddings, its place in the diffusion's graph, and the stage run on the tiny configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import c3seg.stages.make_labels as make_labels_mod
import c3seg.stages.train_affinity as train_affinity_mod
from c3seg.config import LabelConfig, load_config
from c3seg.data.load import load_dataset
from c3seg.diffusion import diffuse_labels, image_graph
from c3seg.diffusion.calibrate import AFFINITY_GRID, candidates
from c3seg.diffusion.graph import MIN_AFFINITY, affinities, edge_weights, embedding_distances, features
from c3seg.engine.records import read_stamp
from c3seg.engine.run import Run
from c3seg.losses import affinity_loss, affinity_pairs, grid_labels
from c3seg.pipeline import parse_stages, run_stages, status
from c3seg.splits import load_split, partition, strong_holdout


def _two_regions(h: int = 8, w: int = 12) -> torch.Tensor:
    """(1, h, w) labels: background on the left half, class 3 on the right."""
    labels = torch.zeros(1, h, w, dtype=torch.long)
    labels[:, :, w // 2 :] = 3
    return labels


def _embedding(region: torch.Tensor, d: int = 4, far: float = 30.0) -> torch.Tensor:
    """(1, d, h, w): 0 where `region` (1, h, w) is False, `far` in every channel where True."""
    return (region.float() * far)[:, None].expand(1, d, *region.shape[-2:]).clone()


def test_loss_near_zero_when_embeddings_follow_the_regions_and_large_when_they_do_not() -> None:
    labels = _two_regions()
    good = _embedding(labels > 0)
    assert affinity_loss(good, labels, radius=3).item() < 1e-6
    rows = torch.zeros_like(labels, dtype=torch.bool)
    rows[:, 4:] = True  # the embedding splits top from bottom, across the labels' left / right
    swapped = _embedding(rows)
    assert affinity_loss(swapped, labels, radius=3).item() > 3.0
    same = torch.zeros_like(good)  # everything alike: negatives cost -log(1 - a) with a = 1
    assert affinity_loss(same, labels, radius=3).item() > 3.0


def test_void_pixels_are_in_no_pair() -> None:
    labels = _two_regions()
    emb = _embedding(labels > 0)
    base = affinity_loss(emb, labels, radius=3)
    voided = labels.clone()
    voided[:, :, 5:7] = 255  # a void band on the boundary ...
    noisy = emb.clone()
    noisy[:, :, :, 5:7] = torch.randn(1, 4, 8, 2) * 50  # ... whose embeddings are anything
    assert torch.allclose(affinity_loss(noisy, voided, radius=3), base, atol=1e-6)
    assert affinity_loss(emb, torch.full_like(labels, 255), radius=3).item() == 0.0


def test_fg_and_bg_positives_are_averaged_apart() -> None:
    """Bad object pairs cost the same whatever the amount of (perfect) background beside them."""

    def case(width: int) -> torch.Tensor:
        labels = torch.zeros(1, 6, width, dtype=torch.long)
        labels[:, :, :2] = 1  # a 2-column object on the left
        emb = torch.zeros(1, 2, 6, width)
        emb[:, :, :, :2] = 100.0 + 0.5 * (torch.arange(6) % 2).view(1, 1, 6, 1)  # object rows alternate
        return affinity_loss(emb, labels, radius=2)

    narrow, wide = case(8), case(24)
    assert narrow.item() > 0.01
    assert torch.allclose(narrow, wide, atol=1e-6)
    labels = torch.zeros(1, 6, 8, dtype=torch.long)
    labels[:, :, :2] = 1
    emb = torch.zeros(1, 2, 6, 8)
    emb[:, :, :, :2] = 100.0 + 0.5 * (torch.arange(6) % 2).view(1, 1, 6, 1)
    fg = [(d[f].sum(), f.sum()) for d, f, _, _ in affinity_pairs(emb, labels, 2)]
    fg_mean = sum(s for s, _ in fg) / sum(n for _, n in fg)
    assert torch.allclose(narrow, 0.25 * fg_mean, atol=1e-5)  # bg term 0, negatives ~0


def test_grid_labels_void_mixed_cells() -> None:
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[:, :, 3:] = 2  # the boundary runs through the second column of 2x2 cells
    masks[:, 7, 7] = 255
    grid = grid_labels(masks, (4, 4))
    assert grid[0, :, 0].tolist() == [0, 0, 0, 0]
    assert grid[0, :, 1].tolist() == [255] * 4
    assert grid[0, :3, 2:].eq(2).all() and grid[0, 3, 3] == 255 and grid[0, 3, 2] == 2


def _flat_scene(h: int = 60, w: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One colour everywhere (Eq. 2's colour graph cannot tell the halves apart), M high
    everywhere, a CAM seed in the left half, and an embedding that separates the halves."""
    rng = np.random.default_rng(0)
    image = np.clip(120 + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)
    m = np.full((h, w), 0.9, np.float32)
    cams = np.zeros((1, h, w), np.float32)
    cams[0, 25:35, 10:20] = 1.0
    emb = np.zeros((2, h, w), np.float32)
    emb[:, :, w // 2 :] = 10.0
    return image, m, cams, emb


def test_learned_affinity_stops_the_diffusion_at_its_boundary() -> None:
    image, m, cams, emb = _flat_scene()
    cfg = LabelConfig(n_segments=48, min_q=0.3, affinity_weight=1.0)
    with_affinity = diffuse_labels(image, m, cams, [5], cfg, emb=emb)
    assert (with_affinity[:, :36] == 5).mean() > 0.95
    assert (with_affinity[:, 44:] == 0).all()
    colour_only = diffuse_labels(image, m, cams, [5], cfg)  # no embedding: Eq. 2's graph
    assert (colour_only[:, 44:] == 5).mean() > 0.5  # which leaks over the whole flat image


def test_weight_zero_is_eq2_exactly_and_one_is_the_learned_affinity() -> None:
    image, m, cams, emb = _flat_scene()
    cfg = LabelConfig(n_segments=48, affinity_weight=0.0)
    g = image_graph(image, m, cams, cfg, emb)
    z = affinities(features(g), g.edges, cfg.sigma)
    assert np.array_equal(edge_weights(g, cfg.sigma, True, 0.0), z)
    a = np.maximum(np.exp(-embedding_distances(g.emb, g.edges)), MIN_AFFINITY)
    np.testing.assert_allclose(edge_weights(g, cfg.sigma, True, 1.0), a, rtol=1e-9)
    half = edge_weights(g, cfg.sigma, True, 0.5)
    np.testing.assert_allclose(half, np.maximum(np.sqrt(z * a), MIN_AFFINITY), rtol=1e-9)
    assert np.array_equal(
        diffuse_labels(image, m, cams, [5], cfg, emb=emb), diffuse_labels(image, m, cams, [5], cfg)
    )
    # diffusion-no-m keeps the colour graph whatever the weight
    no_m = LabelConfig(n_segments=48, affinity_weight=1.0)
    assert np.array_equal(
        diffuse_labels(image, m, cams, [5], no_m, use_m=False, emb=emb),
        diffuse_labels(image, m, cams, [5], no_m, use_m=False),
    )


def test_calibration_grid_spans_the_weight_only_with_an_affinity() -> None:
    plain = candidates("ranking")
    assert all("affinity_weight" not in p for _, _, p in plain)
    with_aff = candidates("ranking", affinity=True)
    with_m = [p for m, use_m, p in with_aff if use_m and m == "ranking"]
    assert {p["affinity_weight"] for p in with_m} == set(AFFINITY_GRID)
    assert len(with_m) == len(AFFINITY_GRID) * sum(u and m == "ranking" for m, u, _ in plain)
    # the other formulation is only reported: it keeps the colour graph's grid
    assert [p for m, u, p in with_aff if u and m == "clamped"] == [
        p for m, u, p in plain if u and m == "clamped"
    ]
    assert [p for _, u, p in with_aff if not u] == [p for _, u, p in plain if not u]


def test_train_affinity_then_make_labels_on_the_tiny_config(tmp_path: Path, monkeypatch) -> None:
    overrides = [
        f"data.root={tmp_path / 'data'}",
        "methods=lnet",
        "labels.calib_images=6",
        "labels.figure_images=0",
    ]
    cfg = load_config("tiny", [*overrides, "affinity.enabled=true", "affinity.epochs=2"])
    data = load_dataset(cfg.data)
    split = load_split(cfg.data.split, data.classes)
    kept, held = strong_holdout(data, split, cfg.data.holdout)
    _, weak = partition(data, split)
    seen: list[list[tuple[Path, Path]]] = []
    real = train_affinity_mod.PairSet

    def spy(pairs, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(list(pairs))
        return real(pairs, *args, **kwargs)

    monkeypatch.setattr(train_affinity_mod, "PairSet", spy)
    embeddings = []
    real_task = make_labels_mod.run_task

    def task_spy(task):  # type: ignore[no-untyped-def]
        embeddings.append(None if task.emb is None else task.emb.shape)
        return real_task(task)

    monkeypatch.setattr(make_labels_mod, "run_task", task_spy)
    run = Run(tmp_path / "run")
    run_stages(cfg, run, parse_stages("train-lnet,train-affinity,train-cam,make-labels"))

    train_pairs = seen[0]  # the training set; the later ones are the hold-out's evaluation
    assert {p[0] for p in train_pairs} == {s.image for s in kept if s.mask is not None}
    touched = {p[1] for pairs in seen for p in pairs}
    assert not touched & {s.mask for s in weak}  # no weak mask, ever
    assert not {p[0] for p in train_pairs} & {s.image for s in held}  # never the strong hold-out

    assert run.checkpoint("affinity").exists() and not run.state("affinity").exists()
    rows = [json.loads(line) for line in run.train_log("affinity").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert all("holdout_pair_acc_balanced" in r and "best_epoch" in r for r in rows)
    assert read_stamp(run, "train-affinity")["status"] == "done"
    assert "train-affinity" in read_stamp(run, "make-labels")["upstream"]

    side = cfg.data.bench_size
    assert embeddings and all(e == (cfg.affinity.dim, side, side) for e in embeddings)  # every weak image
    calib = json.loads(run.calibration.read_text())
    assert calib["sources"]["diffusion"]["params"]["affinity_weight"] in AFFINITY_GRID
    assert "affinity_weight" not in calib["sources"]["diffusion-no-m"]["params"]
    assert set(calib["affinity_weights"]) == {str(w) for w in AFFINITY_GRID}
    for src in ("diffusion", "diffusion-no-m"):
        assert len(list(run.labels_dir(src).glob("*.png"))) == len(weak)
        assert "miou_weak" in json.loads(run.label_quality(src).read_text())

    # off again: train-affinity is not needed, and make-labels is stale for that reason alone
    off = load_config("tiny", overrides)
    rows_off = {u: (s, why) for u, s, why in status(off, run)}
    assert rows_off["train-affinity"] == ("not needed", "affinity.enabled=false")
    assert (
        rows_off["make-labels"][0] == "stale"
        and "affinity.enabled true -> false" in rows_off["make-labels"][1]
    )
    assert rows_off["train-lnet"][0] == rows_off["train-cam"][0] == "done"


def test_make_labels_without_the_affinity_checkpoint_says_what_to_run(tmp_path: Path) -> None:
    from c3seg.inference.maps import load_affinity

    with pytest.raises(FileNotFoundError, match="train-affinity"):
        load_affinity(Run(tmp_path / "run"), torch.device("cpu"))
