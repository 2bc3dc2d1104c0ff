"""Stages recompute exactly when what they were made from changed (c3seg.engine.records), one process
works on a run folder at a time, and interrupted writes leave nothing behind."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from c3seg.cli import main
from c3seg.config import load_config
from c3seg.engine.records import read_stamp, stale_reason
from c3seg.engine.run import Run
from c3seg.io import TMP_MARK, read_label, write_label_png
from c3seg.pipeline import parse_stages, run_lock, run_stages, status

METHODS = "methods=fully-supervised,cam-threshold,lnet-cam,lnet"


def _cfg(tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    return load_config("tiny", [f"data.root={tmp_path / 'data'}", METHODS, *extra])


def _checkpoints(run: Run) -> dict[str, int]:
    return {str(p.relative_to(run.root)): p.stat().st_mtime_ns for p in sorted(run.root.rglob("model.pt"))}


def _up_to_date(caplog: pytest.LogCaptureFixture) -> set[str]:
    """Units that logged 'up to date' (skipped) in the captured logs."""
    return {r.getMessage().split(":")[0] for r in caplog.records if r.getMessage().endswith("up to date")}


def test_changed_setting_recomputes_exactly_the_stale_units(tmp_path: Path, caplog) -> None:
    run = Run(tmp_path / "run")
    stages = parse_stages("all")
    run_stages(_cfg(tmp_path), run, stages)
    seg = ["train-seg/fully-supervised", "train-seg/cam-threshold", "train-seg/lnet-cam", "train-seg/lnet"]
    units = ["train-lnet", "train-cam", "make-labels", *seg]
    for unit in units:
        rec = read_stamp(run, unit)
        assert rec is not None and rec["status"] == "done" and rec["result"], unit
    first = _checkpoints(run)

    caplog.set_level(logging.INFO)
    run_stages(_cfg(tmp_path), run, stages)  # nothing changed: every unit up to date
    assert _up_to_date(caplog) == set(units)
    assert _checkpoints(run) == first
    assert all(state in ("done", "not needed") for _, state, _ in status(_cfg(tmp_path), run))

    labels_before = {u: next(iter(read_stamp(run, u)["upstream"].values()), None) for u in seg}
    changed = _cfg(tmp_path, "lnet.lr=0.02")
    rows = {u: (s, why) for u, s, why in status(changed, run)}
    assert rows["train-lnet"] == ("stale", "lnet.lr 0.01 -> 0.02")
    assert rows["train-cam"][0] == "done" and rows["train-seg/fully-supervised"][0] == "done"
    with pytest.raises(
        ValueError, match=r"would be discarded and made again: train-lnet \(lnet.lr 0.01 -> 0.02\).*--force"
    ):
        run_stages(changed, run, stages)  # finished work is not discarded by a forgotten override
    assert _checkpoints(run) == first and read_stamp(run, "train-lnet")["key"]["lnet"]["lr"] == 0.01
    caplog.clear()
    run_stages(changed, run, stages, force=True)
    log = caplog.text
    assert "train-lnet: stale (lnet.lr 0.01 -> 0.02)" in log
    assert "make-labels: stale (train-lnet's output changed)" in log
    # each method is trained anew exactly when the labels it reads changed (a 1-epoch tiny L-Net
    # may leave them unchanged: then nothing downstream is retrained); fully supervised reads none
    remade = {u for u in seg if next(iter(read_stamp(run, u)["upstream"].values()), None) != labels_before[u]}
    assert "train-seg/fully-supervised" not in remade and "train-seg/cam-threshold" not in remade
    assert _up_to_date(caplog) == {"train-cam", *(set(seg) - remade)}
    now = _checkpoints(run)
    for unit in seg:
        ck = f"seg/{unit.split('/')[1]}/model.pt"
        assert (now[ck] != first[ck]) == (unit in remade), unit
    assert now["cam/model.pt"] == first["cam/model.pt"] and now["lnet/model.pt"] != first["lnet/model.pt"]

    # superpixels change the diffusion's labels: lnet is retrained, the L-Net and CAM kept
    caplog.clear()
    run_stages(_cfg(tmp_path, "lnet.lr=0.02", "labels.n_segments=40"), run, stages, force=True)
    assert "make-labels: stale (labels.n_segments 60 -> 40)" in caplog.text
    assert "train-seg/lnet: stale (make-labels's diffusion labels changed)" in caplog.text
    assert {
        "train-lnet",
        "train-cam",
        "train-seg/fully-supervised",
        "train-seg/cam-threshold",
    } <= _up_to_date(caplog)
    assert read_stamp(run, "train-lnet")["key"]["lnet"]["lr"] == 0.02

    # a new split: every unit that reads the dataset is stale, the L-Net first (no leakage)
    split = _cfg(tmp_path, "lnet.lr=0.02", "labels.n_segments=40", "data.split=bench-30")
    rows = {u: (s, why) for u, s, why in status(split, run)}
    assert rows["train-lnet"] == (
        "stale",
        "data.split bench-half -> bench-30; the dataset listing or split changed",
    )

    # a label file rewritten by hand or by a tool: what trained on it is stale, even when only
    # train-seg runs (make-labels' own record still names the old labels)
    now_cfg = _cfg(tmp_path, "lnet.lr=0.02", "labels.n_segments=40")
    label = sorted(run.labels_dir("diffusion").glob("*.png"))[0]
    write_label_png(label, np.full(read_label(label).shape, 255, np.uint8))
    rows = {u: (s, why) for u, s, why in status(now_cfg, run)}
    assert rows["make-labels"] == ("missing", "its outputs were changed or are incomplete")
    assert rows["train-seg/lnet"] == ("stale", "make-labels's diffusion labels changed")
    assert rows["train-seg/cam-threshold"][0] == "done" and rows["train-seg/fully-supervised"][0] == "done"
    caplog.clear()
    run_stages(now_cfg, run, parse_stages("train-seg"), force=True)
    assert "train-seg/lnet: stale (make-labels's diffusion labels changed)" in caplog.text
    assert "train-seg/cam-threshold" in _up_to_date(caplog)


def test_stale_reason_names_settings_and_upstream() -> None:
    rec = {"key": {"lnet": {"epochs": 40}}, "upstream": {"train-lnet": "a", "make-labels:diffusion": "b"}}
    want = {"key": {"lnet": {"epochs": 2}}, "upstream": {"train-lnet": "a", "make-labels:diffusion": None}}
    assert stale_reason(rec, want) == "lnet.epochs 40 -> 2; make-labels's diffusion labels is missing"
    assert stale_reason(want, want) is None






def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_second_process_is_refused_and_tmp_files_removed(tmp_path: Path) -> None:
    run = Run(tmp_path / "run")
    run.root.mkdir()
    left = run.root / "lnet" / f".model.pt{TMP_MARK}{_dead_pid()}-abc123.pt"  # its writer is gone
    left.parent.mkdir()
    left.write_bytes(b"")
    users = [  # hidden temporary-looking files of the user's, and a live process's c3seg write
        run.root / ".draft.tmp",
        run.root / "lnet" / ".model.pt.abc123.tmp.pt",
        run.root / f".x{TMP_MARK}notes",
        run.root / "lnet" / f".last.pt{TMP_MARK}{os.getppid()}-xyz.pt",
    ]
    for f in users:
        f.write_text("the user's")
    fd = os.open(run.lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"4242")
    try:
        with pytest.raises(ValueError, match=r"another c3seg process \(pid 4242\) is working on"):
            with run_lock(run):
                pass
        assert left.exists()  # nothing is touched while another process holds the folder
    finally:
        os.close(fd)
    with run_lock(run):
        assert not left.exists()
    assert all(f.read_text() == "the user's" for f in users)  # only c3seg's own temporaries go


def test_read_only_run_folder_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    run = Run(tmp_path / "ro")
    run.root.mkdir()
    run.root.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot write in the run folder"):
            with run_lock(run):
                pass
    finally:
        run.root.chmod(0o700)


def test_status_command(tmp_path: Path, capsys) -> None:
    assert main(["status", str(tmp_path / "nothing")]) == 2
    run = Run(tmp_path / "run")
    cfg = _cfg(tmp_path, "methods=fully-supervised")
    run_stages(cfg, run, parse_stages("train-seg,evaluate"))
    capsys.readouterr()
    assert main(["status", str(run.root)]) == 0
    out = capsys.readouterr().out
    assert "train-seg/fully-supervised  done" in out and "train-lnet" in out
    assert main(["status", str(run.root), "seg.epochs=2"]) == 1
    assert "stale       seg.epochs 1 -> 2" in capsys.readouterr().out

    # later commands default to the run's own settings and leave its config.yaml as it was
    saved = run.config.read_bytes()
    assert main(["evaluate", "--out", str(run.root)]) == 0
    assert main(["train-seg", "--out", str(run.root)]) == 0
    assert run.config.read_bytes() == saved
    # a changed setting is refused, not allowed to discard finished work, unless forced
    seg = run.checkpoint("seg/fully-supervised").read_bytes()
    assert main(["train-seg", "--out", str(run.root), "seg.epochs=2"]) == 2
    assert run.config.read_bytes() == saved and run.checkpoint("seg/fully-supervised").read_bytes() == seg






def test_loading_settings_are_not_part_of_any_key(tmp_path: Path) -> None:
    """Workers and the decoded-image budget change how images are read, not the outputs."""
    from c3seg.engine.records import unit_key

    base = _cfg(tmp_path)
    other = _cfg(tmp_path, "data.keep_decoded_mb=0", "data.workers=3")
    for unit in ("train-lnet", "train-seg/lnet"):
        assert unit_key(unit, base, "x") == unit_key(unit, other, "x")
    assert unit_key("train-lnet", base, "x") != unit_key("train-lnet", _cfg(tmp_path, "data.crop=32"), "x")



def test_a_missing_or_changed_output_is_not_done(tmp_path: Path, caplog) -> None:
    """The record decides "done" only together with the outputs it records: a deleted checkpoint or
    pseudo label makes its unit missing in `status`, and `run` makes it and what reads it anew."""
    run = Run(tmp_path / "run")
    cfg = _cfg(tmp_path, "methods=lnet")
    run_stages(cfg, run, parse_stages("all"))
    run.checkpoint("lnet").unlink()
    next(run.labels_dir("diffusion").glob("*.png")).unlink()
    rows = {u: (s, why) for u, s, why in status(cfg, run)}
    assert rows["train-lnet"] == ("missing", "its outputs are missing")
    # what reads the L-Net sees its checkpoint gone, before its own deleted label
    assert rows["make-labels"] == ("stale", "train-lnet's output is missing")
    caplog.set_level(logging.INFO)
    run_stages(cfg, run, parse_stages("all"))
    assert run.checkpoint("lnet").exists()
    assert "train-lnet: stale (its outputs are missing); making it anew" in caplog.text
    assert all(state in ("done", "not needed") for _, state, _ in status(cfg, run))


def test_changed_data_files_make_every_unit_stale(tmp_path: Path) -> None:
    """The data fingerprint covers each image's and mask's size and modification time."""
    from c3seg.data.load import load_dataset

    run = Run(tmp_path / "run")
    cfg = _cfg(tmp_path, "methods=fully-supervised")
    run_stages(cfg, run, parse_stages("train-seg"))
    image = load_dataset(cfg.data).train[0].image
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    rows = {u: (s, why) for u, s, why in status(cfg, run)}
    assert rows["train-seg/fully-supervised"] == ("stale", "the dataset listing or split changed")
    with pytest.raises(ValueError, match="would be discarded and made again"):
        run_stages(cfg, run, parse_stages("train-seg"))


@pytest.mark.parametrize("content", ["{not json", '{"unit": "train-cam", "status": "done"}', "[]"])
def test_an_unreadable_record_is_an_error_not_an_adoption(tmp_path: Path, content: str) -> None:
    run = Run(tmp_path / "run")
    cfg = _cfg(tmp_path, "methods=lnet")
    run_stages(cfg, run, parse_stages("train-lnet"))
    run.stamp("train-lnet").write_text(content)
    before = run.checkpoint("lnet").read_bytes()
    with pytest.raises(ValueError, match=r"train-lnet.json is not a readable record of train-lnet.*delete it"):
        run_stages(cfg, run, parse_stages("train-lnet"))
    assert run.checkpoint("lnet").read_bytes() == before
    assert main(["status", str(run.root)]) == 2


def test_outputs_without_a_record_are_made_anew(tmp_path: Path, caplog) -> None:
    run = Run(tmp_path / "run")
    cfg = _cfg(tmp_path, "methods=lnet", "lnet.epochs=2")
    run_stages(cfg, run, parse_stages("train-lnet"))
    run.stamp("train-lnet").unlink()
    assert {u: s for u, s, _ in status(cfg, run)}["train-lnet"] == "stale"
    caplog.set_level(logging.INFO)
    run_stages(cfg, run, parse_stages("train-lnet"))
    assert "train-lnet: stale (outputs without a record); making it anew" in caplog.text
    assert read_stamp(run, "train-lnet")["status"] == "done"


def test_self_train_rounds_zero_reads_make_labels_labels(tmp_path: Path) -> None:
    """Each self-training round has its own labels folder: labels/ stays make-labels' own."""
    run = Run(tmp_path / "run")
    cfg = _cfg(tmp_path, "methods=lnet", "selftrain.rounds=1", "selftrain.epochs=1")
    run_stages(cfg, run, parse_stages("train-lnet,train-cam,make-labels,self-train"))
    before = {p.name: p.read_bytes() for p in run.labels_dir("diffusion").glob("*.png")}
    assert before and read_stamp(run, "self-train")["status"] == "done"
    assert any(run.at_round(1).labels_dir("diffusion").glob("*.png"))
    run_stages(_cfg(tmp_path, "methods=lnet"), run, parse_stages("make-labels,train-seg"))
    after = {p.name: p.read_bytes() for p in run.labels_dir("diffusion").glob("*.png")}
    assert after == before and read_stamp(run, "make-labels")["status"] == "done"
    assert read_stamp(run, "train-seg/lnet")["upstream"] == {
        "make-labels:diffusion": read_stamp(run, "make-labels")["result"]["diffusion"]
    }
