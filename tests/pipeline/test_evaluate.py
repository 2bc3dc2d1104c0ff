"""evaluate on a fake run folder: the pnet row names the fine-tuning epoch its checkpoint holds."""

from __future__ import annotations

import json
import os

import torch
from toydata import make

from c3seg.config import Config, SegConfig
from c3seg.engine.run import Run
from c3seg.engine.training import checkpoint_dict
from c3seg.io import save_checkpoint
from c3seg.models import build_model
from c3seg.splits import SplitSet
from c3seg.stages.evaluate import evaluate_all


def test_pnet_row_has_selected_epoch_from_the_checkpoint(tmp_path) -> None:
    data = make(tmp_path / "data", n_train=2, n_val=2, size=32)
    split = SplitSet("toy", ("red", "blue"), ("green",))
    cfg = Config(seg=SegConfig(amp=False), device="cpu")
    run = Run(tmp_path / "run")
    torch.manual_seed(0)
    model = build_model("tiny", data.num_classes)
    save_checkpoint(run.checkpoint("seg/lnet"), checkpoint_dict(model, "tiny", data.num_classes))  # no keys
    pnet_ckpt = run.checkpoint("seg/pnet")
    save_checkpoint(pnet_ckpt, checkpoint_dict(model, "tiny", data.num_classes, epoch=1, holdout_miou=42.123))

    rep = json.loads(evaluate_all(cfg, run, data, split).read_text())
    row = rep["methods"]["pnet"]
    assert row["selected_epoch"] == 1 and row["selection_score"] == 42.12
    assert row["finetune_epochs"] == cfg.pnet.finetune_epochs and row["selection"] == "strong"
    assert "selected_epoch" not in rep["methods"]["lnet"]
    assert (
        "pnet: fine-tuning epoch 1 of 1 chosen (epoch 0 = the lnet model unchanged)"
        in run.report_md.read_text()
    )

    # the same checkpoint again (even touched): the cached evaluation is reused
    cached = run.evaluation("pnet").stat()
    os.utime(pnet_ckpt)
    evaluate_all(cfg, run, data, split)
    assert run.evaluation("pnet").stat().st_mtime_ns == cached.st_mtime_ns
    # a new checkpoint, even one older than the cached eval/pnet.json: evaluated again (by content)
    save_checkpoint(pnet_ckpt, checkpoint_dict(model, "tiny", data.num_classes, epoch=0, holdout_miou=40.0))
    os.utime(pnet_ckpt, ns=(cached.st_atime_ns, cached.st_mtime_ns - 10**9))
    rep = json.loads(evaluate_all(cfg, run, data, split).read_text())
    assert run.evaluation("pnet").stat().st_mtime_ns != cached.st_mtime_ns
    assert rep["methods"]["pnet"]["selected_epoch"] == 0 and rep["methods"]["pnet"]["selection_score"] == 40.0

    # train-pnet's newer keys: the score that chose (selection_score, criterion selection) wins
    save_checkpoint(
        pnet_ckpt,
        checkpoint_dict(
            model,
            "tiny",
            data.num_classes,
            epoch=2,
            holdout_miou=40.0,
            selection="strong+labels",
            selection_score=45.5,
        ),
    )
    rep = json.loads(evaluate_all(cfg, run, data, split).read_text())
    assert (
        rep["methods"]["pnet"]["selection_score"] == 45.5
        and rep["methods"]["pnet"]["selection"] == "strong+labels"
    )
    assert "hold-out score 45.5 (pnet.select=strong+labels)" in run.report_md.read_text()

    # an older checkpoint without the keys: None, and no line in report.md
    save_checkpoint(pnet_ckpt, checkpoint_dict(model, "tiny", data.num_classes))
    rep = json.loads(evaluate_all(cfg, run, data, split).read_text())
    assert (
        rep["methods"]["pnet"]["selected_epoch"] is None and rep["methods"]["pnet"]["selection_score"] is None
    )
    assert "fine-tuning epoch" not in run.report_md.read_text()


def test_crf_rows_in_the_report(quick_run, tmp_path):
    import shutil

    from c3seg.cli import main

    run, _ = quick_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["evaluate", "--out", str(copy), "evaluate.crf_methods=[pnet,lnet]"]) == 0
    report = json.loads((copy / "report.json").read_text())
    for m in ("pnet+crf", "lnet+crf"):
        row = report["methods"][m]
        assert row["crf"] == "fast" and row["crf_ms_per_image"] > 0
        assert 0 <= row["miou"] <= 100 and row["percent_of_fully_supervised"] is not None
    assert report["methods"]["pnet"].get("crf") is None
    assert "+crf rows" in (copy / "report.md").read_text()
    made = (copy / "eval" / "pnet+crf.json").stat().st_mtime_ns
    assert main(["evaluate", "--out", str(copy)]) == 0  # reused, not recomputed
    assert (copy / "eval" / "pnet+crf.json").stat().st_mtime_ns == made
    try:
        import pydensecrf.densecrf  # noqa: F401
    except ImportError:
        return
    assert main(["evaluate", "--out", str(copy), "evaluate.crf=exact", "evaluate.crf_methods=[pnet]"]) == 0
    report = json.loads((copy / "report.json").read_text())
    assert report["methods"]["pnet+crf"]["crf"] == "exact"


def test_missing_exact_crf_fails_before_any_work(monkeypatch):
    import sys

    import pytest

    from c3seg.config import load_config
    from c3seg.pipeline import check_methods

    monkeypatch.setitem(sys.modules, "pydensecrf", None)  # as if pydensecrf2 were not installed
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    cfg = load_config("tiny", ["evaluate.crf_methods=[pnet]", "evaluate.crf=exact"])
    with pytest.raises(ValueError, match=r"pip install 'c3seg\[crf\]'"):
        check_methods(cfg)
    with pytest.raises(ValueError, match="unknown method 'pnet2' in evaluate.crf_methods"):
        check_methods(load_config("tiny", ["evaluate.crf_methods=[pnet2]"]))
    check_methods(load_config("tiny", ["evaluate.crf_methods=[pnet]", "evaluate.crf=fast"]))
