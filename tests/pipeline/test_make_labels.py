"""make-labels on a toy dataset with random tiny networks: outputs, resume, shards, no leakage."""

import dataclasses
from pathlib import Path

import pytest
import torch
import toydata

import c3seg.stages.make_labels as ml
from c3seg.config import Config, LabelConfig
from c3seg.diffusion import SOURCES
from c3seg.engine.run import Run
from c3seg.engine.training import checkpoint_dict
from c3seg.io import save_checkpoint
from c3seg.models import build_model
from c3seg.splits import SplitSet, partition


@pytest.fixture
def setup(tmp_path):
    data = toydata.make(tmp_path / "data", n_train=10, n_val=2, size=40)
    split = SplitSet("toy", strong=("red",), weak=("green", "blue"))
    run = Run(tmp_path / "run")
    torch.manual_seed(0)
    for stage, out in (("lnet", 1), ("cam", data.num_classes - 1)):
        save_checkpoint(run.checkpoint(stage), checkpoint_dict(build_model("tiny", out), "tiny", out))
    labels = LabelConfig(n_segments=20, calib_images=3, figure_images=2, batch_size=4)
    return Config(labels=labels, device="cpu"), run, data, split


def _with(cfg, **kw):
    return dataclasses.replace(cfg, labels=dataclasses.replace(cfg.labels, **kw))


def _spy_masks(monkeypatch, run, weak):
    """Record weak-mask reads and whether every label file existed at that moment."""
    weak_masks = {Path(s.mask).resolve() for s in weak}
    reads = []
    real = ml.read_label

    def spy(path):
        if Path(path).resolve() in weak_masks:
            done = all(run.label_path(src, s.id).exists() for s in weak for src in SOURCES)
            reads.append(done)
        return real(path)

    monkeypatch.setattr(ml, "read_label", spy)
    return reads


def test_writes_every_source_quality_and_figure_then_resumes(setup, monkeypatch):
    cfg, run, data, split = setup
    _, weak = partition(data, split)
    assert weak
    reads = _spy_masks(monkeypatch, run, weak)
    ml.make_labels(cfg, run, data, split)
    for src in SOURCES:
        assert sorted(p.stem for p in run.labels_dir(src).glob("*.png")) == sorted(s.id for s in weak)
        q = run.label_quality(src)
        assert q.exists() and "miou_weak" in q.read_text()
    assert (run.root / "labels" / "calibration.json").exists()
    assert (run.figures / "fig3.png").exists()
    assert reads and all(reads)  # weak masks read only once every label exists (evaluation)

    stamps = {p: p.stat().st_mtime_ns for p in run.labels_dir("diffusion").glob("*.png")}
    monkeypatch.setattr(ml, "run_task", lambda task: pytest.fail("a finished image was redone"))
    ml.make_labels(cfg, run, data, split)
    assert stamps == {p: p.stat().st_mtime_ns for p in run.labels_dir("diffusion").glob("*.png")}


def test_shards_cover_all_and_evaluate_last(setup, monkeypatch):
    cfg, run, data, split = setup
    _, weak = partition(data, split)
    reads = _spy_masks(monkeypatch, run, weak)
    ml.make_labels(_with(cfg, shard="0/2", figure_images=0), run, data, split)
    assert not reads and not run.label_quality("diffusion").exists()
    assert len(list(run.labels_dir("diffusion").glob("*.png"))) == len(weak[0::2])
    ml.make_labels(_with(cfg, shard="1/2", figure_images=0), run, data, split)
    for src in SOURCES:
        assert len(list(run.labels_dir(src).glob("*.png"))) == len(weak)
    assert run.label_quality("diffusion").exists() and all(reads)


def test_missing_checkpoint_says_what_to_run(setup):
    cfg, run, data, split = setup
    run.checkpoint("lnet").unlink()
    with pytest.raises(FileNotFoundError, match="train-lnet"):
        ml.make_labels(cfg, run, data, split)


def test_bad_shard():
    with pytest.raises(ValueError, match="i/n"):
        ml.parse_shard("2/2")


@pytest.mark.parametrize("calib_set", ["train", "holdout"])
def test_calibration_reads_the_chosen_strong_images(setup, monkeypatch, calib_set):
    """labels.calib_set=holdout calibrates on the strong hold-out (which neither network trained
    on), train on strong training images at large; never on a weak image."""
    from c3seg.splits import strong_holdout

    cfg, run, data, split = setup
    cfg = dataclasses.replace(_with(cfg, calib_set=calib_set, calib_images=50), data=dataclasses.replace(cfg.data, holdout=0.3))
    seen: list[str] = []
    real_maps = ml.label_maps

    def spy(nets, affinity, samples, *args, **kwargs):
        seen.extend(s.id for s in samples)
        return real_maps(nets, affinity, samples, *args, **kwargs)

    monkeypatch.setattr(ml, "label_maps", spy)
    strong, weak = partition(data, split)
    ml.calibrate(cfg, run, data, split, strong, ml.load_nets(run, torch.device("cpu")), torch.device("cpu"))
    held = {s.id for s in strong_holdout(data, split, 0.3)[1]}
    assert held and seen and not set(seen) & {s.id for s in weak}
    assert set(seen) == (held if calib_set == "holdout" else {s.id for s in strong})
