"""self-train: weak-image targets for the L-Net, and rounds that relabel and resume."""

import json

import numpy as np

from c3seg.cli import main
from c3seg.config import load_config
from c3seg.data.load import load_dataset
from c3seg.engine.records import read_stamp, result_of
from c3seg.engine.run import Run
from c3seg.splits import holdout, load_split, partition
from c3seg.stages.self_train import weak_target


def test_weak_target_object_confident_background_and_void() -> None:
    pseudo = np.zeros((10, 10), np.uint8)
    pseudo[2:4, 2:4] = 5  # a labelled object
    m = np.full((10, 10), 0.05)
    m[:, 8:] = 0.5  # the L-Net unsure on the right: not confident background
    cams = np.zeros((1, 10, 10))
    cams[0, 8:, :] = 0.9  # the CAM sure of something at the bottom
    t = weak_target(pseudo, m, cams, bg_fg=0.2, bg_cam=0.3, band=1)
    assert (t[2:4, 2:4] == 1).all()
    assert t[1, 1] == 255 and t[4, 4] == 255  # the band around the object
    assert t[6, 0] == 0  # low M, low CAM, no label: background
    assert t[0, 9] == 255 and t[9, 0] == 255  # unsure M, or a strong CAM: no loss
    assert set(np.unique(weak_target(pseudo, m, cams, 0.2, 0.3, band=0))) == {0, 1, 255}


def test_self_train_rounds_relabel_and_resume(tmp_path) -> None:
    out = tmp_path / "run"
    args = [
        "run", "--config", "tiny", "--out", str(out), f"data.root={tmp_path / 'data'}",
        "methods=lnet", "selftrain.rounds=2", "selftrain.epochs=1", "data.bench_train=48",
    ]  # fmt: skip
    assert main(args) == 0
    run = Run(out)
    rounds = json.loads(run.selftrain_summary.read_text())
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert all("diffusion" in r["pseudo_labels"] for r in rounds)
    assert run.checkpoint(run.selftrain_lnet(2)).exists()
    # each round its own labels folder, round 0's (make-labels') left as they were made
    assert all((run.at_round(r).labels_root / "calibration.json").exists() for r in (0, 1, 2))
    assert read_stamp(run, "make-labels")["result"] == result_of("make-labels", run, load_config(run.config))
    cfg = load_config(run.config)
    data = load_dataset(cfg.data)
    _, weak = partition(data, load_split(cfg.data.split, data.classes))
    kept, held = holdout(weak, cfg.data.holdout)
    assert all(run.selftrain_target(1, s.id).exists() for s in kept)
    assert not any(run.selftrain_target(1, s.id).exists() for s in held)  # the weak hold-out stays out
    assert all(run.at_round(2).label_path("diffusion", s.id).exists() for s in weak)
    assert json.loads((out / "report.json").read_text())["methods"]["lnet"]["miou"] is not None

    files = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".pt", ".png"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    assert main(args) == 0  # every round is done: nothing is redone
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes


def test_a_round_keeps_its_last_epoch_or_its_best_hold_out_epoch(tmp_path) -> None:
    from c3seg.io import load_checkpoint

    out = tmp_path / "run"
    base = [
        "run", "--config", "tiny", "--out", str(out), "--force", "--stages",
        "train-lnet,train-cam,make-labels,self-train", f"data.root={tmp_path / 'data'}", "methods=lnet", "selftrain.rounds=1",
        "selftrain.epochs=4", "data.bench_train=48",
    ]  # fmt: skip
    run = Run(out)
    for keep in ("last", "best"):
        assert main([*base, f"selftrain.keep={keep}"]) == 0
        stage = run.selftrain_lnet(1)
        ck = load_checkpoint(run.checkpoint(stage))
        log = [json.loads(line) for line in (run.stage_dir(stage) / "log.jsonl").read_text().splitlines()]
        scores = [row["holdout_fg_iou"] for row in log]
        assert [row["epoch"] for row in log] == [0, 1, 2, 3]
        if keep == "last":
            assert ck["epoch"] == 3 and ck["holdout_fg_iou"] == scores[3]
        else:  # ties go to the later epoch
            best = max(range(4), key=lambda e: (scores[e], e))
            assert ck["epoch"] == best and ck["holdout_fg_iou"] == scores[best]
        rounds = json.loads(run.selftrain_summary.read_text())
        assert rounds[1]["lnet_holdout_fg_iou"] == ck["holdout_fg_iou"]
